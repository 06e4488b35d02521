import {
  type Deployment,
  type DeploymentEvent,
  type DeploymentKind,
  type DeploymentStatus,
  deploymentMachine,
  HOLDS_LOCK,
  SETTLED,
} from "../domain/deployment.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import type { SqlDriver, SqlValue } from "./driver.js";
import { json, placeholders } from "./rows.js";

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
  rolls_back: number | null;
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
    rollsBack: r.rolls_back,
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
  rollsBack?: number | null;
  previousVersion?: string | null;
  previousTaskDefinition?: string | null;
  taskDefinition?: string | null;
}

/** What deciding about a deployment in bulk needs (the overview, tick()): the rest is read for the few it picks. */
export interface DeploymentBrief {
  id: number;
  service: string;
  environment: string;
  status: DeploymentStatus;
  expiresAt: string | null;
  bakeEndsAt: string | null;
}

/** Fields an event (or a plain patch) may set along with it. */
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
const JSON_COLUMNS = new Set<keyof DeploymentPatch>(["decision", "approvalRule", "progress", "flags"]);

/** Deployments (deploys and rollbacks): created, moved only along the deployment machine, read back. */
export class DeploymentRepo {
  constructor(private readonly db: SqlDriver) {}

  async create(d: NewDeployment, at: Date): Promise<Deployment> {
    const now = at.toISOString();
    const row = await this.db.get<DeploymentRow>(
      `INSERT INTO deployments (kind, service, environment, version, task_definition, previous_version,
         previous_task_definition, requested_by, reason, flags, rolls_back, status, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'requested', ?, ?) RETURNING *`,
      [
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
        d.rollsBack ?? null,
        now,
        now,
      ],
    );
    return toDeployment(row as DeploymentRow);
  }

  async get(id: number): Promise<Deployment | undefined> {
    const row = await this.db.get<DeploymentRow>("SELECT * FROM deployments WHERE id = ?", [id]);
    return row ? toDeployment(row) : undefined;
  }

  /** The deployment, which must exist. */
  async must(id: number): Promise<Deployment> {
    const d = await this.get(id);
    if (!d) throw new DeploybotError(ErrorCode.NotFound, `no deployment #${id}`);
    return d;
  }

  /**
   * Applies an event of the deployment machine, with the fields it sets, in one transaction: an event that may not
   * happen in the current status throws IllegalTransitionError and writes nothing. Leaving the statuses that hold
   * the lock releases it; reaching a settled status stamps finishedAt.
   */
  async apply(id: number, event: DeploymentEvent, at: Date, patch: DeploymentPatch = {}): Promise<Deployment> {
    return this.db.tx(async () => {
      const row = await this.db.get<DeploymentRow>(`SELECT * FROM deployments WHERE id = ?${this.db.forUpdate}`, [id]);
      if (!row) throw new DeploybotError(ErrorCode.NotFound, `no deployment #${id}`);
      const to = deploymentMachine.next(row.status, event, `#${id}`);
      // Stamped when it settles and kept while a rollback ends it; cleared when it is watched again (rollback
      // abandoned: its version still runs), since it is not finished any more.
      const finished = SETTLED.has(to)
        ? (row.finished_at ?? at.toISOString())
        : to === "rolling_back"
          ? row.finished_at
          : null;
      await this.write(id, { ...patch }, at, [
        ["status", to],
        ["finished_at", finished],
      ]);
      if (!HOLDS_LOCK.has(to)) await this.db.run("DELETE FROM locks WHERE deployment_id = ?", [id]);
      return this.must(id);
    });
  }

  /** Updates fields that do not change the status (progress, the card's ts, the ECS deployment). */
  async patch(id: number, patch: DeploymentPatch, at: Date): Promise<Deployment> {
    const changed = await this.write(id, patch, at, []);
    if (changed === 0) throw new DeploybotError(ErrorCode.NotFound, `no deployment #${id}`);
    return this.must(id);
  }

  private write(id: number, patch: DeploymentPatch, at: Date, extra: Array<[string, SqlValue]>): Promise<number> {
    const sets = ["updated_at = ?"];
    const values: SqlValue[] = [at.toISOString()];
    for (const [column, value] of extra) {
      sets.push(`${column} = ?`);
      values.push(value);
    }
    for (const [key, value] of Object.entries(patch) as Array<[keyof DeploymentPatch, unknown]>) {
      if (value === undefined) continue;
      sets.push(`${COLUMN[key]} = ?`);
      values.push(JSON_COLUMNS.has(key) && value !== null ? JSON.stringify(value) : ((value as SqlValue) ?? null));
    }
    return this.db.run(`UPDATE deployments SET ${sets.join(", ")} WHERE id = ?`, [...values, id]);
  }

