import { DeploybotError, ErrorCode } from "../../errors.js";
import { settleDeployments, trafficOf } from "./rollout.js";
import { WorldFaults } from "./world-faults.js";
import { routerMetricAt, serviceMetricAt, targetGroupMetricAt, versionMetricAt, weightsAt } from "./world-metrics.js";
import { applyPage, type SimPageEvent } from "./world-pagerduty.js";
import { type SimAlert, type SimPage, type SimRouter, type SimService, serviceKey } from "./world-state.js";

// src/local imports these from here; everything else imports them from world-state.ts.
export type { SimApi, SimEvent, SimSlackMessage, SimSystem } from "./world-state.js";

/** The world file next to a bot's db: `<dbFile>.sim`, or in memory for an in-memory db. */
export function simFileFor(dbFile: string): string {
  return dbFile === ":memory:" ? ":memory:" : `${dbFile}.sim`;
}

/**
 * The simulated AWS, PagerDuty and Slack world behind the console and the scenario tests: ECS services,
 * deployments and task definitions, metric values per version, PagerDuty alerts, who is on call, Slack's
 * messages and the faults the console injected. It is outside the bot: it lives in its own SQLite file,
 * written synchronously at every accepted call, so a bot that dies mid-call never undoes what the world did.
 */
export class SimWorld extends WorldFaults {
  key(cluster: string, service: string): string {
    return serviceKey(cluster, service);
  }

  // --- ECS ----------------------------------------------------------------------------------------------

  /**
   * Moves every deployment of the service forward to the simulated now: statuses, running counts and the
   * service's task definition follow from the recorded deployments and the time. Written only when changed.
   */
  settle(cluster: string, service: string): void {
    this.assertAlive("ECS");
    this.db.transaction(() => this.settleNow(cluster, service)).immediate();
  }

  private settleNow(cluster: string, service: string): void {
    this.refresh();
    const svc = this.state.services[this.key(cluster, service)];
    if (!svc) return;
    if (settleDeployments(svc, this.clock.now().getTime())) this.write();
  }

  /** The ECS service's traffic at `at`: which task definition (and version) takes which share, largest first. */
  trafficAt(
    cluster: string,
    service: string,
    at: Date = this.clock.now(),
  ): Array<{ version: string; taskDefinitionArn: string; share: number }> {
    const svc = this.read().services[this.key(cluster, service)];
    if (!svc) return [];
    return trafficOf(svc.deployments, svc.initialTaskDefinitionArn, at.getTime()).map((s) => ({
      version: this.versionOf(svc, s.taskDefinitionArn),
      ...s,
    }));
  }

  /** The image tag of the service's container in a task definition (its version). */
  versionOf(svc: { container: string }, taskDefinitionArn: string): string {
    const def = this.state.taskDefinitions[taskDefinitionArn];
    const image = def?.containers.find((c) => c.name === svc.container)?.image ?? def?.containers[0]?.image ?? "";
    const name = image.slice(image.lastIndexOf("/") + 1);
    const colon = name.lastIndexOf(":");
    return colon >= 0 ? name.slice(colon + 1) : taskDefinitionArn.slice(taskDefinitionArn.lastIndexOf("/") + 1);
  }

  // --- Metrics ------------------------------------------------------------------------------------------

  private ecsOf(service: string, environment: string): SimService | undefined {
    const ecs = this.config.services[service]?.environments[environment]?.ecs;
    return ecs ? this.state.services[this.key(ecs.cluster, ecs.service)] : undefined;
  }

  /** The keys of every side of the two-sided target an ECS service belongs to (none for a one-service target). */
  sideKeysOf(key: string): string[] {
    const svc = this.read().services[key];
    return svc ? (this.sidesOf(svc)?.services.map((x) => this.key(x.cluster, x.service)) ?? []) : [];
  }

