import { Machine } from "./machine.js";
import type { Severity } from "./requests.js";
import type { TrafficState } from "./traffic.js";

/** Every status a deployment (or a rollback, a kind of deployment) can be in. */
export const DEPLOYMENT_STATUSES = [
  "requested",
  "awaiting_approval",
  "approved",
  "denied",
  "rejected",
  "expired",
  "cancelled",
  "deploying",
  "shifting",
  "paused",
  "baking",
  "succeeded",
  "failed",
  "rolling_back",
  "rolled_back",
] as const;
export type DeploymentStatus = (typeof DEPLOYMENT_STATUSES)[number];

export type DeploymentKind = "deploy" | "rollback";

/**
 * The deployment state machine. `failed` always means "this version is not running": a deploy whose version
 * is live is never failed; when its rollback cannot go ahead it goes back to baking (`rollback_abandoned`).
 */
export const deploymentMachine = new Machine("deployment", DEPLOYMENT_STATUSES, {
  /** The policy gate allowed it as asked. */
  allow: { from: ["requested"], to: "approved" },
  /** The policy gate wants approvals first. */
  ask_approval: { from: ["requested"], to: "awaiting_approval" },
  deny: { from: ["requested"], to: "denied" },
  /** The approvals the rule asks for are all in. */
  approve: { from: ["awaiting_approval"], to: "approved" },
  reject: { from: ["awaiting_approval"], to: "rejected" },
  /** The requester withdrew it. */
  withdraw: { from: ["requested", "awaiting_approval"], to: "cancelled" },
  expire: { from: ["awaiting_approval"], to: "expired" },
  /** The lock is taken and the ECS intent written; the reconciler makes the calls. */
  start: { from: ["approved"], to: "deploying" },
  /**
   * It never reached ECS (lock held, its card could not be posted, ECS refused the start): nothing changed there.
   * A request awaiting approval whose card Slack refused ends here too: nobody could ever press Approve.
   */
  not_started: { from: ["awaiting_approval", "approved", "deploying"], to: "failed" },
  /**
   * Traffic steps: the new version is up on the idle side and its target group passed the health check; the first
   * step's weights are recorded (an elb.weights intent). `progress.traffic.step` says which step is in progress.
   */
  shift: { from: ["deploying"], to: "shifting" },
  /** The step's pause is over and its guardrails passed: the next step's weights are recorded. */
  advance: { from: ["shifting"], to: "shifting" },
  /** The step's analysis was inconclusive (too few requests, late data, a warning): the step holds, up to max_inconclusive. */
  hold: { from: ["shifting"], to: "shifting" },
  /** Held for a person: by the Pause button, or by deploybot once a step stayed inconclusive too long. */
  pause: { from: ["shifting"], to: "paused" },
  /** Resume: the held step is judged again and the schedule goes on. */
  resume: { from: ["paused"], to: "shifting" },
  /** Promote (the override role): the remaining steps are skipped, the last (100%) weights recorded. */
  promote: { from: ["shifting", "paused"], to: "shifting" },
  /** Its new target group never passed the health check: no traffic was moved, and its side is scaled down. */
  unhealthy: { from: ["deploying"], to: "failed" },
  /** ECS finished rolling it out (with traffic steps: the last step took all traffic); the bake window begins. */
  rolled_out: { from: ["deploying", "shifting"], to: "baking" },
  /** Rolled out (and baked, where the environment bakes) with every guardrail judged or overridden. */
  succeed: { from: ["deploying", "shifting", "baking"], to: "succeeded" },
  /** ECS stopped it or its circuit breaker rolled it back: the version before it runs. */
  ecs_failed: { from: ["deploying"], to: "failed" },
  /** A rollback of this deploy started; the rollback holds the lock from now on. */
  roll_back: { from: ["deploying", "baking", "succeeded"], to: "rolling_back" },
  /**
   * A rollback of a deploy still in its traffic steps (Abort, a breach, /rollback): the weights go back to 100% on
   * the stable side in one call, recorded for the rollback, which holds the lock from now on.
   */
  abort: { from: ["shifting", "paused"], to: "rolling_back" },
  /** Its rollback finished: the previous version runs again. */
  rolled_back: { from: ["rolling_back"], to: "rolled_back" },
  /** Its rollback could not go ahead: this version still runs, and is watched again. */
  rollback_abandoned: { from: ["rolling_back"], to: "baking" },
});
export type DeploymentEvent = keyof typeof deploymentMachine.events;

