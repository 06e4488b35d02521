import type { Config } from "../../config/schema.js";
import { findTarget } from "../../domain/targets.js";
import { anyStepsOf, trafficPlan } from "../../domain/traffic.js";
import type { TaskDefinition } from "../../ports.js";
import type { SimDeployment } from "./rollout.js";

// What the simulated world holds (ECS services and task definitions, metric values per version, PagerDuty,
// the faults in force) and the words its callers use about it; and the state a new world starts from.

/** The outside systems the simulated world answers for, as `:throttle`, `:down` and `:crash-after` name them. */
export type SimApi = "ecs" | "cloudwatch" | "elbv2" | "pagerduty" | "slack";
/** The systems `:down` can take down. */
export type SimSystem = "pagerduty" | "slack" | "cloudwatch";

/** What the simulated adapters report as they are called: the console prints these as `aws` and `page` lines. */
export type SimEvent =
  | {
      kind: "aws";
      api: "ecs" | "cloudwatch" | "elbv2";
      op: string;
      input: Record<string, unknown>;
      /** Set when the simulated system refused the call (ThrottlingException, Throttling, InternalServiceError). */
      error?: string;
    }
  | {
      kind: "page";
      action: "trigger" | "acknowledge" | "resolve";
      dedupKey: string;
      severity: string;
      summary: string;
      /** PagerDuty accepted the event but it changed nothing (an alert already open, or none to act on). */
      deduplicated?: boolean;
    };

/** A refusal by a simulated system: what the console prints as `error`, and what the caller sees. */
export interface SimRefusal {
  kind: "throttled" | "down";
  /** The vendor's code: ThrottlingException, Throttling, InternalServiceError, ECONNRESET, ratelimited, service_unavailable. */
  code: string;
  /** Until when the system is down (ISO), for `down`. */
  until?: string;
}

/** An ECS service as the world records it. */
export interface SimService {
  region: string;
  cluster: string;
  service: string;
  container: string;
  taskDefinitionArn: string;
  /** What the service ran before its oldest recorded deployment. */
  initialTaskDefinitionArn: string;
  desiredCount: number;
  /** The service's own deployment settings that UpdateService keeps (ECS's defaults). */
  maximumPercent: number;
  minimumHealthyPercent: number;
  /** Newest first, at most 20. */
  deployments: SimDeployment[];
}

/** An event the simulated PagerDuty accepted. */
export interface SimPage {
  at: string;
  action: "trigger" | "acknowledge" | "resolve";
  dedupKey: string;
  severity: string;
  summary: string;
  /** Accepted but changed nothing: a trigger of an open alert, an acknowledge or resolve with nothing to act on. */
  deduplicated: boolean;
  /** The simulated incident the event opened or acted on. */
  incident?: number;
}

/** PagerDuty's state of one dedup key. */
export interface SimAlert {
  status: "triggered" | "acknowledged" | "resolved";
  incident: number;
  summary: string;
  since: string;
}

/** A target group of the simulated load balancer: the ECS service whose tasks are registered in it. */
export interface SimTargetGroup {
  arn: string;
  /** The service's key in `services`. */
  service: string;
}

/** A forward action's weights by target group ARN. */
export type SimWeights = Record<string, number>;

/**
 * A listener rule (ModifyRule) or a listener's default action (ModifyListener) of the simulated ALB: its actions as
 * ELB describes them, and every change of its forward weights, so the traffic at any past minute can be replayed.
 */
export interface SimRouter {
  arn: string;
  kind: "rule" | "listener";
  /** Rule Actions or listener DefaultActions, in ELB's own shape. */
  actions: Array<Record<string, unknown>>;
  /** Oldest first. */
  history: Array<{ at: string; weights: SimWeights }>;
}

/** The simulated Elastic Load Balancing: target groups and the routers that weigh them. */
export interface SimElbState {
  targetGroups: Record<string, SimTargetGroup>;
  routers: Record<string, SimRouter>;
}

/** Faults set by the console's directives; they live in the world, so a restarted console still has them. */
export interface Faults {
  /** Calls left to throttle, by `api:op`. */
  throttle: Record<string, number>;
  /** Until when (ISO) a system fails every call. */
  down: Partial<Record<SimSystem, string>>;
  /** `api:op` calls after which the bot dies, once each. */
  crashAfter: string[];
  /** How long after its period ends a CloudWatch datapoint is published. */
  lagMs: number;
}

