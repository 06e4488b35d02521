/**
 * `npm run bench`: deploybot measured as it runs, with the real AWS SDK in the loop (issue 11). Three runs (each a
 * fresh process for the in-process figures, plus the real entry point started for start-to-ready and memory), then
 * the median and range of every figure: a table on stdout and bench/results.json. `--markdown` also prints the
 * Markdown that BENCHMARKS.md is made of (bench/report.ts). It exits 0 whatever the figures: it is a measurement.
 *
 *   npm run bench [-- --runs N] [-- --quick] [-- --markdown]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Store } from "../src/store/index.js";
import type { AwsServerReply, AwsServerRequest } from "./aws-server.js";
import { Child } from "./child.js";
import { BENCH_NOW, benchConfig, benchConfigYaml, historyDb, seedInFlight, serviceName } from "./fixtures.js";
import type { MeasureResult } from "./measure.js";
import { type BenchResults, FIGURES, type Figures, markdown, readBaseline, table } from "./report.js";
import { memoryOf, READY_PATH, startBot, stopBot } from "./startup.js";
import { median, round } from "./stats.js";

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const RUNS = Number(args[args.indexOf("--runs") + 1]) || 3;
const QUICK = flag("--quick");
const STARTS_PER_RUN = 3;
/** monitor.interval of the 1,000-deploy bot started for its memory: three cycles in about 15 s. */
const RSS_INTERVAL_S = 5;
const WATCHED = 1000;
const log = (s: string) => process.stderr.write(`${s}\n`);
const startedAt = Date.now();
const elapsed = () => `${Math.round((Date.now() - startedAt) / 1000)} s`;

/** Where the measurement is bundled, at the repository's root so its paths (../examples, ../bench) resolve. */
const MEASURE_BUILD = new URL("../.bench-build/", import.meta.url);

