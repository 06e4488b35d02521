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
  /** Each guardrail's series, worked out once per target and guardrail: the config does not change while running. */
  private readonly seriesSpecs = new Map<string, SeriesSpec>();
  /** Pre-deploy values already read, by deployment and series key: they never change once stored. */
  private readonly preDeployValues = new Map<number, Map<string, number | null>>();

  constructor(private readonly d: MonitorDeps) {}

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
      const preDeploy = await this.preDeploy(watches, specOf, specs, slicer);
      const checked: Array<{ deploymentId: number; guardrail: string; status: string }> = [];
      for (let i = 0; i < watches.length; i++) {
        if (slicer.due) await slicer.turn();
        const w = watches[i] as Watch;
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
            : (preDeploy.get(`${w.deployment.id}/${key}`) ?? null);
        const existing = incidents.get(`${w.deployment.id}/${w.guardrail.name}`);
        const tookTraffic = this.notBefore(w, existing);
        const verdict: GuardrailVerdict =
          failure !== null || !s || s.status === "error"
            ? unreadVerdict(w.guardrail, failure ?? s?.message ?? "no data returned")
            : evaluateGuardrail({
                guardrail: w.guardrail,
                datapoints,
                requestCounts: this.cache.points(key, from, "requests"),
                baseline: before,
                preDeploy: before,
                notBefore: new Date(typeof tookTraffic === "number" ? tookTraffic : await tookTraffic),
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
    const side = on ? `\u0000${on.cluster}\u0000${on.service}\u0000${on.targetGroup}` : "";
    const id = `${w.target.service}\u0000${w.target.environment}\u0000${w.index}${side}`;
    let spec = this.seriesSpecs.get(id);
    if (!spec) {
      spec = seriesOf(w.target, w.guardrail, on);
      this.seriesSpecs.set(id, spec);
    }
    return spec;
  }

  /**
   * The moment the version being judged took traffic: the deployment's rollout start, or for an incident whose
   * deploy was rolled back, when the rollback finished (its recovery is judged on the restored version).
   */
  private notBefore(w: Watch, i: Incident | undefined): number | Promise<number> {
    const d = w.deployment;
    const started =
      d.kind === "rollback" && d.progress?.rolledOutAt
        ? Date.parse(d.progress.rolledOutAt)
        : Date.parse(tookTrafficAt(d) ?? d.createdAt);
    // Only a rolled-back incident needs a read; every other guardrail is answered without a promise.
    if (i?.state !== "rolled_back" || !i.rollbackId) return started;
    return this.d.store.deployments
      .get(i.rollbackId)
      .then((r) => (r?.progress?.rolledOutAt ? Date.parse(r.progress.rolledOutAt) : started));
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

  /**
   * Each deployment's series over the window before its own rollout (the guardrail's `baseline` window), read once
   * and kept in the store: relative thresholds are multiples of it, and a metric already over its threshold before
   * the deploy is not blamed on it. One call covers every deployment that lacks one this cycle.
   */
  private async preDeploy(
    watches: Watch[],
    specOf: string[],
    specs: Map<string, SeriesSpec>,
    slicer: TimeSlicer,
  ): Promise<Map<string, number | null>> {
    const { store, metrics, logger } = this.d;
    const out = new Map<string, number | null>();
    const missing = new Map<
      string,
      { key: string; spec: SeriesSpec; deploymentId: number; start: number; window: number }
    >();
    for (let i = 0; i < watches.length; i++) {
      if (slicer.due) await slicer.turn();
      const w = watches[i] as Watch;
      const key = specOf[i] as string;
      const id = `${w.deployment.id}/${key}`;
      if (out.has(id) || missing.has(id)) continue;
      let held = this.preDeployValues.get(w.deployment.id);
      if (!held) {
        held = new Map();
        this.preDeployValues.set(w.deployment.id, held);
      }
      const known = held.get(key);
      if (known !== undefined) {
        out.set(id, known);
        continue;
      }
      const saved = await store.kv.get<{ value: number | null }>(`predeploy/${id}`);
      if (saved) {
        out.set(id, saved.value);
        held.set(key, saved.value);
      } else {
        // A stepped deploy's own side took no traffic before it: "before" is what the stable side served then.
        const stepped = w.deployment.progress?.traffic?.mode === "steps" && w.deployment.kind === "deploy";
        const stable = stepped ? stablePlacement(w.deployment) : null;
        missing.set(id, {
          key,
          spec: stable ? this.seriesOf(w, stable) : (specs.get(key) as SeriesSpec),
          deploymentId: w.deployment.id,
          start: Date.parse(tookTrafficAt(w.deployment) ?? w.deployment.createdAt),
          window: w.guardrail.baseline,
        });
      }
    }
    if (missing.size === 0) return out;
    const wanted = [...missing.values()];
    const { queries, idOf } = plan(wanted.map((m) => m.spec));
    const from = Math.min(...wanted.map((m) => m.start - m.window));
    const to = Math.max(...wanted.map((m) => m.start));
    try {
      const read = new Map((await metrics.getMetricData(queries, new Date(from), new Date(to))).map((x) => [x.id, x]));
      const values = new Map<string, number | null>();
      for (const [id, m] of missing) {
        const s = read.get(idOf.get(m.spec.key) as string);
        const points =
          s?.status === "ok"
            ? s.datapoints
                .filter((p) => p.at.getTime() >= m.start - m.window && p.at.getTime() < m.start)
                .map((p) => p.value)
                .filter(Number.isFinite)
            : [];
        values.set(id, points.length ? points.reduce((a, b) => a + b, 0) / points.length : null);
      }
      // Kept in one transaction: a first cycle over 1,000 new deploys would otherwise commit thousands of times.
      await store.tx(async () => {
        for (const [id, value] of values) await store.kv.set(`predeploy/${id}`, { value });
      });
      for (const [id, value] of values) out.set(id, value);
      for (const [id, m] of missing)
        if (values.has(id)) this.preDeployValues.get(m.deploymentId)?.set(m.key, values.get(id) ?? null);
    } catch (err) {
      logger.warn({ err }, "pre-deploy values could not be read; relative guardrails stay inconclusive");
    }
    return out;
  }
}
