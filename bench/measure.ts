/**
 * One run of the bench, in a fresh process (bench/run.ts starts three and takes medians): the monitor with 1,000
 * watched deploys, Slack acks under a mixed load next to a bare Bolt app, and the per-minute job, `/status` and
 * `tick()` on a file database that holds history. The AWS clients are the real SDK clients, talking to
 * bench/aws-server.ts in its own process; Slack's side (requests and response_url) is bench/loadgen.ts.
 * Sends its figures to the parent over IPC (or prints them as JSON when run alone).
 *
 * `npm run bench` runs it bundled as the bot is (.bench-build/measure.mjs, built by scripts/build.mjs from these
 * sources; paths to the helpers are written from the repository root so they hold in both places). To profile one
 * part: `node --cpu-prof .bench-build/measure.mjs --only acks` (monitor, acks or history), or from the sources with
 * `node --cpu-prof --import tsx bench/measure.ts --only acks`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { App, LogLevel } from "@slack/bolt";
import { createApp } from "../src/app.js";
import { DEFAULT_COMMANDS } from "../src/commands/names.js";
import { allTargets } from "../src/domain/targets.js";
import { StoreReplayGuard } from "../src/ops/replay.js";
import { ACTION } from "../src/slack/actions.js";
import type { AwsCounters, AwsServerReply, AwsServerRequest } from "./aws-server.js";
import { Child } from "./child.js";
import { type Bot, benchConfig, buildBot, historyDb, seedInFlight, serviceName, sqliteOf } from "./fixtures.js";
import type { SinkRequest, SinkResult, WaveRequest, WaveResult } from "./loadgen.js";
import { cpuMs, LoopDelay, median, percentile, round, timed } from "./stats.js";

const QUICK = process.argv.includes("--quick");
const ONLY = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
const part = (name: "monitor" | "acks" | "history") => ONLY === undefined || ONLY === name;
const WATCHED = 1000;
const MONITOR_INTERVAL_MS = 60_000;
const TICK_INTERVAL_MS = 15_000;
const CYCLES = { warmup: 2, measured: QUICK ? 3 : 7 };
const WAVES = { warmup: QUICK ? 1 : 8, measured: QUICK ? 3 : 10, concurrency: 50 };
const HISTORY_REPS = { warmup: 3, measured: QUICK ? 5 : 15 };
const SIGNING_SECRET = "bench-signing-secret-0123456789abcdef";
/** One wave of 50: what each request is. Shuffled per wave (same seed every run). */
const MIX = { statusPlain: 5, statusTarget: 20, deployDryRun: 10, approveClick: 15 } as const;
type Kind = keyof typeof MIX;

const log = (s: string) => process.stderr.write(`  [measure] ${s}\n`);

type Aws = Child<AwsServerRequest, AwsServerReply>;
const counters = async (aws: Aws, reset = true): Promise<AwsCounters> =>
  (await aws.ask({ kind: "counters", reset })).counters;

