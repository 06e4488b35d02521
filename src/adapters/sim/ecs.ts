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
import { SIM_ACCOUNT, type SimWorld } from "./world.js";

/** A new task starts every simulated minute; a deployment of 4 tasks succeeds after 4 minutes. */
const TASK_START_MS = 60_000;
/** A deployment told to fail is rolled back by the circuit breaker after 3 minutes. */
const FAIL_AFTER_MS = 3 * 60_000;
const ROLLBACK_MS = 60_000;

/** Simulated ECS: plays the same calls as the real adapter, against SimWorld, as simulated time passes. */
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

  private call(op: string, input: Record<string, unknown>): void {
    this.world.emit({ kind: "aws", api: "ecs", op, input });
  }

  /** Moves every deployment of the service forward to the simulated now. */
  private settle(target: EcsTarget): void {
    const now = this.world.clock.now().getTime();
    this.world.update((s) => {
      const svc = s.services[this.world.key(target.cluster, target.service)];
      if (!svc) return;
      for (const d of svc.deployments) {
        if (d.status === "ROLLBACK_IN_PROGRESS" && d.rollbackAt && now >= Date.parse(d.rollbackAt) + ROLLBACK_MS) {
          d.status = "ROLLBACK_SUCCESSFUL";
          d.finishedAt = new Date(Date.parse(d.rollbackAt) + ROLLBACK_MS).toISOString();
          d.runningCount = 0;
          if (d.sourceTaskDefinitionArn) svc.taskDefinitionArn = d.sourceTaskDefinitionArn;
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
          continue;
        }
        d.runningCount = Math.min(d.desiredCount, Math.floor(elapsed / TASK_START_MS));
        if (!d.failAt && d.runningCount >= d.desiredCount) {
          d.status = "SUCCESSFUL";
          d.finishedAt = new Date(Date.parse(d.startedAt) + d.desiredCount * TASK_START_MS).toISOString();
          svc.taskDefinitionArn = d.targetTaskDefinitionArn;
        }
      }
    });
  }

  async describeService(target: EcsTarget): Promise<ServiceState> {
    this.call("DescribeServices", { cluster: target.cluster, services: [target.service] });
    this.settle(target);
    const svc = this.service(target);
    const active = svc.deployments.find((d) => d.status === "IN_PROGRESS");
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
    const found = defs.find((d) => d.arn === taskDefinition || `${d.family}:${d.revision}` === taskDefinition);
    if (!found) {
      throw new DeploybotError(
        ErrorCode.NotFound,
        `ECS task definition ${taskDefinition} not found: check the revision (e.g. web:25) or register it first`,
      );
    }
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
    return this.world.update((s) => {
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
  }

  async updateService(target: EcsTarget, taskDefinitionArn: string, strategy: DeploymentStrategy): Promise<void> {
    // As the real adapter: the service's own deployment settings are read first and kept.
    this.call("DescribeServices", { cluster: target.cluster, services: [target.service] });
    this.call("UpdateService", {
      cluster: target.cluster,
      service: target.service,
      taskDefinition: taskDefinitionArn,
      deploymentConfiguration: deploymentConfiguration(strategy),
    });
    this.settle(target);
    const id = this.world.nextId();
    const now = this.world.clock.now();
    this.world.update((s) => {
      const key = this.world.key(target.cluster, target.service);
      const svc = s.services[key];
      if (!svc)
        throw new DeploybotError(
          ErrorCode.NotFound,
          `ECS service ${target.service} not found in cluster ${target.cluster}`,
        );
      const failing = s.failNext.indexOf(key);
      if (failing >= 0) s.failNext.splice(failing, 1);
      // A new deployment supersedes one in progress, as ECS does.
      for (const d of svc.deployments) if (d.status === "IN_PROGRESS") d.status = "STOPPED";
      svc.deployments.unshift({
        arn: `arn:aws:ecs:${target.region}:${SIM_ACCOUNT}:service-deployment/${target.cluster}/${target.service}/sim${id}`,
        status: "IN_PROGRESS",
        targetTaskDefinitionArn: taskDefinitionArn,
        sourceTaskDefinitionArn: svc.taskDefinitionArn,
        desiredCount: svc.desiredCount,
        runningCount: 0,
        startedAt: now.toISOString(),
        ...(failing >= 0 ? { failAt: new Date(now.getTime() + FAIL_AFTER_MS).toISOString() } : {}),
      });
      svc.deployments.splice(20);
      // ECS reports the new task definition on the service as soon as UpdateService returns.
      svc.taskDefinitionArn = taskDefinitionArn;
    });
  }

  async listServiceDeployments(
    target: EcsTarget,
    since?: Date,
  ): Promise<Array<{ arn: string; status: EcsDeploymentStatus }>> {
    this.call("ListServiceDeployments", {
      cluster: target.cluster,
      service: target.service,
      ...(since ? { createdAt: { after: since.toISOString() } } : {}),
    });
    this.settle(target);
    return this.service(target)
      .deployments.filter((d) => !since || Date.parse(d.startedAt) >= since.getTime())
      .map((d) => ({ arn: d.arn, status: d.status }));
  }

  async describeServiceDeployment(target: EcsTarget, arn: string): Promise<EcsDeployment> {
    this.call("DescribeServiceDeployments", { serviceDeploymentArns: [arn] });
    this.settle(target);
    const d = this.service(target).deployments.find((x) => x.arn === arn);
    if (!d) throw new DeploybotError(ErrorCode.NotFound, `ECS service deployment ${arn} not found`);
    const { failAt: _f, rollbackAt: _r, startedAt, finishedAt, ...rest } = d;
    return {
      ...rest,
      startedAt: new Date(startedAt),
      ...(finishedAt ? { finishedAt: new Date(finishedAt) } : {}),
    };
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
      d.status = "ROLLBACK_IN_PROGRESS";
      d.rollbackAt = now;
    });
  }
}