  /** The ECS services a target's router weighs (blue and green), when it has traffic steps. */
  private sidesOf(svc: SimService): { router: SimRouter; services: SimService[] } | undefined {
    const elb = this.state.elb;
    if (!elb) return undefined;
    const key = this.key(svc.cluster, svc.service);
    const mine = Object.values(elb.targetGroups).find((tg) => tg.service === key);
    if (!mine) return undefined;
    const router = Object.values(elb.routers).find((r) => mine.arn in (r.history.at(-1)?.weights ?? {}));
    if (!router) return undefined;
    const services = Object.keys(router.history.at(-1)?.weights ?? {})
      .map((tg) => elb.targetGroups[tg]?.service)
      .flatMap((k) => (k && this.state.services[k] ? [this.state.services[k] as SimService] : []));
    return { router, services };
  }

  /**
   * The side of a two-sided target whose version is newest now: of the sides that run tasks, the one whose latest ECS
   * deployment is the most recent (the stepped version while it is checked and shifted, the live one after a switch
   * back once the other side is scaled down), leaving out a side whose latest deployment ECS rolled back. A target
   * without sides is its own ECS service.
   */
  private newestSide(svc: SimService): SimService {
    const sides = this.sidesOf(svc);
    if (!sides) return svc;
    const latest = (x: SimService) => x.deployments[0];
    const failed = new Set(["ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED", "STOPPED"]);
    const running = sides.services.filter((x) => x.desiredCount > 0 && !failed.has(latest(x)?.status ?? ""));
    const started = (x: SimService) => Date.parse(latest(x)?.startedAt ?? "1970-01-01T00:00:00Z");
    return running.sort((a, b) => started(b) - started(a))[0] ?? svc;
  }

  /** The newest version of a service now: the target of a deployment in progress, else the one taking most traffic. */
  newestTaskDefinition(cluster: string, service: string): string | undefined {
    const svc = this.state.services[this.key(cluster, service)];
    if (!svc) return undefined;
    const now = this.clock.now().getTime();
    const active = svc.deployments.find((d) => d.status === "IN_PROGRESS" && Date.parse(d.startedAt) <= now);
    return active?.targetTaskDefinitionArn ?? this.trafficAt(cluster, service)[0]?.taskDefinitionArn;
  }

  /**
   * `:metric SERVICE ENV NAME VALUE`: from now on the version that is newest now reads VALUE for NAME;
   * the value stays with that version. Returns that version.
   */
  setMetric(
    service: string,
    environment: string,
    metric: string,
    value: number,
  ): { version: string; taskDefinitionArn: string } {
    const configured = this.ecsOf(service, environment);
    if (!configured)
      throw new DeploybotError(ErrorCode.NotFound, `${service} ${environment} is not a simulated ECS service`);
    for (const side of this.sidesOf(configured)?.services ?? []) this.settle(side.cluster, side.service);
    const svc = this.newestSide(configured);
    const key = this.key(svc.cluster, svc.service);
    const taskDefinitionArn = this.newestTaskDefinition(svc.cluster, svc.service) ?? svc.taskDefinitionArn;
    const at = this.clock.now().toISOString();
    this.update((s) => {
      const byVersion = s.metrics[key] ?? {};
      const byMetric = byVersion[taskDefinitionArn] ?? {};
      byMetric[metric] = [...(byMetric[metric] ?? []), { at, value }];
      byVersion[taskDefinitionArn] = byMetric;
      s.metrics[key] = byVersion;
    });
    return { version: this.versionOf(svc, taskDefinitionArn), taskDefinitionArn };
  }

  /** What one version reads at `at`: the last value `:metric` set for it by then, else the healthy default. */
  versionMetricAt(svc: SimService, taskDefinitionArn: string, metric: string, at: number): number | undefined {
    return versionMetricAt(this.state, this.config, svc, taskDefinitionArn, metric, at);
  }

