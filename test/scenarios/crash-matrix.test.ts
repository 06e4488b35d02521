import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { constants } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import type { ConsoleEvent } from "../../src/local/events.js";
import { Store } from "../../src/store/index.js";
import { at, CrashableBot, type EffectCall, effectCall } from "../helpers/crash.js";
import { EXAMPLE_CONFIG, TUESDAY, tempDir } from "../helpers/monitor-console.js";

/**
 * The crash matrix (issue 8 §4). Each flow is run once without a crash to list, in order, every call it makes
 * that changes the world (ECS writes, PagerDuty events, Slack posts and updates). Then, for each of them, the flow
 * is run again on a db file, the bot is killed right after that call (the nth call of its kind, armed as
 * `:crash-after API:OP`), started again on the same db, and run to the end. Every run must end as the clean run
 * did: each effect made exactly once, the same states, the same audit rows.
 */

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

interface Flow {
  name: string;
  lines: string[];
}

/** deploy → rollout → bake → breach → page → automatic rollback → recovery, and the rollback's own bake. */
const AUTOMATIC: Flow = {
  name: "breach and automatic rollback",
  lines: [
    ":as alice",
    "/deploy web v1.4.2 to production",
    ":as bob",
    ":click Approve",
    at("10:21:00"),
    ":metric web production error_rate 3.2",
    at("10:27:00"),
    at("10:30:00"),
    ":metric web production error_rate 0.2",
    at("10:38:00"),
    at("11:05:00"),
  ],
};

/** A manual P1 /rollback while the deploy still rolls out (StopServiceDeployment), to the rollback's end. */
const MANUAL: Flow = {
  name: "manual P1 /rollback during the rollout",
  lines: [
    ":as alice",
    "/deploy web v1.4.2 to production",
    ":as bob",
    ":click Approve",
    at("10:17:00"),
    ":as carol",
    '/rollback web production --severity P1 --reason "canary errors"',
    ":click Roll back",
    at("10:25:00"),
    at("11:00:00"),
  ],
};

/** The nth call of a kind, counted from the start of the flow. */
interface CrashPoint {
  call: EffectCall;
  n: number;
  /** The flow line during which the clean run made it. */
  line: number;
}

/** How a flow ended: what the world received and what the store holds, in comparable form. */
interface Outcome {
  deployments: string[];
  incidents: string[];
  lock: number | null;
  openIntents: string[];
  /** Audit actions by deployment, as a multiset (sorted). */
  audit: string[];
  /** Accepted ECS writes, by operation and task definition or deployment. */
  ecs: string[];
  /** Events PagerDuty accepted as new (not deduplicated), by action and dedup key. */
  pages: string[];
  /** Every message Slack holds, top-level or reply, with its final text (times masked), as a multiset. */
  slack: string[];
  /** The messages of each channel in the order Slack holds them. */
  order: string[];
}

const maskTimes = (text: string) => text.replace(/\b\d\d:\d\d\b/g, "HH:MM").replace(/\b\d+ min\b/g, "N min");

async function outcomeOf(store: Store, world: SimWorld, events: ConsoleEvent[]): Promise<Outcome> {
  const deployments = await store.deployments.history("web", "production", 20);
  const messages = world.slackMessages().filter((m) => !m.ephemeralFor);
  const line = (m: (typeof messages)[number]) => `${m.channel} ${m.threadTs ? "reply" : "top"}: ${maskTimes(m.text)}`;
  return {
    deployments: deployments.map((d) => `#${d.id} ${d.kind} ${d.status}`).sort(),
    incidents: (await store.incidents.ofDeployments(deployments.map((d) => d.id))).map(
      (i) => `#${i.id} of #${i.deploymentId} “${i.guardrail}” ${i.state} episode ${i.episode}`,
    ),
    lock: (await store.locks.get("web", "production"))?.deploymentId ?? null,
    openIntents: (await store.intents.open()).map((i) => i.key),
    audit: (await store.audit.list()).map((a) => `#${a.deploymentId ?? "-"} ${a.action}`).sort(),
    ecs: events
      .filter((e) => e.kind === "aws" && effectCall(e))
      .map((e) => `${e.op} ${String(e.input?.taskDefinition ?? e.input?.serviceDeploymentArn ?? e.input?.family)}`)
      .sort(),
    pages: world
      .pages()
      .filter((p) => !p.deduplicated)
      .map((p) => `${p.action} ${p.dedupKey}`)
      .sort(),
    slack: messages.map(line).sort(),
    order: ["#deploys", "#incidents"].map((c) =>
      messages
        .filter((m) => m.channel === c)
        .map(line)
        .join("\n"),
    ),
  };
}

