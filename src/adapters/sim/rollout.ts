import type { DeploymentStrategy, EcsDeploymentStatus } from "../../ports.js";

/** One minute: ROLLING starts one task a minute; the other strategies bring all their new tasks up within one. */
export const TASK_START_MS = 60_000;
/** A deployment told to fail (`:fail`) is rolled back by the circuit breaker after 3 minutes. */
export const FAIL_AFTER_MS = 3 * 60_000;
/** A StopServiceDeployment(ROLLBACK) reports ROLLBACK_SUCCESSFUL this long after it was asked. */
export const ROLLBACK_MS = 60_000;

/** A share of the service's traffic held by one task definition. */
export interface TrafficShare {
  taskDefinitionArn: string;
  share: number;
}

/** An ECS service deployment as the simulated world records it: enough to replay its traffic at any time. */
export interface SimDeployment {
  arn: string;
  status: EcsDeploymentStatus;
  statusReason?: string;
  targetTaskDefinitionArn: string;
  sourceTaskDefinitionArn?: string;
  desiredCount: number;
  runningCount: number;
  startedAt: string;
  finishedAt?: string;
  /** The strategy UpdateService asked for (older worlds lack it: ROLLING). */
  strategy?: DeploymentStrategy;
  /** The traffic just before this deployment started: what it replaces, and where its other traffic goes. */
  replaces?: TrafficShare[];
  /** Set by `:fail`: the circuit breaker rolls back at this time, and the new tasks never take traffic. */
  failAt?: string;
  /** StopServiceDeployment(ROLLBACK): from this time the traffic is back on what it replaced. */
  rollbackAt?: string;
  /** Superseded by a later UpdateService at this time. */
  stoppedAt?: string;
}

const MINUTE = 60_000;

function strategyOf(d: SimDeployment): DeploymentStrategy {
  return d.strategy ?? { type: "ROLLING" };
}

/**
 * How many of the new tasks run `elapsed` ms after the deployment started: ROLLING starts one a minute;
 * CANARY, LINEAR and BLUE_GREEN start the whole green fleet at once, all running within one minute.
 */
export function runningAfter(d: SimDeployment, elapsed: number): number {
  if (elapsed < 0) return 0;
  if (strategyOf(d).type === "ROLLING") return Math.min(d.desiredCount, Math.floor(elapsed / TASK_START_MS));
  return elapsed >= TASK_START_MS ? d.desiredCount : 0;
}

/** The new version's share of traffic `elapsed` ms into an undisturbed deployment (0..1). */
export function shiftedAfter(d: SimDeployment, elapsed: number): number {
  const s = strategyOf(d);
  if (elapsed < 0) return 0;
  switch (s.type) {
    case "ROLLING":
      return d.desiredCount <= 0 ? 1 : runningAfter(d, elapsed) / d.desiredCount;
    case "CANARY":
      if (elapsed < TASK_START_MS) return 0;
      return elapsed < TASK_START_MS + s.canaryBakeMinutes * MINUTE ? clamp(s.canaryPercent / 100) : 1;
    case "LINEAR": {
      if (elapsed < TASK_START_MS) return 0;
      const step = clamp(s.stepPercent / 100);
      if (step <= 0) return 0;
      if (s.stepBakeMinutes <= 0) return 1;
      return Math.min(1, step * (1 + Math.floor((elapsed - TASK_START_MS) / (s.stepBakeMinutes * MINUTE))));
    }
    case "BLUE_GREEN":
      return elapsed < TASK_START_MS ? 0 : 1;
  }
}

/** How long after its start an undisturbed deployment reports SUCCESSFUL. */
export function completesAfter(d: SimDeployment): number {
  const s = strategyOf(d);
  switch (s.type) {
    case "ROLLING":
      return d.desiredCount * TASK_START_MS;
    case "CANARY":
      return TASK_START_MS + s.canaryBakeMinutes * MINUTE;
    case "LINEAR": {
      const steps = s.stepPercent > 0 ? Math.ceil(100 / Math.min(100, s.stepPercent)) : 1;
      return TASK_START_MS + (steps - 1) * Math.max(0, s.stepBakeMinutes) * MINUTE;
    }
    case "BLUE_GREEN":
      return TASK_START_MS + s.bakeTimeMinutes * MINUTE;
  }
}

/**
 * The share of traffic the deployment's target takes at `at`: what its strategy has shifted by then, none
 * at all when the circuit breaker is failing it, and none from the moment a rollback was asked.
 */
