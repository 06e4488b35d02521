import type { Config } from "../../config/schema.js";
import { round, trafficOf } from "./rollout.js";
import { type SimService, serviceKey, type WorldState } from "./world-state.js";

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
