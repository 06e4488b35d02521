/**
 * The narrow ports between deploybot's orchestration and the outside world. Each has a real adapter
 * (AWS SDK, PagerDuty) and a simulated one (src/services/sim) for the console and tests. Vendor types
 * never cross a port: adapters translate SDK shapes into these and SDK errors into DeploybotErrors.
 */

/** Where one service of one environment runs on ECS. */
export interface EcsTarget {
  region: string;
  cluster: string;
  service: string;
  /** The container whose image tag is the deployed version. */
  container: string;
}

export interface TaskDefinition {
  arn: string;
  family: string;
  revision: number;
  containers: Array<{ name: string; image: string }>;
  /** The adapter's full description, carried so RegisterTaskDefinition can copy it; never read above the adapter. */
  raw?: unknown;
}

export type DeploymentStrategy =
  | { type: "ROLLING"; maximumPercent?: number; minimumHealthyPercent?: number }
  | { type: "BLUE_GREEN"; bakeTimeMinutes: number }
  | { type: "LINEAR"; stepPercent: number; stepBakeMinutes: number }
  | { type: "CANARY"; canaryPercent: number; canaryBakeMinutes: number };

export interface ServiceState {
  serviceArn: string;
  taskDefinitionArn: string;
  desiredCount: number;
  runningCount: number;
  pendingCount: number;
}

/** ECS service deployment statuses (DescribeServiceDeployments), grouped by deploybot as in-flight or terminal. */
export type EcsDeploymentStatus =
  | "PENDING"
  | "IN_PROGRESS"
  | "SUCCESSFUL"
  | "STOPPED"
  | "STOP_REQUESTED"
  | "ROLLBACK_REQUESTED"
  | "ROLLBACK_IN_PROGRESS"
  | "ROLLBACK_SUCCESSFUL"
  | "ROLLBACK_FAILED";

export const ECS_TERMINAL: ReadonlySet<EcsDeploymentStatus> = new Set([
  "SUCCESSFUL",
  "STOPPED",
  "ROLLBACK_SUCCESSFUL",
  "ROLLBACK_FAILED",
]);

export interface EcsDeployment {
  arn: string;
  status: EcsDeploymentStatus;
  statusReason?: string;
  targetTaskDefinitionArn: string;
  sourceTaskDefinitionArn?: string;
  desiredCount: number;
  runningCount: number;
  startedAt?: Date;
  finishedAt?: Date;
}

/** One method per ECS API call deploybot makes, so the simulated and real adapters play the same calls. */
export interface EcsPort {
  describeService(target: EcsTarget): Promise<ServiceState>;
  describeTaskDefinition(target: EcsTarget, taskDefinition: string): Promise<TaskDefinition>;
  /** Registers a copy of `base` with `container`'s image replaced by `image`. */
  registerTaskDefinition(target: EcsTarget, base: TaskDefinition, image: string): Promise<TaskDefinition>;
  /**
   * Starts a deployment of `taskDefinitionArn` with the circuit breaker on (rollback true); with `desiredCount`, the
   * service is also set to run that many tasks (the idle side of traffic steps, scaled to match the live one).
   */
  updateService(
    target: EcsTarget,
    taskDefinitionArn: string,
    strategy: DeploymentStrategy,
    desiredCount?: number,
  ): Promise<void>;
  /** UpdateService with only a desired count: scales a side that takes no traffic (down to 0 when its keep is over). */
  scaleService(target: EcsTarget, desiredCount: number): Promise<void>;
  /** Service deployments of the target, newest first; `since` limits to those created at or after it. */
  listServiceDeployments(target: EcsTarget, since?: Date): Promise<Array<{ arn: string; status: EcsDeploymentStatus }>>;
  describeServiceDeployment(target: EcsTarget, arn: string): Promise<EcsDeployment>;
  /** StopServiceDeployment with stopType ROLLBACK. */
  stopServiceDeployment(target: EcsTarget, arn: string): Promise<void>;
}

/** Where forward weights are set: a listener rule's forward action (ModifyRule) or a listener's default action (ModifyListener). */
export interface Router {
  kind: "rule" | "listener";
  arn: string;
  region: string;
}

/** One target group's share of a forward action (ALB weights are 0-999 and relative; deploybot writes percentages). */
export interface TargetGroupWeight {
  targetGroupArn: string;
  weight: number;
}

/** Target group stickiness to send with new weights: on for a duration, or off. */
export type Stickiness = { enabled: true; seconds: number } | { enabled: false };

/** The Elastic Load Balancing calls traffic steps make: read and set forward weights, and a target group's health. */
export interface ElbPort {
  /** The weights of the router's forward action now (DescribeRules or DescribeListeners). */
  describeWeights(router: Router): Promise<TargetGroupWeight[]>;
  /**
   * Sets the forward action's weights in one call (ModifyRule or ModifyListener), keeping the router's other actions
   * (authentication, say) as they are; without `stickiness` the action's own stickiness setting is kept.
   */
  setWeights(router: Router, weights: TargetGroupWeight[], stickiness?: Stickiness): Promise<void>;
  /** DescribeTargetHealth: how many of the target group's registered targets are healthy. */
  targetHealth(region: string, targetGroupArn: string): Promise<{ healthy: number; total: number }>;
}