/** Everything the world file holds but Slack's messages. */
export interface WorldState {
  services: Record<string, SimService>;
  taskDefinitions: Record<string, Omit<TaskDefinition, "raw">>;
  failNext: string[];
  /** `:metric` changes by ECS service key, task definition and metric name, in time order. */
  metrics: Record<string, Record<string, Record<string, Array<{ at: string; value: number }>>>>;
  /** Absent in world files written before traffic steps. */
  elb?: SimElbState;
  onCall: string | null;
  pagerdutyReachable: boolean;
  pagerduty: { alerts: Record<string, SimAlert>; events: SimPage[]; nextIncident: number };
  faults: Faults;
  clock: string;
  nextId: number;
}

/** A message the Slack-like server holds; kept in the world file so a restarted console can still update it. */
export interface SimSlackMessage {
  channel: string;
  channelId: string;
  ts: string;
  text: string;
  blocks: unknown[];
  threadTs?: string;
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
  /** Set for ephemeral messages: only this user sees them. */
  ephemeralFor?: string;
}

export const SIM_ACCOUNT = "123456789012";

/** An ECS service's key in the world's state. */
export function serviceKey(cluster: string, service: string): string {
  return `${cluster}/${service}`;
}

/** A new world for the config: every ECS service at its first task definition, running the initial version. */
export function freshState(config: Config, now: Date): WorldState {
  const onCall = config.simulation.oncall ?? null;
  const state: WorldState = {
    services: {},
    taskDefinitions: {},
    failNext: [],
    metrics: {},
    onCall,
    pagerdutyReachable: true,
    pagerduty: { alerts: {}, events: [], nextIncident: 1 },
    faults: { throttle: {}, down: {}, crashAfter: [], lagMs: 0 },
    clock: now.toISOString(),
    nextId: 1,
  };
  for (const [svcName, svc] of Object.entries(config.services)) {
    for (const [envName, se] of Object.entries(svc.environments)) {
      const family = `${se.ecs.cluster}-${se.ecs.service}`;
      const arn = `arn:aws:ecs:${se.ecs.region}:${SIM_ACCOUNT}:task-definition/${family}:1`;
      state.taskDefinitions[arn] = {
        arn,
        family,
        revision: 1,
        containers: [
          {
            name: se.ecs.container,
            image: `${SIM_ACCOUNT}.dkr.ecr.${se.ecs.region}.amazonaws.com/${svcName}:${config.simulation.initial_version}`,
          },
        ],
      };
      state.services[serviceKey(se.ecs.cluster, se.ecs.service)] = {
        region: se.ecs.region,
        cluster: se.ecs.cluster,
        service: se.ecs.service,
        container: se.ecs.container,
        taskDefinitionArn: arn,
        initialTaskDefinitionArn: arn,
        desiredCount: envName === "production" ? 4 : 2,
        maximumPercent: 200,
        minimumHealthyPercent: 100,
        deployments: [],
      };
      const t = findTarget(config, svcName, envName);
      const steps = t ? anyStepsOf(t.settings) : null;
      if (t && steps) addSides(state, trafficPlan(t, steps), arn, se.ecs);
    }
  }
  return state;
}

/** The time a world's first weights took effect: before anything the console can replay. */
const BEGINNING = new Date(0).toISOString();

/**
 * A target with traffic steps: its second (green) ECS service, idle with the same first task definition, both target
 * groups, and the router forwarding everything to blue.
 */
function addSides(
  state: WorldState,
  plan: ReturnType<typeof trafficPlan>,
  taskDefinitionArn: string,
  ecs: { region: string; container: string },
): void {
  state.elb ??= { targetGroups: {}, routers: {} };
  const elb = state.elb;
  const { blue, green } = plan.sides;
  const greenKey = serviceKey(green.cluster, green.service);
  state.services[greenKey] ??= {
    region: ecs.region,
    cluster: green.cluster,
    service: green.service,
    container: ecs.container,
    taskDefinitionArn,
    initialTaskDefinitionArn: taskDefinitionArn,
    desiredCount: 0,
    maximumPercent: 200,
    minimumHealthyPercent: 100,
    deployments: [],
  };
  elb.targetGroups[blue.targetGroup] = { arn: blue.targetGroup, service: serviceKey(blue.cluster, blue.service) };
  elb.targetGroups[green.targetGroup] = { arn: green.targetGroup, service: greenKey };
  const weights = { [blue.targetGroup]: 100, [green.targetGroup]: 0 };
  elb.routers[plan.router.arn] ??= {
    arn: plan.router.arn,
    kind: plan.router.kind,
    actions: [
      {
        Type: "forward",
        ForwardConfig: {
          TargetGroups: [
            { TargetGroupArn: blue.targetGroup, Weight: 100 },
            { TargetGroupArn: green.targetGroup, Weight: 0 },
          ],
        },
      },
    ],
    history: [{ at: BEGINNING, weights }],
  };
}
