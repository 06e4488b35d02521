import Database from "better-sqlite3";
import { DeploybotError, ErrorCode, IllegalTransitionError } from "../errors.js";

/** Every status a deployment (or a rollback, a kind of deployment) can be in. */
export type DeploymentStatus =
  | "requested"
  | "awaiting_approval"
  | "approved"
  | "denied"
  | "rejected"
  | "expired"
  | "deploying"
  | "baking"
  | "succeeded"
  | "failed"
  | "rolling_back"
  | "rolled_back"
  | "cancelled";

/** The only moves a deployment may make; anything else is a bug and throws before writing. */
export const TRANSITIONS: Readonly<Record<DeploymentStatus, readonly DeploymentStatus[]>> = {
  requested: ["awaiting_approval", "approved", "denied", "cancelled"],
  awaiting_approval: ["approved", "rejected", "expired", "cancelled"],
  approved: ["deploying", "failed", "cancelled"],
  deploying: ["baking", "succeeded", "failed", "rolling_back", "rolled_back"],
  baking: ["succeeded", "failed", "rolling_back", "rolled_back"],
  succeeded: ["rolled_back"],
  rolling_back: ["rolled_back", "failed"],
  denied: [],
  rejected: [],
  expired: [],
  failed: [],
  rolled_back: [],
  cancelled: [],
};

/** Statuses in which a deployment holds its service/environment lock. */
export const IN_FLIGHT: ReadonlySet<DeploymentStatus> = new Set(["approved", "deploying", "baking", "rolling_back"]);
export const FINISHED: ReadonlySet<DeploymentStatus> = new Set(
  (Object.keys(TRANSITIONS) as DeploymentStatus[]).filter((s) => TRANSITIONS[s].length === 0 || s === "succeeded"),
);

export type DeploymentKind = "deploy" | "rollback";

export interface Deployment {
  id: number;
  kind: DeploymentKind;
  service: string;
  environment: string;
  version: string;
  taskDefinition: string | null;
  previousVersion: string | null;
  previousTaskDefinition: string | null;
  requestedBy: string;
  reason: string | null;
  flags: {
    hotfix?: boolean;
    emergency?: string;
    severity?: string;
    automatic?: boolean;
    /** For a rollback: the deployment it rolls back. */
    rollsBack?: number;
    /** For a rollback: it stopped that deployment in flight (StopServiceDeployment) rather than deploying anew. */
    viaStop?: boolean;
  };
  status: DeploymentStatus;
  /** Reasons of the policy decision, and the safeties an override bypassed. */
  decision: { outcome: string; reasons: string[]; bypassed: string[] } | null;
  approvalRule: Array<{ name?: string; from: string[]; count: number }> | null;
  expiresAt: string | null;
  ecsDeploymentArn: string | null;
  progress: { running?: number; desired?: number; detail?: string; bakeEndsAt?: string } | null;
  cardChannel: string | null;
  cardTs: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** When the rollout began on ECS (the UpdateService or StopServiceDeployment call). */
  startedAt: string | null;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  deploymentId: number | null;
  service: string | null;
  environment: string | null;
  detail: Record<string, unknown>;
}

export interface Lock {
  service: string;
  environment: string;
  deploymentId: number;
  holder: string;
  since: string;
}

export interface Approval {
  deploymentId: number;
  user: string;
  decision: "approve" | "reject";
  groupName: string | null;
  /** The roles the person held at the moment of the click. */
  roles: string[];
  note: string | null;
  at: string;
}

/** What the monitor remembers about a breach, so a restarted process acts on it exactly once. */
export interface IncidentDetail {
  action: "alert" | "page" | "rollback";
  shadow: boolean;
  reason: string;
  observed: number | null;
  values: number[];
  unit?: string;
  threshold: string;
  /** When the automatic rollback is due (after the grace period). */
  rollbackAt?: string;
  /** Set before the rollback is called; with no rollbackId it means "intended, maybe not called". */
  rollbackIntentAt?: string;
  rollbackId?: number;
  rollbackSkipped?: string;
  overriddenBy?: string;
  acknowledgedBy?: string;
  pageKey?: string;
  postmortemPosted?: boolean;
}

export interface Incident {
  id: number;
  deploymentId: number;
  guardrail: string;
  severity: string;
  status: "open" | "recovered";
  firstSeen: string;
  lastSeen: string;
  resolvedAt: string | null;
  channel: string | null;
  ts: string | null;
  detail: IncidentDetail;
}

