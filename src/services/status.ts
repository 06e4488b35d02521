import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import { type Deployment, IN_FLIGHT, PENDING } from "../domain/deployment.js";
import { allTargets, findTarget, type Target, timeZoneOf } from "../domain/targets.js";
import { asDeploybotError } from "../errors.js";
import { activeFreezes, type CalendarVerdict, checkCalendar, nextFreeze, windowStatus } from "../policies/calendar.js";
import type { EcsPort, ServiceState } from "../ports.js";
import type { EnvironmentCalendar, TargetStatus } from "../slack/status.js";
import type { Incident, Lock, Store } from "../store/index.js";
import { versionOf } from "./rollout.js";
import type { TrafficSteps } from "./steps.js";

/** What the store says about one target. */
interface Facts {
  inFlight: Deployment | null;
  lock: Lock | null;
  incidents: Incident[];
}

const IN_FLIGHT_OR_PENDING = [...IN_FLIGHT, ...PENDING];

/** The most targets a plain /status lists: a Slack message holds 50 blocks, and each target is one. */
export const OVERVIEW_LIMIT = 45;

/** The overview: the targets listed, and how many more are configured (and busy) than it lists. */
export interface Overview {
  targets: TargetStatus[];
  notListed: number;
  /** Of those not listed, how many have something in flight, a lock or an unresolved incident. */
  busyNotListed: number;
}

/** Reads what runs where (ECS), what deploybot is doing (the store) and what the calendar allows. */
export class StatusService {
  /** Task definitions never change once registered, so their versions are cached by ARN (the read itself too). */
  private readonly versions = new Map<string, Promise<string>>();
  /** ECS reads of a service still under way: people asking at once (a burst of /status) share one. */
  private readonly reading = new Map<string, Promise<ServiceState>>();
  /** An environment's calendar changes at most once a minute; all its services share one verdict. */
  private readonly calendars = new Map<string, CalendarVerdict>();

  constructor(
    private readonly deps: { config: Config; store: Store; ecs: EcsPort; clock: Clock; steps?: TrafficSteps },
  ) {}

  async target(t: Target): Promise<TargetStatus> {
    const { store } = this.deps;
    return this.assemble(t, {
      inFlight: (await store.deployments.latestOf(t.service, t.environment, IN_FLIGHT_OR_PENDING)) ?? null,
      lock: (await store.locks.get(t.service, t.environment)) ?? null,
      incidents: await store.incidents.activeOf(t.service, t.environment),
    });
  }

  /** A target's status from what the store says about it, and what ECS runs there now. */
  private async assemble(t: Target, facts: Facts): Promise<TargetStatus> {
    const now = this.deps.clock.now();
    const base = {
      service: t.service,
      environment: t.environment,
      timeZone: t.timeZone,
      inFlight: facts.inFlight,
      lock: facts.lock,
      calendar: this.calendar(t, now),
      incidents: facts.incidents.map((i) => ({
        guardrail: i.guardrail,
        severity: i.severity,
        deploymentId: i.deploymentId,
        since: i.firstSeen,
      })),
    };
    try {
      const steps = this.deps.steps;
      const live = steps ? await steps.liveEcs(t) : t.ecs;
      const svc = await this.describe(live);
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

  private describe(ecs: Target["ecs"]): Promise<ServiceState> {
    const k = `${ecs.region}\u0000${ecs.cluster}\u0000${ecs.service}`;
    let read = this.reading.get(k);
    if (!read) {
      read = this.deps.ecs.describeService(ecs);
      this.reading.set(k, read);
      const done = () => this.reading.delete(k);
      read.then(done, done);
    }
    return read;
  }

  private versionOf(t: Target, arn: string): Promise<string> {
    let version = this.versions.get(arn);
    if (!version) {
      version = this.deps.ecs.describeTaskDefinition(t.ecs, arn).then((def) => versionOf(t, def));
      this.versions.set(arn, version);
      // A failed read is not kept: the next /status asks again.
      version.catch(() => this.versions.delete(arn));
    }
    return version;
  }

  /**
   * Every service × environment, or OVERVIEW_LIMIT of them when there are more (the busy ones first, in config
   * order): three queries for all targets, then ECS for each listed one, in parallel.
   */
  async overview(): Promise<Overview> {
    const { store, config } = this.deps;
    const key = (service: string, environment: string) => `${service}\u0000${environment}`;
    // Each target's newest deployment in flight (briefs come oldest first, so the newest stays, as latestOf finds
    // it); the full rows are read below for the listed targets only.
    const inFlight = new Map<string, number>();
    for (const d of await store.deployments.briefs(IN_FLIGHT_OR_PENDING))
      inFlight.set(key(d.service, d.environment), d.id);
    const locks = new Map((await store.locks.all()).map((l) => [key(l.service, l.environment), l]));
    const incidents = new Map<string, Incident[]>();
    for (const { service, environment, incident } of await store.incidents.activeByTarget()) {
      const k = key(service, environment);
      incidents.set(k, [...(incidents.get(k) ?? []), incident]);
    }
    const all = allTargets(config);
    const busy = (t: Target) => {
      const k = key(t.service, t.environment);
      return inFlight.has(k) || locks.has(k) || incidents.has(k);
    };
    let listed = all;
    if (all.length > OVERVIEW_LIMIT) {
      const chosen = new Set([...all.filter(busy), ...all.filter((t) => !busy(t))].slice(0, OVERVIEW_LIMIT));
      listed = all.filter((t) => chosen.has(t));
    }
    const ids = listed.flatMap((t) => inFlight.get(key(t.service, t.environment)) ?? []);
    const deployments = new Map((await store.deployments.getMany(ids)).map((d) => [d.id, d]));
    const targets = await Promise.all(
      listed.map((t) => {
        const k = key(t.service, t.environment);
        return this.assemble(t, {
          inFlight: deployments.get(inFlight.get(k) ?? 0) ?? null,
          lock: locks.get(k) ?? null,
          incidents: incidents.get(k) ?? [],
        });
      }),
    );
    return {
      targets,
      notListed: all.length - listed.length,
      busyNotListed: all.filter(busy).length - listed.filter(busy).length,
    };
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
