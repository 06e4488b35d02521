import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/**
 * deploybot's Prometheus metrics, served on /metrics. One registry per process: the rest of the code imports the
 * counters it moves. Label values come from small fixed sets (outcomes, severities, operation names), never from
 * user input, so the number of series stays bounded.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "deploybot_" });

/** What the store holds, counted when Prometheus scrapes: every replica reports the same truth. */
export interface StoreCounts {
  deployments(): Promise<Array<{ kind: string; status: string; automatic: boolean; n: number }>>;
  incidents(): Promise<Array<{ severity: string; state: string; n: number }>>;
}

/** Deploys, rollbacks and incidents by status, read from the store at each scrape. */
export function registerStoreMetrics(counts: StoreCounts): void {
  for (const name of ["deploybot_deploys", "deploybot_rollbacks", "deploybot_incidents"])
    registry.removeSingleMetric(name);
  new Gauge({
    name: "deploybot_deploys",
    help: "Deploys by status (succeeded, failed, rolled_back, denied, rejected, expired, cancelled, or in flight)",
    labelNames: ["status"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await counts.deployments()) if (r.kind === "deploy") this.inc({ status: r.status }, r.n);
    },
  });
  new Gauge({
    name: "deploybot_rollbacks",
    help: "Rollbacks by status and trigger (manual: a person; automatic: a guardrail)",
    labelNames: ["status", "trigger"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await counts.deployments())
        if (r.kind === "rollback") this.inc({ status: r.status, trigger: r.automatic ? "automatic" : "manual" }, r.n);
    },
  });
  new Gauge({
    name: "deploybot_incidents",
    help: "Guardrail incidents by severity and state",
    labelNames: ["severity", "state"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await counts.incidents()) this.inc({ severity: r.severity, state: r.state }, r.n);
    },
  });
}

/** PagerDuty events PagerDuty accepted, by action (trigger, acknowledge, resolve). */
export const pagesTotal = new Counter({
  name: "deploybot_pages_total",
  help: "PagerDuty events sent and accepted, by action",
  labelNames: ["action"] as const,
  registers: [registry],
});

/** How long one guardrail monitor cycle took, by outcome (ok, error). */
export const monitorCycleSeconds = new Histogram({
  name: "deploybot_monitor_cycle_duration_seconds",
  help: "Duration of one guardrail monitor cycle",
  labelNames: ["outcome"] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [registry],
});

/** How late the last monitor cycle started after the moment it was due. */
export const monitorCycleLagSeconds = new Gauge({
  name: "deploybot_monitor_cycle_lag_seconds",
  help: "How late the last monitor cycle started after it was due",
  registers: [registry],
});

/** When the last monitor cycle finished (Unix seconds); readiness fails when it is too old. */
export const monitorLastCycleSeconds = new Gauge({
  name: "deploybot_monitor_last_cycle_timestamp_seconds",
  help: "When the last monitor cycle finished, in Unix seconds",
  registers: [registry],
});

/** 1 while this process holds the leader lease (runs the scheduled jobs and performs effects), 0 on a standby. */
export const leaderGauge = new Gauge({
  name: "deploybot_leader",
  help: "1 while this process leads (holds the leader lease: runs the jobs and performs effects), 0 on a standby",
  registers: [registry],
});

/** Calls to CloudWatch GetMetricData (each attempt counts: AWS bills and throttles per call). */
export const getMetricDataCalls = new Counter({
  name: "deploybot_cloudwatch_get_metric_data_calls_total",
  help: "GetMetricData calls sent to CloudWatch, retries included",
  registers: [registry],
});

/** MetricDataQueries sent in those calls (at most 500 per call). */
export const metricDataQueries = new Counter({
  name: "deploybot_cloudwatch_metric_data_queries_total",
  help: "MetricDataQueries sent in GetMetricData calls",
  registers: [registry],
});

/** Slack Web API calls that failed, by method and Slack's error code (ratelimited, channel_not_found, http_503...). */
export const slackApiErrors = new Counter({
  name: "deploybot_slack_api_errors_total",
  help: "Slack Web API calls that failed, by method and error",
  labelNames: ["method", "error"] as const,
  registers: [registry],
});

/** Slack Web API calls answered with HTTP 429, by method. */
export const slackRateLimited = new Counter({
  name: "deploybot_slack_api_rate_limited_total",
  help: "Slack Web API calls refused with HTTP 429 (rate limited), by method",
  labelNames: ["method"] as const,
  registers: [registry],
});

/** AWS calls that failed, by operation (ecs:UpdateService, cloudwatch:GetMetricData) and error name. */
export const awsErrors = new Counter({
  name: "deploybot_aws_errors_total",
  help: "AWS calls that failed (each attempt), by operation and error name",
  labelNames: ["operation", "error"] as const,
  registers: [registry],
});

/** Requests from Slack (slash commands, clicks, events) by type and what became of them. */
export const slackRequests = new Counter({
  name: "deploybot_slack_requests_total",
  help: "Requests from Slack, by type (command, action, event) and outcome (handled, replayed, refused)",
  labelNames: ["type", "outcome"] as const,
  registers: [registry],
});

/** Requests refused before Bolt saw them: malformed bodies, timestamps in the future, bodies too large. */
export const badRequests = new Counter({
  name: "deploybot_http_bad_requests_total",
  help: "HTTP requests refused before they reached Bolt, by reason",
  labelNames: ["reason"] as const,
  registers: [registry],
});

/** Slack error codes that mean the bot token no longer works: readiness turns false on them. */
export const TOKEN_ERRORS: ReadonlySet<string> = new Set([
  "invalid_auth",
  "not_authed",
  "token_revoked",
  "token_expired",
  "account_inactive",
]);

type SlackErrorListener = (method: string, code: string) => void;
const slackErrorListeners: SlackErrorListener[] = [];

/** Called by the Slack adapter for every failed Web API call: counts it, and tells readiness about token errors. */
export function recordSlackError(method: string, code: string, rateLimited: boolean): void {
  slackApiErrors.inc({ method, error: code.slice(0, 64) });
  if (rateLimited) slackRateLimited.inc({ method });
  for (const listener of slackErrorListeners) listener(method, code);
}

/** Subscribes to failed Slack Web API calls; returns the unsubscribe function. */
export function onSlackError(listener: SlackErrorListener): () => void {
  slackErrorListeners.push(listener);
  return () => {
    const i = slackErrorListeners.indexOf(listener);
    if (i >= 0) slackErrorListeners.splice(i, 1);
  };
}

/** Awaits one AWS call, counting its failure by operation and error name; the error is rethrown unchanged. */
export async function countAwsErrors<T>(operation: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    const e = (typeof err === "object" && err !== null ? err : {}) as { name?: string; code?: string };
    awsErrors.inc({ operation, error: String(e.name ?? e.code ?? "Error").slice(0, 64) });
    throw err;
  }
}

/** Records one GetMetricData call carrying `queries` MetricDataQueries. */
export function recordGetMetricData(queries: number): void {
  getMetricDataCalls.inc();
  metricDataQueries.inc(queries);
}