function measureOnce(): Promise<MeasureResult> {
  const child = new Child<{ kind: "none" }, { kind: "result"; result: MeasureResult }>(
    new URL("measure.mjs", MEASURE_BUILD),
    { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    QUICK ? ["--quick"] : [],
  );
  return new Promise((resolve, reject) => {
    child.process.on("message", (m: { kind: string; result: MeasureResult }) => {
      if (m.kind === "result") resolve(m.result);
    });
    child.process.on("exit", (code) => {
      if (code !== 0) reject(new Error(`the bench's measurement (bench/measure.ts) exited with ${code}`));
    });
  });
}

type Aws = Child<AwsServerRequest, AwsServerReply>;

/** Start to ready (median of a few starts on a fresh database with the example config) and idle memory. */
async function startFigures(aws: Aws, awsUrl: string, dir: string, run: number) {
  const ready: number[] = [];
  const cpu: number[] = [];
  const listening: number[] = [];
  const idle: number[] = [];
  for (let i = 0; i < STARTS_PER_RUN; i++) {
    const bot = await startBot({
      configFile: "examples/deploybot.yml",
      dbFile: join(dir, `start-${run}-${i}.db`),
      awsUrl,
    });
    ready.push(bot.readyMs);
    cpu.push(bot.cpuMsAtReady);
    listening.push(bot.listeningMs);
    await sleep(2000);
    idle.push(memoryOf(bot.child.pid as number).rssMb);
    await stopBot(bot);
  }
  const calls = (await aws.ask({ kind: "counters", reset: true })).counters.calls;
  return {
    startToReadyMs: round(median(ready)),
    startToReadySamplesMs: ready.map((x) => round(x)),
    startToListeningMs: round(median(listening)),
    startCpuMs: round(median(cpu)),
    rssMbIdle: round(median(idle)),
    outsideCallsAtStart: calls,
  };
}

/** The real entry point with 1,000 watched deploys and the real SDK, after at least three monitor cycles. */
async function rssWatched(aws: Aws, awsUrl: string, dir: string, run: number) {
  const configFile = join(dir, "watched.yml");
  writeFileSync(configFile, benchConfigYaml(WATCHED, { interval: `${RSS_INTERVAL_S}s` }));
  const dbFile = join(dir, `watched-rss-${run}.db`);
  const store = Store.sqlite(dbFile);
  seedInFlight(
    store,
    new Date(),
    Array.from({ length: WATCHED }, (_, i) => ({ service: serviceName(i + 1), environment: "production" })),
  );
  await store.close();
  await aws.ask({ kind: "counters", reset: true });
  const bot = await startBot({ configFile, dbFile, awsUrl });
  // Three monitor cycles: each asks GetMetricData at least ceil(7,000 MetricDataQueries / 500) times.
  const deadline = Date.now() + 60_000;
  let calls = 0;
  let peak = 0;
  while (Date.now() < deadline) {
    await sleep(500);
    peak = Math.max(peak, memoryOf(bot.child.pid as number).rssMb);
    calls = (await aws.ask({ kind: "counters" })).counters.calls.GetMetricData ?? 0;
    if (calls >= 3 * 15) break;
  }
  await sleep(RSS_INTERVAL_S * 1000);
  const mem = memoryOf(bot.child.pid as number);
  await stopBot(bot);
  return {
    rssMb1000: round(mem.rssMb),
    peakRssMb1000: round(Math.max(peak, mem.peakRssMb)),
    getMetricDataCalls: calls,
  };
}

function figuresOf(
  m: MeasureResult,
  s: Awaited<ReturnType<typeof startFigures>>,
  r: Awaited<ReturnType<typeof rssWatched>>,
): Figures {
  const metricsPerDeploy = m.monitor.metricsPerDeployPerCycle;
  const cyclesPerHour = 3600 / 60;
  return {
    ackP99RatioUnderLoad: m.acks.ackP99RatioUnderLoad,
    eventLoopP99MsUnderLoad: m.acks.eventLoopP99MsUnderLoad,
    cpuMsPerCycle1000: m.monitor.cpuMsMedian,
    mdqPerDeployPerCycle: m.monitor.mdqPerDeployPerCycle,
    monitorJobMsWithHistory: m.monitorJobOneWatched.cpuMsMedian,
    tickMs1000: m.tick1000Baking.cpuMsMedian,
    statusMsWithHistory: m.statusPlain.cpuMsMedian,
    startToReadyMs: s.startToReadyMs,
    rssMb1000: r.peakRssMb1000,
    rssMbIdle: s.rssMbIdle,
    ackP99MsBare: m.acks.bare.p99Ms,
    ackP99MsUnderLoad: m.acks.deploybotUnderLoad.p99Ms,
    ackP99RatioIdle: m.acks.ackP99RatioIdle,
    ackP99RatioMedianOfWaves: m.acks.ackP99RatioMedianOfWaves,
    eventLoopP99MsCyclesAlone: m.monitor.eventLoopP99Ms,
    wallMsPerCycle1000: m.monitor.wallMsMedian,
    metricsPerDeployPerCycle: metricsPerDeploy,
    datapointsPerDeployPerCycle: m.monitor.datapointsPerDeployPerCycle,
    costUsdPer1000DeployHours: round(metricsPerDeploy * cyclesPerHour * 1000 * (0.01 / 1000), 2),
    statusTargetMsWithHistory: m.statusTarget.cpuMsMedian,
    tickMs1000With100RollingOut: m.tick1000With100RollingOut.cpuMsMedian,
    tickLongestBlockMs1000: m.tick1000Baking.longestBlockMs,
    startToListeningMs: s.startToListeningMs,
    startCpuMs: s.startCpuMs,
  };
}

async function main(): Promise<void> {
  const machine = {
    cpuModel: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverageAtStart: loadavg().map((x) => round(x, 2)),
  };
  log(`deploybot bench: ${RUNS} runs on ${machine.cores} × ${machine.cpuModel}, Node ${machine.node}`);
  // bin/deploybot.js is measured as `npm install` leaves it: running the bundle, built now from these sources. The
  // in-process figures run bundled the same way (esbuild, no tsx), as the bot runs in production.
  execFileSync(process.execPath, ["scripts/build.mjs"], { stdio: ["ignore", "ignore", "inherit"] });
  const measure = `measure=${fileURLToPath(new URL("./measure.ts", import.meta.url))}`;
  execFileSync(process.execPath, ["scripts/build.mjs", "--outdir", fileURLToPath(MEASURE_BUILD), "--entry", measure], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const dir = mkdtempSync(join(tmpdir(), "deploybot-bench-"));
  const aws: Aws = new Child(new URL("./aws-server.ts", import.meta.url));
  try {
    log("history database (built once, then cached in the temp dir)...");
    const { seededNow } = historyDb(benchConfig(0), dir);
    log(`  ${seededNow ? "seeded" : "cached"} (${elapsed()})`);
    const awsUrl = (await aws.ask({ kind: "url" })).url;
    const runs: BenchResults["runs"] = [];
    for (let run = 1; run <= RUNS; run++) {
      log(`run ${run}/${RUNS}: in-process figures (fresh process)...`);
      const m = await measureOnce();
      log(`run ${run}/${RUNS}: start to ready (${STARTS_PER_RUN} starts of bin/deploybot.js, ${READY_PATH})...`);
      const s = await startFigures(aws, awsUrl, dir, run);
      log(
        `run ${run}/${RUNS}: memory with ${WATCHED} watched deploys (bin/deploybot.js, monitor every ${RSS_INTERVAL_S} s)...`,
      );
      const r = await rssWatched(aws, awsUrl, dir, run);
      const figures = figuresOf(m, s, r);
      runs.push({ figures, detail: { ...m, start: s, memory: r } });
      log(`run ${run}/${RUNS} done (${elapsed()}): ${JSON.stringify(figures)}`);
    }
    const keys = Object.keys(FIGURES) as Array<keyof Figures>;
    const med = Object.fromEntries(keys.map((k) => [k, round(median(runs.map((r) => r.figures[k])), 3)])) as Figures;
    const range = Object.fromEntries(
      keys.map((k) => [k, [Math.min(...runs.map((r) => r.figures[k])), Math.max(...runs.map((r) => r.figures[k]))]]),
    ) as BenchResults["range"];
    const results: BenchResults = {
      sdk: "real",
      date: new Date().toISOString(),
      durationS: Math.round((Date.now() - startedAt) / 1000),
      quick: QUICK,
      machine: { ...machine, loadAverageAtEnd: loadavg().map((x) => round(x, 2)) },
      benchClock: BENCH_NOW,
      median: med,
      range,
      runs,
    };
    writeFileSync(new URL("./results.json", import.meta.url), toJson(results));
    process.stdout.write(`${table(results)}\nwrote bench/results.json (${elapsed()})\n`);
    if (flag("--markdown")) process.stdout.write(`\n${markdown(results, readBaseline())}`);
  } finally {
    aws.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** JSON as biome formats it (arrays of numbers on one line), so `biome check .` passes with results.json present. */
function toJson(value: unknown): string {
  const text = JSON.stringify(value, null, 2).replace(
    /\[\n\s+([-\d.,\s]+?)\n\s*\]/g,
    (_, items: string) => `[${items.split(/,\s*/).join(", ")}]`,
  );
  return `${text}\n`;
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => setTimeout(() => process.exit(process.exitCode ?? 0), 100).unref());
