import type { Target } from "../domain/targets.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import type { EcsPort } from "../ports.js";
import type { Store } from "../store/index.js";
import { REVISION_RE, versionOf } from "./rollout.js";
import type { TrafficSteps } from "./steps.js";

/**
 * What a rollback goes back to: the version running now, a named version (only one that has run here), or the last
 * good one before the current (deploybot's history, else ECS's previous revision).
 */
export class RollbackTargets {
  constructor(private readonly d: { store: Store; ecs: EcsPort; steps: TrafficSteps }) {}

  /** What the target runs now: on a two-sided target, what its live side (the one taking the traffic) runs. */
  async current(t: Target): Promise<{ version: string; taskDefinition: string }> {
    const live = await this.d.steps.liveEcs(t);
    const svc = await this.d.ecs.describeService(live);
    const def = await this.d.ecs.describeTaskDefinition(live, svc.taskDefinitionArn);
    return { version: versionOf(t, def), taskDefinition: svc.taskDefinitionArn };
  }

  /**
   * A named target must have run here before (deploybot's history, or the revision family of this service):
   * a rollback bypasses freezes and deploy approvals, so it must never become a way to ship a new version.
   */
  async named(t: Target, version: string): Promise<{ version: string; taskDefinition: string | null }> {
    if (REVISION_RE.test(version)) {
      const live = await this.d.steps.liveEcs(t);
      const def = await this.d.ecs.describeTaskDefinition(live, version);
      const running = await this.d.ecs.describeService(live);
      const current = await this.d.ecs.describeTaskDefinition(live, running.taskDefinitionArn);
      if (def.family !== current.family) {
        throw new DeploybotError(
          ErrorCode.CommandInvalid,
          `${version} is not a revision of ${t.service} ${t.environment}'s task definition family (${current.family}).`,
        );
      }
      return { version, taskDefinition: def.arn };
    }
    const history = await this.d.store.deployments.history(t.service, t.environment, 500);
    const ran = history.find(
      (x) => x.version === version && x.taskDefinition && (x.status === "succeeded" || x.status === "rolled_back"),
    );
    if (ran) return { version, taskDefinition: ran.taskDefinition };
    const before = history.find((x) => x.previousVersion === version && x.previousTaskDefinition);
    if (before) return { version, taskDefinition: before.previousTaskDefinition };
    throw new DeploybotError(
      ErrorCode.CommandInvalid,
      `${version} has not run in ${t.service} ${t.environment} as far as deploybot knows, so it cannot be a rollback target. To ship a version, use /deploy: its freezes, windows and approvals apply.`,
    );
  }

  /** The last version that succeeded here before the current one (deploybot's history, else ECS's previous revision). */
  async previousGood(
    t: Target,
    current: string,
    currentArn: string,
  ): Promise<{ version: string; taskDefinition: string | null } | null> {
    const history = await this.d.store.deployments.history(t.service, t.environment, 200);
    const good = history.find(
      (x) => x.status === "succeeded" && x.version !== current && x.taskDefinition && x.taskDefinition !== currentArn,
    );
    if (good) return { version: good.version, taskDefinition: good.taskDefinition };
    // What ran before deploybot deployed the current version was good enough to be running in this environment.
    const currentDeploy = history.find((x) => x.kind === "deploy" && x.status === "succeeded" && x.version === current);
    if (currentDeploy?.previousVersion && currentDeploy.previousVersion !== current) {
      return { version: currentDeploy.previousVersion, taskDefinition: currentDeploy.previousTaskDefinition };
    }
    // ECS's previous revision is only a fallback for a service deploybot has never deployed: with history,
    // the revision before the current one may be exactly the version that was rolled back.
    if (history.some((x) => x.taskDefinition)) return null;
    for (const summary of (await this.d.ecs.listServiceDeployments(t.ecs)).slice(0, 5)) {
      const dep = await this.d.ecs.describeServiceDeployment(t.ecs, summary.arn);
      if (
        dep.targetTaskDefinitionArn === currentArn &&
        dep.sourceTaskDefinitionArn &&
        dep.sourceTaskDefinitionArn !== currentArn
      ) {
        const def = await this.d.ecs.describeTaskDefinition(t.ecs, dep.sourceTaskDefinitionArn);
        return { version: versionOf(t, def), taskDefinition: def.arn };
      }
    }
    return null;
  }
}
