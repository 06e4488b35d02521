import { DeploybotError, ErrorCode } from "../../errors.js";
import type {
  DeploymentStrategy,
  EcsDeployment,
  EcsDeploymentStatus,
  EcsPort,
  EcsTarget,
  ServiceState,
  TaskDefinition,
} from "../../ports.js";
import { deploymentConfiguration } from "../aws/ecs.js";
import { FAIL_AFTER_MS } from "./rollout.js";
import type { SimWorld } from "./world.js";
import { SIM_ACCOUNT } from "./world-state.js";

/**
 * Simulated ECS: plays the same calls as the real adapter, with the same inputs, against SimWorld as
 * simulated time passes. Each deployment follows its strategy (see rollout.ts for the traffic it shifts).
 */
export class SimEcs implements EcsPort {
  constructor(private readonly world: SimWorld) {}

  private service(target: EcsTarget) {
    const svc = this.world.read().services[this.world.key(target.cluster, target.service)];
    if (!svc) {
      throw new DeploybotError(
        ErrorCode.NotFound,
        `ECS service ${target.service} not found in cluster ${target.cluster} (${target.region}): check the ecs settings in the config`,
      );
    }
    return svc;
  }

  /** Prints the call, or refuses it (throttled, or this process is dead) with the error the real adapter raises. */
  private call(op: string, input: Record<string, unknown>): void {
    this.world.admit("ecs", op, input);
  }

  private settle(target: EcsTarget): void {
    this.world.settle(target.cluster, target.service);
  }

  async describeService(target: EcsTarget): Promise<ServiceState> {
    this.call("DescribeServices", { cluster: target.cluster, services: [target.service] });
    this.settle(target);
    const svc = this.service(target);
    const active = svc.deployments.find((d) => d.status === "IN_PROGRESS");
    this.world.completed("ecs", "DescribeServices");
    return {
      serviceArn: `arn:aws:ecs:${svc.region}:${SIM_ACCOUNT}:service/${svc.cluster}/${svc.service}`,
      taskDefinitionArn: svc.taskDefinitionArn,
      desiredCount: svc.desiredCount,
      runningCount: svc.desiredCount,
      pendingCount: active ? active.desiredCount - active.runningCount : 0,
    };
  }

  async describeTaskDefinition(_target: EcsTarget, taskDefinition: string): Promise<TaskDefinition> {
    this.call("DescribeTaskDefinition", { taskDefinition, include: ["TAGS"] });
    const defs = Object.values(this.world.read().taskDefinitions);
    // As ECS: an ARN, family:revision, or a bare family for its latest revision.
    const latest = defs
      .filter((d) => d.family === taskDefinition)
      .reduce<(typeof defs)[number] | undefined>((a, d) => (!a || d.revision > a.revision ? d : a), undefined);
    const found =
      latest ?? defs.find((d) => d.arn === taskDefinition || `${d.family}:${d.revision}` === taskDefinition);
    if (!found) {
      throw new DeploybotError(
        ErrorCode.NotFound,
        `ECS task definition ${taskDefinition} not found: check the revision (e.g. web:25) or register it first`,
      );
    }
    this.world.completed("ecs", "DescribeTaskDefinition");
    return structuredClone(found);
  }

  async registerTaskDefinition(target: EcsTarget, base: TaskDefinition, image: string): Promise<TaskDefinition> {
    if (!base.containers.some((c) => c.name === target.container)) {
      throw new DeploybotError(
        ErrorCode.AwsFailed,
        `container ${target.container} is not in task definition ${base.family}`,
      );
    }
    const containers = base.containers.map((c) => (c.name === target.container ? { ...c, image } : { ...c }));
    this.call("RegisterTaskDefinition", { family: base.family, containerDefinitions: containers });
    const registered = this.world.update((s) => {
      const revision =
        Math.max(
          0,
          ...Object.values(s.taskDefinitions)
            .filter((d) => d.family === base.family)
            .map((d) => d.revision),
        ) + 1;
      const arn = `arn:aws:ecs:${target.region}:${SIM_ACCOUNT}:task-definition/${base.family}:${revision}`;
      const def = { arn, family: base.family, revision, containers };
      s.taskDefinitions[arn] = def;
      return structuredClone(def);
    });
    this.world.completed("ecs", "RegisterTaskDefinition");
    return registered;
  }

