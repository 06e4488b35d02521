/**
 * `npm run bench:detection`: how long deploybot takes from the start of a breach to the page and to the rollback's
 * UpdateService (issue 9), measured in the local console's simulated time, against the target of `for` + lag + one
 * poll interval for the page and that + `rollback_grace` for the rollback.
 *
 * Seed 000 (examples/deploybot.yml): web v1.4.2 to production on Tuesday 10:15 SAST, approved by bob, two ways:
 * - ECS's own CANARY (the example with web production's strategy set back to it, as the safety-loop suites run it):
 *   the canary gives v1.4.2 all the traffic at 10:21, and the rollback is an UpdateService to the previous revision;
 * - deploybot's traffic steps (the example as it is): v1.4.2 on web-green takes its first 10% step, and the rollback
 *   is one ModifyRule that puts all the traffic back on blue.
 * From then plus 0, 20 or 40 s (three runs) v1.4.2 reads a 3.2% error rate, with CloudWatch publishing at once and
 * with `:lag 2m`. Prints a Markdown table, and keeps it in
 * bench/detection.json for BENCHMARKS.md (bench/report.ts); exits 0 whatever the figures.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { LocalConsole } from "../src/local/console.js";
import type { ConsoleEvent } from "../src/local/events.js";
import { ecsCanaryExample } from "../test/helpers/ecs-canary-example.js";

const CONFIG = fileURLToPath(new URL("../examples/deploybot.yml", import.meta.url));
const START = "2026-11-24T10:15:00+02:00";
const GUARDRAIL = "error rate (rollback)";
const PREVIOUS = /task-definition\/comply360-prod-web:1$/;
const LAGS = [0, 2];
const PHASES_S = [0, 20, 40];

type Flow = "ECS canary" | "traffic steps";
const FLOWS: Flow[] = ["ECS canary", "traffic steps"];

/** The ModifyRule's forward weights, [blue, green]. */
const weightsOf = (e: ConsoleEvent): number[] => {
  const actions = (e.input?.Actions ?? []) as Array<{
    Type: string;
    ForwardConfig?: { TargetGroups?: Array<{ Weight?: number }> };
  }>;
  return (actions.find((a) => a.Type === "forward")?.ForwardConfig?.TargetGroups ?? []).map((g) => g.Weight ?? 0);
};
const modifyRules = (events: ConsoleEvent[]) =>
  events.filter((e) => e.kind === "aws" && e.op === "ModifyRule" && !e.error);

interface Run {
  flow: Flow;
  lagMin: number;
  phaseS: number;
  breachAt: number;
  pageMs: number | null;
  rollbackMs: number | null;
  targetPageMs: number;
  targetRollbackMs: number;
  /** The guardrail's `for`, the poll interval and the rollback grace, as the config says. */
  rule: string;
}

async function measure(flow: Flow, lagMin: number, phaseS: number): Promise<Run> {
  const events: ConsoleEvent[] = [];
  const con = new LocalConsole({
    configFile: flow === "ECS canary" ? ecsCanaryExample() : CONFIG,
    dbFile: ":memory:",
    at: START,
    logger: pino({ level: "silent" }),
    emit: (e) => events.push(e),
  });
  await con.start();
  try {
    const run = async (...lines: string[]) => {
      for (const line of lines) await con.run(line);
    };
    await run(...(lagMin > 0 ? [`:lag ${lagMin}m`] : []), ":as alice", "/deploy web v1.4.2 to production");
    await run(":as bob", ":click Approve");
    if (flow === "ECS canary") {
      await run(":advance 6m");
      const share = con.world.trafficAt("comply360-prod", "web").find((s) => s.version === "v1.4.2")?.share;
      if (share !== 1) throw new Error(`v1.4.2 takes ${share} of the traffic at the breach, not all of it`);
    } else {
      // Until the first step: web-green up, its target group healthy, then 10% of the traffic.
      for (let i = 0; i < 30 && modifyRules(events).length === 0; i++) await run(":advance 30s");
      const first = modifyRules(events)[0];
      if (!first || weightsOf(first)[1] !== 10) throw new Error("web-green never took its first 10% step");
    }
    if (phaseS > 0) await run(`:advance ${phaseS}s`);
    const breachAt = con.clock.now().getTime();
    const shiftsBefore = modifyRules(events).length;
    await run(":metric web production error_rate 3.2", ":advance 20m");

    const page = events.find((e) => e.kind === "page" && e.action === "trigger" && e.summary?.includes(GUARDRAIL));
    const rollback =
      flow === "ECS canary"
        ? events.find(
            (e) => e.kind === "aws" && e.op === "UpdateService" && PREVIOUS.test(String(e.input?.taskDefinition)),
          )
        : modifyRules(events)
            .slice(shiftsBefore)
            .find((e) => weightsOf(e).join("/") === "100/0");
    const g = con.config.services.web?.environments.production?.guardrails.find((x) => x.name === GUARDRAIL);
    const policy = con.config.environments.production;
    if (!g || !policy) throw new Error(`examples/deploybot.yml has no “${GUARDRAIL}” in web production`);
    const targetPageMs = g.for + lagMin * 60_000 + con.config.monitor.interval;
    const since = (e: ConsoleEvent | undefined) => (e ? Date.parse(e.at) - breachAt : null);
    return {
      flow,
      lagMin,
      phaseS,
      breachAt,
      pageMs: since(page),
      rollbackMs: since(rollback),
      targetPageMs,
      targetRollbackMs: targetPageMs + policy.rollback_grace,
      rule: `${g.threshold} for ${took(g.for)}, polled every ${took(con.config.monitor.interval)}, rollback_grace ${took(policy.rollback_grace)}`,
    };
  } finally {
    await con.stop();
  }
}