/** A metric as deploybot names it: a preset, a custom CloudWatch metric or a metric-math expression. */
export type MetricSpec =
  | { preset: "error_rate" | "p95_latency" | "p99_latency" | "healthy_hosts" | "cpu" | "memory" }
  | { namespace: string; name: string; dimensions: Record<string, string>; stat: string }
  | { expression: string };

/** One series to fetch; `id` is unique within a call and valid for CloudWatch (^[a-z][a-zA-Z0-9_]*$). */
export interface MetricQuery {
  id: string;
  region: string;
  /** Which service and environment the series belongs to (the simulated adapter answers by these). */
  service: string;
  environment: string;
  /** The name the console's `:metric` uses: the preset name, or the guardrail's custom metric name. */
  metricName: string;
  spec: MetricSpec;
  periodSeconds: number;
  /** Dimensions the presets need: the ECS cluster/service and the ALB/target group. */
  context: {
    cluster: string;
    ecsService: string;
    loadBalancer?: string;
    targetGroup?: string;
  };
}

export interface Datapoint {
  at: Date;
  value: number;
}

/**
 * The datapoints oldest first: the list itself when it already is (CloudWatch is asked for TimestampAscending, so
 * nearly always; sorting anyway would copy every list of every cycle), else a sorted copy.
 */
export function inTimeOrder(points: Datapoint[]): Datapoint[] {
  for (let i = 1; i < points.length; i++)
    if ((points[i] as Datapoint).at.getTime() < (points[i - 1] as Datapoint).at.getTime())
      return [...points].sort((a, b) => a.at.getTime() - b.at.getTime());
  return points;
}

export interface MetricSeries {
  id: string;
  /** "ok" or the per-query error (PartialData, Forbidden, InternalError...): a failed query is inconclusive, never a breach. */
  status: "ok" | "error";
  message?: string;
  /** Oldest first. */
  datapoints: Datapoint[];
}

/**
 * The id of the request-count series that comes back next to every `error_rate` query, so the
 * evaluator can apply `min_requests`: a query with id "q3" returns "q3" (the rate, in percent) and
 * "q3_requests" (ALB RequestCount, Sum per period).
 */
export function requestSeriesId(queryId: string): string {
  return `${queryId}_requests`;
}

export interface MetricsPort {
  /** All queries of one cycle; the adapter batches them (500 per GetMetricData call) and follows NextToken. */
  getMetricData(queries: MetricQuery[], start: Date, end: Date): Promise<MetricSeries[]>;
}

export type PageAction = "trigger" | "acknowledge" | "resolve";

export interface PageEvent {
  action: PageAction;
  dedupKey: string;
  severity: "critical" | "error" | "warning" | "info";
  summary: string;
  source: string;
  customDetails?: Record<string, unknown>;
  links?: Array<{ href: string; text: string }>;
}

export interface OnCallEntry {
  scheduleId: string;
  escalationLevel: number;
  userName: string;
  userEmail: string;
}

export interface PagerPort {
  sendEvent(event: PageEvent): Promise<void>;
  /** Who is on call now on these schedules, at escalation levels <= maxLevel. Throws when PagerDuty cannot be reached. */
  onCalls(scheduleIds: string[], maxLevel: number): Promise<OnCallEntry[]>;
}

/** A Block Kit block as JSON (built by src/slack/blocks.ts): a loose shape is enough at the port. */
export type Block = Record<string, unknown> & { type: string };

export interface ChatMessage {
  text: string;
  blocks?: Block[];
  /** deploybot's idempotency key, carried in the message's metadata so `find` can tell whether it was posted. */
  key?: string;
}

/** The Slack calls services make (cards, thread replies, incident posts), behind one narrow port. */
export interface ChatPort {
  post(channel: string, message: ChatMessage, threadTs?: string): Promise<{ channel: string; ts: string }>;
  update(channel: string, ts: string, message: ChatMessage): Promise<void>;
  /** The ts of a message posted with this key at or after `since` (in the thread of `threadTs`, if given). */
  find(channel: string, key: string, since: Date, threadTs?: string): Promise<string | undefined>;
  /** A link to a posted message (chat.getPermalink). */
  permalink(channel: string, ts: string): Promise<string>;
}

/** Slack as the services use it: posting and the directory, bound to the Bolt app's own Web API client. */
export interface SlackPort extends ChatPort, DirectoryPort {
  /** Called once the app exists with its Web API client (kept opaque here: no vendor type crosses a port). */
  bind(client: unknown): void;
}

/** Slack's directory: who a PagerDuty email is, and who is in a user group. */
export interface DirectoryPort {
  /** users.lookupByEmail; undefined when nobody in the workspace has that email. */
  lookupByEmail(email: string): Promise<string | undefined>;
  /** Member Slack ids of a user group by its handle (usergroups.list + usergroups.users.list). */
  usergroupMembers(handle: string): Promise<string[]>;
}
