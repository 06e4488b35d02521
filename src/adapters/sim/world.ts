import { existsSync } from "node:fs";
import Database from "better-sqlite3";
import type { Clock } from "../../clock.js";
import type { Config } from "../../config/schema.js";
import { DeploybotError, ErrorCode } from "../../errors.js";
import type { TaskDefinition } from "../../ports.js";
import { completesAfter, ROLLBACK_MS, runningAfter, type SimDeployment, TASK_START_MS, trafficOf } from "./rollout.js";

/** The outside systems the simulated world answers for, as `:throttle`, `:down` and `:crash-after` name them. */
export type SimApi = "ecs" | "cloudwatch" | "elbv2" | "pagerduty" | "slack";
/** The systems `:down` can take down. */
export type SimSystem = "pagerduty" | "slack" | "cloudwatch";

/** What the simulated adapters report as they are called: the console prints these as `aws` and `page` lines. */
export type SimEvent =
  | {
      kind: "aws";
      api: "ecs" | "cloudwatch" | "elbv2";
      op: string;
      input: Record<string, unknown>;
      /** Set when the simulated system refused the call (ThrottlingException, Throttling, InternalServiceError). */
      error?: string;
    }
  | {
      kind: "page";
      action: "trigger" | "acknowledge" | "resolve";
      dedupKey: string;
      severity: string;
      summary: string;
      /** PagerDuty accepted the event but it changed nothing (an alert already open, or none to act on). */
      deduplicated?: boolean;
    };

/** A refusal by a simulated system: what the console prints as `error`, and what the caller sees. */
export interface SimRefusal {
  kind: "throttled" | "down";
  /** The vendor's code: ThrottlingException, Throttling, InternalServiceError, ECONNRESET, ratelimited, service_unavailable. */
  code: string;
  /** Until when the system is down (ISO), for `down`. */
  until?: string;
}

interface SimService {
  region: string;
  cluster: string;
  service: string;
  container: string;
  taskDefinitionArn: string;
  /** What the service ran before its oldest recorded deployment. */
  initialTaskDefinitionArn: string;
  desiredCount: number;
  /** The service's own deployment settings that UpdateService keeps (ECS's defaults). */
  maximumPercent: number;
  minimumHealthyPercent: number;
  /** Newest first, at most 20. */
  deployments: SimDeployment[];
}

/** An event the simulated PagerDuty accepted. */
export interface SimPage {
  at: string;
  action: "trigger" | "acknowledge" | "resolve";
  dedupKey: string;
  severity: string;
  summary: string;
  /** Accepted but changed nothing: a trigger of an open alert, an acknowledge or resolve with nothing to act on. */
  deduplicated: boolean;
  /** The simulated incident the event opened or acted on. */
  incident?: number;
}

/** PagerDuty's state of one dedup key. */
export interface SimAlert {
  status: "triggered" | "acknowledged" | "resolved";
  incident: number;
  summary: string;
  since: string;
}

/** Faults set by the console's directives; they live in the world, so a restarted console still has them. */
interface Faults {
  /** Calls left to throttle, by `api:op`. */
  throttle: Record<string, number>;
  /** Until when (ISO) a system fails every call. */
  down: Partial<Record<SimSystem, string>>;
  /** `api:op` calls after which the bot dies, once each. */
  crashAfter: string[];
  /** How long after its period ends a CloudWatch datapoint is published. */
  lagMs: number;
}

interface WorldState {
  services: Record<string, SimService>;
  taskDefinitions: Record<string, Omit<TaskDefinition, "raw">>;
  failNext: string[];
  /** `:metric` changes by ECS service key, task definition and metric name, in time order. */
  metrics: Record<string, Record<string, Record<string, Array<{ at: string; value: number }>>>>;
  onCall: string | null;
  pagerdutyReachable: boolean;
  pagerduty: { alerts: Record<string, SimAlert>; events: SimPage[]; nextIncident: number };
  faults: Faults;
  clock: string;
  nextId: number;
}

/** A message the Slack-like server holds; kept in the world file so a restarted console can still update it. */
export interface SimSlackMessage {
  channel: string;
  channelId: string;
  ts: string;
  text: string;
  blocks: unknown[];
  threadTs?: string;
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
  /** Set for ephemeral messages: only this user sees them. */
  ephemeralFor?: string;
}