const clock = (ms: number) =>
  new Intl.DateTimeFormat("en-GB", {
    timeZone: "Africa/Johannesburg",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  }).format(new Date(ms));
/** "5 min 40 s": to the second, as the runs differ by less than a minute. */
function took(ms: number | null): string {
  if (ms === null) return "never";
  const s = Math.round(ms / 1000);
  return s % 60 === 0 ? `${s / 60} min` : `${Math.floor(s / 60)} min ${s % 60} s`;
}
const within = (ms: number | null, target: number) => (ms !== null && ms <= target ? "yes" : "**NO**");

async function main(): Promise<void> {
  const runs: Run[] = [];
  for (const flow of FLOWS)
    for (const lag of LAGS) for (const phase of PHASES_S) runs.push(await measure(flow, lag, phase));

  const lagText = (lag: number) => (lag === 0 ? "none" : `${lag} min`);
  const held = (r: Run) =>
    r.pageMs !== null && r.pageMs <= r.targetPageMs && r.rollbackMs !== null && r.rollbackMs <= r.targetRollbackMs;
  const out = [
    `Detection in simulated time: seed 000, web production, error rate 3.2% on the new version (guardrail “${GUARDRAIL}”: ${runs[0]?.rule}). The rollback is the UpdateService to the previous revision (ECS canary) or the ModifyRule that puts all traffic back on blue (traffic steps).`,
    "",
    "| flow | CloudWatch lag | run | breach starts | → page | target (for + lag + poll) | → rollback | target (+ rollback_grace) | within both |",
    "|---|---|---|---|---|---|---|---|---|",
    ...runs.map(
      (r, i) =>
        `| ${r.flow} | ${lagText(r.lagMin)} | ${(i % PHASES_S.length) + 1} | ${clock(r.breachAt)} | ${took(r.pageMs)} | ${took(r.targetPageMs)} | ${took(r.rollbackMs)} | ${took(r.targetRollbackMs)} | ${held(r) ? "yes" : "**NO**"} |`,
    ),
    "",
    "| flow | CloudWatch lag | worst → page | target | worst → rollback | target |",
    "|---|---|---|---|---|---|",
    ...FLOWS.flatMap((flow) =>
      LAGS.map((lag) => {
        const these = runs.filter((r) => r.flow === flow && r.lagMin === lag);
        const worst = (pick: (r: Run) => number | null) =>
          these.some((r) => pick(r) === null) ? null : Math.max(...these.map((r) => pick(r) as number));
        const page = worst((r) => r.pageMs);
        const rollback = worst((r) => r.rollbackMs);
        const first = these[0] as Run;
        return `| ${flow} | ${lagText(lag)} | ${took(page)} (${within(page, first.targetPageMs)}) | ${took(first.targetPageMs)} | ${took(rollback)} (${within(rollback, first.targetRollbackMs)}) | ${took(first.targetRollbackMs)} |`;
      }),
    ),
    "",
    "Breach start: the `:metric` that sets 3.2% while v1.4.2 takes all the traffic (ECS canary) or its first 10% (traffic steps, judged on web-green's own target group). The simulated CloudWatch reads each period at its start, so a breach that starts mid-minute shows from the next period on: the poll interval in the target covers that.",
  ];
  process.stdout.write(`${out.join("\n")}\n`);
  // bench/report.ts puts these tables in BENCHMARKS.md.
  writeFileSync(
    new URL("./detection.json", import.meta.url),
    `${JSON.stringify({ date: new Date().toISOString(), markdown: out }, null, 2)}\n`,
  );
}

await main();
