import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import { type Deployment, WATCHED } from "../domain/deployment.js";
import { ACTIVE, type Incident } from "../domain/incident.js";
import { findTarget } from "../domain/targets.js";
import { judgedPlacement, type SidePlacement, stablePlacement, tookTrafficAt, weightNow } from "../domain/traffic.js";
import { asDeploybotError } from "../errors.js";
import { evaluateGuardrail, type GuardrailVerdict, unreadVerdict } from "../policies/guardrails.js";
import { type MetricSeries, type MetricsPort, requestSeriesId } from "../ports.js";
import type { Store } from "../store/index.js";
import type { IncidentService, Watch } from "./incidents.js";
import { PreDeployValues } from "./pre-deploy.js";
import { plan, SeriesCache, type SeriesSpec, seriesOf } from "./series.js";
import { TimeSlicer } from "./time-slicer.js";

/** How long a watch schedule lasts after the rollout starts (0 without one). */
function watchLength(schedule: Array<{ every: number; for: number }> | undefined): number {
  return (schedule ?? []).reduce((sum, p) => sum + p.for, 0);
}

/** Guardrail verdicts recorded per transaction: a few milliseconds of writes between turns of the event loop. */
const CHECKS_PER_TRANSACTION = 500;

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
  private readonly cache = new SeriesCache();
  /**
   * Each guardrail's series, worked out once per target and guardrail (the config does not change while running):
   * by service, environment and guardrail index, and for one side of a two-sided target by a key naming it.
   */
  private readonly seriesSpecs = new Map<string, Map<string, SeriesSpec[]>>();
  private readonly sideSpecs = new Map<string, SeriesSpec>();
  /** Pre-deploy values already read: they never change once stored. */
  private readonly preDeploy: PreDeployValues;

  constructor(private readonly d: MonitorDeps) {
    this.preDeploy = new PreDeployValues(d, (w, on) => this.seriesOf(w, on));
  }

  /** What to evaluate now: every guardrail of a watched deployment, and the guardrails of unresolved incidents. */
  private async watches(slicer: TimeSlicer): Promise<{ watches: Watch[]; incidents: Map<string, Incident> }> {
    const { store, config, clock } = this.d;
    const now = clock.now().getTime();
    const byId = new Map<number, Deployment>();
    // A deployment is watched from the moment ECS took it (before that, no traffic reaches its version), every
    // cycle, or on its environment's watch schedule when it has one.
    // A rollback is judged once the restored version has all the traffic back (until then it is the old mix).
    // With traffic steps, a deploy is judged from its first shift: its side takes no traffic while ECS brings it up.
    for (const d of await store.deployments.byStatus(WATCHED)) {
      const judged = d.kind === "rollback" ? d.status === "baking" : Boolean(tookTrafficAt(d));
      if (judged && this.due(d, now)) byId.set(d.id, d);
    }
    // Environments with a watch schedule go on watching after the bake window, for as long as it says.
    const longest = Math.max(0, ...Object.values(config.environments).map((e) => watchLength(e.watch)));
    if (longest > 0) {
      for (const d of await store.deployments.succeededSince(new Date(now - longest - config.monitor.interval)))
        if (this.due(d, now)) byId.set(d.id, d);
    }
    await slicer.turn();
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
    this.preDeploy.keepOnly(byId);
    await slicer.turn();
    const incidents = new Map<string, Incident>();
    for (const i of await store.incidents.ofDeployments([...byId.keys()]))
      incidents.set(`${i.deploymentId}/${i.guardrail}`, i);
    await slicer.turn();
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
    const took = tookTrafficAt(d);
    if (!schedule || !took) return WATCHED.has(d.status);
    // Phase p checks at every `every` after its start, up to and including its end: with 5m for 30m then
    // 15m for 90m, that is minutes 5, 10 ... 30, then 45, 60 ... 120 after the rollout started.
    const interval = this.d.config.monitor.interval;
    let start = Date.parse(took);
    for (const phase of schedule) {
      const offset = now - start;
      if (offset >= phase.every && offset < phase.for + interval && offset % phase.every < interval) return true;
      start += phase.for;
    }
    return false;
  }

  /** One monitoring cycle, then the automatic rollbacks whose grace period is over. */
  async cycle(): Promise<void> {
    const { clock, metrics, store, incidents: service, logger } = this.d;
    const now = clock.now();
    const slicer = new TimeSlicer();
    await slicer.begin();
    const { watches, incidents } = await this.watches(slicer);
    await slicer.turn();
    if (watches.length > 0) {
      // An identical series is asked for once, however many guardrails read it.
      const specs = new Map<string, SeriesSpec>();
      const add = (spec: SeriesSpec) => {
        const known = specs.get(spec.key);
        if (!known || spec.lookbackMs > known.lookbackMs || spec.maxLagMs > known.maxLagMs) specs.set(spec.key, spec);
        return spec.key;
      };
      // With traffic steps each deployment is judged on its own side's target group (and ECS service).
      const specOf = watches.map((w) => add(this.seriesOf(w, judgedPlacement(w.deployment))));
      // compare_with: stable reads the stable side over the same minutes, while it still takes traffic.
      const stableOf = watches.map((w) => {
        const stable = this.comparesWithStable(w) ? stablePlacement(w.deployment) : null;
        return stable ? add(this.seriesOf(w, stable)) : null;
      });
      await slicer.turn();
      const { queries, idOf } = plan(specs.values());
      this.cache.keepOnly(new Set(specs.keys()));
      const start = this.cache.startFor(specs.values(), now.getTime());
      await slicer.turn();
      let read: MetricSeries[] = [];
      let failure: string | null = null;
      try {
        read = await metrics.getMetricData(queries, new Date(start), now);
      } catch (err) {
        failure = asDeploybotError(err).message;
        logger.warn({ err }, "metrics could not be read this cycle: every guardrail is inconclusive");
      }
      await slicer.turn();
      const byId = new Map(read.map((x) => [x.id, x]));
      for (const spec of specs.values()) {
        if (slicer.due) await slicer.turn();
        const id = idOf.get(spec.key) as string;
        this.cache.merge(
          spec,
          byId.get(id),
          spec.withRequests ? byId.get(requestSeriesId(id)) : undefined,
          now.getTime(),
        );
      }
      await this.preDeploy.fill(watches, specOf, specs, slicer);
      const checked: Array<{ deploymentId: number; guardrail: string; status: string }> = [];
      // A deployment's guardrails are consecutive watches: what depends on the deployment alone is worked out once.
      let held: ReadonlyMap<string, number | null> | undefined;
      let took = 0;
      for (let i = 0; i < watches.length; i++) {
        if (slicer.due) await slicer.turn();
        const w = watches[i] as Watch;
        if (i === 0 || w.deployment !== (watches[i - 1] as Watch).deployment) {
          held = this.preDeploy.of(w.deployment.id);
          took = this.startedAt(w.deployment);
        }
        const key = specOf[i] as string;
        const spec = specs.get(key) as SeriesSpec;
        const s = byId.get(idOf.get(key) as string);
        const from = now.getTime() - spec.lookbackMs;
        const datapoints = this.cache.points(key, from);
        const stableKey = stableOf[i];
        const stablePoints = stableKey ? this.cache.points(stableKey, from).map((p) => p.value) : [];
        const before =
          stablePoints.length > 0
            ? stablePoints.reduce((a, b) => a + b, 0) / stablePoints.length
            : (held?.get(key) ?? null);
        const existing = incidents.size > 0 ? incidents.get(`${w.deployment.id}/${w.guardrail.name}`) : undefined;
        const tookTraffic = existing?.state === "rolled_back" ? await this.notBefore(existing, took) : took;
        const verdict: GuardrailVerdict =
          failure !== null || !s || s.status === "error"
            ? unreadVerdict(w.guardrail, failure ?? s?.message ?? "no data returned")
            : evaluateGuardrail({
                guardrail: w.guardrail,
                datapoints,
                requestCounts: this.cache.points(key, from, "requests"),
                baseline: before,
                preDeploy: before,
                notBefore: new Date(tookTraffic),
                now,
                timeZone: w.target.timeZone,
              });
        if (WATCHED.has(w.deployment.status))
          checked.push({ deploymentId: w.deployment.id, guardrail: w.guardrail.name, status: verdict.status });
        // Without an incident, only a breach (or a metric already over its threshold before the deploy, which
        // the card notes once) can change anything: the other verdicts stop here.
        if (!existing && verdict.status !== "breaching" && !verdict.preDeploy?.breaching) continue;
        try {
          await service.onVerdict(
            w,
            verdict,
            datapoints.map((p) => p.value),
            existing,
          );
        } catch (err) {
          logger.error(
            { err, deployment: w.deployment.id, guardrail: w.guardrail.name },
            "acting on a guardrail failed; will retry next cycle",
          );
        }
      }
      // Which guardrails have been judged, written in transactions of a few hundred: one commit per verdict
      // cost more than the whole evaluation on a file database.
      for (let i = 0; i < checked.length; i += CHECKS_PER_TRANSACTION) {
        await slicer.turn();
        try {
          await store.checks.recordMany(checked.slice(i, i + CHECKS_PER_TRANSACTION), now);
        } catch (err) {
          logger.error({ err }, "guardrail checks could not be recorded; the next cycle records its own");
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

  /** A guardrail's series, on one side of a two-sided target when `on` names it (traffic steps). */
  private seriesOf(w: Watch, on: SidePlacement | null): SeriesSpec {
    const { service, environment } = w.target;
    if (on) {
      const id = `${service}\u0000${environment}\u0000${w.index}\u0000${on.cluster}\u0000${on.service}\u0000${on.targetGroup}`;
      let spec = this.sideSpecs.get(id);
      if (!spec) {
        spec = seriesOf(w.target, w.guardrail, on);
        this.sideSpecs.set(id, spec);
      }
      return spec;
    }
    // Nested maps, not one joined key: the monitor asks 9,000 times a cycle at 1,000 deploys.
    let byEnv = this.seriesSpecs.get(service);
    if (!byEnv) {
      byEnv = new Map();
      this.seriesSpecs.set(service, byEnv);
    }
    let list = byEnv.get(environment);
    if (!list) {
      list = [];
      byEnv.set(environment, list);
    }
    let spec = list[w.index];
    if (!spec) {
      spec = seriesOf(w.target, w.guardrail, null);
      list[w.index] = spec;
    }
    return spec;
  }

  /** The moment the version being judged took traffic: a deploy's rollout start, or when a rollback rolled out. */
  private startedAt(d: Deployment): number {
    return d.kind === "rollback" && d.progress?.rolledOutAt
      ? Date.parse(d.progress.rolledOutAt)
      : Date.parse(tookTrafficAt(d) ?? d.createdAt);
  }

  /** For an incident whose deploy was rolled back: when the rollback finished (recovery is judged on what it restored). */
  private async notBefore(i: Incident, started: number): Promise<number> {
    if (!i.rollbackId) return started;
    const r = await this.d.store.deployments.get(i.rollbackId);
    return r?.progress?.rolledOutAt ? Date.parse(r.progress.rolledOutAt) : started;
  }

  /** A guardrail compared with the stable side: a deploy in its traffic steps, the stable side still taking some. */
  private comparesWithStable(w: Watch): boolean {
    const t = w.deployment.progress?.traffic;
    return (
      w.guardrail.compare_with === "stable" &&
      t?.mode === "steps" &&
      w.deployment.kind === "deploy" &&
      (w.deployment.status === "shifting" || w.deployment.status === "paused") &&
      weightNow(t) < 100
    );
  }
}