export function targetShareAt(d: SimDeployment, at: number): number {
  const started = Date.parse(d.startedAt);
  if (at < started || d.failAt) return 0;
  if (d.rollbackAt && at >= Date.parse(d.rollbackAt)) return 0;
  const stopped = d.stoppedAt ? Date.parse(d.stoppedAt) : Number.POSITIVE_INFINITY;
  return shiftedAfter(d, Math.min(at, stopped) - started);
}

/**
 * The traffic of a service at `at`, from its deployments (newest first) and the task definition it ran
 * before any of them: the newest deployment started by then splits the traffic between its target and
 * what it replaced. Largest share first; shares sum to 1.
 */
export function trafficOf(deployments: SimDeployment[], initial: string, at: number): TrafficShare[] {
  const current = deployments.find((d) => Date.parse(d.startedAt) <= at);
  if (!current) {
    const oldest = deployments.at(-1);
    return oldest?.replaces?.length ? normalize(oldest.replaces) : [{ taskDefinitionArn: initial, share: 1 }];
  }
  const replaces = current.replaces?.length
    ? current.replaces
    : [{ taskDefinitionArn: current.sourceTaskDefinitionArn ?? initial, share: 1 }];
  const p = targetShareAt(current, at);
  const parts = [
    ...replaces.map((r) => ({ taskDefinitionArn: r.taskDefinitionArn, share: r.share * (1 - p) })),
    { taskDefinitionArn: current.targetTaskDefinitionArn, share: p },
  ];
  return normalize(parts);
}

/**
 * Moves a service's deployments forward to `now`: statuses, running counts and the task definition the
 * service runs follow from the recorded deployments and the time. True when anything changed.
 */
export function settleDeployments(
  svc: { taskDefinitionArn: string; deployments: SimDeployment[] },
  now: number,
): boolean {
  let changed = false;
  for (const d of svc.deployments) {
    if (d.status === "ROLLBACK_IN_PROGRESS" && d.rollbackAt && now >= Date.parse(d.rollbackAt) + ROLLBACK_MS) {
      d.status = "ROLLBACK_SUCCESSFUL";
      d.finishedAt = new Date(Date.parse(d.rollbackAt) + ROLLBACK_MS).toISOString();
      d.runningCount = 0;
      if (d.sourceTaskDefinitionArn) svc.taskDefinitionArn = d.sourceTaskDefinitionArn;
      changed = true;
      continue;
    }
    if (d.status !== "IN_PROGRESS") continue;
    const elapsed = now - Date.parse(d.startedAt);
    if (d.failAt && now >= Date.parse(d.failAt)) {
      d.status = "ROLLBACK_SUCCESSFUL";
      d.statusReason =
        "ECS deployment circuit breaker: tasks failed to start (essential container exited: health check failed). Rolled back to the previous service revision.";
      d.finishedAt = d.failAt;
      d.runningCount = 0;
      if (d.sourceTaskDefinitionArn) svc.taskDefinitionArn = d.sourceTaskDefinitionArn;
      changed = true;
      continue;
    }
    // Failing tasks still start (and fail their health checks) one a minute until the circuit breaker trips.
    const running = d.failAt
      ? Math.min(d.desiredCount, Math.max(0, Math.floor(elapsed / TASK_START_MS)))
      : runningAfter(d, elapsed);
    if (running !== d.runningCount) {
      d.runningCount = running;
      changed = true;
    }
    if (!d.failAt && elapsed >= completesAfter(d)) {
      d.status = "SUCCESSFUL";
      d.finishedAt = new Date(Date.parse(d.startedAt) + completesAfter(d)).toISOString();
      d.runningCount = d.desiredCount;
      svc.taskDefinitionArn = d.targetTaskDefinitionArn;
      changed = true;
    }
  }
  return changed;
}

/** Merges entries of the same task definition, drops empty ones, largest first. */
function normalize(parts: TrafficShare[]): TrafficShare[] {
  const merged = new Map<string, number>();
  for (const p of parts) merged.set(p.taskDefinitionArn, (merged.get(p.taskDefinitionArn) ?? 0) + p.share);
  return [...merged]
    .map(([taskDefinitionArn, share]) => ({ taskDefinitionArn, share: round(share) }))
    .filter((p) => p.share > 0)
    .sort((a, b) => b.share - a.share);
}

function clamp(x: number): number {
  return Math.max(0, Math.min(1, x));
}

/** Shares (and simulated metrics) as exact as a test wants to compare: 0.9, not 0.8999999999999999. */
export function round(x: number): number {
  return Math.round(x * 1e9) / 1e9;
}
