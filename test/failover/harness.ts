import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { ScaledClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import type { Store } from "../../src/store/index.js";
import { type BotProcess, botEnv, postSigned, SIGNING_SECRET, slashBody, startBot } from "../helpers/bot-process.js";
import { EXAMPLE_CONFIG } from "../helpers/monitor-console.js";

/**
 * The failover trials of issue 12: two or three bot processes (`deploybot sim-replica`) share one database and one
 * simulated world, on a clock that runs `speed` times faster than real time. In each trial a deploy bakes, its error
 * rate breaches, and the leader is killed with SIGKILL at a random moment of what follows (detection, page, grace,
 * rollback, resolve); the killed process is started again as a standby. Each trial must end with exactly one
 * UpdateService back to the previous task definition (as the world recorded it), one page trigger that PagerDuty
 * did not deduplicate, and one resolve.
 */
export interface FailoverOptions {
  name: string;
  dir: string;
  /** The test's own store on the same database, to read what the bots recorded. */
  store: Store;
  /** The bots' database: a SQLite file, or a PostgreSQL URL. */
  database: { file: string } | { url: string };
  processes: number;
  trials: number;
  /** How much faster than real time the simulated clock runs. */
  speed: number;
  leaseTtlMs: number;
  /** The leader is killed at a random moment within this long (real ms) after the breach. */
  killWindowMs: number;
  /** How many leaders trial `t` kills one after the other (each after the last took over); default 1. */
  killsIn?: (trial: number) => number;
}

export interface Kill {
  afterMs: number;
  slot: number;
  /** The simulated time of the kill. */
  at: string;
  /** Real milliseconds from the kill until another live process held the lease. */
  takeoverMs?: number;
  stage?: "before the page" | "page → rollback" | "rollback → resolve" | "after the resolve";
}

export interface TrialResult {
  trial: number;
  service: string;
  /** Each kill -9 of the leader: when after the breach, which process, and where in the flow it fell. */
  kills: Kill[];
  /** UpdateService calls to the deploy's own task definition, as the world recorded them. */
  deployCalls: number;
  /** UpdateService calls that put the service back on its previous task definition, as the world recorded them. */
  rollbackCalls: number;
  /** PagerDuty triggers PagerDuty opened an incident for (not deduplicated), and all triggers sent. */
  triggers: number;
  triggersSent: number;
  resolves: number;
  resolvesSent: number;
  /** Real milliseconds from the breach to the resolve. */
  ms: number;
  held: boolean;
}

const SERVICE = (n: number) => `svc${String(n).padStart(2, "0")}`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The example config cut down to what a trial needs: one production environment with no window, freeze or approval,
 * a 30-second grace before the automatic rollback, a BLUE_GREEN rollback (one switch), and one rollback guardrail
 * (error rate above 1% for a minute) on each of `services` ECS services.
 */
export function writeFailoverConfig(dir: string, services: number): string {
  const doc = parse(readFileSync(EXAMPLE_CONFIG, "utf8")) as Record<string, unknown>;
  const guardrails = [
    {
      name: "error rate (rollback)",
      metric: "error_rate",
      threshold: "> 1%",
      for: "1m",
      max_lag: "1m",
      severity: "critical",
      action: "rollback",
    },
  ];
  const out = {
    timezone: "UTC",
    users: doc.users,
    roles: doc.roles,
    channels: doc.channels,
    pagerduty: doc.pagerduty,
    monitor: { interval: "30s" },
    environments: {
      production: { bake: "6h", rollback_grace: "30s", rollback_strategy: { type: "BLUE_GREEN" } },
    },
    services: Object.fromEntries(
      Array.from({ length: services }, (_, i) => {
        const name = SERVICE(i + 1);
        return [
          name,
          {
            environments: {
              production: {
                ecs: { cluster: "failover", service: name, container: "app", region: "af-south-1" },
                strategy: { type: "BLUE_GREEN" },
                load_balancer: {
                  name: "app/failover/0123456789abcdef",
                  target_group: `targetgroup/${name}/0123456789`,
                },
                guardrails,
              },
            },
          },
        ];
      }),
    ),
    simulation: { oncall: "erin", initial_version: "v1.0.0" },
  };
  const file = join(dir, "failover.yml");
  writeFileSync(file, stringify(out));
  return file;
}

/**
 * A small HTTP server that takes the bots' response_url answers (and keeps them, for a failing trial's report), each
 * also with the path it was sent to (the click tests give every request a response_url of its own).
 */
export async function responseSink(): Promise<{
  url: string;
  bodies: string[];
  received: Array<{ path: string; body: string }>;
  close(): Promise<void>;
}> {
  const bodies: string[] = [];
  const received: Array<{ path: string; body: string }> = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => {
      body += d.toString();
    });
    req.on("end", () => {
      bodies.push(body);
      received.push({ path: req.url ?? "", body });
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/response`,
    bodies,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

interface Slot {
  bot: BotProcess;
  port: Promise<number>;
  pid: number;
  /** Set when the harness sent SIGKILL (the exit is seen a little later). */
  killed: boolean;
}

/** Runs the trials and returns one result per trial; every process is killed at the end. */
export async function runFailoverTrials(o: FailoverOptions): Promise<TrialResult[]> {
  const configFile = writeFailoverConfig(o.dir, o.trials);
  const config = loadConfig(configFile);
  const worldFile = join(o.dir, "world.sim");
  // The world and its timeline, before any bot opens it: they all read the origin of the scaled clock from it.
  const clock = new ScaledClock({ simulated: "2026-11-24T08:00:00.000Z", real: Date.now(), speed: o.speed });
  const world = new SimWorld(config, clock, { file: worldFile });
  world.setTimeline(clock.timeline);
  const sink = await responseSink();

  const env = botEnv({
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    DEPLOYBOT_LEASE_TTL: `${o.leaseTtlMs}ms`,
    LOG_LEVEL: "info",
    ...("url" in o.database ? { DEPLOYBOT_DATABASE_URL: o.database.url } : {}),
  });
  const dbFile = "file" in o.database ? o.database.file : join(o.dir, "unused.db");
  const slots: Slot[] = [];
  let closing = false;
  const start = (i: number) => {
    if (closing) return;
    const bot = startBot(["sim-replica", "--config", configFile, "--db", dbFile, "--world", worldFile], env, 600_000);
    if (process.env.FAILOVER_DEBUG) console.log(`start slot ${i}: pid ${bot.child.pid} (was ${slots[i]?.pid})`);
    slots[i] = {
      bot,
      pid: bot.child.pid as number,
      killed: false,
      // 0 for a process killed before it listened.
      port: bot.logLine(/listening for Slack/).then(
        (l) => Number(l.port),
        () => 0,
      ),
    };
  };
  const live = (s: Slot) => !s.killed && s.bot.child.exitCode === null && s.bot.child.signalCode === null;
  const alive = () => slots.filter(live);
  /** The slot of the live process that holds the lease now, from the holder name (host:pid:random). */
  const leaderSlot = async (): Promise<number | undefined> => {
    const lease = await o.store.leases.get("leader");
    if (!lease || Date.parse(lease.expiresAt) <= Date.now()) return undefined;
    const pid = Number(lease.holder.split(":").at(-2));
    const i = slots.findIndex((s) => s.pid === pid && live(s));
    return i >= 0 ? i : undefined;
  };
  /** Asks a random live process for the trial's deploy, again if the request was lost with a process killed. */
  let triggerId = 0;
  const requestDeploy = async (t: number): Promise<void> => {
    const service = SERVICE(t);
    for (let attempt = 0; attempt < 20; attempt++) {
      const candidates = alive();
      const slot = candidates[Math.floor(Math.random() * candidates.length)];
      const port = slot ? await slot.port : 0;
      const body = slashBody({
        command: "/deploy",
        text: `${service} v2.0.${t} to production`,
        response_url: sink.url,
        trigger_id: `${++triggerId}.failover`,
      });
      if (port && (await postSigned(port, body).catch(() => 0)) === 200) {
        const recorded = await until(`/deploy ${service} recorded`, 3_000, async () =>
          (await o.store.deployments.history(service, "production", 1)).length > 0 ? true : undefined,
        ).catch(() => false);
        if (recorded) return;
      }
      await sleep(100);
    }
    throw new Error(`trial ${t}: no process took /deploy ${service}`);
  };

  const results: TrialResult[] = [];
  try {
    for (let i = 0; i < o.processes; i++) start(i);
    await Promise.all(slots.map((s) => s.port));
    let requested = requestDeploy(1);
    for (let t = 1; t <= o.trials; t++) {
      const service = SERVICE(t);
      await requested;
      const deploy = await until(`trial ${t}: ${service} bakes`, 30_000, async () => {
        const [d] = await o.store.deployments.history(service, "production", 1);
        if (d?.status === "failed" || d?.status === "denied") throw new Error(`trial ${t}: ${service} ${d.status}`);
        return d?.status === "baking" ? d : undefined;
      });

      // The breach; the next trial's deploy starts meanwhile (it rolls out through the kills of this one).
      world.setMetric(service, "production", "error_rate", 5);
      const breachAt = Date.now();
      if (t < o.trials) requested = requestDeploy(t + 1);
      // The leader killed at a random moment of what follows; in a trial that kills twice (three processes), the next
      // leader too, at a random moment after it took over.
      const kills: Kill[] = [];
      const takeovers: Array<Promise<void>> = [];
      const killer = (async () => {
        let from = breachAt;
        for (let k = 0; k < Math.min(o.processes - 1, o.killsIn?.(t) ?? 1); k++) {
          const leader = () =>
            until("a live leader", 30_000, leaderSlot).catch(async (err: unknown) => {
              const lease = await o.store.leases.get("leader");
              throw new Error(
                `${(err as Error).message}: the lease is ${JSON.stringify(lease)}; processes: ${slots
                  .map((x) => `${x.pid} ${live(x) ? "live" : "dead"}: ${x.bot.stderr().trim().split("\n").at(-1)}`)
                  .join(" ;; ")}`,
              );
            });
          await leader();
          if (k > 0) from = Date.now();
          await sleep(
            Math.round(Math.random() * (k === 0 ? o.killWindowMs : o.killWindowMs / 2)) - (Date.now() - from),
          );
          // The one that leads at that moment (or, between two leaders, the next one as soon as it leads).
          const now = await leader();
          const target = slots[now] as Slot;
          const bot = target.bot;
          target.killed = true;
          bot.child.kill("SIGKILL");
          const kill: Kill = { afterMs: Date.now() - breachAt, slot: now, at: clock.now().toISOString() };
          kills.push(kill);
          const killedAt = Date.now();
          takeovers.push(
            until("the next leader", 30_000, leaderSlot).then(() => {
              kill.takeoverMs = Date.now() - killedAt;
            }),
          );
          void bot.exited.then(() => start(now));
        }
      })();

      const key = (p: { dedupKey: string }) =>
        p.dedupKey.startsWith(`deploybot/${service}/production/deploy-${deploy.id}/`);
      await until(`trial ${t}: ${service} rolled back and its page resolved`, 60_000, async () => {
        const d = await o.store.deployments.get(deploy.id);
        const resolved = world.pages().some((p) => key(p) && p.action === "resolve" && !p.deduplicated);
        return d?.status === "rolled_back" && resolved ? true : undefined;
      });
      const ms = Date.now() - breachAt;
      await killer;
      await Promise.all(takeovers);
      results.push({
        trial: t,
        service,
        kills,
        deployCalls: 0,
        rollbackCalls: 0,
        triggers: 0,
        triggersSent: 0,
        resolves: 0,
        resolvesSent: 0,
        ms,
        held: false,
      });
    }
    // Late duplicates would show now: let every process run a while longer, then count from the world.
    await Promise.all(alive().map((s) => s.port));
    await sleep((3 * 60_000) / o.speed + 2 * o.leaseTtlMs);
    const state = world.read();
    const pages = world.pages();
    for (const r of results) {
      const svc = state.services[`failover/${r.service}`];
      const previous = svc?.initialTaskDefinitionArn;
      const own = pages.filter((p) => p.dedupKey.startsWith(`deploybot/${r.service}/`));
      const calls = svc?.deployments ?? [];
      r.deployCalls = calls.filter((d) => d.targetTaskDefinitionArn !== previous).length;
      r.rollbackCalls = calls.filter((d) => d.targetTaskDefinitionArn === previous).length;
      r.triggersSent = own.filter((p) => p.action === "trigger").length;
      r.triggers = own.filter((p) => p.action === "trigger" && !p.deduplicated).length;
      r.resolvesSent = own.filter((p) => p.action === "resolve").length;
      r.resolves = own.filter((p) => p.action === "resolve" && !p.deduplicated).length;
      r.held = r.deployCalls === 1 && r.rollbackCalls === 1 && r.triggers === 1 && r.resolves === 1;
      // Where in the flow each kill fell, from the world's own times.
      const trigger = own.find((p) => p.action === "trigger")?.at;
      const rollback = calls.find((d) => d.targetTaskDefinitionArn === previous)?.startedAt;
      const resolve = own.find((p) => p.action === "resolve" && !p.deduplicated)?.at;
      for (const k of r.kills) {
        k.stage =
          trigger && k.at < trigger
            ? "before the page"
            : rollback && k.at < rollback
              ? "page → rollback"
              : resolve && k.at < resolve
                ? "rollback → resolve"
                : "after the resolve";
      }
    }
    return results;
  } finally {
    closing = true;
    for (const s of slots)
      if (s.bot.child.exitCode === null && s.bot.child.signalCode === null) s.bot.child.kill("SIGKILL");
    await Promise.all(slots.map((s) => s.bot.exited));
    world.kill();
    await sink.close();
  }
}

/** Polls `check` until it returns a value; throws with `what` after `ms`. */
export async function until<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await sleep(20);
  }
}

/** The trials as a table, and the counts. */
export function report(name: string, results: TrialResult[]): string {
  const kills = results.flatMap((r) => r.kills);
  const stages = new Map<string, number>();
  for (const k of kills) stages.set(k.stage ?? "?", (stages.get(k.stage ?? "?") ?? 0) + 1);
  const takeovers = kills.map((k) => k.takeoverMs ?? 0).sort((a, b) => a - b);
  const resends = results.reduce((n, r) => n + r.triggersSent - r.triggers + r.resolvesSent - r.resolves, 0);
  const lines = [
    `${name}: ${results.length} trials, ${results.filter((r) => r.held).length} held; ${kills.length} leaders killed (${[...stages].map(([s, n]) => `${n} ${s}`).join(", ")}); takeover after a kill: median ${takeovers[Math.floor(takeovers.length / 2)]} ms, max ${takeovers.at(-1)} ms; ${resends} page(s) sent again and deduplicated by PagerDuty`,
    "trial service kills (ms after the breach #process → takeover ms) deploys rollbacks triggers(sent) resolves(sent) breach→resolve held",
  ];
  for (const r of results) {
    const k = r.kills.map((x) => `${x.afterMs}#${x.slot}→${x.takeoverMs}`).join(" ") || "-";
    lines.push(
      `${String(r.trial).padStart(5)} ${r.service.padEnd(7)} ${k.padEnd(34)} ${String(r.deployCalls).padStart(7)} ${String(r.rollbackCalls).padStart(9)} ${`${r.triggers}(${r.triggersSent})`.padStart(14)} ${`${r.resolves}(${r.resolvesSent})`.padStart(14)} ${`${r.ms} ms`.padStart(14)} ${r.held ? "yes" : "NO"}`,
    );
  }
  return lines.join("\n");
}