  /**
   * The service's metric at `at`, as its load balancer sees it: each version's own value weighted by its share
   * of the traffic; `request_count` is the total (each version serves its share of what it would take alone),
   * `error_rate` is weighted by the requests each version served. Undefined when no version has a value.
   */
  metricAt(service: string, environment: string, metric: string, at: Date, targetGroup?: string): number | undefined {
    if (targetGroup && this.state.elb?.targetGroups[targetGroup])
      return targetGroupMetricAt(this.state, this.config, targetGroup, metric, at.getTime());
    const svc = this.ecsOf(service, environment);
    if (!svc) return undefined;
    const sides = this.sidesOf(svc);
    if (sides) return routerMetricAt(this.state, this.config, sides.router, metric, at.getTime());
    return serviceMetricAt(this.state, this.config, svc, metric, at.getTime());
  }

  // --- Elastic Load Balancing ---------------------------------------------------------------------------

  /** A listener rule or listener of the simulated ALB, as it is now. */
  router(arn: string): Readonly<SimRouter> | undefined {
    return this.read().elb?.routers[arn];
  }

  /** The forward weights of a router now, by target group ARN. */
  weightsNow(arn: string): Record<string, number> {
    const router = this.router(arn);
    return router ? weightsAt(router, this.clock.now().getTime()) : {};
  }

  /** Sets a router's actions (ModifyRule / ModifyListener), recording when its weights changed. */
  setRouterActions(arn: string, actions: Array<Record<string, unknown>>, weights: Record<string, number>): void {
    const at = this.clock.now().toISOString();
    this.update((s) => {
      const router = s.elb?.routers[arn];
      if (!router) throw new DeploybotError(ErrorCode.NotFound, `Elastic Load Balancing has no ${arn}`);
      router.actions = structuredClone(actions);
      router.history.push({ at, weights: { ...weights } });
      // Weights older than a day are no longer replayed by any guardrail: keep the last one before that.
      const dayAgo = Date.parse(at) - 24 * 3_600_000;
      while (router.history.length > 1 && Date.parse(router.history[1]?.at ?? at) <= dayAgo) router.history.shift();
    });
  }

  /** DescribeTargetHealth: the tasks of the target group's ECS service that run now (all of them healthy). */
  targetHealth(targetGroupArn: string): { healthy: number; total: number } | undefined {
    const tg = this.read().elb?.targetGroups[targetGroupArn];
    const found = tg ? this.state.services[tg.service] : undefined;
    if (!tg || !found) return undefined;
    this.settle(found.cluster, found.service);
    const svc = this.state.services[tg.service] as SimService;
    const rolling = svc.deployments.find((d) => d.status === "IN_PROGRESS");
    const healthy = rolling ? rolling.runningCount : svc.desiredCount;
    return { healthy, total: Math.max(healthy, svc.desiredCount) };
  }

  /** `:fail SERVICE ENV`: the next deployment of that ECS service fails to stabilise. */
  failNext(cluster: string, service: string): void {
    this.update((s) => {
      s.failNext.push(this.key(cluster, service));
    });
  }

  // --- PagerDuty ----------------------------------------------------------------------------------------

  setOnCall(user: string | null): void {
    this.update((s) => {
      s.onCall = user;
    });
  }

  setPagerDutyReachable(reachable: boolean): void {
    this.update((s) => {
      s.pagerdutyReachable = reachable;
    });
  }

  /** Applies one accepted PagerDuty event to its dedup key, as PagerDuty does (see applyPage). */
  page(event: SimPageEvent): SimPage {
    const at = this.clock.now().toISOString();
    return this.update((s) => applyPage(s.pagerduty, event, at));
  }

  /** Every event PagerDuty accepted, oldest first (deduplicated ones marked). */
  pages(): SimPage[] {
    return structuredClone(this.read().pagerduty.events);
  }

  /** PagerDuty's state of a dedup key, if it has seen one. */
  alert(dedupKey: string): SimAlert | undefined {
    const a = this.read().pagerduty.alerts[dedupKey];
    return a ? { ...a } : undefined;
  }
}
