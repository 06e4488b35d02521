import type { Approval, AuditEntry, Lock } from "../domain/records.js";
import type { SqlDriver, SqlValue } from "./driver.js";

export type { Approval, AuditEntry, Lock };

interface LockRow {
  service: string;
  environment: string;
  deployment_id: number;
  holder: string;
  since: string;
}

const toLock = (row: LockRow): Lock => ({
  service: row.service,
  environment: row.environment,
  deploymentId: row.deployment_id,
  holder: row.holder,
  since: row.since,
});

/** One deployment per service and environment at a time. */
export class LockRepo {
  constructor(private readonly db: SqlDriver) {}

  /** Takes the lock for a deployment; returns the current holder instead when another holds it. */
  async acquire(
    service: string,
    environment: string,
    deploymentId: number,
    holder: string,
    at: Date,
  ): Promise<Lock | null> {
    return this.db.tx(async () => {
      const held = await this.get(service, environment);
      if (held && held.deploymentId !== deploymentId) return held;
      await this.db.run(
        `INSERT INTO locks (service, environment, deployment_id, holder, since) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (service, environment) DO UPDATE SET deployment_id = excluded.deployment_id,
           holder = excluded.holder, since = excluded.since`,
        [service, environment, deploymentId, holder, at.toISOString()],
      );
      return null;
    });
  }

  async get(service: string, environment: string): Promise<Lock | undefined> {
    const row = await this.db.get<LockRow>(
      "SELECT service, environment, deployment_id, holder, since FROM locks WHERE service = ? AND environment = ?",
      [service, environment],
    );
    return row ? toLock(row) : undefined;
  }

  /** Every lock held now (one per target at most). */
  async all(): Promise<Lock[]> {
    const rows = await this.db.all<LockRow>("SELECT service, environment, deployment_id, holder, since FROM locks");
    return rows.map(toLock);
  }

  async release(deploymentId: number): Promise<void> {
    await this.db.run("DELETE FROM locks WHERE deployment_id = ?", [deploymentId]);
  }
}

/** Approvals and rejections, one per person and deployment (the first stands). */
export class ApprovalRepo {
  constructor(private readonly db: SqlDriver) {}

  /** Records an approve or reject; false when this person already decided on this deployment. */
  async record(a: Approval): Promise<boolean> {
    const changes = await this.db.run(
      `INSERT INTO approvals (deployment_id, "user", decision, group_name, roles, note, at, seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM approvals))
       ON CONFLICT (deployment_id, "user") DO NOTHING`,
      [a.deploymentId, a.user, a.decision, a.groupName, JSON.stringify(a.roles), a.note, a.at],
    );
    return changes === 1;
  }

  async of(deploymentId: number): Promise<Approval[]> {
    const rows = await this.db.all<{
      deployment_id: number;
      user: string;
      decision: "approve" | "reject";
      group_name: string | null;
      roles: string;
      note: string | null;
      at: string;
    }>("SELECT * FROM approvals WHERE deployment_id = ? ORDER BY at, seq", [deploymentId]);
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
}

/** The append-only audit log (the table refuses UPDATE and DELETE). */
export class AuditRepo {
  constructor(private readonly db: SqlDriver) {}

  async append(entry: Omit<AuditEntry, "id" | "at" | "detail"> & { at: Date; detail?: Record<string, unknown> }) {
    await this.db.run(
      "INSERT INTO audit (at, actor, action, deployment_id, service, environment, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
      [
        entry.at.toISOString(),
        entry.actor,
        entry.action,
        entry.deploymentId,
        entry.service,
        entry.environment,
        JSON.stringify(entry.detail ?? {}),
      ],
    );
  }

