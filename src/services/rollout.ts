import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Config, EnvironmentPolicy, ServiceEnvironment } from "../config/schema.js";
import type { Deployment } from "../domain/deployment.js";
import { findTarget, type Target } from "../domain/targets.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import {
  type DeploymentStrategy,
  ECS_TERMINAL,
  type EcsDeployment,
  type EcsPort,
  type EcsTarget,
  type TaskDefinition,
} from "../ports.js";
import type { Store } from "../store/index.js";
import type { Lifecycle } from "./lifecycle.js";
import type { Outbox } from "./outbox.js";
import type { Handlers, IntentOf, Performed } from "./reconciler.js";

/** A task definition revision such as `web:25`, as opposed to an image tag. */
export const REVISION_RE = /^[A-Za-z0-9_-]+:\d+$/;

/** The config's deploy strategy in the port's terms. */
export function strategyOf(settings: ServiceEnvironment): DeploymentStrategy {
  const s = settings.strategy;
  switch (s.type) {
    case "ROLLING":
      return { type: "ROLLING" };
    case "BLUE_GREEN":
      return { type: "BLUE_GREEN", bakeTimeMinutes: Math.round(s.bake_time / 60_000) };
    case "LINEAR":
      return { type: "LINEAR", stepPercent: s.step_percent, stepBakeMinutes: Math.round(s.step_bake / 60_000) };
    case "CANARY":
      return { type: "CANARY", canaryPercent: s.canary_percent, canaryBakeMinutes: Math.round(s.canary_bake / 60_000) };
    case "STEPS":
      // The new version goes to the idle side, which takes no traffic until deploybot moves the weights: ECS
      // simply replaces its tasks.
      return { type: "ROLLING" };
  }
}

/** How a rollback restores traffic: all of it at once, never the deploy's canary or linear shift. */
export function rollbackStrategy(policy: EnvironmentPolicy): DeploymentStrategy {
  const s = policy.rollback_strategy;
  return s.type === "BLUE_GREEN"
    ? { type: "BLUE_GREEN", bakeTimeMinutes: 0 }
    : { type: "ROLLING", maximumPercent: s.maximum_percent, minimumHealthyPercent: s.minimum_healthy_percent };
}

/** The version a task definition runs: the image tag of the configured container. */
export function versionOfImage(image: string): string {
  const name = image.slice(image.lastIndexOf("/") + 1);
  const at = name.indexOf("@");
  if (at >= 0) return name.slice(at + 1, at + 20);
  const colon = name.lastIndexOf(":");
  return colon >= 0 ? name.slice(colon + 1) : "latest";
}

/** The same image with another tag. */
export function imageWithTag(image: string, tag: string): string {
  const slash = image.lastIndexOf("/");
  const name = image.slice(slash + 1).replace(/[:@].*$/, "");
  return `${image.slice(0, slash + 1)}${name}:${tag}`;
}

/** The version a task definition runs, for the target's container (else family:revision). */
export function versionOf(t: Target, def: TaskDefinition): string {
  const image = def.containers.find((c) => c.name === t.ecs.container)?.image;
  return image ? versionOfImage(image) : `${def.family}:${def.revision}`;
}

/** An ECS deployment is looked for this long after the call before deploybot checks the service itself. */
const FIND_DEPLOYMENT_FOR_MS = 5 * 60_000;

export interface RolloutDeps {
  config: Config;
  store: Store;
  clock: Clock;
  ecs: EcsPort;
  outbox: Outbox;
  lifecycle: Lifecycle;
  logger: Logger;
  /**
   * On a target with two sides behind a load balancer (traffic steps), which ECS service a rollout acts on; decided
   * once and recorded on the deployment. Without it (or when it answers null) the configured service.
   */
  placement?: (d: Deployment, t: Target) => Promise<Placement | null>;
}

/** Where a rollout acts: the service UpdateService changes, the one whose task definition is current, its size. */
export interface Placement {
  ecs: EcsTarget;
  from: EcsTarget;
  desiredCount?: number;
}

/** The ECS service a deployment's rollout acts on, as recorded: its side of a two-sided target, else the configured one. */
export function ecsOf(d: Pick<Deployment, "progress">, t: Target): EcsTarget {
  const traffic = d.progress?.traffic;
  if (!traffic) return t.ecs;
  const side = traffic.plan.sides[traffic.side];
  return { ...t.ecs, cluster: side.cluster, service: side.service };
}

