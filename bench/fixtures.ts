/**
 * What the bench builds deploybot from: the example config grown to any number of services, the services wired as
 * in Slack mode with the REAL AWS adapters and SDK clients (pointed at bench/aws-server.ts), a file database, and
 * seeding by direct SQL (watched deploys, and a history of 100k deployments, 1M audit rows, 5k incidents).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { ECSClient } from "@aws-sdk/client-ecs";
import type Database from "better-sqlite3";
import { pino } from "pino";
import { parse, stringify } from "yaml";
import { AwsCloudWatch } from "../src/adapters/aws/cloudwatch.js";
import { AwsEcs } from "../src/adapters/aws/ecs.js";
import { SlackChat } from "../src/adapters/slack.js";
import { ManualClock } from "../src/clock.js";
import { parseConfig } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";
import { allTargets } from "../src/domain/targets.js";
import type { PagerPort } from "../src/ports.js";
import { CHECKPOINT_EVERY_MS } from "../src/server/parts.js";
import { buildServices, type Services } from "../src/services/index.js";
import { Store } from "../src/store/index.js";
import { SqliteDriver } from "../src/store/sqlite.js";

/** A Tuesday inside the example config's deploy window, on a minute boundary. */
export const BENCH_NOW = "2026-11-24T08:30:00.000Z";
export const ACCOUNT = "123456789012";
export const REGION = "af-south-1";
/** Fake credentials: the SDK signs every request with them (SigV4), as it would with real ones. */
export const AWS_CREDENTIALS = { accessKeyId: "AKIDBENCH0000000000", secretAccessKey: "bench/secret/key/0123456789" };

export function serviceName(i: number): string {
  return `bench${String(i).padStart(4, "0")}`;
}

/** The bench services' strategy. */
const ECS_CANARY = { type: "CANARY", canary_percent: 10, canary_bake: "5m" } as const;

/**
 * The example config (examples/deploybot.yml) plus `n` services bench0001..., each with a production environment
 * that has web's production guardrails and a load balancer of its own, on ECS's own CANARY (10% for 5 min, as web
 * production ran before traffic steps): the 1,000 watched deploys take ECS's rollout path, one ECS service each.
 * As YAML; `interval` overrides monitor.interval.
 */
export function benchConfigYaml(n: number, opts: { interval?: string } = {}): string {
  const raw = parse(readFileSync(new URL("../examples/deploybot.yml", import.meta.url), "utf8"), {
    maxAliasCount: 100_000,
  }) as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (key.startsWith("x-")) delete raw[key];
  if (opts.interval) raw.monitor = { interval: opts.interval };
  const services = raw.services as Record<string, { environments: Record<string, Record<string, unknown>> }>;
  const web = services.web?.environments.production;
  if (!web) throw new Error("examples/deploybot.yml has no web production environment");
  for (let i = 1; i <= n; i++) {
    const name = serviceName(i);
    services[name] = {
      environments: {
        production: {
          ...structuredClone(web),
          strategy: { ...ECS_CANARY },
          ecs: { cluster: "comply360-prod", service: name, container: name, region: REGION },
          load_balancer: {
            name: "app/comply360-prod/50dc6c495c0c9188",
            target_group: `targetgroup/${name}/${(0x73e2d6bc24d8a067n + BigInt(i)).toString(16)}`,
          },
        },
      },
    };
  }
  return stringify(raw, { aliasDuplicateObjects: false });
}

export function benchConfig(n: number): Config {
  return parseConfig(benchConfigYaml(n), `examples/deploybot.yml + ${n} services`);
}

/** The real adapters over real SDK clients, pointed at the bench's AWS (endpoint) with fake credentials. */
export function realAws(awsUrl: string): { metrics: AwsCloudWatch; ecs: AwsEcs } {
  const common = { endpoint: awsUrl, credentials: AWS_CREDENTIALS, maxAttempts: 1 };
  return {
    metrics: new AwsCloudWatch((region) => new CloudWatchClient({ region, ...common })),
    ecs: new AwsEcs((region) => new ECSClient({ region, ...common })),
  };
}

/** Nothing pages in the bench (every metric is healthy); nobody is on call. */
const noPager: PagerPort = { sendEvent: async () => {}, onCalls: async () => [] };

export interface Bot {
  config: Config;
  store: Store;
  clock: ManualClock;
  services: Services;
  dbFile: string;
}

/** deploybot's services as Slack mode wires them, on a file database, with the real AWS adapters and SDK clients. */
export function buildBot(opts: { config: Config; dbFile: string; awsUrl: string; now?: string }): Bot {
  // As Slack mode opens it (src/server/parts.ts): WAL checkpoints in a thread of their own.
  const store = Store.sqlite(opts.dbFile, { checkpointEveryMs: CHECKPOINT_EVERY_MS });
  const clock = new ManualClock(opts.now ?? BENCH_NOW);
  const services = buildServices(
    {
      config: opts.config,
      store,
      clock,
      ...realAws(opts.awsUrl),
      pager: noPager,
      chat: new SlackChat(),
      logger: pino({ level: "silent" }),
    },
    { oncallCacheMs: 60_000 },
  );
  return { config: opts.config, store, clock, services, dbFile: opts.dbFile };
}

