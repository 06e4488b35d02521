import { DeploybotError, ErrorCode } from "../errors.js";
import { DeploymentRepo } from "./deployments.js";
import type { SqlDriver } from "./driver.js";
import { IncidentRepo } from "./incidents.js";
import { IntentRepo } from "./intents.js";
import { LeaseRepo } from "./leases.js";
import { PostgresDriver, type PostgresDriverOptions } from "./postgres.js";
import { ApprovalRepo, AuditRepo, GuardrailCheckRepo, KvRepo, LockRepo, SeenRequestRepo } from "./records.js";
import { SqliteDriver } from "./sqlite.js";

export type { Deployment, DeploymentKind, DeploymentStatus } from "../domain/deployment.js";
export type { Incident, IncidentState } from "../domain/incident.js";
export type { DeploymentBrief, DeploymentPatch, NewDeployment } from "./deployments.js";
export type { IncidentPatch, NewIncident } from "./incidents.js";
export type { Lease, LeaseClaim } from "./leases.js";
export type { PostgresDriverOptions } from "./postgres.js";
export type { Approval, AuditEntry, Lock } from "./records.js";

/** Tables every deploybot database holds: a start-up check refuses a file that lacks one. */
export const TABLES = [
  "deployments",
  "approvals",
  "locks",
  "audit",
  "incidents",
  "intents",
  "guardrail_checks",
  "leases",
  "seen_requests",
  "kv",
] as const;

/**
 * deploybot's durable state, one repository per table over one SQL driver: SQLite by default, PostgreSQL when a
 * database URL is given. Every method is async so that both sit behind the same interface. `tx` groups writes:
 * inside it, every repository call joins the transaction.
 */
export class Store {
  readonly deployments: DeploymentRepo;
  readonly incidents: IncidentRepo;
  readonly intents: IntentRepo;
  readonly approvals: ApprovalRepo;
  readonly locks: LockRepo;
  readonly audit: AuditRepo;
  readonly kv: KvRepo;
  readonly checks: GuardrailCheckRepo;
  readonly requests: SeenRequestRepo;
  readonly leases: LeaseRepo;

  constructor(readonly driver: SqlDriver) {
    this.deployments = new DeploymentRepo(driver);
    this.incidents = new IncidentRepo(driver);
    this.intents = new IntentRepo(driver);
    this.approvals = new ApprovalRepo(driver);
    this.locks = new LockRepo(driver);
    this.audit = new AuditRepo(driver);
    this.kv = new KvRepo(driver);
    this.checks = new GuardrailCheckRepo(driver);
    this.requests = new SeenRequestRepo(driver);
    this.leases = new LeaseRepo(driver);
  }

  /** A store on a SQLite file (created and migrated as needed), or ":memory:". */
  /** A store on a SQLite file (or `:memory:`); `checkpointEveryMs` as SqliteDriver takes it. */
  static sqlite(file: string, options: { checkpointEveryMs?: number } = {}): Store {
    return new Store(new SqliteDriver(file, options));
  }

  /** A store on a PostgreSQL database (`postgres://…`), connected and migrated as needed. */
  static async postgres(url: string, options: Omit<PostgresDriverOptions, "url"> = {}): Promise<Store> {
    return new Store(await PostgresDriver.connect({ ...options, url }));
  }

  /** Runs `fn` in one transaction: all of its writes land, or none (on PostgreSQL `fn` may run more than once). */
  tx<T>(fn: () => Promise<T>): Promise<T> {
    return this.driver.tx(fn);
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}

/** The URL schemes that select PostgreSQL. */
const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/**
 * Opens the store deploybot runs on: PostgreSQL when `url` (DEPLOYBOT_DATABASE_URL) is set, else the SQLite `file`.
 * A URL of any other kind is refused rather than silently ignored.
 */
export async function openStore(opts: { url?: string; file: string; checkpointEveryMs?: number }): Promise<Store> {
  const url = opts.url?.trim();
  if (!url) return Store.sqlite(opts.file, { checkpointEveryMs: opts.checkpointEveryMs });
  if (!POSTGRES_URL.test(url)) {
    throw new DeploybotError(
      ErrorCode.ConfigInvalid,
      `DEPLOYBOT_DATABASE_URL must be a postgres:// or postgresql:// URL (found "${url.replace(/:\/\/[^@/]*@/, "://…@")}"); unset it to use the SQLite file ${opts.file}`,
    );
  }
  return Store.postgres(url);
}
