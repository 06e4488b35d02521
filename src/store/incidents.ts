import {
  ACTIVE,
  type GuardrailAction,
  type Incident,
  type IncidentDetail,
  type IncidentEvent,
  type IncidentState,
  incidentMachine,
} from "../domain/incident.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import type { SqlDriver, SqlValue } from "./driver.js";
import { placeholders } from "./rows.js";

interface IncidentRow {
  id: number;
  deployment_id: number;
  guardrail: string;
  severity: Incident["severity"];
  action: GuardrailAction;
  shadow: number;
  state: IncidentState;
  episode: number;
  first_seen: string;
  last_seen: string;
  resolved_at: string | null;
  rollback_at: string | null;
  rollback_id: number | null;
  overridden_by: string | null;
  acknowledged_by: string | null;
  page_key: string | null;
  note: string | null;
  channel: string | null;
  ts: string | null;
  detail: string;
}

const toIncident = (r: IncidentRow): Incident => ({
  id: r.id,
  deploymentId: r.deployment_id,
  guardrail: r.guardrail,
  severity: r.severity,
  action: r.action,
  shadow: r.shadow === 1,
  state: r.state,
  episode: r.episode,
  firstSeen: r.first_seen,
  lastSeen: r.last_seen,
  resolvedAt: r.resolved_at,
  rollbackAt: r.rollback_at,
  rollbackId: r.rollback_id,
  overriddenBy: r.overridden_by,
  acknowledgedBy: r.acknowledged_by,
  pageKey: r.page_key,
  note: r.note,
  channel: r.channel,
  ts: r.ts,
  detail: JSON.parse(r.detail) as IncidentDetail,
});

export interface NewIncident {
  deploymentId: number;
  guardrail: string;
  severity: Incident["severity"];
  action: GuardrailAction;
  shadow: boolean;
  state: "open" | "rollback_pending";
  at: Date;
  rollbackAt: string | null;
  pageKey: string | null;
  detail: IncidentDetail;
}

/** Fields that may change with an event, or on their own (lastSeen, the message's ts, the latest evaluation). */
export type IncidentPatch = Partial<
  Pick<
    Incident,
    | "lastSeen"
    | "resolvedAt"
    | "rollbackAt"
    | "rollbackId"
    | "overriddenBy"
    | "acknowledgedBy"
    | "note"
    | "channel"
    | "ts"
    | "detail"
    | "episode"
  >
>;

const COLUMN: Record<keyof IncidentPatch, string> = {
  lastSeen: "last_seen",
  resolvedAt: "resolved_at",
  rollbackAt: "rollback_at",
  rollbackId: "rollback_id",
  overriddenBy: "overridden_by",
  acknowledgedBy: "acknowledged_by",
  note: "note",
  channel: "channel",
  ts: "ts",
  detail: "detail",
  episode: "episode",
};

const ACTIVE_LIST = [...ACTIVE];

/** Guardrail incidents: opened once per deployment and guardrail, moved only along the incident machine. */
export class IncidentRepo {
  constructor(private readonly db: SqlDriver) {}

  /** Records a new breach; undefined when this guardrail of this deployment already has an incident. */
  async open(i: NewIncident): Promise<Incident | undefined> {
    const at = i.at.toISOString();
    const row = await this.db.get<IncidentRow>(
      `INSERT INTO incidents (deployment_id, guardrail, severity, action, shadow, state, episode, first_seen, last_seen,
         rollback_at, page_key, detail)
       VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
       ON CONFLICT (deployment_id, guardrail) DO NOTHING RETURNING *`,
      [
        i.deploymentId,
        i.guardrail,
        i.severity,
        i.action,
        i.shadow ? 1 : 0,
        i.state,
        at,
        at,
        i.rollbackAt,
        i.pageKey,
        JSON.stringify(i.detail),
      ],
    );
    return row ? toIncident(row) : undefined;
  }

  async byId(id: number): Promise<Incident | undefined> {
    const row = await this.db.get<IncidentRow>("SELECT * FROM incidents WHERE id = ?", [id]);
    return row ? toIncident(row) : undefined;
  }

  async must(id: number): Promise<Incident> {
    const i = await this.byId(id);
    if (!i) throw new DeploybotError(ErrorCode.NotFound, `no incident #${id}`);
    return i;
  }

  /** The incident of one guardrail of one deployment. */
  async get(deploymentId: number, guardrail: string): Promise<Incident | undefined> {
    const row = await this.db.get<IncidentRow>("SELECT * FROM incidents WHERE deployment_id = ? AND guardrail = ?", [
      deploymentId,
      guardrail,
    ]);
    return row ? toIncident(row) : undefined;
  }

