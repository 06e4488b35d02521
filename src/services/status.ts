import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import { type Deployment, IN_FLIGHT, PENDING } from "../domain/deployment.js";
import { allTargets, findTarget, type Target, timeZoneOf } from "../domain/targets.js";
import { asDeploybotError } from "../errors.js";
import {
  type ActiveFreeze,
  activeFreezes,
  type CalendarVerdict,
  checkCalendar,
  nextFreeze,
  type UpcomingFreeze,
  windowStatus,
} from "../policies/calendar.js";
import type { EcsPort } from "../ports.js";
import type { Lock, Store } from "../store/index.js";
import { versionOf } from "./rollout.js";
import type { TrafficSteps } from "./steps.js";

export interface TargetStatus {
  service: string;
  environment: string;
  timeZone: string;
  version: string | null;
  taskDefinition: string | null;
  running: number | null;
  desired: number | null;
  /** Why ECS could not be read, when it could not. */
  ecsError: string | null;
  inFlight: Deployment | null;
  lock: Lock | null;
  calendar: CalendarVerdict;
  /** Guardrail breaches still open on this service and environment. */
  incidents: Array<{ guardrail: string; severity: string; deploymentId: number; since: string }>;
  /** With traffic steps: the ECS service taking the traffic now, and the previous version kept on the other side. */
  live?: string;
  kept?: { version: string; where: string; until: string; deploymentId: number } | null;
}

export interface EnvironmentCalendar {
  environment: string;
  timeZone: string;
  active: ActiveFreeze[];
  next: UpcomingFreeze | null;
  window: ReturnType<typeof windowStatus>;
  hasWindows: boolean;
}

/** Reads what runs where (ECS), what deploybot is doing (the store) and what the calendar allows. */
export class StatusService {
  /** Task definitions never change once registered, so their versions are cached by ARN. */
  private readonly versions = new Map<string, string>();
  /** An environment's calendar changes at most once a minute; all its services share one verdict. */
  private readonly calendars = new Map<string, CalendarVerdict>();

  constructor(
    private readonly deps: { config: Config; store: Store; ecs: EcsPort; clock: Clock; steps?: TrafficSteps },
  ) {}

  async target(t: Target): Promise<TargetStatus> {
    const now = this.deps.clock.now();
    const { store } = this.deps;
    const inFlight = (await store.deployments.latestOf(t.service, t.environment, [...IN_FLIGHT, ...PENDING])) ?? null;
    const base = {
      service: t.service,
      environment: t.environment,
      timeZone: t.timeZone,
      inFlight,
      lock: (await store.locks.get(t.service, t.environment)) ?? null,
      calendar: this.calendar(t, now),
      incidents: (await store.incidents.activeOf(t.service, t.environment)).map((i) => ({
        guardrail: i.guardrail,
        severity: i.severity,
        deploymentId: i.deploymentId,
        since: i.firstSeen,
      })),
    };
    try {
      const steps = this.deps.steps;
      const live = steps ? await steps.liveEcs(t) : t.ecs;
      const svc = await this.deps.ecs.describeService(live);
      const sides =
        steps && live !== t.ecs
          ? {
              live: live.cluster === t.ecs.cluster ? live.service : `${live.cluster}/${live.service}`,
              kept: await steps.kept(t),
            }
          : {};
      return {
        ...base,
        ...sides,
        version: await this.versionOf(t, svc.taskDefinitionArn),
        taskDefinition: svc.taskDefinitionArn,
        running: svc.runningCount,
        desired: svc.desiredCount,
        ecsError: null,
      };
    } catch (err) {
      return {
        ...base,
        version: null,
        taskDefinition: null,
        running: null,
        desired: null,
        ecsError: asDeploybotError(err).message,
      };
    }
  }

  private calendar(t: Target, now: Date): CalendarVerdict {
    const key = `${t.environment}|${Math.floor(now.getTime() / 60_000)}`;
    let verdict = this.calendars.get(key);
    if (!verdict) {
      if (this.calendars.size > 100) this.calendars.clear();
      verdict = checkCalendar(t.policy, t.timeZone, now);
      this.calendars.set(key, verdict);
    }
    return verdict;
  }

  private async versionOf(t: Target, arn: string): Promise<string> {
    const cached = this.versions.get(arn);
    if (cached) return cached;
    const version = versionOf(t, await this.deps.ecs.describeTaskDefinition(t.ecs, arn));
    this.versions.set(arn, version);
    return version;
  }

  /** Every service × environment, read in parallel. */
  overview(): Promise<TargetStatus[]> {
    return Promise.all(allTargets(this.deps.config).map((t) => this.target(t)));
  }

  /** One service in each of its environments. */
  service(service: string): Promise<TargetStatus[]> {
    return Promise.all(
      allTargets(this.deps.config)
        .filter((t) => t.service === service)
        .map((t) => this.target(t)),
    );
  }

  one(service: string, environment: string): Promise<TargetStatus> {
    const t = findTarget(this.deps.config, service, environment);
    if (!t) throw new Error(`${service} is not configured in ${environment}`);
    return this.target(t);
  }

  history(service: string, environment: string, limit = 10): Promise<Deployment[]> {
    return this.deps.store.deployments.history(service, environment, limit);
  }

  /** Each environment's active freezes, the next one, and its deploy window. */
  freezes(): EnvironmentCalendar[] {
    const now = this.deps.clock.now();
    return Object.entries(this.deps.config.environments).map(([environment, policy]) => {
      const timeZone = timeZoneOf(this.deps.config, environment);
      return {
        environment,
        timeZone,
        active: activeFreezes(policy.freezes, timeZone, now),
        next: nextFreeze(policy.freezes, timeZone, now),
        window: windowStatus(policy.windows, timeZone, now),
        hasWindows: policy.windows.length > 0,
      };
    });
  }
}
