import { createHash } from "node:crypto";
import type { Guardrail } from "../config/schema.js";
import { DEFAULT_MAX_LAG_MS } from "../config/schema.js";
import type { Target } from "../domain/targets.js";
import { anyStepsOf, type SidePlacement, trafficPlan } from "../domain/traffic.js";
import { guardrailLookbackMs } from "../policies/guardrails.js";
import type { Datapoint, MetricQuery, MetricSeries } from "../ports.js";

/** What a series is, independent of which guardrail asks: two guardrails on one metric share it. */
export interface SeriesSpec {
  key: string;
  /** The query without its id (the id is given per call). */
  query: Omit<MetricQuery, "id">;
  /** Its request-count companion comes back with it (error_rate). */
  withRequests: boolean;
  /** The longest window any guardrail on it looks at, and the latest CloudWatch may be. */
  lookbackMs: number;
  maxLagMs: number;
  periodMs: number;
}

/** "arn:…:targetgroup/web/73e2…" → "targetgroup/web/73e2…", the form ALB metric dimensions use. */
function groupDimension(value: string): string {
  return value.startsWith("arn:") ? value.split(":").slice(5).join(":") : value;
}

/**
 * A custom metric's dimensions read on one side of a two-sided target: a dimension that names either side's target
 * group, ECS service or cluster names `on`'s instead (seed 004 judges each side by its own target group).
 */
function dimensionsOn(dimensions: Record<string, string>, sides: SidePlacement[], on: SidePlacement) {
  const out = { ...dimensions };
  const swap = (key: string, values: string[], to: string) => {
    const v = out[key];
    if (v !== undefined && values.includes(v)) out[key] = to;
  };
  swap(
    "TargetGroup",
    sides.map((x) => groupDimension(x.targetGroup)),
    groupDimension(on.targetGroup),
  );
  swap(
    "ServiceName",
    sides.map((x) => x.service),
    on.service,
  );
  swap(
    "ClusterName",
    sides.map((x) => x.cluster),
    on.cluster,
  );
  return out;
}

/**
 * The series a guardrail of a target reads; with `on`, the metrics of one side of a two-sided target (traffic steps):
 * its own target group, ECS service and cluster.
 */
export function seriesOf(t: Target, g: Guardrail, on: SidePlacement | null = null): SeriesSpec {
  const m = g.metric;
  const steps = anyStepsOf(t.settings);
  const sides = steps ? Object.values(trafficPlan(t, steps).sides) : [];
  const spec =
    typeof m === "string"
      ? { preset: m }
      : "expression" in m
        ? { expression: m.expression }
        : {
            namespace: m.namespace,
            name: m.name,
            dimensions: on ? dimensionsOn(m.dimensions, sides, on) : m.dimensions,
            stat: m.stat,
          };
  const query: Omit<MetricQuery, "id"> = {
    region: t.ecs.region,
    service: t.service,
    environment: t.environment,
    metricName: typeof m === "string" ? m : "expression" in m ? (m.label ?? g.name) : m.name,
    spec,
    periodSeconds: Math.round(g.period / 1000),
    context: {
      cluster: on?.cluster ?? t.ecs.cluster,
      ecsService: on?.service ?? t.ecs.service,
      ...(t.settings.load_balancer
        ? {
            loadBalancer: t.settings.load_balancer.name,
            targetGroup: on?.targetGroup ?? t.settings.load_balancer.target_group,
          }
        : {}),
    },
  };
  // A series is what CloudWatch is asked, nothing else: the guardrails of many services that read one metric (a
  // shared database's connection pool, by its own dimensions) read one series. Presets are per target (their
  // dimensions are the target's ECS service or load balancer); custom metrics and expressions name their own.
  const identity =
    "preset" in spec
      ? { region: query.region, spec, period: query.periodSeconds, context: query.context }
      : { region: query.region, spec, period: query.periodSeconds };
  const key = createHash("sha1").update(JSON.stringify(identity)).digest("hex").slice(0, 16);
  return {
    key,
    query,
    withRequests: typeof m === "string" && m === "error_rate",
    lookbackMs: guardrailLookbackMs(g),
    maxLagMs: g.max_lag ?? DEFAULT_MAX_LAG_MS,
    periodMs: g.period,
  };
}