/**
 * The ECS rollout step, for deploys and rollbacks alike: the reconciler's handlers for UpdateService and
 * StopServiceDeployment, and `observe`, which follows an ECS deployment until it ends. Everything ECS-specific
 * about a rollout lives here (and in the ECS adapter), so another deploy target sits beside it.
 */
export class EcsRollout {
  constructor(private readonly d: RolloutDeps) {}

  private target(d: Deployment): Target {
    const t = findTarget(this.d.config, d.service, d.environment);
    if (!t) throw new DeploybotError(ErrorCode.NotFound, `${d.service} is not configured in ${d.environment}`);
    return t;
  }

  handlers(): Pick<Handlers, "ecs.rollout" | "ecs.stop"> {
    const unwanted = async (i: IntentOf<"ecs.rollout" | "ecs.stop">) => {
      const d = await this.d.store.deployments.get(i.effect.deploymentId);
      if (d?.status !== "deploying") return `deployment #${i.effect.deploymentId} is ${d?.status ?? "gone"}`;
      return d.startedAt ? "it already started on ECS" : null;
    };
    const abandoned = async (i: IntentOf<"ecs.rollout" | "ecs.stop">, reason: string) => {
      const d = await this.d.store.deployments.get(i.effect.deploymentId);
      if (d?.status === "deploying" && !d.startedAt) await this.d.lifecycle.notStarted(d, reason);
    };
    // A deploy that cannot start within 15 minutes fails cleanly (its window may be gone); a rollback keeps trying.
    const patienceMs = async (i: IntentOf<"ecs.rollout" | "ecs.stop">) => {
      const d = await this.d.store.deployments.get(i.effect.deploymentId);
      return d?.kind === "deploy" ? 15 * 60_000 : Number.POSITIVE_INFINITY;
    };
    return {
      "ecs.rollout": { perform: (i) => this.rollout(i), unwanted, abandoned, patienceMs },
      "ecs.stop": { perform: (i) => this.stop(i), unwanted, abandoned, patienceMs },
    };
  }

  /** What the service runs now, and the task definition `d` should run (registered if only an image tag is known). */
  private async plan(d: Deployment, t: Target, attempts: number, from: EcsTarget) {
    const { ecs } = this.d;
    const svc = await ecs.describeService(from);
    const current = await ecs.describeTaskDefinition(from, svc.taskDefinitionArn);
    const currentImage = current.containers.find((c) => c.name === t.ecs.container)?.image;
    if (!currentImage)
      throw new DeploybotError(
        ErrorCode.AwsFailed,
        `container ${t.ecs.container} is not in task definition ${current.family}:${current.revision}: check the ecs.container setting`,
      );
    if (d.taskDefinition) return { current, targetArn: d.taskDefinition };
    if (REVISION_RE.test(d.version))
      return { current, targetArn: (await ecs.describeTaskDefinition(from, d.version)).arn };
    if (versionOfImage(currentImage) === d.version) return { current, targetArn: current.arn };
    const image = imageWithTag(currentImage, d.version);
    if (attempts > 1) {
      // An earlier attempt may have registered it before the process stopped: the family's latest revision tells.
      const latest = await ecs.describeTaskDefinition(from, current.family);
      if (latest.revision > current.revision && latest.containers.some((c) => c.image === image))
        return { current, targetArn: latest.arn };
    }
    return { current, targetArn: (await ecs.registerTaskDefinition(from, current, image)).arn };
  }

  /** The ECS deployment of `taskDefinition` created at or after `since`, if ECS has one. */
  private async deploymentOf(on: EcsTarget, taskDefinition: string, since: Date): Promise<EcsDeployment | undefined> {
    for (const brief of (await this.d.ecs.listServiceDeployments(on, since)).slice(0, 5)) {
      const dep = await this.d.ecs.describeServiceDeployment(on, brief.arn);
      if (dep.targetTaskDefinitionArn === taskDefinition) return dep;
    }
    return undefined;
  }

