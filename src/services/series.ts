import { createHash } from "node:crypto";
import type { Guardrail } from "../config/schema.js";
import { DEFAULT_MAX_LAG_MS } from "../config/schema.js";
import type { Target } from "../domain/targets.js";
import { anyStepsOf, type SidePlacement, trafficPlan } from "../domain/traffic.js";
import { guardrailLookbackMs } from "../policies/guardrails.js";
import { type Datapoint, inTimeOrder, type MetricQuery, type MetricSeries } from "../ports.js";

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
  /** Oldest first, one per period: the datapoints as CloudWatch returned them (each kept while its value stays). */
  points: readonly Datapoint[];
  requests: readonly Datapoint[];
  /** When it was last fetched: periods older than that minus the lag are final and never asked for again. */
  fetchedAt: number | null;
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
    const h: Held = this.held.get(spec.key) ?? { points: [], requests: [], fetchedAt: null };
    this.held.set(spec.key, h);
    if (!values || values.status === "error") return;
    const oldest = now - spec.lookbackMs;
    h.points = keep(h.points, values.datapoints, oldest);
    h.requests = keep(h.requests, requests?.datapoints ?? [], oldest);
    if (requests?.status !== "error") h.fetchedAt = now;
  }

  /**
   * The held datapoints of a series at or after `from`, oldest first. The lists are shared by every guardrail that
   * reads the series (a thousand deploys' guardrails read thousands of them a cycle): callers must not change them.
   */
  points(key: string, from: number, which: "points" | "requests" = "points"): readonly Datapoint[] {
    const all = this.held.get(key)?.[which];
    if (!all) return [];
    let first = 0;
    while (first < all.length && (all[first] as Datapoint).at.getTime() < from) first++;
    return first === 0 ? all : all.slice(first);
  }

  /** Forgets series nobody asked for this cycle. */
  keepOnly(keys: ReadonlySet<string>): void {
    for (const k of this.held.keys()) if (!keys.has(k)) this.held.delete(k);
  }
}

const sameValue = (a: number, b: number) => a === b || (Number.isNaN(a) && Number.isNaN(b));

/**
 * `held` with the incoming datapoints put in by period (a new value replaces the one held; of two for one period
 * the later wins) and those older than `oldest` dropped, oldest first: `held` itself when nothing changed. Both
 * lists come sorted (CloudWatch is asked for TimestampAscending), so this is a merge, with no map or sort.
 */
function keep(held: readonly Datapoint[], incoming: Datapoint[], oldest: number): readonly Datapoint[] {
  const add = inTimeOrder(incoming);
  let i = 0;
  while (i < held.length && (held[i] as Datapoint).at.getTime() < oldest) i++;
  let changed = i > 0;
  const out: Datapoint[] = [];
  let j = 0;
  while (j < add.length && (add[j] as Datapoint).at.getTime() < oldest) j++;
  while (i < held.length || j < add.length) {
    const a = held[i];
    const ta = a ? a.at.getTime() : Number.POSITIVE_INFINITY;
    const tb = j < add.length ? (add[j] as Datapoint).at.getTime() : Number.POSITIVE_INFINITY;
    if (ta < tb) {
      out.push(a as Datapoint);
      i++;
      continue;
    }
    let b = add[j] as Datapoint;
    for (j++; j < add.length && (add[j] as Datapoint).at.getTime() === tb; j++) b = add[j] as Datapoint;
    if (a && ta === tb) {
      i++;
      if (sameValue(a.value, b.value)) {
        out.push(a);
        continue;
      }
    }
    out.push(b);
    changed = true;
  }
  return changed ? out : held;
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
