import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Database from "better-sqlite3";
import pg from "pg";
import { afterAll, afterEach, expect } from "vitest";
import type { DeploymentEvent } from "../../src/domain/deployment.js";
import type { IncidentEvent } from "../../src/domain/incident.js";
import {
  type Deployment,
  type DeploymentStatus,
  type Incident,
  type IncidentState,
  type NewDeployment,
  type NewIncident,
  Store,
  TABLES,
} from "../../src/store/index.js";
import type { SqliteDriver } from "../../src/store/sqlite.js";

export const T0 = new Date("2026-11-24T08:15:00.000Z");
/** T0 plus some minutes. */
export const later = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A PostgreSQL server for the store suite (`npm run test:pg` starts one and sets it); unset, only SQLite runs. */
export const PG_URL = process.env.DEPLOYBOT_TEST_PG_URL || undefined;

export type Backend = "sqlite" | "postgres";
/** The backends the shared store suites run on: SQLite always, PostgreSQL when DEPLOYBOT_TEST_PG_URL is set. */
export const BACKENDS: Backend[] = PG_URL ? ["sqlite", "postgres"] : ["sqlite"];

/** Names the PostgreSQL schemas of this run, so test files and runs sharing one server never see each other's rows. */
const RUN = randomBytes(3).toString("hex");
let schemas = 0;

/**
 * Empties a schema a previous test used, ids included, so the next test starts as on a new one (migrating a new
 * schema for every test would make the PostgreSQL run three times slower). The audit log's guard against TRUNCATE is
 * lifted for that statement only.
 */
const EMPTY = `ALTER TABLE audit DISABLE TRIGGER audit_no_truncate;
  TRUNCATE ${TABLES.join(", ")} RESTART IDENTITY;
  ALTER TABLE audit ENABLE TRIGGER audit_no_truncate`;

/**
 * Stores for one test file (or one backend's describe block): each one is closed after its test; SQLite files live in
 * a temp dir, and PostgreSQL schemas are dropped at the end. Call at the top level of a test file or describe block.
 */
export function useStores(backend: Backend = "sqlite") {
  // Made on first use: a describe block that is skipped still calls this, but never runs its afterAll.
  let dir: string | undefined;
  const opened: Store[] = [];
  const created: string[] = [];
  /** The schema `store()` gave the last test, emptied for the next one. */
  let reusable: string | undefined;
  let lent: string | undefined;
  let seq = 0;
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    reusable = lent ?? reusable;
    lent = undefined;
  });
  afterAll(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (created.length === 0) return;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      await admin.query(`DROP SCHEMA IF EXISTS ${created.splice(0).map(pg.escapeIdentifier).join(", ")} CASCADE`);
    } finally {
      await admin.end();
    }
  });
  const track = (s: Store): Store => {
    opened.push(s);
    return s;
  };
  /** A new PostgreSQL schema name (nothing is created yet), dropped after the file. */
  const schema = (): string => {
    const name = `deploybot_test_${RUN}_${process.pid}_${++schemas}`;
    created.push(name);
    return name;
  };
  /** A store on PostgreSQL in schema `name` (a new one by default), closed after the test. */
  const postgres = async (name = schema()): Promise<Store> => {
    if (!PG_URL) throw new Error("DEPLOYBOT_TEST_PG_URL is not set: npm run test:pg sets it");
    return track(await Store.postgres(PG_URL, { schema: name, maxConnections: 4 }));
  };
  /** A store on a SQLite `file` (in memory by default), closed after the test. */
  const sqlite = (file = ":memory:"): Store => track(Store.sqlite(file));
  /** An empty PostgreSQL store: the schema of the previous test emptied, or a new one. */
  const emptyPostgres = async (): Promise<Store> => {
    const name = reusable ?? schema();
    reusable = undefined;
    lent = name;
    const s = await postgres(name);
    await s.driver.run(EMPTY);
    return s;
  };
  return {
    backend,
    /** A fresh file path in the temp dir (nothing is created). */
    tempFile: () => {
      dir ??= mkdtempSync(join(tmpdir(), "deploybot-store-"));
      return join(dir, `store-${++seq}.db`);
    },
    /** An empty store on this backend (SQLite in memory, or PostgreSQL), closed after the test. */
    store: (): Promise<Store> => (backend === "postgres" ? emptyPostgres() : Promise.resolve(sqlite())),
    sqlite,
    postgres,
    schema,
    track,
  };
}