  private async rollout(intent: IntentOf<"ecs.rollout">): Promise<Performed> {
    const { store, clock, ecs } = this.d;
    let d = await store.deployments.must(intent.effect.deploymentId);
    const t = this.target(d);
    const since = new Date(Date.parse(intent.createdAt) - 1000);
    const where = (await this.d.placement?.(d, t)) ?? { ecs: t.ecs, from: t.ecs };
    d = await store.deployments.must(d.id);
    // A stepped deploy's idle side takes no traffic while ECS replaces its tasks: a plain rolling update.
    const stepped = d.kind === "deploy" && d.progress?.traffic?.mode === "steps";
    const strategy: DeploymentStrategy = stepped
      ? { type: "ROLLING" }
      : d.kind === "rollback"
        ? rollbackStrategy(t.policy)
        : strategyOf(t.settings);
    if (intent.attempts > 1 && d.taskDefinition) {
      // The call may have reached ECS before the process stopped: adopt the deployment it made, and record
      // (audit row, note) what the interrupted attempt could not.
      const made = await this.deploymentOf(where.ecs, d.taskDefinition, since);
      if (made)
        return {
          result: { adopted: made.arn },
          record: () =>
            this.updated(d, made.startedAt ?? clock.now(), made.arn, strategy, where, { adopted: made.arn }),
        };
    }
    const { current, targetArn } = await this.plan(d, t, intent.attempts, where.from);
    // Recorded before UpdateService: a retry then knows exactly what it asked ECS for.
    const planned = await store.deployments.patch(
      d.id,
      {
        taskDefinition: targetArn,
        previousTaskDefinition: d.previousTaskDefinition ?? current.arn,
        previousVersion: d.previousVersion ?? versionOf(t, current),
      },
      clock.now(),
    );
    await ecs.updateService(where.ecs, targetArn, strategy, where.desiredCount);
    const startedAt = clock.now();
    let arn: string | null = null;
    try {
      arn = (await this.deploymentOf(where.ecs, targetArn, new Date(startedAt.getTime() - 1000)))?.arn ?? null;
    } catch (err) {
      // The update is done; following it finds the deployment on its next turn.
      this.d.logger.warn({ err, deployment: d.id }, "could not list the new ECS deployment yet");
    }
    return {
      result: { taskDefinition: targetArn, strategy: strategy.type },
      record: () => this.updated(planned, startedAt, arn, strategy, where),
    };
  }

  /** Records an UpdateService that ECS took: the start, its audit row and the note on the card. */
  private async updated(
    d: Deployment,
    at: Date,
    arn: string | null,
    strategy: DeploymentStrategy,
    where: Placement,
    detail: Record<string, unknown> = {},
  ): Promise<void> {
    const t = this.target(d);
    const elsewhere = where.ecs.cluster !== t.ecs.cluster || where.ecs.service !== t.ecs.service;
    await this.started(d, at, arn);
    await this.d.lifecycle.audit(d, "deploybot", "ecs.update_service", {
      taskDefinition: d.taskDefinition,
      strategy: strategy.type,
      ...(elsewhere ? { cluster: where.ecs.cluster, service: where.ecs.service } : {}),
      ...(where.desiredCount !== undefined ? { desiredCount: where.desiredCount } : {}),
      ...(d.kind === "rollback" ? { rollback: true } : {}),
      ...detail,
    });
    const side = where.ecs.cluster === t.ecs.cluster ? where.ecs.service : `${where.ecs.cluster}/${where.ecs.service}`;
    await this.d.outbox.noteOnCard(
      d,
      d.progress?.traffic?.mode === "steps" && d.kind === "deploy"
        ? `Deploying ${d.version} to ${side}, the idle side (${where.desiredCount ?? "its"} tasks, ${strategy.type}); it takes no traffic until the first step.`
        : elsewhere
          ? `Deploying ${d.version} on ${side} (${strategy.type}).`
          : `Deploying ${d.version} (${strategy.type}).`,
    );
  }

  /** Records that ECS took the rollout: from here on the deployment is in flight and watched, whatever fails next. */
  private async started(d: Deployment, at: Date, arn: string | null): Promise<void> {
    const moved = await this.d.store.deployments.patch(
      d.id,
      { startedAt: at.toISOString(), ...(arn ? { ecsDeploymentArn: arn } : {}) },
      this.d.clock.now(),
    );
    await this.d.outbox.card(moved);
  }