const group = (...statuses: DeploymentStatus[]): ReadonlySet<DeploymentStatus> => new Set(statuses);

/** Waiting for the gate or for approvals. */
export const PENDING = group("requested", "awaiting_approval");
/** Asked for and not yet running for sure: a rollback here is still "waiting" or "starting" (one at a time). */
export const NOT_YET_STARTED = group(...deploymentMachine.events.not_started.from);
/** Holding the service/environment lock: one at a time per target (a deploy being rolled back hands it over). */
export const HOLDS_LOCK = group("approved", "deploying", "shifting", "paused", "baking");
/** Not settled yet: deploybot still acts on it. */
export const IN_FLIGHT = group("approved", "deploying", "shifting", "paused", "baking", "rolling_back");
/** Its version runs (or is rolling out) on ECS. */
export const LIVE = group("deploying", "shifting", "paused", "baking", "succeeded", "rolling_back");
/** Guardrails are evaluated every monitor cycle. */
export const WATCHED = group("deploying", "shifting", "paused", "baking");
/** In its traffic steps: part of the traffic on the new version, moved by deploybot (Promote, Pause, Abort apply). */
export const STEPPING = group("shifting", "paused");
/** Its version runs and deploybot is not done with it (rolling out, in its steps, baking): what /rollback ends. */
export const UNFINISHED = group("deploying", "shifting", "paused", "baking");
/** No event leaves these. */
export const TERMINAL: ReadonlySet<DeploymentStatus> = new Set(deploymentMachine.terminal());
/** The rollout is over (finishedAt is set): terminal, or succeeded (which a rollback may still end). */
export const SETTLED: ReadonlySet<DeploymentStatus> = new Set([...TERMINAL, "succeeded"]);

export interface DeploymentFlags {
  hotfix?: boolean;
  emergency?: string;
  severity?: Severity;
  automatic?: boolean;
  /** For a rollback: it stops that deployment in flight (StopServiceDeployment) rather than deploying anew. */
  viaStop?: boolean;
  /** `/deploy … --canary`: the environment's stepped `canary` strategy instead of its usual one. */
  canary?: boolean;
}

export interface DeploymentProgress {
  running?: number;
  desired?: number;
  /** Why it ended as it did, or what it waits for, in words. */
  detail?: string;
  bakeEndsAt?: string;
  /** When ECS finished rolling it out (for a rollback: when the restored version took all traffic back). */
  rolledOutAt?: string;
  /** Where its version runs and takes traffic, on a target with two sides behind a load balancer (traffic steps). */
  traffic?: TrafficState;
}

/** The policy decision as recorded, with the safeties an override bypassed. */
export interface RecordedDecision {
  outcome: string;
  reasons: string[];
  bypassed: string[];
}

export interface Deployment {
  id: number;
  kind: DeploymentKind;
  service: string;
  environment: string;
  version: string;
  taskDefinition: string | null;
  previousVersion: string | null;
  previousTaskDefinition: string | null;
  requestedBy: string;
  reason: string | null;
  flags: DeploymentFlags;
  /** For a rollback: the deploy it rolls back (the one live when it was asked for), if deploybot made it. */
  rollsBack: number | null;
  status: DeploymentStatus;
  decision: RecordedDecision | null;
  approvalRule: Array<{ name?: string; from: string[]; count: number }> | null;
  expiresAt: string | null;
  ecsDeploymentArn: string | null;
  progress: DeploymentProgress | null;
  cardChannel: string | null;
  cardTs: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** When the rollout began on ECS (UpdateService or StopServiceDeployment returned): the new version takes traffic. */
  startedAt: string | null;
}