export function sqliteOf(store: Store): Database.Database {
  return (store.driver as SqliteDriver).db;
}

export const taskDefinition = (service: string, revision: number) =>
  `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${service}:${revision}`;

const DEPLOYMENT_COLUMNS = `kind, service, environment, version, task_definition, previous_version, previous_task_definition,
  requested_by, reason, flags, status, decision, approval_rule, expires_at, ecs_deployment_arn, progress, card_channel,
  card_ts, created_at, updated_at, finished_at, started_at, rolls_back`;
const insertDeployment = (db: Database.Database) =>
  db.prepare(`INSERT INTO deployments (${DEPLOYMENT_COLUMNS}) VALUES (${Array(23).fill("?").join(", ")})`);

/**
 * Deploys in flight, one per target, by direct SQL in one transaction: baking (bake ending in 25 min), except the
 * first `deploying`, which ECS is still rolling out (half of the tasks up). Returns their ids.
 */
export function seedInFlight(
  store: Store,
  now: Date,
  targets: Array<{ service: string; environment: string }>,
  opts: { deploying?: number } = {},
): number[] {
  const db = sqliteOf(store);
  const insert = insertDeployment(db);
  const lock = db.prepare(
    "INSERT INTO locks (service, environment, deployment_id, holder, since) VALUES (?, ?, ?, ?, ?)",
  );
  const arn = db.prepare("UPDATE deployments SET ecs_deployment_arn = ? WHERE id = ?");
  const created = new Date(now.getTime() - 6 * 60_000).toISOString();
  const started = new Date(now.getTime() - 5 * 60_000).toISOString();
  const bakeEndsAt = new Date(now.getTime() + 25 * 60_000).toISOString();
  const decision = JSON.stringify({ outcome: "needs_approval", reasons: ["production needs approval"], bypassed: [] });
  const ids: number[] = [];
  db.transaction(() => {
    targets.forEach((t, i) => {
      const deploying = i < (opts.deploying ?? 0);
      const cluster = t.environment === "production" ? "comply360-prod" : "comply360-staging";
      const progress = deploying ? { running: 2, desired: 4 } : { running: 4, desired: 4, bakeEndsAt };
      const row = insert.run(
        "deploy",
        t.service,
        t.environment,
        "v1.4.2",
        taskDefinition(t.service, 2),
        "v1.4.1",
        taskDefinition(t.service, 1),
        "alice",
        "benchmark",
        "{}",
        deploying ? "deploying" : "baking",
        decision,
        null,
        null,
        null,
        JSON.stringify(progress),
        "CDEPLOYS",
        `1764000000.${String(i).padStart(6, "0")}`,
        created,
        started,
        null,
        started,
        null,
      );
      const id = Number(row.lastInsertRowid);
      arn.run(`arn:aws:ecs:${REGION}:${ACCOUNT}:service-deployment/${cluster}/${t.service}/${id}`, id);
      lock.run(t.service, t.environment, id, "alice", started);
      ids.push(id);
    });
  })();
  return ids;
}

/** What the history holds (the figures). Bump HISTORY_VERSION whenever the seeding below changes. */
export const HISTORY = { deployments: 100_000, audit: 1_000_000, incidents: 5_000 };
const HISTORY_VERSION = 1;

/** A small deterministic PRNG, so every seeded history is the same. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const ENDED: Array<[string, number]> = [
  ["succeeded", 0.8],
  ["failed", 0.05],
  ["rolled_back", 0.03],
  ["rejected", 0.03],
  ["expired", 0.03],
  ["denied", 0.03],
  ["cancelled", 0.03],
];
const AUDIT_ACTIONS = [
  "deploy.needs_approval",
  "approval.approve",
  "deploy.approved",
  "ecs.deploy.intent",
  "ecs.update_service",
  "deploy.rolled_out",
  "guardrail.checked",
  "deploy.bake_ended",
  "deploy.succeeded",
  "card.updated",
];

/**
 * Three years of settled history on the example config's targets, by direct SQL in one transaction: 100k
 * deployments (deploys and rollbacks, every ending), 10 audit rows each (1M), 5k past incidents (recovered or
 * closed). Everything ends before `now`.
 */