/** What differs between two outcomes, one line per field; empty when the crash changed nothing. */
function differences(clean: Outcome, crashed: Outcome): string[] {
  const out: string[] = [];
  for (const key of Object.keys(clean) as Array<keyof Outcome>) {
    const a = clean[key];
    const b = crashed[key];
    if (!Array.isArray(a) || !Array.isArray(b)) {
      if (a !== b) out.push(`${key}: ${a} → ${b}`);
      continue;
    }
    if (key === "order") {
      if (a.join("\n") !== b.join("\n")) out.push("order: the messages of a channel came in another order");
      continue;
    }
    const count = new Map<string, number>();
    for (const x of a) count.set(x, (count.get(x) ?? 0) + 1);
    for (const x of b) count.set(x, (count.get(x) ?? 0) - 1);
    const diff = [...count]
      .filter(([, n]) => n !== 0)
      .map(([x, n]) => `${n > 0 ? "missing" : "extra"} ×${Math.abs(n)} ${x}`);
    if (diff.length) out.push(`${key}: ${diff.join("; ")}`);
  }
  return out;
}

/** A db file in a fresh temporary directory. */
async function withDb<T>(fn: (db: string) => Promise<T>): Promise<T> {
  const tmp = tempDir("deploybot-matrix-");
  try {
    return await fn(join(tmp.dir, "deploybot.db"));
  } finally {
    tmp.remove();
  }
}

/** The line to go on from after the bot died in line `died`: `:time` lines are run again (they name a moment). */
const resumeAt = (flow: Flow, died: number) => (flow.lines[died]?.startsWith(":time") ? died : died + 1);

interface CleanRun {
  outcome: Outcome;
  points: CrashPoint[];
}

/** Runs a flow without a crash and lists its effect calls in order, with the line each was made in. */
async function cleanRun(flow: Flow): Promise<CleanRun> {
  return withDb(async (db) => {
    const bot = new CrashableBot(db);
    await bot.start(TUESDAY);
    try {
      const points: CrashPoint[] = [];
      const seen = new Map<string, number>();
      for (const [line, text] of flow.lines.entries()) {
        const from = bot.events.length;
        await bot.run(text);
        for (const e of bot.events.slice(from)) {
          const call = effectCall(e);
          if (!call) continue;
          const n = (seen.get(`${call.api}:${call.op}`) ?? 0) + 1;
          seen.set(`${call.api}:${call.op}`, n);
          points.push({ call, n, line });
        }
      }
      return { outcome: await outcomeOf(bot.con.store, bot.con.world, bot.events), points };
    } finally {
      await bot.stop();
    }
  });
}

/** Runs a flow, kills the bot right after `point`, starts it again on the same db and runs the flow to its end. */
async function crashedRun(flow: Flow, point: CrashPoint): Promise<{ died: number; outcome: Outcome }> {
  return withDb(async (db) => {
    const bot = new CrashableBot(db);
    await bot.start(TUESDAY);
    try {
      bot.crashAfterNth(point.call, point.n);
      const died = await bot.run(...flow.lines);
      if (died >= 0) {
        await bot.restart();
        await bot.run(...flow.lines.slice(resumeAt(flow, died)));
      }
      return { died, outcome: await outcomeOf(bot.con.store, bot.con.world, bot.events) };
    } finally {
      await bot.stop();
    }
  });
}

const name = (p: CrashPoint) => `${p.call.api}:${p.call.op} #${p.n}`;
const tally = { tried: 0, held: 0 };
const clean = new Map<Flow, CleanRun>();

beforeAll(async () => {
  for (const flow of [AUTOMATIC, MANUAL]) clean.set(flow, await cleanRun(flow));
}, 60_000);

afterAll(() => {
  console.log(`crash matrix: ${tally.tried} crash points tried, ${tally.held} held`);
});