export interface SimWorldOptions {
  /** The world's own SQLite file, e.g. simFileFor(dbFile); ":memory:" (the default) keeps it in memory. */
  file?: string;
  /** What "the bot dies" means right after a `:crash-after` call returns; by default the world kills itself. */
  onCrash?: () => void;
}

export const SIM_ACCOUNT = "123456789012";
const MAX_PAGES = 1000;
const MAX_SLACK_MESSAGES = 5000;

/** The world file next to a bot's db: `<dbFile>.sim`, or in memory for an in-memory db. */
export function simFileFor(dbFile: string): string {
  return dbFile === ":memory:" ? ":memory:" : `${dbFile}.sim`;
}

function openWorldDb(file: string): Database.Database {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 5000");
  db.exec(`
    CREATE TABLE IF NOT EXISTS world (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS slack_messages (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      channel_id TEXT NOT NULL,
      ts TEXT NOT NULL,
      message TEXT NOT NULL,
      UNIQUE (channel_id, ts)
    );`);
  return db;
}

/**
 * The simulated AWS, PagerDuty and Slack world behind the console and the scenario tests: ECS services,
 * deployments and task definitions, metric values per version, PagerDuty alerts, who is on call, Slack's
 * messages and the faults the console injected. It is outside the bot: it lives in its own SQLite file,
 * written synchronously at every accepted call, so a bot that dies mid-call never undoes what the world did.
 */
export class SimWorld {
  readonly file: string;
  private state: WorldState;
  private listeners: Array<(e: SimEvent) => void> = [];
  private readonly db: Database.Database;
  private readonly writeState: Database.Statement;
  /** PRAGMA data_version when the state was last read: it moves when another connection writes the file. */
  private seenVersion = -1;
  private readonly resumedClock: string | undefined;
  private readonly onCrash: (() => void) | undefined;
  private killed = false;

  constructor(
    readonly config: Config,
    readonly clock: Clock,
    options: SimWorldOptions = {},
  ) {
    this.file = options.file ?? ":memory:";
    this.onCrash = options.onCrash;
    this.db = openWorldDb(this.file);
    this.writeState = this.db.prepare(
      "INSERT INTO world (key, value) VALUES ('state', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
    const saved = this.load();
    this.resumedClock = saved?.clock;
    this.state = saved ?? this.fresh(config.simulation.oncall ?? null);
    this.save();
  }

  /** The simulated time a world file was last written at; undefined when there is no such file (or no world in it). */
  static savedClock(file: string): string | undefined {
    if (file === ":memory:" || !existsSync(file)) return undefined;
    // Read-write, not readonly: after a kill -9 the file may still have a WAL that only a writer may recover.
    const db = new Database(file, { fileMustExist: true });
    try {
      const row = db.prepare("SELECT value FROM world WHERE key = 'state'").get() as { value: string } | undefined;
      return row ? (JSON.parse(row.value) as WorldState).clock : undefined;
    } catch {
      return undefined;
    } finally {
      db.close();
    }
  }

  /** The simulated time the world was last saved at, when it was resumed from a file. */
  get savedClock(): Date | undefined {
    return this.resumedClock ? new Date(this.resumedClock) : undefined;
  }

  private load(): WorldState | undefined {
    this.seenVersion = this.db.pragma("data_version", { simple: true }) as number;
    const row = this.db.prepare("SELECT value FROM world WHERE key = 'state'").get() as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as WorldState) : undefined;
  }

  /**
   * Re-reads the state when another connection (a second console on the same file) wrote it since, so that
   * every call acts on the world as it is, not as this process last saw it.
   */
  private refresh(): void {
    if (this.killed || this.file === ":memory:") return;
    if ((this.db.pragma("data_version", { simple: true }) as number) === this.seenVersion) return;
    this.state = this.load() ?? this.state;
  }