  /** Every incident of these deployments (one query for a whole monitor cycle). */
  async ofDeployments(ids: number[]): Promise<Incident[]> {
    if (ids.length === 0) return [];
    const out: Incident[] = [];
    // SQLite binds at most 32,766 parameters; chunks keep any number of watched deploys in reach.
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const rows = await this.db.all<IncidentRow>(
        `SELECT * FROM incidents WHERE deployment_id IN (${placeholders(chunk.length)}) ORDER BY id`,
        chunk,
      );
      out.push(...rows.map(toIncident));
    }
    return out;
  }

  async of(deploymentId: number): Promise<Incident[]> {
    return this.ofDeployments([deploymentId]);
  }

  /** Incidents in any of these states, oldest first. */
  async inStates(states: Iterable<IncidentState>): Promise<Incident[]> {
    const list = [...states];
    if (list.length === 0) return [];
    const rows = await this.db.all<IncidentRow>(
      `SELECT * FROM incidents WHERE state IN (${placeholders(list.length)}) ORDER BY id`,
      list,
    );
    return rows.map(toIncident);
  }

  /** How many incidents there are by severity and state (metrics). */
  async counts(): Promise<Array<{ severity: string; state: string; n: number }>> {
    const rows = await this.db.all<{ severity: string; state: string; n: number }>(
      "SELECT severity, state, COUNT(*) AS n FROM incidents GROUP BY severity, state",
    );
    return rows.map((r) => ({ severity: r.severity, state: r.state, n: Number(r.n) }));
  }

  /** Unresolved incidents of one service in one environment. */
  async activeOf(service: string, environment: string): Promise<Incident[]> {
    // CROSS JOIN (join condition in WHERE, as PostgreSQL requires) keeps the incidents (few active ones, by the state
    // index) as SQLite's outer loop: its planner would otherwise start from the target's deployments, its whole history.
    const rows = await this.db.all<IncidentRow>(
      `SELECT i.* FROM incidents i CROSS JOIN deployments d
       WHERE d.id = i.deployment_id AND i.state IN (${placeholders(ACTIVE_LIST.length)}) AND d.service = ? AND d.environment = ? ORDER BY i.id`,
      [...ACTIVE_LIST, service, environment],
    );
    return rows.map(toIncident);
  }

  /** Every unresolved incident with the service and environment of its deployment (one query for an overview). */
  async activeByTarget(): Promise<Array<{ service: string; environment: string; incident: Incident }>> {
    const rows = await this.db.all<IncidentRow & { target_service: string; target_environment: string }>(
      `SELECT i.*, d.service AS target_service, d.environment AS target_environment
       FROM incidents i CROSS JOIN deployments d
       WHERE d.id = i.deployment_id AND i.state IN (${placeholders(ACTIVE_LIST.length)}) ORDER BY i.id`,
      ACTIVE_LIST,
    );
    return rows.map((r) => ({ service: r.target_service, environment: r.target_environment, incident: toIncident(r) }));
  }

  /** Applies an event of the incident machine in one transaction; an event not allowed now throws and writes nothing. */
  async apply(id: number, event: IncidentEvent, patch: IncidentPatch = {}): Promise<Incident> {
    return this.db.tx(async () => {
      const row = await this.db.get<IncidentRow>(`SELECT * FROM incidents WHERE id = ?${this.db.forUpdate}`, [id]);
      if (!row) throw new DeploybotError(ErrorCode.NotFound, `no incident #${id}`);
      const to = incidentMachine.next(row.state, event, `#${id}`);
      await this.write(id, patch, [["state", to]]);
      return this.must(id);
    });
  }

  /** Changes fields that are not the state. */
  async patch(id: number, patch: IncidentPatch): Promise<Incident> {
    await this.write(id, patch, []);
    return this.must(id);
  }

  private async write(id: number, patch: IncidentPatch, extra: Array<[string, SqlValue]>): Promise<void> {
    const sets: string[] = [];
    const values: SqlValue[] = [];
    for (const [column, value] of extra) {
      sets.push(`${column} = ?`);
      values.push(value);
    }
    for (const [key, value] of Object.entries(patch) as Array<[keyof IncidentPatch, unknown]>) {
      if (value === undefined) continue;
      sets.push(`${COLUMN[key]} = ?`);
      values.push(key === "detail" ? JSON.stringify(value) : ((value as SqlValue) ?? null));
    }
    if (sets.length === 0) return;
    await this.db.run(`UPDATE incidents SET ${sets.join(", ")} WHERE id = ?`, [...values, id]);
  }
}