  private async stop(intent: IntentOf<"ecs.stop">): Promise<Performed> {
    const { store, clock, ecs, outbox, lifecycle } = this.d;
    const r = await store.deployments.must(intent.effect.deploymentId);
    const on = ecsOf(r, this.target(r));
    const { arn } = intent.effect;
    const dep = await ecs.describeServiceDeployment(on, arn);
    const stopping = ["STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"];
    if (dep.status === "IN_PROGRESS" || dep.status === "PENDING") {
      await ecs.stopServiceDeployment(on, arn);
    } else if (!stopping.includes(dep.status)) {
      // It ended before it could be stopped: the rollback deploys the previous version instead.
      return {
        result: { fallback: dep.status },
        record: async () => {
          const next = await store.deployments.patch(r.id, { flags: { ...r.flags, viaStop: false } }, clock.now());
          await outbox.rollout(next);
        },
      };
    }
    const at = clock.now();
    return {
      result: { stopped: arn },
      record: async () => {
        const moved = await store.deployments.patch(
          r.id,
          { startedAt: at.toISOString(), ecsDeploymentArn: arn, flags: { ...r.flags, viaStop: true } },
          clock.now(),
        );
        await lifecycle.audit(moved, "deploybot", "ecs.stop_service_deployment", { arn, stopType: "ROLLBACK" });
        await outbox.card(moved);
        await outbox.noteOnCard(moved, "Stopping the ECS deployment in flight (StopServiceDeployment, ROLLBACK).");
      },
    };
  }

  /**
   * Follows one deployment that ECS is rolling out: progress onto its card, and its end into the lifecycle.
   * A failure to read ECS changes nothing (the next tick reads again): what ECS does is the only truth here.
   */
  async observe(d: Deployment): Promise<void> {
    if (d.status !== "deploying" || !d.startedAt) return;
    const { store, clock, ecs, outbox, lifecycle } = this.d;
    const on = ecsOf(d, this.target(d));
    let arn = d.ecsDeploymentArn;
    if (!arn && d.taskDefinition) {
      const found = await this.deploymentOf(on, d.taskDefinition, new Date(Date.parse(d.startedAt) - 1000));
      if (found) {
        arn = found.arn;
        await store.deployments.patch(d.id, { ecsDeploymentArn: arn }, clock.now());
      } else if (clock.now().getTime() - Date.parse(d.startedAt) > FIND_DEPLOYMENT_FOR_MS) {
        // No deployment was made (ECS makes none when the task definition did not change): the service tells.
        const svc = await ecs.describeService(on);
        if (svc.taskDefinitionArn === d.taskDefinition)
          await outbox.commit(() =>
            lifecycle.rolledOut(d, { runningCount: svc.runningCount, desiredCount: svc.desiredCount }),
          );
      }
    }
    if (!arn) return;
    const dep = await ecs.describeServiceDeployment(on, arn);
    const success = d.kind === "rollback" && d.flags.viaStop ? "ROLLBACK_SUCCESSFUL" : "SUCCESSFUL";
    if (dep.status === success) {
      await outbox.commit(() => lifecycle.rolledOut(d, dep));
    } else if (d.kind === "rollback" && d.flags.viaStop && dep.status === "SUCCESSFUL") {
      // The deployment completed before the stop took hold: deploy the previous version instead.
      await outbox.commit(async () => {
        const next = await store.deployments.patch(
          d.id,
          { flags: { ...d.flags, viaStop: false }, startedAt: null, ecsDeploymentArn: null },
          clock.now(),
        );
        await outbox.rollout(next);
      });
    } else if (ECS_TERMINAL.has(dep.status)) {
      const reason = dep.statusReason ?? `ECS ended the ${d.kind} with ${dep.status}`;
      await outbox.commit(() => lifecycle.ecsFailed(d, dep.status, reason));
    } else if (dep.runningCount !== d.progress?.running || dep.desiredCount !== d.progress?.desired) {
      await outbox.commit(async () => {
        const moved = await store.deployments.patch(
          d.id,
          { progress: { ...d.progress, running: dep.runningCount, desired: dep.desiredCount } },
          clock.now(),
        );
        await outbox.card(moved);
      });
    }
  }
}