  private fresh(onCall: string | null): WorldState {
    const state: WorldState = {
      services: {},
      taskDefinitions: {},
      failNext: [],
      metrics: {},
      onCall,
      pagerdutyReachable: true,
      pagerduty: { alerts: {}, events: [], nextIncident: 1 },
      faults: { throttle: {}, down: {}, crashAfter: [], lagMs: 0 },
      clock: this.clock.now().toISOString(),
      nextId: 1,
    };
    for (const [svcName, svc] of Object.entries(this.config.services)) {
      for (const [envName, se] of Object.entries(svc.environments)) {
        const family = `${se.ecs.cluster}-${se.ecs.service}`;
        const arn = `arn:aws:ecs:${se.ecs.region}:${SIM_ACCOUNT}:task-definition/${family}:1`;
        state.taskDefinitions[arn] = {
          arn,
          family,
          revision: 1,
          containers: [
            {
              name: se.ecs.container,
              image: `${SIM_ACCOUNT}.dkr.ecr.${se.ecs.region}.amazonaws.com/${svcName}:${this.config.simulation.initial_version}`,
            },
          ],
        };
        state.services[this.key(se.ecs.cluster, se.ecs.service)] = {
          region: se.ecs.region,
          cluster: se.ecs.cluster,
          service: se.ecs.service,
          container: se.ecs.container,
          taskDefinitionArn: arn,
          initialTaskDefinitionArn: arn,
          desiredCount: envName === "production" ? 4 : 2,
          maximumPercent: 200,
          minimumHealthyPercent: 100,
          deployments: [],
        };
      }
    }
    return state;
  }

  key(cluster: string, service: string): string {
    return `${cluster}/${service}`;
  }