  async updateService(
    target: EcsTarget,
    taskDefinitionArn: string,
    strategy: DeploymentStrategy,
    desiredCount?: number,
  ): Promise<void> {
    // As the real adapter: the service's own deployment settings are read first and sent back with the strategy.
    this.call("DescribeServices", { cluster: target.cluster, services: [target.service] });
    const svc = this.service(target);
    this.world.completed("ecs", "DescribeServices");
    if (this.world.dead) return;
    this.call("UpdateService", {
      cluster: target.cluster,
      service: target.service,
      taskDefinition: taskDefinitionArn,
      ...(desiredCount !== undefined ? { desiredCount } : {}),
      deploymentConfiguration: {
        maximumPercent: svc.maximumPercent,
        minimumHealthyPercent: svc.minimumHealthyPercent,
        ...deploymentConfiguration(strategy),
      },
    });
    this.settle(target);
    const now = this.world.clock.now();
    // What the new deployment replaces: the traffic as it is split right now (a deployment it supersedes included).
    const replaces = this.world
      .trafficAt(target.cluster, target.service, now)
      .map(({ taskDefinitionArn: arn, share }) => ({ taskDefinitionArn: arn, share }));
    // `:fail` names a service and environment: on a target with two sides, whichever side is deployed next.
    const siblings = this.world.sideKeysOf(this.world.key(target.cluster, target.service));
    this.world.update((s) => {
      const key = this.world.key(target.cluster, target.service);
      const service = s.services[key];
      if (!service)
        throw new DeploybotError(
          ErrorCode.NotFound,
          `ECS service ${target.service} not found in cluster ${target.cluster}`,
        );
      const id = s.nextId++;
      if (desiredCount !== undefined) service.desiredCount = desiredCount;
      const failing = s.failNext.findIndex((k) => k === key || siblings.includes(k));
      if (failing >= 0) s.failNext.splice(failing, 1);
      // A new deployment supersedes one in progress, as ECS does.
      for (const d of service.deployments) {
        if (d.status !== "IN_PROGRESS") continue;
        d.status = "STOPPED";
        d.stoppedAt = now.toISOString();
        d.finishedAt = now.toISOString();
      }
      service.deployments.unshift({
        arn: `arn:aws:ecs:${target.region}:${SIM_ACCOUNT}:service-deployment/${target.cluster}/${target.service}/sim${id}`,
        status: "IN_PROGRESS",
        targetTaskDefinitionArn: taskDefinitionArn,
        sourceTaskDefinitionArn: service.taskDefinitionArn,
        desiredCount: service.desiredCount,
        runningCount: 0,
        startedAt: now.toISOString(),
        strategy: structuredClone(strategy),
        replaces,
        ...(failing >= 0 ? { failAt: new Date(now.getTime() + FAIL_AFTER_MS).toISOString() } : {}),
      });
      // ECS keeps a bounded history; the oldest kept deployment's `replaces` still tells the traffic before it.
      service.deployments.splice(20);
      // ECS reports the new task definition on the service as soon as UpdateService returns.
      service.taskDefinitionArn = taskDefinitionArn;
    });
    this.world.completed("ecs", "UpdateService");
  }

  async scaleService(target: EcsTarget, desiredCount: number): Promise<void> {
    this.call("UpdateService", { cluster: target.cluster, service: target.service, desiredCount });
    this.settle(target);
    this.world.update((s) => {
      const service = s.services[this.world.key(target.cluster, target.service)];
      if (!service)
        throw new DeploybotError(
          ErrorCode.NotFound,
          `ECS service ${target.service} not found in cluster ${target.cluster}`,
        );
      service.desiredCount = desiredCount;
    });
    this.world.completed("ecs", "UpdateService");
  }

  async listServiceDeployments(
    target: EcsTarget,
    since?: Date,
  ): Promise<Array<{ arn: string; status: EcsDeploymentStatus }>> {
    this.call("ListServiceDeployments", {
      service: target.service,
      cluster: target.cluster,
      ...(since ? { createdAt: { after: since.toISOString() } } : {}),
    });
    this.settle(target);
    const out = this.service(target)
      .deployments.filter((d) => !since || Date.parse(d.startedAt) >= since.getTime())
      .map((d) => ({ arn: d.arn, status: d.status }));
    this.world.completed("ecs", "ListServiceDeployments");
    return out;
  }

  async describeServiceDeployment(target: EcsTarget, arn: string): Promise<EcsDeployment> {
    this.call("DescribeServiceDeployments", { serviceDeploymentArns: [arn] });
    this.settle(target);
    const d = this.service(target).deployments.find((x) => x.arn === arn);
    if (!d) throw new DeploybotError(ErrorCode.NotFound, `ECS service deployment ${arn} not found`);
    const out: EcsDeployment = {
      arn: d.arn,
      status: d.status,
      ...(d.statusReason ? { statusReason: d.statusReason } : {}),
      targetTaskDefinitionArn: d.targetTaskDefinitionArn,
      ...(d.sourceTaskDefinitionArn ? { sourceTaskDefinitionArn: d.sourceTaskDefinitionArn } : {}),
      desiredCount: d.desiredCount,
      runningCount: d.runningCount,
      startedAt: new Date(d.startedAt),
      ...(d.finishedAt ? { finishedAt: new Date(d.finishedAt) } : {}),
    };
    this.world.completed("ecs", "DescribeServiceDeployments");
    return out;
  }

  async stopServiceDeployment(target: EcsTarget, arn: string): Promise<void> {
    this.call("StopServiceDeployment", { serviceDeploymentArn: arn, stopType: "ROLLBACK" });
    this.settle(target);
    const now = this.world.clock.now().toISOString();
    this.world.update((s) => {
      const d = s.services[this.world.key(target.cluster, target.service)]?.deployments.find((x) => x.arn === arn);
      if (d?.status !== "IN_PROGRESS") {
        throw new DeploybotError(
          ErrorCode.AwsFailed,
          `ECS service deployment ${arn} is not in progress (${d?.status ?? "unknown"}); it cannot be stopped`,
        );
      }
      // The traffic goes back to what the deployment replaced at once; ECS reports success a minute later.
      d.status = "ROLLBACK_IN_PROGRESS";
      d.rollbackAt = now;
    });
    this.world.completed("ecs", "StopServiceDeployment");
  }
}