function seedHistory(db: Database.Database, config: Config, now: Date): void {
  const random = prng(11);
  const targets = allTargets(config).map((t) => ({ service: t.service, environment: t.environment }));
  const insert = insertDeployment(db);
  const audit = db.prepare(
    "INSERT INTO audit (at, actor, action, deployment_id, service, environment, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const incident = db.prepare(
    `INSERT INTO incidents (deployment_id, guardrail, severity, action, shadow, state, episode, first_seen, last_seen,
       resolved_at, page_key, detail) VALUES (?, ?, ?, ?, 0, ?, 1, ?, ?, ?, ?, ?)`,
  );
  const users = ["alice", "bob", "carol", "dave", "erin"];
  const span = 3 * 365 * 86_400_000;
  const first = now.getTime() - span - 3_600_000;
  const guardrails = ["error rate (rollback)", "p95 latency (rollback)", "service down", "CPU (warning)"];
  const incidentEvery = Math.floor(HISTORY.deployments / HISTORY.incidents);
  const auditPer = HISTORY.audit / HISTORY.deployments;
  db.transaction(() => {
    for (let i = 1; i <= HISTORY.deployments; i++) {
      const t = targets[Math.floor(random() * targets.length)] as { service: string; environment: string };
      const at = first + Math.floor((i / HISTORY.deployments) * span);
      let r = random();
      let status = "succeeded";
      for (const [s, p] of ENDED) {
        if (r < p) {
          status = s;
          break;
        }
        r -= p;
      }
      const rollback = status === "succeeded" && random() < 0.03;
      const started = ["succeeded", "failed", "rolled_back"].includes(status);
      const created = new Date(at).toISOString();
      const finished = new Date(at + 40 * 60_000).toISOString();
      const version = `v1.${Math.floor(i / 1000)}.${i % 1000}`;
      insert.run(
        rollback ? "rollback" : "deploy",
        t.service,
        t.environment,
        version,
        started ? taskDefinition(t.service, i) : null,
        `v1.${Math.floor((i - 1) / 1000)}.${(i - 1) % 1000}`,
        taskDefinition(t.service, i - 1),
        users[i % users.length] as string,
        random() < 0.3 ? "release train" : null,
        "{}",
        status,
        JSON.stringify({ outcome: "needs_approval", reasons: [`${t.environment} needs approval`], bypassed: [] }),
        JSON.stringify([{ name: "lead", from: ["tech_lead", "devops_lead"], count: 1 }]),
        new Date(at + 30 * 60_000).toISOString(),
        started ? `arn:aws:ecs:${REGION}:${ACCOUNT}:service-deployment/comply360/${t.service}/${i}` : null,
        started ? JSON.stringify({ running: 4, desired: 4, bakeEndsAt: finished }) : null,
        "CDEPLOYS",
        `${Math.floor(at / 1000)}.000100`,
        created,
        finished,
        finished,
        started ? new Date(at + 5 * 60_000).toISOString() : null,
        rollback ? i - 1 : null,
      );
      for (let k = 0; k < auditPer; k++) {
        audit.run(
          new Date(at + k * 60_000).toISOString(),
          k % 3 === 0 ? "deploybot" : (users[(i + k) % users.length] as string),
          AUDIT_ACTIONS[k % AUDIT_ACTIONS.length] as string,
          i,
          t.service,
          t.environment,
          JSON.stringify({ version, roles: ["tech_lead"], reason: k === 0 ? "release train" : undefined }),
        );
      }
      if (i % incidentEvery === 0) {
        const g = guardrails[i % guardrails.length] as string;
        const seen = new Date(at + 10 * 60_000).toISOString();
        incident.run(
          i,
          g,
          g.includes("warning") ? "warning" : "critical",
          g.includes("warning") ? "alert" : "rollback",
          random() < 0.8 ? "recovered" : "closed",
          seen,
          seen,
          new Date(at + 20 * 60_000).toISOString(),
          `deploybot/${t.service}/${t.environment}/deploy-${i}/${g.replace(/\s+/g, "-")}`,
          JSON.stringify({
            reason: `${g} over threshold`,
            observed: 2.4,
            values: [1.1, 2.4, 2.2],
            unit: "%",
            threshold: "> 1%",
          }),
        );
      }
    }
  })();
}

/**
 * A copy of the history database in `dir`, ready to open. The seeded file is built once (about 10 s) and kept in
 * the system's temp dir, keyed by the schema version and the seeding's version, so later runs only copy it.
 */
export function historyDb(config: Config, dir: string): { file: string; seededNow: boolean } {
  const cacheDir = join(tmpdir(), "deploybot-bench");
  mkdirSync(cacheDir, { recursive: true });
  const cached = join(cacheDir, `history-schema${SqliteDriver.schemaVersion}-seed${HISTORY_VERSION}.db`);
  let seededNow = false;
  if (!existsSync(cached)) {
    const building = `${cached}.${process.pid}.tmp`;
    rmSync(building, { force: true });
    const driver = new SqliteDriver(building);
    seedHistory(driver.db, config, new Date(BENCH_NOW));
    driver.db.pragma("wal_checkpoint(TRUNCATE)");
    driver.db.close();
    rmSync(`${building}-wal`, { force: true });
    rmSync(`${building}-shm`, { force: true });
    renameSync(building, cached);
    seededNow = true;
  }
  const file = join(dir, "history.db");
  copyFileSync(cached, file);
  return { file, seededNow };
}