/** The better-sqlite3 connection under a SQLite store, for the statements no repository offers. */
export const rawDb = (s: Store): Database.Database => (s.driver as SqliteDriver).db;

export const newDeploy = (s: Store, over: Partial<NewDeployment> = {}, at = T0): Promise<Deployment> =>
  s.deployments.create(
    {
      kind: "deploy",
      service: "web",
      environment: "production",
      version: "v1.4.2",
      requestedBy: "alice",
      reason: "fix login",
      flags: { hotfix: true },
      ...over,
    },
    at,
  );

/** The events that bring a new deployment to each status, written out here rather than derived from the machine. */
export const DEPLOYMENT_PATH: Record<DeploymentStatus, DeploymentEvent[]> = {
  requested: [],
  awaiting_approval: ["ask_approval"],
  approved: ["allow"],
  denied: ["deny"],
  rejected: ["ask_approval", "reject"],
  expired: ["ask_approval", "expire"],
  cancelled: ["withdraw"],
  deploying: ["allow", "start"],
  shifting: ["allow", "start", "shift"],
  paused: ["allow", "start", "shift", "pause"],
  baking: ["allow", "start", "rolled_out"],
  succeeded: ["allow", "start", "succeed"],
  failed: ["allow", "not_started"],
  rolling_back: ["allow", "start", "rolled_out", "roll_back"],
  rolled_back: ["allow", "start", "roll_back", "rolled_back"],
};

/** A new deployment moved to `status`, one minute per event. */
export async function deploymentIn(
  s: Store,
  status: DeploymentStatus,
  over: Partial<NewDeployment> = {},
): Promise<Deployment> {
  let d = await newDeploy(s, over);
  for (const [i, event] of DEPLOYMENT_PATH[status].entries()) d = await s.deployments.apply(d.id, event, later(i + 1));
  expect(d.status).toBe(status);
  return d;
}

export const newIncident = (deploymentId: number, over: Partial<NewIncident> = {}): NewIncident => ({
  deploymentId,
  guardrail: "error-rate",
  severity: "critical",
  action: "rollback",
  shadow: false,
  state: "open",
  at: T0,
  rollbackAt: null,
  pageKey: null,
  detail: {
    reason: "5xx rate 3.1% is above 2%",
    observed: 3.1,
    values: [1.2, 3.1],
    unit: "percent",
    threshold: "> 2%",
  },
  ...over,
});

/** The events that bring a new incident to each state, written out here rather than derived from the machine. */
export const INCIDENT_PATH: Record<IncidentState, IncidentEvent[]> = {
  open: [],
  rollback_pending: ["schedule_rollback"],
  rolling_back: ["start_rollback"],
  rolled_back: ["start_rollback", "rollback_done"],
  overridden: ["override"],
  recovered: ["recover"],
  closed: ["close"],
};

/** A new incident (on a new deployment) moved to `state`. */
export async function incidentIn(s: Store, state: IncidentState, over: Partial<NewIncident> = {}): Promise<Incident> {
  const d = await newDeploy(s);
  let i = (await s.incidents.open(newIncident(d.id, over))) as Incident;
  for (const event of INCIDENT_PATH[state]) i = await s.incidents.apply(i.id, event);
  expect(i.state).toBe(state);
  return i;
}

/** What `fn` threw (fails the test when it did not throw). */
export async function thrown(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected it to throw, and it did not");
}
