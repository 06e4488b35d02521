/**
 * `npm run bench`: the guardrail monitor's cost and its effect on Slack acks (issue 5 §6).
 * Prints a table, writes bench/results.json, and exits 0 whatever the figures (it is a measurement).
 */
import { type ChildProcess, fork } from "node:child_process";
import { writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { App, LogLevel } from "@slack/bolt";
import { MAX_QUERIES_PER_CALL } from "../src/adapters/aws/cloudwatch-queries.js";
import { createApp } from "../src/app.js";
import { DEFAULT_COMMANDS } from "../src/commands/names.js";
import { SlackLikeServer } from "../src/local/slack-server.js";
import { type Bot, buildBot, GUARDRAILS_PER_DEPLOY } from "./fixtures.js";
import type { SinkResult, WaveRequest, WaveResult } from "./loadgen.js";

const SIZES = [1, 100, 1000];
const WARMUP_CYCLES = 2;
const MEASURED_CYCLES = 7;
const CONCURRENCY = 50;
const WARMUP_WAVES = 3;
const MEASURED_WAVES = 12;
const SIGNING_SECRET = "bench-signing-secret-0123456789abcdef";
/** A /status for one target: its post-ack work is bounded (see BENCHMARKS.md for the overview). */
const STATUS_TEXT = "web production";
const TARGETS = { ackRatio: 1.5, eventLoopP99Ms: 50 };

const median = (xs: number[]) => percentile(xs, 50);
function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
const log = (s: string) => process.stderr.write(`${s}\n`);

interface CycleResult {
  deploys: number;
  guardrailQueries: number;
  metricDataQueries: number;
  callsPerCycle: number[];
  expectedCalls: number;
  expectedCallsGuardrailsOnly: number;
  maxQueriesPerCall: number;
  cpuMsMedian: number;
  cpuMs: number[];
  wallMsMedian: number;
  pass: boolean;
}

async function measureCycles(bot: Bot): Promise<CycleResult> {
  const monitor = bot.services.monitor;
  for (let i = 0; i < WARMUP_CYCLES; i++) await monitor.cycle();
  const calls: number[] = [];
  const cpu: number[] = [];
  const wall: number[] = [];
  let dataQueries = 0;
  for (let i = 0; i < MEASURED_CYCLES; i++) {
    bot.counter.calls = 0;
    bot.counter.dataQueries = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await monitor.cycle();
    wall.push(performance.now() - t0);
    cpu.push(cpuMs(process.cpuUsage(c0)));
    calls.push(bot.counter.calls);
    dataQueries = bot.counter.dataQueries;
  }
  const open = (await bot.store.incidents.inStates(["open", "rollback_pending"])).length;
  if (open > 0) log(`warning: ${open} incidents opened; the synthetic metrics should all be healthy`);
  const guardrailQueries = bot.n * GUARDRAILS_PER_DEPLOY;
  const expectedCalls = Math.ceil(dataQueries / MAX_QUERIES_PER_CALL);
  return {
    deploys: bot.n,
    guardrailQueries,
    metricDataQueries: dataQueries,
    callsPerCycle: calls,
    expectedCalls,
    expectedCallsGuardrailsOnly: Math.ceil(guardrailQueries / MAX_QUERIES_PER_CALL),
    maxQueriesPerCall: bot.counter.maxPerCall,
    cpuMsMedian: round(median(cpu)),
    cpuMs: cpu.map((x) => round(x)),
    wallMsMedian: round(median(wall)),
    pass: calls.every((c) => c === expectedCalls),
  };
}

/** Runs monitor cycles back to back until stopped: "the bot while the 1,000-deploy cycle runs". */
function cycleContinuously(bot: Bot): { stop: () => Promise<number> } {
  let running = true;
  let cycles = 0;
  const loop = (async () => {
    while (running) {
      await bot.services.monitor.cycle();
      cycles++;
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return cycles;
    },
  };
}

async function eventLoopDuringCycles(bot: Bot, cycles: number) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t0 = performance.now();
  for (let i = 0; i < cycles; i++) await bot.services.monitor.cycle();
  const wallMs = performance.now() - t0;
  h.disable();
  return {
    cycles,
    wallMs: round(wallMs),
    p50Ms: round(h.percentile(50) / 1e6),
    p99Ms: round(h.percentile(99) / 1e6),
    maxMs: round(h.max / 1e6),
    meanMs: round(h.mean / 1e6),
    pass: h.percentile(99) / 1e6 < TARGETS.eventLoopP99Ms,
  };
}

class LoadGen {
  private readonly child: ChildProcess;
  constructor() {
    this.child = fork(new URL("./loadgen.ts", import.meta.url), [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
  }
  private ask<T extends { kind: string }>(req: { kind: string }): Promise<T> {
    return new Promise((resolve) => {
      const onMessage = (m: T) => {
        if (m.kind !== req.kind) return;
        this.child.off("message", onMessage);
        resolve(m);
      };
      this.child.on("message", onMessage);
      this.child.send(req);
    });
  }
  wave(req: WaveRequest): Promise<WaveResult> {
    return this.ask<WaveResult>(req);
  }
  /** The response_url sink in the load generator's process, and how many replies it has received. */
  sink(): Promise<SinkResult> {
    return this.ask<SinkResult>({ kind: "sink" });
  }
  stop(): void {
    this.child.kill();
  }
}

function statusBody(responseUrl: string, i: number): string {
  return new URLSearchParams({
    token: "bench",
    team_id: "T0LOCAL",
    team_domain: "local",
    channel_id: "CDEPLOYS",
    channel_name: "deploys",
    user_id: "U0ALICE01",
    user_name: "alice",
    command: DEFAULT_COMMANDS.status,
    text: STATUS_TEXT,
    api_app_id: "A0DEPLOYBOT",
    is_enterprise_install: "false",
    response_url: responseUrl,
    trigger_id: `${Date.now()}.${i}.bench`,
  }).toString();
}

const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;

interface AckStats {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non200: number;
}
const ackStats = (lat: number[], statuses: number[]): AckStats => ({
  samples: lat.length,
  p50Ms: round(percentile(lat, 50), 2),
  p99Ms: round(percentile(lat, 99), 2),
  maxMs: round(Math.max(...lat), 2),
  non200: statuses.filter((s) => s !== 200).length,
});

async function measureAcks(bot: Bot) {
  const slack = new SlackLikeServer(bot.config, bot.clock);
  await slack.start();
  const deploybot = createApp(bot.services, {
    botToken: "xoxb-bench",
    transport: { kind: "http", signingSecret: SIGNING_SECRET },
    slackApiUrl: slack.apiUrl,
  });
  const bare = new App({
    signingSecret: SIGNING_SECRET,
    token: "xoxb-bench",
    tokenVerificationEnabled: false,
    logLevel: LogLevel.ERROR,
    // As deploybot's: Bolt's one lazy auth.test goes to the Slack-like server on 127.0.0.1, never to slack.com.
    clientOptions: { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 } },
  });
  bare.command(DEFAULT_COMMANDS.status, async ({ ack }) => {
    await ack();
  });
  const listen = { port: 0, host: "127.0.0.1" };
  const deploybotServer = (await deploybot.start(listen as never)) as Server;
  const bareServer = (await bare.start(listen as never)) as Server;
  const gen = new LoadGen();

  const samples = { bare: [] as number[], idle: [] as number[], load: [] as number[] };
  const statuses = { bare: [] as number[], idle: [] as number[], load: [] as number[] };
  const responsesExpected = { n: 0 };
  let cyclesDuringLoad = 0;
  // One histogram per loaded wave: re-enabling one histogram would count the pause between waves as delay.
  const loadEld = { p99Ms: [] as number[], maxMs: [] as number[] };

  const sinkUrl = (await gen.sink()).url;
  /** Waits until deploybot has posted every /status reply to response_url, so waves do not overlap. */
  const settle = async () => {
    const deadline = Date.now() + 30_000;
    while ((await gen.sink()).received < responsesExpected.n && Date.now() < deadline) await sleep(10);
    await bot.services.idle();
  };
  const wave = async (which: "bare" | "idle" | "load", record: boolean) => {
    const url = urlOf(which === "bare" ? bareServer : deploybotServer);
    const bodies = Array.from({ length: CONCURRENCY }, (_, i) => statusBody(`${sinkUrl}${i}`, i));
    let result: WaveResult;
    if (which === "load") {
      const cycling = cycleContinuously(bot);
      await sleep(20); // well inside the first cycle (hundreds of ms for 1,000 deploys)
      const h = monitorEventLoopDelay({ resolution: 1 });
      h.enable();
      result = await gen.wave({ kind: "wave", url, signingSecret: SIGNING_SECRET, bodies });
      h.disable();
      if (record) {
        loadEld.p99Ms.push(h.percentile(99) / 1e6);
        loadEld.maxMs.push(h.max / 1e6);
      }
      cyclesDuringLoad += await cycling.stop();
    } else {
      result = await gen.wave({ kind: "wave", url, signingSecret: SIGNING_SECRET, bodies });
    }
    if (which !== "bare") responsesExpected.n += CONCURRENCY;
    await settle();
    if (record) {
      samples[which].push(...result.latenciesMs);
      statuses[which].push(...result.statuses);
    }
  };

  for (let i = 0; i < WARMUP_WAVES; i++) for (const w of ["bare", "idle", "load"] as const) await wave(w, false);
  // Interleaved, so drift in the machine's load (other processes) hits all three alike.
  for (let i = 0; i < MEASURED_WAVES; i++) for (const w of ["bare", "idle", "load"] as const) await wave(w, true);

  gen.stop();
  await deploybot.stop();
  await bare.stop();
  await slack.stop();

  const bareStats = ackStats(samples.bare, statuses.bare);
  const idleStats = ackStats(samples.idle, statuses.idle);
  const loadStats = ackStats(samples.load, statuses.load);
  const ratio = round(loadStats.p99Ms / bareStats.p99Ms, 2);
  return {
    concurrency: CONCURRENCY,
    waves: MEASURED_WAVES,
    command: `/status ${STATUS_TEXT}`,
    bare: bareStats,
    deploybotIdle: idleStats,
    deploybotUnderLoad: { ...loadStats, monitorCyclesRun: cyclesDuringLoad },
    idleOverBareP99: round(idleStats.p99Ms / bareStats.p99Ms, 2),
    underLoadOverBareP99: ratio,
    eventLoopDuringLoadWaves: {
      p99MsMedianOfWaves: round(median(loadEld.p99Ms)),
      p99MsWorstWave: round(Math.max(...loadEld.p99Ms)),
      maxMs: round(Math.max(...loadEld.maxMs)),
    },
    pass: ratio <= TARGETS.ackRatio,
  };
}

/** The work one plain `/status` (the overview) does after its ack, with every configured target. */
async function overviewCost(bot: Bot) {
  await bot.services.status.overview();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const targets = (await bot.services.status.overview()).length;
  return { targets, wallMs: round(performance.now() - t0), cpuMs: round(cpuMs(process.cpuUsage(c0))) };
}

/** JSON as biome formats it (arrays of numbers on one line), so `biome check .` passes with results.json present. */
function toJson(value: unknown): string {
  const text = JSON.stringify(value, null, 2).replace(
    /\[\n\s+([-\d.,\s]+?)\n\s*\]/g,
    (_, items: string) => `[${items.split(/,\s*/).join(", ")}]`,
  );
  return `${text}\n`;
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const bots = new Map<number, Bot>();
  const cycles: CycleResult[] = [];
  for (const n of SIZES) {
    log(`building ${n} watched deploys...`);
    const bot = await buildBot(n);
    bots.set(n, bot);
    log(`measuring the monitor cycle for ${n}...`);
    cycles.push(await measureCycles(bot));
  }
  const big = bots.get(1000) as Bot;
  log("measuring event-loop delay during 1,000-deploy cycles...");
  const eventLoop = await eventLoopDuringCycles(big, 5);
  log("measuring slash-command acks (bare Bolt, deploybot idle, deploybot while cycling)...");
  const acks = await measureAcks(big);
  log("measuring one /status overview...");
  const overview = await overviewCost(big);

  const results = {
    startedAt,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, platform: process.platform },
    guardrailsPerDeploy: GUARDRAILS_PER_DEPLOY,
    monitorCycle: cycles,
    eventLoopDuring1000DeployCycles: eventLoop,
    slashCommandAck: acks,
    statusOverviewAfterAck: overview,
    targets: {
      callsPerCycle: "exactly ceil(MetricDataQueries / 500)",
      ackP99UnderLoadOverBare: `<= ${TARGETS.ackRatio}`,
      eventLoopDelayP99Ms: `< ${TARGETS.eventLoopP99Ms}`,
    },
    pass: {
      callsPerCycle: cycles.every((c) => c.pass),
      ackRatio: acks.pass,
      eventLoop: eventLoop.pass,
    },
  };
  writeFileSync(new URL("./results.json", import.meta.url), toJson(results));

  const verdict = (ok: boolean) => (ok ? "PASS" : "FAIL");
  const lines: string[] = [];
  lines.push(`deploybot bench · ${results.machine.cpus} cpus · Node ${process.version} · ${startedAt}`);
  lines.push("");
  lines.push("Monitor cycle (6 guardrails per deploy, real AwsCloudWatch adapter, fake CloudWatchClient)");
  lines.push(
    "  deploys  guardrail q  MetricDataQueries  calls/cycle  ⌈MDQ/500⌉  ⌈guardrail q/500⌉  CPU ms (median)  wall ms  target",
  );
  for (const c of cycles) {
    lines.push(
      `  ${String(c.deploys).padStart(7)}  ${String(c.guardrailQueries).padStart(11)}  ${String(c.metricDataQueries).padStart(17)}  ${String(
        c.callsPerCycle[0],
      ).padStart(
        11,
      )}  ${String(c.expectedCalls).padStart(9)}  ${String(c.expectedCallsGuardrailsOnly).padStart(17)}  ${String(
        c.cpuMsMedian,
      ).padStart(15)}  ${String(c.wallMsMedian).padStart(7)}  ${verdict(c.pass)} (calls == ⌈MDQ/500⌉)`,
    );
  }
  lines.push("");
  lines.push(
    `Event-loop delay during ${eventLoop.cycles} back-to-back 1,000-deploy cycles: p50 ${eventLoop.p50Ms} ms, p99 ${eventLoop.p99Ms} ms, max ${eventLoop.maxMs} ms  ${verdict(eventLoop.pass)} (p99 < ${TARGETS.eventLoopP99Ms} ms)`,
  );
  lines.push("");
  lines.push(
    `Slash-command ack, ${CONCURRENCY} concurrent signed "${acks.command}" over HTTP, ${MEASURED_WAVES} waves each`,
  );
  lines.push("  app                               p50 ms   p99 ms   max ms  non-200");
  const row = (name: string, s: AckStats) =>
    `  ${name.padEnd(32)}  ${String(s.p50Ms).padStart(6)}  ${String(s.p99Ms).padStart(7)}  ${String(s.maxMs).padStart(7)}  ${String(s.non200).padStart(7)}`;
  lines.push(row("bare Bolt (ack only)", acks.bare));
  lines.push(row("deploybot idle", acks.deploybotIdle));
  lines.push(row("deploybot, 1,000-deploy cycles", acks.deploybotUnderLoad));
  lines.push(
    `  p99 ratio under load / bare: ${acks.underLoadOverBareP99}×  ${verdict(acks.pass)} (<= ${TARGETS.ackRatio}×); idle / bare: ${acks.idleOverBareP99}×`,
  );
  lines.push(
    `  event-loop delay during the loaded waves: p99 ${acks.eventLoopDuringLoadWaves.p99MsMedianOfWaves} ms (median of waves), ${acks.eventLoopDuringLoadWaves.p99MsWorstWave} ms (worst wave), max ${acks.eventLoopDuringLoadWaves.maxMs} ms`,
  );
  lines.push("");
  lines.push(
    `Plain /status (overview of ${overview.targets} targets) after its ack: ${overview.wallMs} ms wall, ${overview.cpuMs} ms CPU (informational)`,
  );
  process.stdout.write(`${lines.join("\n")}\n\nwrote bench/results.json\n`);
  for (const bot of bots.values()) bot.store.close();
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    // Bolt's and the SDK's keep-alive handles would hold the process open.
    setTimeout(() => process.exit(process.exitCode ?? 0), 100).unref();
  });