  /** Deployments of a service in an environment, newest first. */
  async history(service: string, environment: string, limit = 10): Promise<Deployment[]> {
    const rows = await this.db.all<DeploymentRow>(
      "SELECT * FROM deployments WHERE service = ? AND environment = ? ORDER BY id DESC LIMIT ?",
      [service, environment, limit],
    );
    return rows.map(toDeployment);
  }

  /** Deployments in any of the given statuses, oldest first. */
  async byStatus(statuses: Iterable<DeploymentStatus>, kind?: DeploymentKind): Promise<Deployment[]> {
    const list = [...statuses];
    if (list.length === 0) return [];
    const rows = await this.db.all<DeploymentRow>(
      `SELECT * FROM deployments WHERE status IN (${placeholders(list.length)})${kind ? " AND kind = ?" : ""} ORDER BY id`,
      kind ? [...list, kind] : list,
    );
    return rows.map(toDeployment);
  }

  /**
   * Deployments in any of the given statuses, oldest first, as briefly as deciding what to do with them needs: a
   * full row costs four JSON columns to read, and a thousand in flight add up.
   */
  async briefs(statuses: Iterable<DeploymentStatus>): Promise<DeploymentBrief[]> {
    const list = [...statuses];
    if (list.length === 0) return [];
    const rows = await this.db.all<
      Pick<DeploymentRow, "id" | "service" | "environment" | "status" | "expires_at" | "progress">
    >(
      `SELECT id, service, environment, status, expires_at, progress FROM deployments
       WHERE status IN (${placeholders(list.length)}) ORDER BY id`,
      list,
    );
    return rows.map((r) => ({
      id: r.id,
      service: r.service,
      environment: r.environment,
      status: r.status,
      expiresAt: r.expires_at,
      bakeEndsAt: json<Deployment["progress"]>(r.progress)?.bakeEndsAt ?? null,
    }));
  }

  /** These deployments (those that exist), oldest first. */
  async getMany(ids: readonly number[]): Promise<Deployment[]> {
    const out: Deployment[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const rows = await this.db.all<DeploymentRow>(
        `SELECT * FROM deployments WHERE id IN (${placeholders(chunk.length)}) ORDER BY id`,
        chunk,
      );
      out.push(...rows.map(toDeployment));
    }
    return out;
  }

  /** The newest deployment of the target in one of `statuses`, if any. */
  async latestOf(
    service: string,
    environment: string,
    statuses: Iterable<DeploymentStatus>,
    kind?: DeploymentKind,
  ): Promise<Deployment | undefined> {
    const list = [...statuses];
    if (list.length === 0) return undefined;
    // MAX(id) over the (service, environment, status) index: ORDER BY id DESC would walk the target's whole history.
    const row = await this.db.get<DeploymentRow>(
      `SELECT * FROM deployments WHERE id = (SELECT MAX(id) FROM deployments
       WHERE service = ? AND environment = ? AND status IN (${placeholders(list.length)})${kind ? " AND kind = ?" : ""})`,
      [service, environment, ...list, ...(kind ? [kind] : [])],
    );
    return row ? toDeployment(row) : undefined;
  }

  /** Deploys that succeeded and whose rollout started at or after `since`, oldest first. */
  async succeededSince(since: Date): Promise<Deployment[]> {
    const rows = await this.db.all<DeploymentRow>(
      "SELECT * FROM deployments WHERE status = 'succeeded' AND kind = 'deploy' AND started_at >= ? ORDER BY id",
      [since.toISOString()],
    );
    return rows.map(toDeployment);
  }

  /** How many deployments there are by kind, status and whether deploybot asked for them itself (metrics). */
  async counts(): Promise<Array<{ kind: string; status: string; automatic: boolean; n: number }>> {
    const rows = await this.db.all<{ kind: string; status: string; automatic: number; n: number }>(
      `SELECT kind, status, CASE WHEN requested_by = 'deploybot' THEN 1 ELSE 0 END AS automatic, COUNT(*) AS n
       FROM deployments GROUP BY kind, status, CASE WHEN requested_by = 'deploybot' THEN 1 ELSE 0 END`,
    );
    return rows.map((r) => ({ kind: r.kind, status: r.status, automatic: Number(r.automatic) === 1, n: Number(r.n) }));
  }

  /** The rollbacks recorded for a deploy, newest first. */
  async rollbacksOf(deployId: number): Promise<Deployment[]> {
    const rows = await this.db.all<DeploymentRow>("SELECT * FROM deployments WHERE rolls_back = ? ORDER BY id DESC", [
      deployId,
    ]);
    return rows.map(toDeployment);
  }
}