  onEvent(listener: (e: SimEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  emit(e: SimEvent): void {
    if (this.killed) return;
    for (const l of this.listeners) l(e);
  }

  /** True once kill() ran: every call is refused and nothing is written any more. */
  get dead(): boolean {
    return this.killed;
  }

  /**
   * Abandons this handle on the world, as a killed process does: every later call through it fails and
   * nothing more is written. The file keeps everything written so far, for the next console to open.
   */
  kill(): void {
    if (this.killed) return;
    this.killed = true;
    try {
      this.db.close();
    } catch {
      // Already closed: nothing more to abandon.
    }
  }

  private assertAlive(what: string): void {
    if (this.killed) {
      throw new DeploybotError(ErrorCode.Unknown, `${what}: this process was killed (simulated crash)`);
    }
  }

  /**
   * Reads the latest state, mutates it and writes it in one transaction; a mutation that throws leaves the
   * world as it was.
   */
  update<T>(fn: (s: WorldState) => T): T {
    this.assertAlive("the simulated world");
    return this.db
      .transaction(() => {
        this.refresh();
        let out: T;
        try {
          out = fn(this.state);
        } catch (err) {
          this.state = this.load() ?? this.state;
          throw err;
        }
        this.write();
        return out;
      })
      .immediate();
  }

  read(): Readonly<WorldState> {
    this.refresh();
    return this.state;
  }

  /** Writes the simulated time (with the rest of the state); a dead world writes nothing. */
  save(): void {
    if (this.killed) return;
    this.db.transaction(() => {
      this.refresh();
      this.write();
    })();
  }

  private write(): void {
    this.state.clock = this.clock.now().toISOString();
    this.writeState.run(JSON.stringify(this.state));
    // Our own write does not move data_version for this connection: nothing to re-read.
  }

  nextId(): number {
    return this.update((s) => s.nextId++);
  }

  // --- Faults -------------------------------------------------------------------------------------------

  /** `:throttle API OP COUNT`: the next COUNT calls of that operation fail as throttled. */
  throttle(api: SimApi, op: string, count: number): void {
    this.update((s) => {
      if (count > 0) s.faults.throttle[`${api}:${op}`] = count;
      else delete s.faults.throttle[`${api}:${op}`];
    });
  }

  /** `:down SYSTEM DURATION`: the system fails every call until now + ms (simulated time). */
  down(system: SimSystem, ms: number): void {
    const until = new Date(this.clock.now().getTime() + ms).toISOString();
    this.update((s) => {
      s.faults.down[system] = until;
    });
  }

  /** `:crash-after API:OP`: the bot dies right after its next call of that operation returns. */
  crashAfter(api: SimApi, op: string): void {
    this.update((s) => {
      if (!s.faults.crashAfter.includes(`${api}:${op}`)) s.faults.crashAfter.push(`${api}:${op}`);
    });
  }

  /** `:lag DURATION`: CloudWatch publishes each datapoint this long after its period ends. */
  setLag(ms: number): void {
    this.update((s) => {
      s.faults.lagMs = ms;
    });
  }

  /** The faults in force now (down windows that ended are left out). */
  faults(): {
    throttle: Record<string, number>;
    down: Partial<Record<SimSystem, string>>;
    crashAfter: string[];
    lagMs: number;
  } {
    const now = this.clock.now().getTime();
    const f = this.read().faults;
    const down = Object.fromEntries(Object.entries(f.down).filter(([, until]) => Date.parse(until as string) > now));
    return { throttle: { ...f.throttle }, down, crashAfter: [...f.crashAfter], lagMs: f.lagMs };
  }

  /**
   * Decides whether the system takes a call: a dead world throws; a system that is down refuses it; a
   * throttled operation refuses it and uses up one of its throttled calls. Undefined means the call goes ahead.
   */
  refusal(api: SimApi, op: string): SimRefusal | undefined {
    this.assertAlive(`${api} ${op}`);
    this.refresh();
    const f = this.state.faults;
    const until = api === "pagerduty" || api === "slack" || api === "cloudwatch" ? f.down[api] : undefined;
    if (until && this.clock.now().getTime() < Date.parse(until)) {
      const code =
        api === "pagerduty" ? "ECONNRESET" : api === "slack" ? "service_unavailable" : "InternalServiceError";
      return { kind: "down", code, until };
    }
    const key = `${api}:${op}`;
    // Checked first without writing; then taken in one transaction, so two processes never take the same one.
    const throttled =
      (f.throttle[key] ?? 0) > 0 &&
      this.update((s) => {
        const left = s.faults.throttle[key] ?? 0;
        if (left > 1) s.faults.throttle[key] = left - 1;
        else delete s.faults.throttle[key];
        return left > 0;
      });
    if (!throttled) return undefined;
    const code = api === "ecs" ? "ThrottlingException" : api === "slack" ? "ratelimited" : "Throttling";
    return { kind: "throttled", code };
  }

  /**
   * The gate of every simulated AWS or PagerDuty call: refused calls throw the transient error the real
   * adapter raises for them (AWS ones are printed with their `error`); accepted AWS calls are printed.
   */
  admit(api: Exclude<SimApi, "slack">, op: string, input: Record<string, unknown>, print = true): void {
    const refused = this.refusal(api, op);
    if (api !== "pagerduty" && print)
      this.emit({ kind: "aws", api, op, input, ...(refused ? { error: refused.code } : {}) });
    if (!refused) return;
    if (api === "pagerduty") {
      throw new DeploybotError(
        ErrorCode.PagerDutyFailed,
        refused.kind === "down"
          ? `PagerDuty could not be reached for ${op} (${refused.code}: simulated outage until ${refused.until}): try again shortly`
          : `PagerDuty rate-limited ${op} (HTTP 429): try again shortly`,
        { transient: true },
      );
    }
    const vendor = api === "ecs" ? "ECS" : api === "cloudwatch" ? "CloudWatch" : "Elastic Load Balancing";
    const message =
      refused.kind === "throttled"
        ? `${vendor} throttled ${op} (${refused.code}: Rate exceeded): try again in a moment`
        : `${vendor} ${op} failed with HTTP 500 (${refused.code}: simulated outage until ${refused.until}): try again shortly`;
    throw new DeploybotError(ErrorCode.AwsFailed, message, { transient: true });
  }

  /** Uses up a `:crash-after` for this call if one is set; true when the bot must die right after the call. */
  takeCrash(api: SimApi, op: string): boolean {
    if (this.killed) return false;
    const key = `${api}:${op}`;
    if (!this.read().faults.crashAfter.includes(key)) return false;
    return this.update((s) => {
      const armed = s.faults.crashAfter.includes(key);
      s.faults.crashAfter = s.faults.crashAfter.filter((k) => k !== key);
      return armed;
    });
  }

  /** Called right after a call took effect and was written: the bot dies here if `:crash-after` named it. */
  completed(api: SimApi, op: string): void {
    if (this.takeCrash(api, op)) this.crash();
  }

  /** The bot dies: the console's handler (a SIGKILL in the CLI), else this world stops answering. */
  crash(): void {
    if (this.onCrash) this.onCrash();
    else this.kill();
  }

  // --- ECS ----------------------------------------------------------------------------------------------

  /**
   * Moves every deployment of the service forward to the simulated now: statuses, running counts and the
   * service's task definition follow from the recorded deployments and the time. Written only when changed.
   */
  settle(cluster: string, service: string): void {
    this.assertAlive("ECS");
    this.db.transaction(() => this.settleNow(cluster, service)).immediate();
  }

  private settleNow(cluster: string, service: string): void {
    this.refresh();
    const svc = this.state.services[this.key(cluster, service)];
    if (!svc) return;
    const now = this.clock.now().getTime();
    let changed = false;
    for (const d of svc.deployments) {
      if (d.status === "ROLLBACK_IN_PROGRESS" && d.rollbackAt && now >= Date.parse(d.rollbackAt) + ROLLBACK_MS) {
        d.status = "ROLLBACK_SUCCESSFUL";
        d.finishedAt = new Date(Date.parse(d.rollbackAt) + ROLLBACK_MS).toISOString();
        d.runningCount = 0;
        if (d.sourceTaskDefinitionArn) svc.taskDefinitionArn = d.sourceTaskDefinitionArn;
        changed = true;
        continue;
      }
      if (d.status !== "IN_PROGRESS") continue;
      const elapsed = now - Date.parse(d.startedAt);
      if (d.failAt && now >= Date.parse(d.failAt)) {
        d.status = "ROLLBACK_SUCCESSFUL";
        d.statusReason =
          "ECS deployment circuit breaker: tasks failed to start (essential container exited: health check failed). Rolled back to the previous service revision.";
        d.finishedAt = d.failAt;
        d.runningCount = 0;
        if (d.sourceTaskDefinitionArn) svc.taskDefinitionArn = d.sourceTaskDefinitionArn;
        changed = true;
        continue;
      }
      // Failing tasks still start (and fail their health checks) one a minute until the circuit breaker trips.
      const running = d.failAt
        ? Math.min(d.desiredCount, Math.max(0, Math.floor(elapsed / TASK_START_MS)))
        : runningAfter(d, elapsed);
      if (running !== d.runningCount) {
        d.runningCount = running;
        changed = true;
      }
      if (!d.failAt && elapsed >= completesAfter(d)) {
        d.status = "SUCCESSFUL";
        d.finishedAt = new Date(Date.parse(d.startedAt) + completesAfter(d)).toISOString();
        d.runningCount = d.desiredCount;
        svc.taskDefinitionArn = d.targetTaskDefinitionArn;
        changed = true;
      }
    }
    if (changed) this.write();
  }

  /** The ECS service's traffic at `at`: which task definition (and version) takes which share, largest first. */
  trafficAt(
    cluster: string,
    service: string,
    at: Date = this.clock.now(),
  ): Array<{ version: string; taskDefinitionArn: string; share: number }> {
    const svc = this.read().services[this.key(cluster, service)];
    if (!svc) return [];
    return trafficOf(svc.deployments, svc.initialTaskDefinitionArn, at.getTime()).map((s) => ({
      version: this.versionOf(svc, s.taskDefinitionArn),
      ...s,
    }));
  }

  /** The image tag of the service's container in a task definition (its version). */
  versionOf(svc: { container: string }, taskDefinitionArn: string): string {
    const def = this.state.taskDefinitions[taskDefinitionArn];
    const image = def?.containers.find((c) => c.name === svc.container)?.image ?? def?.containers[0]?.image ?? "";
    const name = image.slice(image.lastIndexOf("/") + 1);
    const colon = name.lastIndexOf(":");
    return colon >= 0 ? name.slice(colon + 1) : taskDefinitionArn.slice(taskDefinitionArn.lastIndexOf("/") + 1);
  }

  // --- Metrics ------------------------------------------------------------------------------------------

  private ecsOf(service: string, environment: string): SimService | undefined {
    const ecs = this.config.services[service]?.environments[environment]?.ecs;
    return ecs ? this.state.services[this.key(ecs.cluster, ecs.service)] : undefined;
  }

  /** The newest version of a service now: the target of a deployment in progress, else the one taking most traffic. */
  newestTaskDefinition(cluster: string, service: string): string | undefined {
    const svc = this.state.services[this.key(cluster, service)];
    if (!svc) return undefined;
    const now = this.clock.now().getTime();
    const active = svc.deployments.find((d) => d.status === "IN_PROGRESS" && Date.parse(d.startedAt) <= now);
    return active?.targetTaskDefinitionArn ?? this.trafficAt(cluster, service)[0]?.taskDefinitionArn;
  }

  /**
   * `:metric SERVICE ENV NAME VALUE`: from now on the version that is newest now reads VALUE for NAME;
   * the value stays with that version. Returns that version.
   */
  setMetric(
    service: string,
    environment: string,
    metric: string,
    value: number,
  ): { version: string; taskDefinitionArn: string } {
    const svc = this.ecsOf(service, environment);
    if (!svc) throw new DeploybotError(ErrorCode.NotFound, `${service} ${environment} is not a simulated ECS service`);
    const key = this.key(svc.cluster, svc.service);
    const taskDefinitionArn = this.newestTaskDefinition(svc.cluster, svc.service) ?? svc.taskDefinitionArn;
    const at = this.clock.now().toISOString();
    this.update((s) => {
      const byVersion = s.metrics[key] ?? {};
      const byMetric = byVersion[taskDefinitionArn] ?? {};
      byMetric[metric] = [...(byMetric[metric] ?? []), { at, value }];
      byVersion[taskDefinitionArn] = byMetric;
      s.metrics[key] = byVersion;
    });
    return { version: this.versionOf(svc, taskDefinitionArn), taskDefinitionArn };
  }

  /** What one version reads at `at`: the last value `:metric` set for it by then, else the healthy default. */
  versionMetricAt(svc: SimService, taskDefinitionArn: string, metric: string, at: number): number | undefined {
    const changes = this.state.metrics[this.key(svc.cluster, svc.service)]?.[taskDefinitionArn]?.[metric] ?? [];
    let value: number | undefined;
    for (const change of changes) if (Date.parse(change.at) <= at) value = change.value;
    return value ?? this.defaultMetric(svc, metric);
  }

  private defaultMetric(svc: SimService, metric: string): number | undefined {
    const configured = this.config.simulation.metrics?.[metric];
    if (configured !== undefined) return configured;
    if (metric === "healthy_hosts") return svc.desiredCount;
    return DEFAULT_METRICS[metric];
  }

  /**
   * The service's metric at `at`, as its load balancer sees it: each version's own value weighted by its share
   * of the traffic; `request_count` is the total (each version serves its share of what it would take alone),
   * `error_rate` is weighted by the requests each version served. Undefined when no version has a value.
   */
  metricAt(service: string, environment: string, metric: string, at: Date): number | undefined {
    const svc = this.ecsOf(service, environment);
    if (!svc) return undefined;
    const t = at.getTime();
    const parts: Array<{ weight: number; value: number }> = [];
    for (const { taskDefinitionArn, share } of trafficOf(svc.deployments, svc.initialTaskDefinitionArn, t)) {
      const value = this.versionMetricAt(svc, taskDefinitionArn, metric, t);
      if (value === undefined || Number.isNaN(value)) continue;
      const requests =
        metric === "error_rate" ? (this.versionMetricAt(svc, taskDefinitionArn, "request_count", t) ?? 1) : 1;
      parts.push({ weight: share * requests, value });
    }
    if (parts.length === 0) return undefined;
    if (metric === "request_count") return round(parts.reduce((sum, p) => sum + p.weight * p.value, 0));
    const total = parts.reduce((sum, p) => sum + p.weight, 0);
    if (total <= 0) return round(parts.reduce((sum, p) => sum + p.value, 0) / parts.length);
    return round(parts.reduce((sum, p) => sum + p.weight * p.value, 0) / total);
  }

  /** `:fail SERVICE ENV`: the next deployment of that ECS service fails to stabilise. */
  failNext(cluster: string, service: string): void {
    this.update((s) => {
      s.failNext.push(this.key(cluster, service));
    });
  }

  // --- PagerDuty ----------------------------------------------------------------------------------------

  setOnCall(user: string | null): void {
    this.update((s) => {
      s.onCall = user;
    });
  }

  setPagerDutyReachable(reachable: boolean): void {
    this.update((s) => {
      s.pagerdutyReachable = reachable;
    });
  }

  /**
   * Applies one accepted PagerDuty event to its dedup key, as PagerDuty does: a trigger opens an incident
   * unless the key's alert is already open (then it is deduplicated); acknowledge and resolve act on an open
   * alert and are deduplicated no-ops otherwise.
   */
  page(event: { action: SimPage["action"]; dedupKey: string; severity: string; summary: string }): SimPage {
    const at = this.clock.now().toISOString();
    return this.update((s) => {
      const pd = s.pagerduty;
      const alert = pd.alerts[event.dedupKey];
      const open = alert !== undefined && alert.status !== "resolved";
      const record: SimPage = { at, ...event, deduplicated: false };
      switch (event.action) {
        case "trigger":
          if (open) {
            record.deduplicated = true;
            record.incident = alert.incident;
          } else {
            record.incident = pd.nextIncident++;
            pd.alerts[event.dedupKey] = {
              status: "triggered",
              incident: record.incident,
              summary: event.summary,
              since: at,
            };
          }
          break;
        case "acknowledge":
          if (open && alert.status === "triggered") {
            alert.status = "acknowledged";
            alert.since = at;
          } else record.deduplicated = true;
          if (alert) record.incident = alert.incident;
          break;
        case "resolve":
          if (open) {
            alert.status = "resolved";
            alert.since = at;
          } else record.deduplicated = true;
          if (alert) record.incident = alert.incident;
          break;
      }
      pd.events.push(record);
      if (pd.events.length > MAX_PAGES) pd.events.splice(0, pd.events.length - MAX_PAGES);
      return record;
    });
  }

  /** Every event PagerDuty accepted, oldest first (deduplicated ones marked). */
  pages(): SimPage[] {
    return structuredClone(this.read().pagerduty.events);
  }

  /** PagerDuty's state of a dedup key, if it has seen one. */
  alert(dedupKey: string): SimAlert | undefined {
    const a = this.read().pagerduty.alerts[dedupKey];
    return a ? { ...a } : undefined;
  }

  // --- Slack --------------------------------------------------------------------------------------------

  /** Every message the Slack-like server holds, oldest first. */
  slackMessages(): SimSlackMessage[] {
    this.assertAlive("Slack");
    return (this.db.prepare("SELECT message FROM slack_messages ORDER BY seq").all() as Array<{ message: string }>).map(
      (r) => JSON.parse(r.message) as SimSlackMessage,
    );
  }

  /** Writes a new or edited Slack message at once; the oldest go beyond 5000. */
  putSlackMessage(m: SimSlackMessage): void {
    this.assertAlive("Slack");
    this.db
      .prepare(
        `INSERT INTO slack_messages (channel_id, ts, message) VALUES (?, ?, ?)
         ON CONFLICT(channel_id, ts) DO UPDATE SET message = excluded.message`,
      )
      .run(m.channelId, m.ts, JSON.stringify(m));
    this.db
      .prepare("DELETE FROM slack_messages WHERE seq <= (SELECT MAX(seq) FROM slack_messages) - ?")
      .run(MAX_SLACK_MESSAGES);
  }
}

function round(x: number): number {
  return Math.round(x * 1e9) / 1e9;
}

/** What a healthy simulated service reads when nobody has set a value: below every example config's thresholds. */
export const DEFAULT_METRICS: Record<string, number> = {
  error_rate: 0.1,
  request_count: 1200,
  p95_latency: 0.25,
  p99_latency: 0.3,
  cpu: 35,
  memory: 55,
};
