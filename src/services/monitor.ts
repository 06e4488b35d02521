import { setImmediate as yieldToLoop } from "node:timers/promises";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import { type Deployment, WATCHED } from "../domain/deployment.js";
import { ACTIVE, type Incident } from "../domain/incident.js";
import { findTarget } from "../domain/targets.js";
import { evaluateGuardrail, evaluationShape, type GuardrailVerdict, parseThreshold } from "../policies/guardrails.js";
import { type MetricQuery, type MetricSeries, type MetricsPort, requestSeriesId } from "../ports.js";
import type { Store } from "../store/index.js";
import type { IncidentService, Watch } from "./incidents.js";

/** How long a watch schedule lasts after the rollout starts (0 without one). */
function watchLength(schedule: Array<{ every: number; for: number }> | undefined): number {
  return (schedule ?? []).reduce((sum, p) => sum + p.for, 0);
}

/** The longest the monitor runs without giving the event loop a turn, so a big cycle never delays acks. */
const SLICE_MS = 8;

/** A function to await often: it yields to the event loop once SLICE_MS have passed since the last yield. */
function timeSlicer(): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < SLICE_MS) return;
    await yieldToLoop();
    since = performance.now();
  };
}

export interface MonitorDeps {
  config: Config;
  store: Store;
  clock: Clock;
  metrics: MetricsPort;
  incidents: IncidentService;
  logger: Logger;
}

/**
 * The guardrail monitor: every cycle, one batch of metric queries for every guardrail of every deployment being
 * watched (rolling out, baking, on a watch schedule, or with an unresolved incident), evaluated by the pure
 * evaluator; what the verdicts mean is the incident service's business.
 */
export class Monitor {
  /** When the last cycle finished (readiness reads it). */
  lastCycleAt: Date | null = null;

  constructor(private readonly d: MonitorDeps) {}

  /** What to evaluate now: every guardrail of a watched deployment, and the guardrails of unresolved incidents. */
  private async watches(): Promise<{ watches: Watch[]; incidents: Map<string, Incident> }> {
    const { store, config, clock } = this.d;
    const now = clock.now().getTime();
    const byId = new Map<number, Deployment>();
    // A deployment is watched from the moment ECS took it (before that, no traffic reaches its version), every
    // cycle, or on its environment's watch schedule when it has one.
    for (const d of await store.deployments.byStatus(WATCHED)) if (d.startedAt && this.due(d, now)) byId.set(d.id, d);
    // Environments with a watch schedule go on watching after the bake window, for as long as it says.
    const longest = Math.max(0, ...Object.values(config.environments).map((e) => watchLength(e.watch)));
    if (longest > 0) {
      for (const d of await store.deployments.succeededSince(new Date(now - longest - config.monitor.interval)))
        if (this.due(d, now)) byId.set(d.id, d);
    }
    const active = await store.incidents.inStates(ACTIVE);
    const activeGuardrails = new Map<number, Set<string>>();
    for (const i of active) {
      const set = activeGuardrails.get(i.deploymentId) ?? new Set<string>();
      set.add(i.guardrail);
      activeGuardrails.set(i.deploymentId, set);
      if (!byId.has(i.deploymentId)) {
        const d = await store.deployments.get(i.deploymentId);
        if (d) byId.set(d.id, d);
      }
    }
    const incidents = new Map<string, Incident>();
    for (const i of await store.incidents.ofDeployments([...byId.keys()]))
      incidents.set(`${i.deploymentId}/${i.guardrail}`, i);
    const watches: Watch[] = [];
    for (const deployment of byId.values()) {
      const target = findTarget(config, deployment.service, deployment.environment);
      if (!target) continue;
      const everything = WATCHED.has(deployment.status) || deployment.status === "succeeded";
      const only = activeGuardrails.get(deployment.id);
      target.settings.guardrails.forEach((guardrail, index) => {
        if (everything || only?.has(guardrail.name)) watches.push({ deployment, target, guardrail, index });
      });
    }
    return { watches, incidents };
  }

  /** Is this cycle one of the deployment's checks? Every cycle while watched, or on the watch schedule's grid. */
  private due(d: Deployment, now: number): boolean {
    const schedule = findTarget(this.d.config, d.service, d.environment)?.policy.watch;
    if (!schedule || !d.startedAt) return WATCHED.has(d.status);
    // Phase p checks at every `every` after its start, up to and including its end: with 5m for 30m then
    // 15m for 90m, that is minutes 5, 10 ... 30, then 45, 60 ... 120 after the rollout started.
    const interval = this.d.config.monitor.interval;
    let start = Date.parse(d.startedAt);
    for (const phase of schedule) {
      const offset = now - start;
      if (offset >= phase.every && offset < phase.for + interval && offset % phase.every < interval) return true;
      start += phase.for;
    }
    return false;
  }

  private query(w: Watch, id: string): MetricQuery {
    const m = w.guardrail.metric;
    const spec =
      typeof m === "string"
        ? { preset: m }
        : "expression" in m
          ? { expression: m.expression }
          : { namespace: m.namespace, name: m.name, dimensions: m.dimensions, stat: m.stat };
    return {
      id,
      region: w.target.ecs.region,
      service: w.deployment.service,
      environment: w.deployment.environment,
      metricName: typeof m === "string" ? m : "expression" in m ? (m.label ?? w.guardrail.name) : m.name,
      spec,
      periodSeconds: Math.round(w.guardrail.period / 1000),
      context: {
        cluster: w.target.ecs.cluster,
        ecsService: w.target.ecs.service,
        ...(w.target.settings.load_balancer
          ? {
              loadBalancer: w.target.settings.load_balancer.name,
              targetGroup: w.target.settings.load_balancer.target_group,
            }
          : {}),
      },
    };
  }

