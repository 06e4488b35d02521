import type { Effect, EffectKind, Intent, IntentStatus } from "../domain/effects.js";
import type { SqlDriver } from "./driver.js";
import { json } from "./rows.js";

interface IntentRow {
  id: number;
  key: string;
  kind: EffectKind;
  lane: string;
  payload: string;
  status: IntentStatus;
  attempts: number;
  next_at: string;
  last_error: string | null;
  depends_on: number | null;
  deployment_id: number | null;
  incident_id: number | null;
  created_at: string;
  done_at: string | null;
  result: string | null;
}

const toIntent = (r: IntentRow): Intent => ({
  id: r.id,
  key: r.key,
  effect: JSON.parse(r.payload) as Effect,
  lane: r.lane,
  status: r.status,
  attempts: r.attempts,
  nextAt: r.next_at,
  lastError: r.last_error,
  dependsOn: r.depends_on,
  deploymentId: r.deployment_id,
  incidentId: r.incident_id,
  createdAt: r.created_at,
  doneAt: r.done_at,
  result: json(r.result),
});

export interface NewIntent {
  key: string;
  effect: Effect;
  lane: string;
  at: Date;
  dependsOn?: number | null;
  deploymentId?: number | null;
  incidentId?: number | null;
}

/** The outbox: intents written with the state change that needs them, and their delivery. */
export class IntentRepo {
  constructor(private readonly db: SqlDriver) {}

  /** Records an intent; one with the same key already recorded is returned instead (recording is idempotent). */
  async add(i: NewIntent): Promise<Intent> {
    const at = i.at.toISOString();
    const row = await this.db.get<IntentRow>(
      `INSERT INTO intents (key, kind, lane, payload, status, attempts, next_at, depends_on, deployment_id, incident_id, created_at)
       VALUES (?, ?, ?, ?, 'open', 0, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING *`,
      [
        i.key,
        i.effect.kind,
        i.lane,
        JSON.stringify(i.effect),
        at,
        i.dependsOn ?? null,
        i.deploymentId ?? null,
        i.incidentId ?? null,
        at,
      ],
    );
    return row ? toIntent(row) : (this.byKey(i.key) as Promise<Intent>);
  }

  async byKey(key: string): Promise<Intent | undefined> {
    const row = await this.db.get<IntentRow>("SELECT * FROM intents WHERE key = ?", [key]);
    return row ? toIntent(row) : undefined;
  }

  async byId(id: number): Promise<Intent | undefined> {
    const row = await this.db.get<IntentRow>("SELECT * FROM intents WHERE id = ?", [id]);
    return row ? toIntent(row) : undefined;
  }

  /**
   * The newest open intent of this kind about this deployment or incident, if any, locked for the rest of the
   * transaction where the dialect locks rows (so the reconciler cannot pick it up between this read and the commit).
   */
  async openOf(
    kind: EffectKind,
    subject: { deploymentId: number } | { incidentId: number },
  ): Promise<Intent | undefined> {
    const [column, id] =
      "deploymentId" in subject ? ["deployment_id", subject.deploymentId] : ["incident_id", subject.incidentId];
    const row = await this.db.get<IntentRow>(
      `SELECT * FROM intents WHERE ${column} = ? AND kind = ? AND status = 'open' ORDER BY id DESC LIMIT 1${this.db.forUpdate}`,
      [id, kind],
    );
    return row ? toIntent(row) : undefined;
  }

  /** Intents about a deployment (or an incident), oldest first. */
  async about(subject: { deploymentId: number } | { incidentId: number }): Promise<Intent[]> {
    const [column, id] =
      "deploymentId" in subject ? ["deployment_id", subject.deploymentId] : ["incident_id", subject.incidentId];
    const rows = await this.db.all<IntentRow>(`SELECT * FROM intents WHERE ${column} = ? ORDER BY id`, [id]);
    return rows.map(toIntent);
  }

  /** Open intents due by `now` that head their lane (nothing older in the lane is still open), oldest first. */
  async due(now: Date, limit = 100): Promise<Intent[]> {
    const rows = await this.db.all<IntentRow>(
      `SELECT i.* FROM intents i
       WHERE i.status = 'open' AND i.next_at <= ?
         AND NOT EXISTS (SELECT 1 FROM intents e WHERE e.status = 'open' AND e.lane = i.lane AND e.id < i.id)
       ORDER BY i.id LIMIT ?`,
      [now.toISOString(), limit],
    );
    return rows.map(toIntent);
  }

  /** Open intents, oldest first (what is still to be done, for /status and the console). */
  async open(): Promise<Intent[]> {
    const rows = await this.db.all<IntentRow>("SELECT * FROM intents WHERE status = 'open' ORDER BY id");
    return rows.map(toIntent);
  }

  /** Counts an attempt before the call is made: after a crash, attempts > 0 means "the world may already have it". */
  async attempt(id: number): Promise<void> {
    await this.db.run("UPDATE intents SET attempts = attempts + 1 WHERE id = ? AND status = 'open'", [id]);
  }

  async done(id: number, at: Date, result: Record<string, unknown> = {}): Promise<void> {
    await this.db.run(
      "UPDATE intents SET status = 'done', done_at = ?, result = ?, last_error = NULL WHERE id = ? AND status = 'open'",
      [at.toISOString(), JSON.stringify(result), id],
    );
  }

  async retry(id: number, nextAt: Date, error: string): Promise<void> {
    await this.db.run("UPDATE intents SET next_at = ?, last_error = ? WHERE id = ? AND status = 'open'", [
      nextAt.toISOString(),
      error.slice(0, 2000),
      id,
    ]);
  }

  async abandon(id: number, at: Date, reason: string): Promise<void> {
    await this.db.run(
      "UPDATE intents SET status = 'abandoned', done_at = ?, result = ?, last_error = ? WHERE id = ? AND status = 'open'",
      [at.toISOString(), JSON.stringify({ abandoned: reason }), reason.slice(0, 2000), id],
    );
  }

  /** The earliest next attempt of any open intent (the console runs the reconciler when time reaches it). */
  async nextDueAt(): Promise<Date | undefined> {
    const row = await this.db.get<{ at: string | null }>(
      "SELECT MIN(next_at) AS at FROM intents WHERE status = 'open'",
    );
    return row?.at ? new Date(row.at) : undefined;
  }
}