  async list(filter: { deploymentId?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    const where = filter.deploymentId === undefined ? "" : "WHERE deployment_id = ?";
    const args = filter.deploymentId === undefined ? [] : [filter.deploymentId];
    const rows = await this.db.all<{
      id: number;
      at: string;
      actor: string;
      action: string;
      deployment_id: number | null;
      service: string | null;
      environment: string | null;
      detail: string;
    }>(`SELECT * FROM audit ${where} ORDER BY id LIMIT ?`, [...args, filter.limit ?? 10_000]);
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
}

/** Small JSON values by key (pre-deploy baselines). */
export class KvRepo {
  constructor(private readonly db: SqlDriver) {}

  async get<T>(key: string): Promise<T | undefined> {
    const row = await this.db.get<{ value: string }>("SELECT value FROM kv WHERE key = ?", [key]);
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  async set(key: string, value: unknown): Promise<void> {
    await this.db.run(
      "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      [key, JSON.stringify(value)],
    );
  }
}

const ROWS_PER_STATEMENT = 100;
const upsertChecks = (rows: number) =>
  `INSERT INTO guardrail_checks (deployment_id, guardrail, verdicts, last_status, last_at, last_conclusive_at)
   VALUES ${Array(rows).fill("(?, ?, ?, ?, ?, ?)").join(", ")}
   ON CONFLICT (deployment_id, guardrail) DO UPDATE SET verdicts = guardrail_checks.verdicts + excluded.verdicts,
     last_status = excluded.last_status, last_at = excluded.last_at,
     last_conclusive_at = COALESCE(excluded.last_conclusive_at, guardrail_checks.last_conclusive_at)`;
const UPSERT_CHECKS_MANY = upsertChecks(ROWS_PER_STATEMENT);
const UPSERT_CHECKS_ONE = upsertChecks(1);

type Verdict = { deploymentId: number; guardrail: string; status: string };
/** One row of guardrail_checks: only "ok" and "breaching" are conclusive (count, and move last_conclusive_at). */
function checkRow(v: Verdict, when: string): SqlValue[] {
  const conclusive = v.status === "ok" || v.status === "breaching";
  return [v.deploymentId, v.guardrail, conclusive ? 1 : 0, v.status, when, conclusive ? when : null];
}

/** Per deployment and guardrail: how many conclusive verdicts the monitor reached, and the latest. */
export class GuardrailCheckRepo {
  constructor(private readonly db: SqlDriver) {}

  async record(deploymentId: number, guardrail: string, status: string, at: Date): Promise<void> {
    await this.db.run(UPSERT_CHECKS_ONE, checkRow({ deploymentId, guardrail, status }, at.toISOString()));
  }

  /**
   * Records many verdicts (of distinct deployment and guardrail pairs) in one transaction, ROWS_PER_STATEMENT to an
   * INSERT: a commit or a statement each would cost more than the verdicts themselves.
   */
  async recordMany(verdicts: ReadonlyArray<Verdict>, at: Date): Promise<void> {
    if (verdicts.length === 0) return;
    const when = at.toISOString();
    const row = (v: Verdict) => checkRow(v, when);
    await this.db.tx(async () => {
      let i = 0;
      // Full statements of ROWS_PER_STATEMENT rows, then one row at a time: two statements to prepare, ever.
      for (; i + ROWS_PER_STATEMENT <= verdicts.length; i += ROWS_PER_STATEMENT)
        await this.db.run(UPSERT_CHECKS_MANY, verdicts.slice(i, i + ROWS_PER_STATEMENT).flatMap(row));
      for (; i < verdicts.length; i++) await this.db.run(UPSERT_CHECKS_ONE, row(verdicts[i] as Verdict));
    });
  }

  /** Guardrail name → conclusive verdicts so far, and when the last one was reached. */
  async of(deploymentId: number): Promise<Map<string, { verdicts: number; lastConclusiveAt: string | null }>> {
    const rows = await this.db.all<{ guardrail: string; verdicts: number; last_conclusive_at: string | null }>(
      "SELECT guardrail, verdicts, last_conclusive_at FROM guardrail_checks WHERE deployment_id = ?",
      [deploymentId],
    );
    return new Map(rows.map((r) => [r.guardrail, { verdicts: r.verdicts, lastConclusiveAt: r.last_conclusive_at }]));
  }

  /** Guardrail name → the last verdict (ok, breaching, inconclusive) and when, and when the last conclusive one was. */
  async latest(
    deploymentId: number,
  ): Promise<Map<string, { lastStatus: string; lastAt: string; lastConclusiveAt: string | null }>> {
    const rows = await this.db.all<{
      guardrail: string;
      last_status: string;
      last_at: string;
      last_conclusive_at: string | null;
    }>("SELECT guardrail, last_status, last_at, last_conclusive_at FROM guardrail_checks WHERE deployment_id = ?", [
      deploymentId,
    ]);
    return new Map(
      rows.map((r) => [
        r.guardrail,
        { lastStatus: r.last_status, lastAt: r.last_at, lastConclusiveAt: r.last_conclusive_at },
      ]),
    );
  }
}

const PRUNE_EVERY_MS = 10_000;

/** Slack requests already handled, so a replayed one acts once. */
export class SeenRequestRepo {
  /** When keys were last dropped: at most once per PRUNE_EVERY_MS, not in every request's path to its ack. */
  private prunedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly db: SqlDriver) {}

  /**
   * True the first time a key is seen; false for a replay. Keys older than `forgetBefore` are dropped every few
   * seconds (one kept a little longer only refuses a replay older than the window, which Slack's signature check
   * already refuses).
   */
  async firstSeen(key: string, at: Date, forgetBefore: Date): Promise<boolean> {
    if (at.getTime() - this.prunedAt >= PRUNE_EVERY_MS || at.getTime() < this.prunedAt) {
      await this.db.run("DELETE FROM seen_requests WHERE at < ?", [forgetBefore.toISOString()]);
      this.prunedAt = at.getTime();
    }
    const changes = await this.db.run(
      "INSERT INTO seen_requests (key, at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
      [key, at.toISOString()],
    );
    return changes === 1;
  }
}