/** Monitor cycles back to back, the clock a monitor interval further each time, until stopped. */
function cycleContinuously(bot: Bot): { stop: () => Promise<number> } {
  let running = true;
  let cycles = 0;
  const loop = (async () => {
    while (running) {
      bot.clock.advance(MONITOR_INTERVAL_MS);
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

async function monitorFigures(bot: Bot, aws: Aws) {
  const monitor = bot.services.monitor;
  for (let i = 0; i < CYCLES.warmup; i++) {
    bot.clock.advance(MONITOR_INTERVAL_MS);
    await monitor.cycle();
  }
  await counters(aws);
  const cpu: number[] = [];
  const wall: number[] = [];
  const perCycle: AwsCounters[] = [];
  const delay = new LoopDelay();
  for (let i = 0; i < CYCLES.measured; i++) {
    bot.clock.advance(MONITOR_INTERVAL_MS);
    delay.start();
    const t = await timed(() => monitor.cycle());
    delay.stop();
    cpu.push(t.cpuMs);
    wall.push(t.wallMs);
    perCycle.push(await counters(aws));
  }
  const open = await bot.store.incidents.inStates(["open", "rollback_pending"]);
  if (open.length > 0) log(`warning: ${open.length} incidents opened; the bench's metrics should all be healthy`);
  const last = perCycle[perCycle.length - 1] as AwsCounters;
  const guardrails = allTargets(bot.config).find((t) => t.service === serviceName(1))?.settings.guardrails ?? [];
  return {
    watched: WATCHED,
    guardrailsPerDeploy: guardrails.length,
    cpuMs: cpu.map((x) => round(x)),
    cpuMsMedian: round(median(cpu)),
    wallMsMedian: round(median(wall)),
    eventLoopP99Ms: round(delay.percentile(99)),
    eventLoopMaxMs: round(delay.maxMs),
    perCycle: {
      getMetricDataCalls: last.calls.GetMetricData ?? 0,
      otherAwsCalls: Object.entries(last.calls)
        .filter(([k]) => k !== "GetMetricData")
        .reduce((a, [, v]) => a + v, 0),
      metricDataQueries: last.metricDataQueries,
      metricStats: last.metricStats,
      expressions: last.expressions,
      seriesReturned: last.seriesReturned,
      datapoints: last.datapoints,
      requestKb: round(last.bytesIn / 1024),
      responseKb: round(last.bytesOut / 1024),
    },
    mdqPerDeployPerCycle: round(last.metricDataQueries / WATCHED, 3),
    metricsPerDeployPerCycle: round(last.metricStats / WATCHED, 3),
    datapointsPerDeployPerCycle: round(last.datapoints / WATCHED, 2),
    incidentsOpened: open.length,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Slack acks under a mixed load

/** A small deterministic PRNG, so every run sends the same requests. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_103_515_245 + 12_345) >>> 0;
    return s / 4_294_967_296;
  };
}

function slashBody(command: string, text: string, responseUrl: string, n: number): string {
  return new URLSearchParams({
    token: "bench",
    team_id: "T0LOCAL",
    team_domain: "local",
    channel_id: "CDEPLOYS",
    channel_name: "deploys",
    user_id: "U0ALICE01",
    user_name: "alice",
    command,
    text,
    api_app_id: "A0DEPLOYBOT",
    is_enterprise_install: "false",
    response_url: responseUrl,
    trigger_id: `${Date.now()}.${n}.bench`,
  }).toString();
}

/** Approve clicked on a deploy card whose deploy is no longer awaiting approval: deploybot refuses it. */
function approveBody(deploymentId: number, responseUrl: string, n: number): string {
  const payload = {
    type: "block_actions",
    team: { id: "T0LOCAL", domain: "local" },
    user: { id: "U0BOB0001", username: "bob", name: "bob", team_id: "T0LOCAL" },
    api_app_id: "A0DEPLOYBOT",
    token: "bench",
    container: { type: "message", message_ts: "1764000000.000100", channel_id: "CDEPLOYS", is_ephemeral: false },
    trigger_id: `${Date.now()}.${n}.bench`,
    channel: { id: "CDEPLOYS", name: "deploys" },
    message: { type: "message", ts: "1764000000.000100", text: `Deploy #${deploymentId}`, blocks: [] },
    response_url: responseUrl,
    actions: [
      {
        type: "button",
        action_id: ACTION.approve,
        block_id: `card-${deploymentId}`,
        text: { type: "plain_text", text: "Approve" },
        value: String(deploymentId),
        action_ts: `${Date.now() / 1000}`,
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

interface Wave {
  kinds: Kind[];
  bodies: string[];
}

function buildWave(seed: number, sinkUrl: string, inFlightIds: number[]): Wave {
  const random = prng(seed);
  const kinds: Kind[] = [];
  for (const [kind, count] of Object.entries(MIX) as Array<[Kind, number]>)
    for (let i = 0; i < count; i++) kinds.push(kind);
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j] as Kind, kinds[i] as Kind];
  }
  const bodies = kinds.map((kind, i) => {
    const url = `${sinkUrl}${seed}-${i}`;
    const service = serviceName(1 + Math.floor(random() * WATCHED));
    switch (kind) {
      case "statusPlain":
        return slashBody(DEFAULT_COMMANDS.status, "", url, i);
      case "statusTarget":
        return slashBody(DEFAULT_COMMANDS.status, `${service} production`, url, i);
      case "deployDryRun":
        return slashBody(DEFAULT_COMMANDS.deploy, `${service} v1.5.0 to production --dry-run`, url, i);
      case "approveClick":
        return approveBody(inFlightIds[Math.floor(random() * inFlightIds.length)] as number, url, i);
      default:
        throw new Error(`unknown request kind ${kind satisfies never}`);
    }
  });
  return { kinds, bodies };
}

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

const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;

async function ackFigures(bot: Bot, awsUrl: string, inFlightIds: number[]) {
  const gen = new Child<WaveRequest | SinkRequest, WaveResult | SinkResult>(
    new URL("../bench/loadgen.ts", import.meta.url),
  );
  const deploybot = createApp(bot.services, {
    botToken: "xoxb-bench",
    transport: { kind: "http", signingSecret: SIGNING_SECRET },
    // Cards and thread notes, if any, go to the bench's Slack in the AWS process, never to slack.com.
    slackApiUrl: `${awsUrl}/api/`,
    // As in Slack mode: every request is remembered in the database before it is acked (replays act once).
    replayGuard: new StoreReplayGuard(bot.store.requests),
  });
  // Bolt set up as createApp sets it up (tokenVerificationEnabled and convoStore false), so the ratio is deploybot's
  // own work.
  const bare = new App({
    signingSecret: SIGNING_SECRET,
    token: "xoxb-bench",
    tokenVerificationEnabled: false,
    convoStore: false,
    logLevel: LogLevel.ERROR,
    clientOptions: { slackApiUrl: `${awsUrl}/api/`, retryConfig: { retries: 0 } },
  });
  // The bare app acks what deploybot acks, and does nothing else.
  bare.command(DEFAULT_COMMANDS.status, async ({ ack }) => ack());
  bare.command(DEFAULT_COMMANDS.deploy, async ({ ack }) => ack());
  bare.action(ACTION.approve, async ({ ack }) => ack());
  const listen = { port: 0, host: "127.0.0.1" };
  const deploybotServer = (await deploybot.start(listen as never)) as Server;
  const bareServer = (await bare.start(listen as never)) as Server;

  type Which = "bare" | "idle" | "load";
  const samples: Record<Which, number[]> = { bare: [], idle: [], load: [] };
  const statuses: Record<Which, number[]> = { bare: [], idle: [], load: [] };
  const byKind: Record<Which, Record<Kind, number[]>> = {
    bare: { statusPlain: [], statusTarget: [], deployDryRun: [], approveClick: [] },
    idle: { statusPlain: [], statusTarget: [], deployDryRun: [], approveClick: [] },
    load: { statusPlain: [], statusTarget: [], deployDryRun: [], approveClick: [] },
  };
  const waveP99: Record<Which, number[]> = { bare: [], idle: [], load: [] };
  let repliesExpected = 0;
  let cyclesDuringLoad = 0;
  const loadDelay = new LoopDelay();
  const sinkUrl = (await gen.ask({ kind: "sink" })).url;
  const settle = async () => {
    const deadline = Date.now() + 60_000;
    let received = (await gen.ask({ kind: "sink" })).received;
    while (received < repliesExpected && Date.now() < deadline) {
      await sleep(10);
      received = (await gen.ask({ kind: "sink" })).received;
    }
    // A request deploybot does not serve (a command name it does not register) is acked late and never answered:
    // a figure measured on it would be about Bolt's 3-second fallback, so the bench stops instead.
    if (received < repliesExpected)
      throw new Error(
        `deploybot answered ${received} of ${repliesExpected} requests within 60 s: check the wave's commands`,
      );
    await bot.services.idle();
  };
  let seed = 1;
  const wave = async (which: Which, record: boolean) => {
    const url = urlOf(which === "bare" ? bareServer : deploybotServer);
    const w = buildWave(seed++, sinkUrl, inFlightIds);
    let result: WaveResult;
    if (which === "load") {
      const cycling = cycleContinuously(bot);
      await sleep(20); // inside the first cycle (hundreds of ms for 1,000 deploys)
      if (record) loadDelay.start();
      result = await gen.ask({ kind: "wave", url, signingSecret: SIGNING_SECRET, bodies: w.bodies });
      loadDelay.stop();
      cyclesDuringLoad += await cycling.stop();
    } else {
      result = await gen.ask({ kind: "wave", url, signingSecret: SIGNING_SECRET, bodies: w.bodies });
    }
    if (which !== "bare") repliesExpected += w.bodies.length;
    await settle();
    if (record) {
      waveP99[which].push(round(percentile(result.latenciesMs, 99)));
      samples[which].push(...result.latenciesMs);
      statuses[which].push(...result.statuses);
      result.latenciesMs.forEach((ms, i) => {
        byKind[which][w.kinds[i] as Kind].push(ms);
      });
    }
  };
  for (let i = 0; i < WAVES.warmup; i++) for (const w of ["bare", "idle", "load"] as const) await wave(w, false);
  // Interleaved, so drift in the machine's load (other processes) hits all three alike.
  for (let i = 0; i < WAVES.measured; i++) for (const w of ["bare", "idle", "load"] as const) await wave(w, true);

  gen.stop();
  await deploybot.stop();
  await bare.stop();
  const stats = {
    bare: ackStats(samples.bare, statuses.bare),
    idle: ackStats(samples.idle, statuses.idle),
    load: ackStats(samples.load, statuses.load),
  };
  const p99ByKind = (which: Which) =>
    Object.fromEntries(Object.entries(byKind[which]).map(([k, xs]) => [k, round(percentile(xs, 99), 1)]));
  return {
    concurrency: WAVES.concurrency,
    waves: WAVES.measured,
    mix: MIX,
    bare: stats.bare,
    deploybotIdle: stats.idle,
    deploybotUnderLoad: { ...stats.load, monitorCyclesRun: cyclesDuringLoad },
    p99ByKindUnderLoad: p99ByKind("load"),
    p99ByKindBare: p99ByKind("bare"),
    ackP99RatioUnderLoad: round(stats.load.p99Ms / stats.bare.p99Ms, 2),
    // Less moved by one bad wave (on a shared machine, a wave the process spent descheduled): the ratio of each
    // loaded wave's p99 to the bare wave just before it, median over the waves.
    ackP99RatioMedianOfWaves: round(median(waveP99.load.map((x, i) => x / (waveP99.bare[i] as number))), 2),
    ackP99RatioIdle: round(stats.idle.p99Ms / stats.bare.p99Ms, 2),
    waveP99Ms: waveP99,
    eventLoopSamplesUnderLoad: loadDelay.samples,
    eventLoopP99MsUnderLoad: round(loadDelay.percentile(99)),
    eventLoopMaxMsUnderLoad: round(loadDelay.maxMs),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// History: a file database with 100k deployments, 1M audit rows and 5k past incidents

async function repeat(times: { warmup: number; measured: number }, before: () => void, fn: () => Promise<unknown>) {
  for (let i = 0; i < times.warmup; i++) {
    before();
    await fn();
  }
  const cpu: number[] = [];
  const wall: number[] = [];
  const delay = new LoopDelay();
  for (let i = 0; i < times.measured; i++) {
    before();
    delay.start();
    const t = await timed(fn);
    // A job that never yields delays the timer by all its length: let that late sample land before stopping.
    await sleep(2);
    delay.stop();
    cpu.push(t.cpuMs);
    wall.push(t.wallMs);
  }
  return {
    cpuMsMedian: round(median(cpu), 2),
    cpuMsMax: round(Math.max(...cpu), 2),
    wallMsMedian: round(median(wall), 2),
    longestBlockMs: round(delay.maxMs, 1),
  };
}

async function historyFigures(awsUrl: string, dir: string, aws: Aws) {
  const examples = benchConfig(0);
  const { file } = historyDb(examples, dir);
  // One watched deploy (web in production, baking) on the example config: the per-minute job and /status.
  let bot = buildBot({ config: examples, dbFile: file, awsUrl });
  seedInFlight(bot.store, bot.clock.now(), [{ service: "web", environment: "production" }]);
  const rows = sqliteOf(bot.store)
    .prepare(
      "SELECT (SELECT COUNT(*) FROM deployments) AS deployments, (SELECT COUNT(*) FROM audit) AS audit, (SELECT COUNT(*) FROM incidents) AS incidents",
    )
    .get() as { deployments: number; audit: number; incidents: number };
  const b1 = bot;
  await counters(aws);
  const monitorJob = await repeat(
    HISTORY_REPS,
    () => b1.clock.advance(MONITOR_INTERVAL_MS),
    () => b1.services.monitor.cycle(),
  );
  const monitorCalls = await counters(aws);
  const statusPlain = await repeat(
    HISTORY_REPS,
    () => b1.clock.advance(TICK_INTERVAL_MS),
    () => b1.services.status.overview(),
  );
  const statusCalls = await counters(aws);
  const statusTarget = await repeat(
    HISTORY_REPS,
    () => b1.clock.advance(TICK_INTERVAL_MS),
    async () => {
      await b1.services.status.one("web", "production");
      await b1.services.status.history("web", "production", 5);
    },
  );
  await bot.store.close();

  // 1,000 in flight (web and 999 more services): tick().
  const config = benchConfig(WATCHED);
  bot = buildBot({ config, dbFile: file, awsUrl });
  const b2 = bot;
  const more = Array.from({ length: WATCHED - 1 }, (_, i) => ({
    service: serviceName(i + 1),
    environment: "production",
  }));
  seedInFlight(bot.store, bot.clock.now(), more);
  const tickBaking = await repeat(
    HISTORY_REPS,
    () => b2.clock.advance(TICK_INTERVAL_MS),
    () => b2.services.deployments.tick(),
  );
  // The same with 100 of them still rolling out on ECS: each one read through the SDK every tick.
  sqliteOf(bot.store)
    .prepare(
      `UPDATE deployments SET status = 'deploying', progress = '{"running":2,"desired":4}'
       WHERE id IN (SELECT id FROM deployments WHERE status = 'baking' ORDER BY id DESC LIMIT 100)`,
    )
    .run();
  await counters(aws);
  const tickRolling = await repeat(
    { warmup: 2, measured: QUICK ? 3 : 7 },
    () => b2.clock.advance(TICK_INTERVAL_MS),
    () => b2.services.deployments.tick(),
  );
  const tickCalls = await counters(aws);
  await bot.store.close();
  return {
    history: rows,
    monitorJobOneWatched: { ...monitorJob, awsCalls: monitorCalls.calls },
    statusPlain: {
      ...statusPlain,
      targets: allTargets(examples).length,
      awsCallsPerStatus: round(
        Object.values(statusCalls.calls).reduce((a, b) => a + b, 0) / (HISTORY_REPS.warmup + HISTORY_REPS.measured),
        1,
      ),
    },
    statusTarget,
    tick1000Baking: tickBaking,
    tick1000With100RollingOut: {
      ...tickRolling,
      awsCallsPerTick: round(Object.values(tickCalls.calls).reduce((a, b) => a + b, 0) / (2 + (QUICK ? 3 : 7)), 1),
    },
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "deploybot-bench-run-"));
  const aws: Aws = new Child(new URL("../bench/aws-server.ts", import.meta.url));
  try {
    const awsUrl = (await aws.ask({ kind: "url" })).url;
    log(`${WATCHED} watched deploys on a file database, real SDK against ${awsUrl}`);
    const bot = buildBot({ config: benchConfig(WATCHED), dbFile: join(dir, "watched.db"), awsUrl });
    const ids = seedInFlight(
      bot.store,
      bot.clock.now(),
      Array.from({ length: WATCHED }, (_, i) => ({ service: serviceName(i + 1), environment: "production" })),
    );
    log("monitor cycles...");
    const monitor = part("monitor") ? await monitorFigures(bot, aws) : undefined;
    log(`  CPU ${monitor?.cpuMsMedian} ms per cycle; acks under a mixed load (bare, idle, while cycling)...`);
    const acks = part("acks") ? await ackFigures(bot, awsUrl, ids) : undefined;
    log(`  ack p99 ratio ${acks?.ackP99RatioUnderLoad}; history (per-minute job, /status, tick)...`);
    await bot.store.close();
    const history = part("history") ? await historyFigures(awsUrl, dir, aws) : undefined;
    const c = process.cpuUsage();
    const result = { monitor, acks, ...history, processCpuMs: round(cpuMs(c)) } as MeasureResult;
    if (process.send) process.send({ kind: "result", result });
    else process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    aws.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What one run reports. */
export type MeasureResult = {
  monitor: Awaited<ReturnType<typeof monitorFigures>>;
  acks: Awaited<ReturnType<typeof ackFigures>>;
  processCpuMs: number;
} & Awaited<ReturnType<typeof historyFigures>>;

// Run as a script (from the sources, or bundled as measure.mjs), not when run.ts imports its types.
if (/measure\.(ts|mjs)$/.test(process.argv[1] ?? "")) {
  main()
    .catch((err: unknown) => {
      process.stderr.write(`measure failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    })
    .finally(() => setTimeout(() => process.exit(process.exitCode ?? 0), 100).unref());
}