interface Held {
  /** By period start: the datapoint as CloudWatch returned it, kept (with its Date) while its value stays. */
  points: Map<number, Datapoint>;
  requests: Map<number, Datapoint>;
  /** When it was last fetched: periods older than that minus the lag are final and never asked for again. */
  fetchedAt: number | null;
  /** The points and requests as sorted datapoints, built on the first read after a merge and shared until the next. */
  sorted: { points?: Datapoint[]; requests?: Datapoint[] };
}

/**
 * The datapoints the monitor already holds, per series. Each cycle asks CloudWatch only for what it does not hold
 * yet, plus the last `max_lag` of periods (which late data may still fill in); a series seen for the first time
 * (or after a restart) is read over its whole lookback.
 */
export class SeriesCache {
  private readonly held = new Map<string, Held>();

  /** Where one call for these series must start (one StartTime per GetMetricData call). */
  startFor(specs: Iterable<SeriesSpec>, now: number): number {
    let start = now;
    for (const s of specs) {
      const h = this.held.get(s.key);
      const need =
        h?.fetchedAt !== null && h?.fetchedAt !== undefined
          ? Math.max(now - s.lookbackMs, h.fetchedAt - s.maxLagMs - s.periodMs)
          : now - s.lookbackMs;
      start = Math.min(start, need);
    }
    return start;
  }

  /** Keeps what one call returned for a series; drops what no guardrail looks at any more. */
  merge(spec: SeriesSpec, values: MetricSeries | undefined, requests: MetricSeries | undefined, now: number): void {
    const h = this.held.get(spec.key) ?? { points: new Map(), requests: new Map(), fetchedAt: null, sorted: {} };
    this.held.set(spec.key, h);
    if (!values || values.status === "error") return;
    // The sorted lists are built again only when a period was added, changed or dropped (most calls bring the
    // latest period or two, and the late-data window again, mostly unchanged).
    let changed = keep(h.points, values.datapoints);
    if (requests) changed = keep(h.requests, requests.datapoints) || changed;
    if (requests?.status !== "error") h.fetchedAt = now;
    const oldest = now - spec.lookbackMs;
    for (const map of [h.points, h.requests])
      for (const t of map.keys())
        if (t < oldest) {
          map.delete(t);
          changed = true;
        }
    if (changed) h.sorted = {};
  }

  /**
   * The held datapoints of a series at or after `from`, oldest first. The datapoints are built once per merge and
   * shared by every guardrail that reads the series (a thousand deploys' guardrails read thousands of them a
   * cycle): callers must not change them.
   */
  points(key: string, from: number, which: "points" | "requests" = "points"): readonly Datapoint[] {
    const h = this.held.get(key);
    if (!h) return [];
    let all = h.sorted[which];
    if (!all) {
      all = [...h[which].values()].sort((a, b) => a.at.getTime() - b.at.getTime());
      h.sorted[which] = all;
    }
    let first = 0;
    while (first < all.length && (all[first] as Datapoint).at.getTime() < from) first++;
    return first === 0 ? all : all.slice(first);
  }

  /** Forgets series nobody asked for this cycle. */
  keepOnly(keys: ReadonlySet<string>): void {
    for (const k of this.held.keys()) if (!keys.has(k)) this.held.delete(k);
  }
}

/** Puts each datapoint in `held` by its period; true when one was new or its value changed. */
function keep(held: Map<number, Datapoint>, datapoints: readonly Datapoint[]): boolean {
  let changed = false;
  for (const p of datapoints) {
    const t = p.at.getTime();
    const known = held.get(t);
    if (known && (known.value === p.value || (Number.isNaN(known.value) && Number.isNaN(p.value)))) continue;
    held.set(t, p);
    changed = true;
  }
  return changed;
}

/** Builds one query per distinct series, with ids valid for CloudWatch, and a way back from the results. */
export function plan(specs: Iterable<SeriesSpec>): { queries: MetricQuery[]; idOf: Map<string, string> } {
  const idOf = new Map<string, string>();
  const queries: MetricQuery[] = [];
  for (const s of specs) {
    if (idOf.has(s.key)) continue;
    const id = `s${idOf.size}`;
    idOf.set(s.key, id);
    queries.push({ id, ...s.query });
  }
  return { queries, idOf };
}
