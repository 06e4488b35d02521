import type { Logger } from "pino";
import type { Deployment } from "../domain/deployment.js";
import { type SidePlacement, stablePlacement, tookTrafficAt } from "../domain/traffic.js";
import type { MetricsPort } from "../ports.js";
import type { Store } from "../store/index.js";
import type { Watch } from "./incidents.js";
import { plan, type SeriesSpec } from "./series.js";
import type { TimeSlicer } from "./time-slicer.js";

/**
 * Each deployment's series over the window before its own rollout (the guardrail's `baseline` window), read once
 * and kept in the store: relative thresholds are multiples of it, and a metric already over its threshold before
 * the deploy is not blamed on it. Held here by deployment, then series key, for the monitor to read.
 */
export class PreDeployValues {
  private readonly held = new Map<number, Map<string, number | null>>();

  constructor(
    private readonly d: { store: Store; metrics: MetricsPort; logger: Logger },
    /** The series of a guardrail on one side of its target (the monitor's, shared so a series is built once). */
    private readonly seriesOf: (w: Watch, on: SidePlacement | null) => SeriesSpec,
  ) {}

  /** A deployment's values by series key (undefined when none could be read yet). */
  of(deploymentId: number): ReadonlyMap<string, number | null> | undefined {
    return this.held.get(deploymentId);
  }

  /** Forgets the deployments not watched now: one watched again later is read back from the store. */
  keepOnly(deployments: ReadonlyMap<number, Deployment>): void {
    for (const id of this.held.keys()) if (!deployments.has(id)) this.held.delete(id);
  }

  /** Makes sure every watch's value is held: from the store, or in one call for all that lack one this cycle. */
  async fill(watches: Watch[], specOf: string[], specs: Map<string, SeriesSpec>, slicer: TimeSlicer): Promise<void> {
    const { store, metrics, logger } = this.d;
    const missing = new Map<
      string,
      { key: string; spec: SeriesSpec; deploymentId: number; start: number; window: number }
    >();
    for (let i = 0; i < watches.length; i++) {
      if (slicer.due) await slicer.turn();
      const w = watches[i] as Watch;
      const key = specOf[i] as string;
      let held = this.held.get(w.deployment.id);
      if (!held) {
        held = new Map();
        this.held.set(w.deployment.id, held);
      }
      if (held.has(key)) continue;
      const id = `${w.deployment.id}/${key}`;
      if (missing.has(id)) continue;
      const saved = await store.kv.get<{ value: number | null }>(`predeploy/${id}`);
      if (saved) {
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
    if (missing.size === 0) return;
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
      for (const [id, m] of missing)
        if (values.has(id)) this.held.get(m.deploymentId)?.set(m.key, values.get(id) ?? null);
    } catch (err) {
      logger.warn({ err }, "pre-deploy values could not be read; relative guardrails stay inconclusive");
    }
  }
}