describe("the crash matrix (issue 8 §4)", () => {
  it.each([AUTOMATIC, MANUAL])("$name: the clean run makes every effect of the flow once", (flow) => {
    const run = clean.get(flow) as CleanRun;
    const kinds = (op: string) => run.points.filter((p) => `${p.call.api}:${p.call.op}` === op).length;
    expect(kinds("ecs:RegisterTaskDefinition")).toBe(1);
    expect(kinds("ecs:UpdateService")).toBe(flow === AUTOMATIC ? 2 : 1);
    expect(kinds("ecs:StopServiceDeployment")).toBe(flow === AUTOMATIC ? 0 : 1);
    expect(kinds("pagerduty:trigger")).toBe(1);
    expect(kinds("pagerduty:resolve")).toBe(1);
    expect(kinds("slack:chat.postMessage")).toBeGreaterThanOrEqual(10);
    expect(kinds("slack:chat.update")).toBeGreaterThanOrEqual(8);
    expect(run.outcome.deployments).toEqual(["#1 deploy rolled_back", "#2 rollback succeeded"]);
    expect(run.outcome.incidents).toEqual(
      flow === AUTOMATIC ? ["#1 of #1 “error rate (rollback)” recovered episode 1"] : [],
    );
    const reports = run.outcome.slack.filter((m) => m.startsWith("#incidents top: :leftwards_arrow_with_hook:"));
    expect(reports).toHaveLength(1);
    expect(run.outcome.openIntents).toEqual([]);
    expect(run.outcome.lock).toBeNull();
  });

  it.each([AUTOMATIC, MANUAL])(
    "$name: a crash right after any of its effects, then a restart on the same db, ends as the clean run did",
    async (flow) => {
      const run = clean.get(flow) as CleanRun;
      const failures: string[] = [];
      for (const point of run.points) {
        const crashed = await crashedRun(flow, point);
        tally.tried++;
        const problems = crashed.died < 0 ? ["the bot never died there"] : differences(run.outcome, crashed.outcome);
        if (problems.length === 0) tally.held++;
        else
          failures.push(`${name(point)} (line ${point.line}: ${flow.lines[point.line]}):\n  ${problems.join("\n  ")}`);
      }
      console.log(`${flow.name}: ${run.points.length} crash points tried, ${run.points.length - failures.length} held`);
      expect(failures).toEqual([]);
    },
    120_000,
  );

  it("a real child process killed right after the automatic rollback's UpdateService exits 137, and a second run finishes the flow exactly once", async () => {
    const flow = AUTOMATIC;
    const run = clean.get(flow) as CleanRun;
    const point = run.points.find((p) => p.call.op === "UpdateService" && p.n === 2) as CrashPoint;
    // :crash-after counts from where it is typed: right after the line of the deploy's own UpdateService.
    const armAt = (run.points.find((p) => p.call.op === "UpdateService" && p.n === 1) as CrashPoint).line + 1;
    const user = flow.lines.slice(0, point.line).findLast((l) => l.startsWith(":as ")) as string;
    await withDb(async (db) => {
      const first = [...flow.lines.slice(0, armAt), ":crash-after ecs:UpdateService", ...flow.lines.slice(armAt)];
      const one = await cli(db, first, ["--at", TUESDAY]);
      expect(one.status).toBe(137);
      expect(one.events.at(-1)).toMatchObject({ kind: "aws", op: "UpdateService" });

      // The second run types the user again and goes on from the line the first one died in (a `:time`).
      const two = await cli(db, [user, ...flow.lines.slice(resumeAt(flow, point.line))], []);
      expect(two.status).toBe(0);

      const store = Store.sqlite(db);
      const world = new SimWorld(loadConfig(EXAMPLE_CONFIG), new ManualClock(TUESDAY), { file: `${db}.sim` });
      try {
        const outcome = await outcomeOf(store, world, [...one.events, ...two.events]);
        expect(differences(run.outcome, outcome)).toEqual([]);
        tally.tried++;
        tally.held++;
      } finally {
        world.kill();
        await store.close();
      }
    });
  }, 60_000);
});

/** Runs `deploybot console --db DB --script FILE --json` as a child process; its exit status as a shell reports it. */
async function cli(db: string, lines: string[], extra: string[]): Promise<{ status: number; events: ConsoleEvent[] }> {
  const script = `${db}.${extra.length ? "first" : "second"}.txt`;
  writeFileSync(script, lines.join("\n"));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["bin/deploybot.js", "console", "--config", EXAMPLE_CONFIG, "--db", db, "--script", script, "--json", ...extra],
      { cwd: ROOT, timeout: 30_000, env: { ...process.env, SLACK_BOT_TOKEN: "", LOG_LEVEL: "silent" } },
      (err, stdout) => {
        // Killed by a signal: 128 + its number, as a shell reports it (SIGKILL: 137).
        const signal = err?.signal ? constants.signals[err.signal] : undefined;
        const status = signal ? 128 + signal : typeof err?.code === "number" ? err.code : err ? -1 : 0;
        const events = stdout
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as ConsoleEvent);
        resolve({ status, events });
      },
    );
  });
}
