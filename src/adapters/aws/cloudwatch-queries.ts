import type { MetricDataQuery } from "@aws-sdk/client-cloudwatch";
import { DeploybotError, ErrorCode } from "../../errors.js";
import { type MetricQuery, requestSeriesId } from "../../ports.js";

// The GetMetricData request for a cycle's MetricQueries: each query as the MetricDataQueries CloudWatch
// needs (a preset read from ECS or ALB metrics, a metric, or an expression), and those packed into calls.

/** GetMetricData takes at most 500 MetricDataQueries per call, helper series included. */
export const MAX_QUERIES_PER_CALL = 500;
const VALID_ID = /^[a-z][a-zA-Z0-9_]*$/;

/** One MetricQuery as CloudWatch sees it: its MetricDataQueries (never split across calls) and the series it returns. */
export type Bundle =
  | { query: MetricQuery; dataQueries: MetricDataQuery[]; returns: string[]; errorRate?: ErrorRate }
  | { query: MetricQuery; problem: string; returns: string[] };

/** An error rate computed here from its two series (5xx and requests), rather than by a third query. */
export interface ErrorRate {
  errors: string;
  requests: string;
}

/** Packs bundles into calls of at most 500 MetricDataQueries, keeping each expression with its helpers. */
export function batches(bundles: Bundle[]): MetricDataQuery[][] {
  const calls: MetricDataQuery[][] = [];
  let current: MetricDataQuery[] = [];
  for (const bundle of bundles) {
    if (!("dataQueries" in bundle)) continue;
    if (current.length + bundle.dataQueries.length > MAX_QUERIES_PER_CALL) {
      calls.push(current);
      current = [];
    }
    current.push(...bundle.dataQueries);
  }
  if (current.length > 0) calls.push(current);
  return calls;
}

/** Refuses ids CloudWatch would reject, and ids used twice in one request (helper series included). */
export function checkIds(bundles: Bundle[]): void {
  const seen = new Set<string>();
  for (const bundle of bundles) {
    if (!VALID_ID.test(bundle.query.id)) {
      throw new DeploybotError(
        ErrorCode.Unknown,
        `metric query id "${bundle.query.id}" is not valid for CloudWatch: it must match ^[a-z][a-zA-Z0-9_]*$`,
      );
    }
    const ids = "dataQueries" in bundle ? bundle.dataQueries.map((q) => q.Id as string) : bundle.returns;
    for (const id of ids) {
      if (seen.has(id)) {
        throw new DeploybotError(
          ErrorCode.Unknown,
          `metric query id "${id}" is used twice in one GetMetricData request (error_rate queries also use <id>_errors and <id>_requests)`,
        );
      }
      seen.add(id);
    }
  }
}

/** "arn:aws:elasticloadbalancing:...:loadbalancer/app/web/50dc6c" → "app/web/50dc6c", the form the ALB metrics use. */
function albDimension(value: string, kind: "loadbalancer" | "targetgroup"): string {
  if (!value.startsWith("arn:")) return value;
  const resource = value.split(":").slice(5).join(":");
  return kind === "loadbalancer" ? resource.replace(/^loadbalancer\//, "") : resource;
}

function metricStat(
  id: string,
  namespace: string,
  name: string,
  dimensions: Record<string, string>,
  stat: string,
  period: number,
  returnData: boolean,
): MetricDataQuery {
  return {
    Id: id,
    MetricStat: {
      Metric: {
        Namespace: namespace,
        MetricName: name,
        Dimensions: Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value })),
      },
      Period: period,
      Stat: stat,
    },
    ReturnData: returnData,
  };
}

/** The MetricDataQueries for one MetricQuery, or the problem that keeps CloudWatch from answering it. */
export function toBundle(query: MetricQuery): Bundle {
  const { id, spec, periodSeconds: period, context } = query;
  if ("expression" in spec) {
    return {
      query,
      returns: [id],
      dataQueries: [{ Id: id, Expression: spec.expression, Period: period, ReturnData: true }],
    };
  }
  if ("namespace" in spec) {
    return {
      query,
      returns: [id],
      dataQueries: [metricStat(id, spec.namespace, spec.name, spec.dimensions, spec.stat, period, true)],
    };
  }
  const ecs = { ClusterName: context.cluster, ServiceName: context.ecsService };
  switch (spec.preset) {
    case "cpu":
      return {
        query,
        returns: [id],
        dataQueries: [metricStat(id, "AWS/ECS", "CPUUtilization", ecs, "Average", period, true)],
      };
    case "memory":
      return {
        query,
        returns: [id],
        dataQueries: [metricStat(id, "AWS/ECS", "MemoryUtilization", ecs, "Average", period, true)],
      };
  }
  const returns = spec.preset === "error_rate" ? [id, requestSeriesId(id)] : [id];
  if (!context.loadBalancer || !context.targetGroup) {
    return {
      query,
      returns,
      problem: `${spec.preset} reads ALB metrics: give ${query.service} in ${query.environment} a load_balancer (name and target_group) in the config`,
    };
  }
  const alb = {
    LoadBalancer: albDimension(context.loadBalancer, "loadbalancer"),
    TargetGroup: albDimension(context.targetGroup, "targetgroup"),
  };
  const elb = "AWS/ApplicationELB";
  switch (spec.preset) {
    case "p95_latency":
      return { query, returns, dataQueries: [metricStat(id, elb, "TargetResponseTime", alb, "p95", period, true)] };
    case "p99_latency":
      return { query, returns, dataQueries: [metricStat(id, elb, "TargetResponseTime", alb, "p99", period, true)] };
    case "healthy_hosts":
      return { query, returns, dataQueries: [metricStat(id, elb, "HealthyHostCount", alb, "Minimum", period, true)] };
    case "error_rate": {
      // Two metrics, divided here (errorRateSeries): a third, expression query would cost a MetricDataQuery per
      // deploy and its serialising for what is one division per period.
      const errors = `${id}_errors`;
      const requests = requestSeriesId(id);
      return {
        query,
        returns,
        errorRate: { errors, requests },
        dataQueries: [
          metricStat(errors, elb, "HTTPCode_Target_5XX_Count", alb, "Sum", period, true),
          metricStat(requests, elb, "RequestCount", alb, "Sum", period, true),
        ],
      };
    }
  }
}
