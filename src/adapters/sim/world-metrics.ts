import type { Config } from "../../config/schema.js";
import { round, trafficOf } from "./rollout.js";
import { type SimRouter, type SimService, type SimWeights, serviceKey, type WorldState } from "./world-state.js";

// The simulated metrics: what each version of a service reads (what `:metric` set for it, else a healthy
// default), and what the load balancer sees when several versions share the traffic.

/** What a healthy simulated service reads when nobody has set a value: below every example config's thresholds. */
export const DEFAULT_METRICS: Record<string, number> = {
  error_rate: 0.1,
  request_count: 1200,
  p95_latency: 0.25,
  p99_latency: 0.3,
  cpu: 35,
  memory: 55,
};

/** What one version reads at `at`: the last value `:metric` set for it by then, else the healthy default. */
export function versionMetricAt(
  state: Readonly<WorldState>,
  config: Config,
  svc: SimService,
  taskDefinitionArn: string,
  metric: string,
  at: number,
): number | undefined {
  const changes = state.metrics[serviceKey(svc.cluster, svc.service)]?.[taskDefinitionArn]?.[metric] ?? [];
  let value: number | undefined;
  for (const change of changes) if (Date.parse(change.at) <= at) value = change.value;
  return value ?? defaultMetric(config, svc, metric);
}

function defaultMetric(config: Config, svc: SimService, metric: string): number | undefined {
  const configured = config.simulation.metrics?.[metric];
  if (configured !== undefined) return configured;
  if (metric === "healthy_hosts") return svc.desiredCount;
  return DEFAULT_METRICS[metric];
}

/**
 * The service's metric at `at`, as its load balancer sees it: each version's own value weighted by its share
 * of the traffic; `request_count` is the total (each version serves its share of what it would take alone),
 * `error_rate` is weighted by the requests each version served. Undefined when no version has a value.
 */
export function serviceMetricAt(
  state: Readonly<WorldState>,
  config: Config,
  svc: SimService,
  metric: string,
  at: number,
): number | undefined {
  const parts: Array<{ weight: number; value: number }> = [];
  for (const { taskDefinitionArn, share } of trafficOf(svc.deployments, svc.initialTaskDefinitionArn, at)) {
    const value = versionMetricAt(state, config, svc, taskDefinitionArn, metric, at);
    if (value === undefined || Number.isNaN(value)) continue;
    const requests =
      metric === "error_rate" ? (versionMetricAt(state, config, svc, taskDefinitionArn, "request_count", at) ?? 1) : 1;
    parts.push({ weight: share * requests, value });
  }
  if (parts.length === 0) return undefined;
  if (metric === "request_count") return round(parts.reduce((sum, p) => sum + p.weight * p.value, 0));
  const total = parts.reduce((sum, p) => sum + p.weight, 0);
  if (total <= 0) return round(parts.reduce((sum, p) => sum + p.value, 0) / parts.length);
  return round(parts.reduce((sum, p) => sum + p.weight * p.value, 0) / total);
}

/** The forward weights a router had at `at` (the last change at or before it). */
export function weightsAt(router: SimRouter, at: number): SimWeights {
  let weights: SimWeights = {};
  for (const change of router.history) if (Date.parse(change.at) <= at) weights = change.weights;
  return weights;
}

/** The router that forwards to a target group, if one does. */
function routerOf(state: Readonly<WorldState>, targetGroupArn: string): SimRouter | undefined {
  return Object.values(state.elb?.routers ?? {}).find((r) =>
    Object.keys(r.history.at(-1)?.weights ?? {}).includes(targetGroupArn),
  );
}

/** The share (0..1) of the load balancer's traffic a target group took at `at`: its weight over the router's total. */
export function targetGroupShareAt(state: Readonly<WorldState>, targetGroupArn: string, at: number): number {
  const router = routerOf(state, targetGroupArn);
  if (!router) return 1;
  const weights = weightsAt(router, at);
  const total = Object.values(weights).reduce((sum, w) => sum + w, 0);
  return total > 0 ? (weights[targetGroupArn] ?? 0) / total : 0;
}

/**
 * A target group's own metric at `at`, as ALB publishes it per target group: the values of the ECS service behind
 * it (its versions mixed by their share of that service's tasks), and for `request_count` only the requests the
 * group's weight sent it. A group that took no requests has no latency or error rate that period.
 */
export function targetGroupMetricAt(
  state: Readonly<WorldState>,
  config: Config,
  targetGroupArn: string,
  metric: string,
  at: number,
): number | undefined {
  const tg = state.elb?.targetGroups[targetGroupArn];
  const svc = tg ? state.services[tg.service] : undefined;
  if (!svc) return undefined;
  const share = targetGroupShareAt(state, targetGroupArn, at);
  // Its tasks, unless `:metric … healthy_hosts` said otherwise for the version they run.
  if (metric === "healthy_hosts") return serviceMetricAt(state, config, svc, metric, at) ?? svc.desiredCount;
  if (metric === "request_count") {
    const all = serviceMetricAt(state, config, svc, "request_count", at);
    return all === undefined ? undefined : round(all * share);
  }
  if (share <= 0 && (metric === "error_rate" || metric === "p95_latency" || metric === "p99_latency")) return undefined;
  return serviceMetricAt(state, config, svc, metric, at);
}

/**
 * The load balancer's metric over every target group a router weighs (no target group named): each group's value
 * weighted by its share of the traffic, error rates by the requests each served.
 */
export function routerMetricAt(
  state: Readonly<WorldState>,
  config: Config,
  router: SimRouter,
  metric: string,
  at: number,
): number | undefined {
  const parts: Array<{ weight: number; value: number }> = [];
  for (const tg of Object.keys(weightsAt(router, at))) {
    const share = targetGroupShareAt(state, tg, at);
    if (share <= 0 && metric !== "healthy_hosts") continue;
    const value = targetGroupMetricAt(state, config, tg, metric, at);
    if (value === undefined || Number.isNaN(value)) continue;
    const requests =
      metric === "error_rate" ? (targetGroupMetricAt(state, config, tg, "request_count", at) ?? 0) : share;
    parts.push({ weight: requests, value });
  }
  if (parts.length === 0) return undefined;
  if (metric === "request_count" || metric === "healthy_hosts")
    return round(parts.reduce((sum, p) => sum + p.value, 0));
  const total = parts.reduce((sum, p) => sum + p.weight, 0);
  return total > 0 ? round(parts.reduce((sum, p) => sum + p.weight * p.value, 0) / total) : undefined;
}