interface IncidentRow {
  id: number;
  deployment_id: number;
  guardrail: string;
  severity: string;
  status: Incident["status"];
  first_seen: string;
  last_seen: string;
  resolved_at: string | null;
  channel: string | null;
  ts: string | null;
  detail: string;
}

const toIncident = (r: IncidentRow): Incident => ({
  id: r.id,
  deploymentId: r.deployment_id,
  guardrail: r.guardrail,
  severity: r.severity,
  status: r.status,
  firstSeen: r.first_seen,
  lastSeen: r.last_seen,
  resolvedAt: r.resolved_at,
  channel: r.channel,
  ts: r.ts,
  detail: JSON.parse(r.detail) as IncidentDetail,
});

/** Versioned migrations: index i moves the schema from user_version i to i + 1. Never edit a shipped one. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('deploy', 'rollback')),
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    version TEXT NOT NULL,
    task_definition TEXT,
    previous_version TEXT,
    previous_task_definition TEXT,
    requested_by TEXT NOT NULL,
    reason TEXT,
    flags TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    decision TEXT,
    approval_rule TEXT,
    expires_at TEXT,
    ecs_deployment_arn TEXT,
    progress TEXT,
    card_channel TEXT,
    card_ts TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT
  );
  CREATE INDEX deployments_target ON deployments (service, environment, id);
  CREATE INDEX deployments_status ON deployments (status);

  CREATE TABLE approvals (
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    user TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    group_name TEXT,
    roles TEXT NOT NULL DEFAULT '[]',
    note TEXT,
    at TEXT NOT NULL,
    PRIMARY KEY (deployment_id, user)
  );

  CREATE TABLE locks (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    holder TEXT NOT NULL,
    since TEXT NOT NULL,
    PRIMARY KEY (service, environment)
  );

  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    deployment_id INTEGER,
    service TEXT,
    environment TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX audit_deployment ON audit (deployment_id);
  CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

  CREATE TABLE incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    guardrail TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    resolved_at TEXT,
    channel TEXT,
    ts TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    UNIQUE (deployment_id, guardrail)
  );

  CREATE TABLE pages (
    dedup_key TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('trigger', 'acknowledge', 'resolve')),
    severity TEXT,
    summary TEXT,
    status TEXT NOT NULL CHECK (status IN ('intended', 'sent', 'failed')),
    at TEXT NOT NULL,
    PRIMARY KEY (dedup_key, action)
  );

  CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  `
  ALTER TABLE deployments ADD COLUMN started_at TEXT;
  `,
];

interface DeploymentRow {
  id: number;
  kind: DeploymentKind;
  service: string;
  environment: string;
  version: string;
  task_definition: string | null;
  previous_version: string | null;
  previous_task_definition: string | null;
  requested_by: string;
  reason: string | null;
  flags: string;
  status: DeploymentStatus;
  decision: string | null;
  approval_rule: string | null;
  expires_at: string | null;
  ecs_deployment_arn: string | null;
  progress: string | null;
  card_channel: string | null;
  card_ts: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  started_at: string | null;
}

const json = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

function toDeployment(r: DeploymentRow): Deployment {
  return {
    id: r.id,
    kind: r.kind,
    service: r.service,
    environment: r.environment,
    version: r.version,
    taskDefinition: r.task_definition,
    previousVersion: r.previous_version,
    previousTaskDefinition: r.previous_task_definition,
    requestedBy: r.requested_by,
    reason: r.reason,
    flags: json(r.flags) ?? {},
    status: r.status,
    decision: json(r.decision),
    approvalRule: json(r.approval_rule),
    expiresAt: r.expires_at,
    ecsDeploymentArn: r.ecs_deployment_arn,
    progress: json(r.progress),
    cardChannel: r.card_channel,
    cardTs: r.card_ts,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
    startedAt: r.started_at,
  };
}

export interface NewDeployment {
  kind: DeploymentKind;
  service: string;
  environment: string;
  version: string;
  requestedBy: string;
  reason?: string | null;
  flags?: Deployment["flags"];
  previousVersion?: string | null;
  previousTaskDefinition?: string | null;
  taskDefinition?: string | null;
}

/** Fields a transition may set along with the new status. */
export type DeploymentPatch = Partial<
  Pick<
    Deployment,
    | "decision"
    | "approvalRule"
    | "expiresAt"
    | "ecsDeploymentArn"
    | "progress"
    | "cardChannel"
    | "cardTs"
    | "taskDefinition"
    | "previousVersion"
    | "previousTaskDefinition"
    | "startedAt"
    | "flags"
  >