  /** One monitoring cycle, then the automatic rollbacks whose grace period is over. */
  async cycle(): Promise<void> {
    const { clock, metrics, store, incidents: service, logger } = this.d;
    const now = clock.now();
    const slice = timeSlicer();
    const { watches, incidents } = await this.watches();
    await slice();
    if (watches.length > 0) {
      const queries: MetricQuery[] = [];
      for (const w of watches) {
        queries.push(this.query(w, `g${w.deployment.id}_${w.index}`));
        await slice();
      }
      const longest = Math.max(...watches.map((w) => (evaluationShape(w.guardrail).n + 1) * w.guardrail.period));
      let series: MetricSeries[];
      try {
        series = await metrics.getMetricData(queries, new Date(now.getTime() - longest), now);
      } catch (err) {
        logger.warn({ err }, "metrics could not be read this cycle: every guardrail is inconclusive");
        series = [];
      }
      await slice();
      const byId = new Map(series.map((s) => [s.id, s]));
      const baselines = await this.baselines(watches);
      for (let i = 0; i < watches.length; i++) {
        await slice();
        const w = watches[i] as Watch;
        const id = queries[i]?.id as string;
        const s = ownData(byId.get(id), await this.notBefore(w, incidents));
        const verdict: GuardrailVerdict =
          !s || s.status === "error"
            ? {
                status: "inconclusive",
                reason: `${w.guardrail.name}: ${s?.message ?? "no data returned"}`,
                observed: null,
                breachingPoints: 0,
                evaluatedPoints: 0,
              }
            : evaluateGuardrail({
                guardrail: w.guardrail,
                datapoints: s.datapoints,
                requestCounts: byId.get(requestSeriesId(id))?.datapoints ?? [],
                baseline: baselines.get(`${w.deployment.id}/${w.index}`) ?? null,
                now,
                timeZone: w.target.timeZone,
              });
        try {
          if (WATCHED.has(w.deployment.status))
            await store.checks.record(w.deployment.id, w.guardrail.name, verdict.status, now);
          const existing = incidents.get(`${w.deployment.id}/${w.guardrail.name}`);
          await service.onVerdict(w, verdict, s?.datapoints.map((p) => p.value) ?? [], existing);
        } catch (err) {
          logger.error(
            { err, deployment: w.deployment.id, guardrail: w.guardrail.name },
            "acting on a guardrail failed; will retry next cycle",
          );
        }
      }
    }
    try {
      await service.dueRollbacks();
    } catch (err) {
      logger.error({ err }, "pending rollbacks could not be checked this cycle");
    }
    this.lastCycleAt = clock.now();
  }

  /**
   * The moment the version being judged took traffic: the deployment's rollout start, or for an incident whose
   * deploy was rolled back, when the rollback finished (its recovery is judged on the restored version).
   */
  private async notBefore(w: Watch, incidents: Map<string, Incident>): Promise<number> {
    const i = incidents.get(`${w.deployment.id}/${w.guardrail.name}`);
    if (i?.state === "rolled_back" && i.rollbackId) {
      const r = await this.d.store.deployments.get(i.rollbackId);
      if (r?.progress?.rolledOutAt) return Date.parse(r.progress.rolledOutAt);
    }
    return Date.parse(w.deployment.startedAt ?? w.deployment.createdAt);
  }

  /**
   * Pre-deploy baselines for relative thresholds, read once per deployment and guardrail and kept in the store.
   * One call covers every deployment missing one; each takes the window before its own rollout start.
   */
  private async baselines(watches: Watch[]): Promise<Map<string, number | null>> {
    const { store, metrics, logger } = this.d;
    const out = new Map<string, number | null>();
    const missing: Array<{ w: Watch; key: string; q: MetricQuery; start: number }> = [];
    for (const w of watches) {
      if (parseThreshold(w.guardrail.threshold).unit !== "baseline") continue;
      const key = `${w.deployment.id}/${w.index}`;
      const saved = await store.kv.get<{ value: number | null }>(`baseline/${key}`);
      if (saved) out.set(key, saved.value);
      else
        missing.push({
          w,
          key,
          q: this.query(w, `b${w.deployment.id}_${w.index}`),
          start: Date.parse(w.deployment.startedAt ?? w.deployment.createdAt),
        });
    }
    if (missing.length === 0) return out;
    const from = Math.min(...missing.map((m) => m.start - m.w.guardrail.baseline));
    const to = Math.max(...missing.map((m) => m.start));
    try {
      const series = await metrics.getMetricData(
        missing.map((m) => m.q),
        new Date(from),
        new Date(to),
      );
      for (const m of missing) {
        const s = series.find((x) => x.id === m.q.id);
        const windowStart = m.start - m.w.guardrail.baseline;
        const values =
          s?.status === "ok"
            ? s.datapoints
                .filter((p) => p.at.getTime() >= windowStart && p.at.getTime() < m.start)
                .map((p) => p.value)
                .filter(Number.isFinite)
            : [];
        const value = values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
        await store.kv.set(`baseline/${m.key}`, { value });
        out.set(m.key, value);
      }
    } catch (err) {
      logger.warn({ err }, "pre-deploy baselines could not be read; relative guardrails stay inconclusive");
    }
    return out;
  }
}

/** Only the periods that began once the version took traffic: a deployment is never judged on what came before it. */
function ownData(s: MetricSeries | undefined, notBefore: number): MetricSeries | undefined {
  if (!s) return s;
  return { ...s, datapoints: s.datapoints.filter((p) => p.at.getTime() >= notBefore) };
}