>;

const COLUMN: Record<keyof DeploymentPatch, string> = {
  decision: "decision",
  approvalRule: "approval_rule",
  expiresAt: "expires_at",
  ecsDeploymentArn: "ecs_deployment_arn",
  progress: "progress",
  cardChannel: "card_channel",
  cardTs: "card_ts",
  taskDefinition: "task_definition",
  previousVersion: "previous_version",
  previousTaskDefinition: "previous_task_definition",
  startedAt: "started_at",
  flags: "flags",
};
const JSON_COLUMNS = new Set(["decision", "approvalRule", "progress", "flags"]);

/** deploybot's durable state in SQLite (WAL): deployments, approvals, locks, the audit log, incidents and pages. */
export class Store {
  readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("foreign_keys = ON");
    this.db.pragma("busy_timeout = 5000");
    try {
      this.migrate();
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  /** The schema version this build writes. */
  static get schemaVersion(): number {
    return MIGRATIONS.length;
  }

  private migrate(): void {
    const current = this.db.pragma("user_version", { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new DeploybotError(
        ErrorCode.ConfigInvalid,
        `the database was written by a newer deploybot (schema ${current}, this one knows ${MIGRATIONS.length}); upgrade deploybot or use another --db file`,
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v] as string);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  close(): void {
    this.db.close();
  }

  /** Runs `fn` in one transaction: all of its writes land, or none. */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  createDeployment(d: NewDeployment, at: Date): Deployment {
    const now = at.toISOString();
    const info = this.db
      .prepare(
        `INSERT INTO deployments (kind, service, environment, version, task_definition, previous_version, previous_task_definition,
           requested_by, reason, flags, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'requested', ?, ?)`,
      )
      .run(
        d.kind,
        d.service,
        d.environment,
        d.version,
        d.taskDefinition ?? null,
        d.previousVersion ?? null,
        d.previousTaskDefinition ?? null,
        d.requestedBy,
        d.reason ?? null,
        JSON.stringify(d.flags ?? {}),
        now,
        now,
      );
    return this.getDeployment(Number(info.lastInsertRowid)) as Deployment;
  }

  getDeployment(id: number): Deployment | undefined {
    const row = this.db.prepare("SELECT * FROM deployments WHERE id = ?").get(id) as DeploymentRow | undefined;
    return row ? toDeployment(row) : undefined;
  }

  /** Moves a deployment along the transition table; an illegal move throws and writes nothing. */
  transition(id: number, to: DeploymentStatus, at: Date, patch: DeploymentPatch = {}): Deployment {
    return this.tx(() => {
      const current = this.getDeployment(id);
      if (!current) throw new DeploybotError(ErrorCode.NotFound, `no deployment #${id}`);
      if (!TRANSITIONS[current.status].includes(to)) throw new IllegalTransitionError(current.status, to, String(id));
      const finished = FINISHED.has(to) ? at.toISOString() : current.finishedAt;
      this.db
        .prepare("UPDATE deployments SET status = ?, updated_at = ?, finished_at = ? WHERE id = ?")
        .run(to, at.toISOString(), finished, id);
      this.applyPatch(id, patch, at);
      if (!IN_FLIGHT.has(to)) this.db.prepare("DELETE FROM locks WHERE deployment_id = ?").run(id);
      return this.getDeployment(id) as Deployment;
    });
  }

  /** Updates fields that do not change the status (progress, the card's ts). */
  patch(id: number, patch: DeploymentPatch, at: Date): Deployment {
    return this.tx(() => {
      const current = this.getDeployment(id);
      if (!current) throw new DeploybotError(ErrorCode.NotFound, `no deployment #${id}`);
      this.applyPatch(id, patch, at);
      return this.getDeployment(id) as Deployment;
    });
  }

  private applyPatch(id: number, patch: DeploymentPatch, at: Date): void {
    const sets = ["updated_at = ?"];
    const values: unknown[] = [at.toISOString()];
    for (const [key, value] of Object.entries(patch) as Array<[keyof DeploymentPatch, unknown]>) {
      sets.push(`${COLUMN[key]} = ?`);
      values.push(JSON_COLUMNS.has(key) && value !== null ? JSON.stringify(value) : (value ?? null));
    }
    if (sets.length > 1) this.db.prepare(`UPDATE deployments SET ${sets.join(", ")} WHERE id = ?`).run(...values, id);
  }

  /** Deployments of a service in an environment, newest first. */
  history(service: string, environment: string, limit = 10): Deployment[] {
    const rows = this.db
      .prepare("SELECT * FROM deployments WHERE service = ? AND environment = ? ORDER BY id DESC LIMIT ?")
      .all(service, environment, limit) as DeploymentRow[];
    return rows.map(toDeployment);
  }

  /** Deployments in any of the given statuses, oldest first. */
  byStatus(statuses: Iterable<DeploymentStatus>): Deployment[] {
    const list = [...statuses];
    if (list.length === 0) return [];
    const rows = this.db
      .prepare(`SELECT * FROM deployments WHERE status IN (${list.map(() => "?").join(", ")}) ORDER BY id`)
      .all(...list) as DeploymentRow[];
    return rows.map(toDeployment);
  }

  /** Deploys that succeeded and whose rollout started at or after `since`, oldest first. */
  succeededSince(since: Date): Deployment[] {
    const rows = this.db
      .prepare(
        "SELECT * FROM deployments WHERE status = 'succeeded' AND kind = 'deploy' AND started_at >= ? ORDER BY id",
      )
      .all(since.toISOString()) as DeploymentRow[];
    return rows.map(toDeployment);
  }

  /** Takes the service/environment lock for a deployment; returns the current holder instead when it is taken. */
  acquireLock(service: string, environment: string, deploymentId: number, holder: string, at: Date): Lock | null {
    return this.tx(() => {
      const held = this.getLock(service, environment);
      if (held && held.deploymentId !== deploymentId) return held;
      this.db
        .prepare(
          "INSERT OR REPLACE INTO locks (service, environment, deployment_id, holder, since) VALUES (?, ?, ?, ?, ?)",
        )
        .run(service, environment, deploymentId, holder, at.toISOString());
      return null;
    });
  }

  getLock(service: string, environment: string): Lock | undefined {
    const row = this.db
      .prepare(
        "SELECT service, environment, deployment_id, holder, since FROM locks WHERE service = ? AND environment = ?",
      )
      .get(service, environment) as
      | { service: string; environment: string; deployment_id: number; holder: string; since: string }
      | undefined;
    return row
      ? {
          service: row.service,
          environment: row.environment,
          deploymentId: row.deployment_id,
          holder: row.holder,
          since: row.since,
        }
      : undefined;
  }

  releaseLock(deploymentId: number): void {
    this.db.prepare("DELETE FROM locks WHERE deployment_id = ?").run(deploymentId);
  }

  /** Records an approve or reject; the same user twice counts once (the first stands). Returns false if already recorded. */
  recordApproval(a: Approval): boolean {
    const info = this.db
      .prepare(
        "INSERT OR IGNORE INTO approvals (deployment_id, user, decision, group_name, roles, note, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run(a.deploymentId, a.user, a.decision, a.groupName, JSON.stringify(a.roles), a.note, a.at);
    return info.changes === 1;
  }

  approvals(deploymentId: number): Approval[] {
    const rows = this.db
      .prepare("SELECT * FROM approvals WHERE deployment_id = ? ORDER BY at, rowid")
      .all(deploymentId) as Array<{
      deployment_id: number;
      user: string;
      decision: "approve" | "reject";
      group_name: string | null;
      roles: string;
      note: string | null;
      at: string;
    }>;
    return rows.map((r) => ({
      deploymentId: r.deployment_id,
      user: r.user,
      decision: r.decision,
      groupName: r.group_name,
      roles: JSON.parse(r.roles) as string[],
      note: r.note,
      at: r.at,
    }));
  }

  /** Appends to the audit log (which refuses updates and deletes). */
  audit(entry: Omit<AuditEntry, "id" | "at" | "detail"> & { at: Date; detail?: Record<string, unknown> }): void {
    this.db
      .prepare(
        "INSERT INTO audit (at, actor, action, deployment_id, service, environment, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run(
        entry.at.toISOString(),
        entry.actor,
        entry.action,
        entry.deploymentId,
        entry.service,
        entry.environment,
        JSON.stringify(entry.detail ?? {}),
      );
  }

  auditLog(filter: { deploymentId?: number; limit?: number } = {}): AuditEntry[] {
    const where = filter.deploymentId === undefined ? "" : "WHERE deployment_id = ?";
    const args = filter.deploymentId === undefined ? [] : [filter.deploymentId];
    const rows = this.db
      .prepare(`SELECT * FROM audit ${where} ORDER BY id LIMIT ?`)
      .all(...args, filter.limit ?? 10_000) as Array<{
      id: number;
      at: string;
      actor: string;
      action: string;
      deployment_id: number | null;
      service: string | null;
      environment: string | null;
      detail: string;
    }>;
    return rows.map((r) => ({
      id: r.id,
      at: r.at,
      actor: r.actor,
      action: r.action,
      deploymentId: r.deployment_id,
      service: r.service,
      environment: r.environment,
      detail: JSON.parse(r.detail) as Record<string, unknown>,
    }));
  }

  /** The incident of one guardrail of one deployment (a breach episode and what was done about it). */
  getIncident(deploymentId: number, guardrail: string): Incident | undefined {
    const row = this.db
      .prepare("SELECT * FROM incidents WHERE deployment_id = ? AND guardrail = ?")
      .get(deploymentId, guardrail) as IncidentRow | undefined;
    return row ? toIncident(row) : undefined;
  }

  incidentById(id: number): Incident | undefined {
    const row = this.db.prepare("SELECT * FROM incidents WHERE id = ?").get(id) as IncidentRow | undefined;
    return row ? toIncident(row) : undefined;
  }

  /** Incidents in a status, oldest first. */
  incidentsByStatus(status: Incident["status"]): Incident[] {
    return (this.db.prepare("SELECT * FROM incidents WHERE status = ? ORDER BY id").all(status) as IncidentRow[]).map(
      toIncident,
    );
  }

  /** Open incidents of deployments of one service in one environment. */
  openIncidentsOf(service: string, environment: string): Incident[] {
    return (
      this.db
        .prepare(
          `SELECT i.* FROM incidents i JOIN deployments d ON d.id = i.deployment_id
           WHERE i.status = 'open' AND d.service = ? AND d.environment = ? ORDER BY i.id`,
        )
        .all(service, environment) as IncidentRow[]
    ).map(toIncident);
  }

  incidentsOf(deploymentId: number): Incident[] {
    return (
      this.db.prepare("SELECT * FROM incidents WHERE deployment_id = ? ORDER BY id").all(deploymentId) as IncidentRow[]
    ).map(toIncident);
  }

  /** Records a new breach; returns undefined when this guardrail of this deployment already has an incident. */
  openIncident(i: {
    deploymentId: number;
    guardrail: string;
    severity: string;
    at: Date;
    detail: IncidentDetail;
  }): Incident | undefined {
    const info = this.db
      .prepare(
        "INSERT OR IGNORE INTO incidents (deployment_id, guardrail, severity, status, first_seen, last_seen, detail) VALUES (?, ?, ?, 'open', ?, ?, ?)",
      )
      .run(i.deploymentId, i.guardrail, i.severity, i.at.toISOString(), i.at.toISOString(), JSON.stringify(i.detail));
    return info.changes === 1 ? this.incidentById(Number(info.lastInsertRowid)) : undefined;
  }

  /** Updates an incident's status, message, times and detail (merged). */
  updateIncident(
    id: number,
    change: {
      status?: Incident["status"];
      lastSeen?: Date;
      resolvedAt?: Date | null;
      channel?: string;
      ts?: string;
      detail?: Partial<IncidentDetail>;
    },
  ): Incident {
    return this.tx(() => {
      const cur = this.incidentById(id);
      if (!cur) throw new DeploybotError(ErrorCode.NotFound, `no incident #${id}`);
      this.db
        .prepare(
          "UPDATE incidents SET status = ?, last_seen = ?, resolved_at = ?, channel = ?, ts = ?, detail = ? WHERE id = ?",
        )
        .run(
          change.status ?? cur.status,
          change.lastSeen?.toISOString() ?? cur.lastSeen,
          change.resolvedAt === undefined ? cur.resolvedAt : (change.resolvedAt?.toISOString() ?? null),
          change.channel ?? cur.channel,
          change.ts ?? cur.ts,
          JSON.stringify({ ...cur.detail, ...change.detail }),
          id,
        );
      return this.incidentById(id) as Incident;
    });
  }

  getKv<T>(key: string): T | undefined {
    const row = this.db.prepare("SELECT value FROM kv WHERE key = ?").get(key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  setKv(key: string, value: unknown): void {
    this.db.prepare("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)").run(key, JSON.stringify(value));
  }
}
