import { formatRelative } from "../clock.js";
import type { RollbackRequest } from "../domain/requests.js";
import { findTarget, imageWithTag, REVISION_RE, strategyOf, type Target, versionOfImage } from "../domain/targets.js";
import { asDeploybotError, DeploybotError, ErrorCode } from "../errors.js";
import { decideRollbackAuthority } from "../policies/rollback.js";
import type { Deployment } from "../store/index.js";
import type { DeploymentDeps, DeploymentService } from "./deployments.js";
import type { Paging } from "./paging.js";
import type { Person } from "./people.js";

type Rollback = RollbackRequest;

/** What a confirmed rollback will do; carried in the confirmation button so the click needs no lookup. */
export interface RollbackPlan {
  service: string;
  environment: string;
  fromVersion: string;
  toVersion: string;
  /** Known task definition of the target; null when only an image tag is known (registered at execution). */
  toTaskDefinition: string | null;
  reason: string | null;
  severity: "P0" | "P1" | "P2" | "P3" | null;
}

/** Who is rolling back: a person (with the reason their authority was granted) or deploybot itself. */
export interface RollbackActor {
  name: string;
  slackId: string | null;
  automatic: boolean;
  authority: string;
}

/** `/rollback`: authority (roles + on call now), the target version, confirmation, and the ECS rollback. */
export class RollbackService {
  constructor(
    private readonly d: DeploymentDeps & { paging: Paging },
    private readonly deployments: DeploymentService,
  ) {
    deployments.rollbackHooks = {
      start: (id) => this.run(id),
      ended: (r, ok, detail) => this.ended(r, ok, detail),
    };
  }

  private target(service: string, environment: string): Target {
    const t = findTarget(this.d.config, service, environment);
    if (!t) throw new DeploybotError(ErrorCode.NotFound, `${service} is not configured in ${environment}`);
    return t;
  }

  /** Checks authority now; returns the reason it was granted, or throws Forbidden with why not. */
  async authorize(
    person: Person,
    environment: string,
    service: string | null = null,
  ): Promise<{ reason: string; needsApprovals: boolean }> {
    const policy = this.d.config.environments[environment];
    if (!policy) throw new DeploybotError(ErrorCode.NotFound, `unknown environment ${environment}`);
    const held = await this.d.people.rolesOf(person);
    const verdict = decideRollbackAuthority({
      environment,
      policy,
      user: person.name,
      roles: held.roles,
      oncall: held.oncall,
    });
    if (!verdict.allowed) {
      this.d.store.audit({
        at: this.d.clock.now(),
        actor: person.name,
        action: "rollback.denied",
        deploymentId: null,
        service,
        environment,
        detail: { reason: verdict.reason },
      });
      throw new DeploybotError(ErrorCode.Forbidden, verdict.reason);
    }
    return { reason: verdict.reason, needsApprovals: verdict.approvals.length > 0 };
  }

  /** Step one of `/rollback`: who may, from what, to what. Nothing is written but the audit of a refusal. */
  async prepare(
    cmd: Rollback,
    person: Person,
  ): Promise<{ plan: RollbackPlan; authority: string; needsApprovals: boolean }> {
    const t = this.target(cmd.service, cmd.environment);
    const auth = await this.authorize(person, cmd.environment, cmd.service);
    const current = await this.currentVersion(t);
    // A deploy of deploybot's still in flight is what gets rolled back: back to what ran before it.
    const inFlight = this.d.store
      .history(t.service, t.environment, 20)
      .find((x) => x.kind === "deploy" && (x.status === "deploying" || x.status === "baking"));
    if (inFlight) current.version = inFlight.version;
    const to = cmd.version
      ? await this.named(t, cmd.version)
      : inFlight?.previousVersion
        ? { version: inFlight.previousVersion, taskDefinition: inFlight.previousTaskDefinition }
        : await this.previousGood(t, current.version, current.taskDefinition);
    if (!to) {
      throw new DeploybotError(
        ErrorCode.NotFound,
        `Nothing to roll back to: deploybot has no earlier good version of ${t.service} in ${t.environment} and ECS reports no previous revision. Name one: \`/rollback ${t.service} ${t.environment} to v1.4.0\`.`,
      );
    }
    if (to.version === current.version) {
      throw new DeploybotError(
        ErrorCode.CommandInvalid,
        `${t.service} ${t.environment} already runs ${current.version}; nothing to roll back.`,
      );
    }
    return {
      plan: {
        service: t.service,
        environment: t.environment,
        fromVersion: current.version,
        toVersion: to.version,
        toTaskDefinition: to.taskDefinition,
        reason: cmd.reason,
        severity: cmd.severity,
      },
      authority: auth.reason,
      needsApprovals: auth.needsApprovals,
    };
  }

  private async currentVersion(t: Target): Promise<{ version: string; taskDefinition: string }> {
    const svc = await this.d.ecs.describeService(t.ecs);
    const def = await this.d.ecs.describeTaskDefinition(t.ecs, svc.taskDefinitionArn);
    const image = def.containers.find((c) => c.name === t.ecs.container)?.image;
    return {
      version: image ? versionOfImage(image) : `${def.family}:${def.revision}`,
      taskDefinition: svc.taskDefinitionArn,
    };
  }

  /**
   * A named target must have run here before (deploybot's history, or the revision family of this service):
   * a rollback bypasses freezes and deploy approvals, so it must never become a way to ship a new version.
   */
  private async named(t: Target, version: string): Promise<{ version: string; taskDefinition: string | null }> {
    if (REVISION_RE.test(version)) {
      const def = await this.d.ecs.describeTaskDefinition(t.ecs, version);
      const running = await this.d.ecs.describeService(t.ecs);
      const current = await this.d.ecs.describeTaskDefinition(t.ecs, running.taskDefinitionArn);
      if (def.family !== current.family) {
        throw new DeploybotError(
          ErrorCode.CommandInvalid,
          `${version} is not a revision of ${t.service} ${t.environment}'s task definition family (${current.family}).`,
        );
      }
      return { version, taskDefinition: def.arn };
    }
    const history = this.d.store.history(t.service, t.environment, 500);
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
  private async previousGood(
    t: Target,
    current: string,
    currentArn: string,
  ): Promise<{ version: string; taskDefinition: string | null } | null> {
    const history = this.d.store.history(t.service, t.environment, 200);
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
        const image = def.containers.find((c) => c.name === t.ecs.container)?.image;
        return { version: image ? versionOfImage(image) : `${def.family}:${def.revision}`, taskDefinition: def.arn };
      }
    }
    return null;
  }

  /** Step two: the Roll back click (authority checked again by the caller) or the monitor; records and runs it. */
  async execute(plan: RollbackPlan, actor: RollbackActor, needsApprovals = false): Promise<Deployment> {
    const t = this.target(plan.service, plan.environment);
    const now = this.d.clock.now();
    const recent = this.d.store.history(plan.service, plan.environment, 20);
    // One rollback at a time, counting one that still waits for its approvals.
    const pending = recent.find(
      (x) =>
        x.kind === "rollback" &&
        (x.status === "awaiting_approval" || x.status === "approved" || x.status === "deploying"),
    );
    if (pending) {
      throw new DeploybotError(
        ErrorCode.LockHeld,
        `Rollback #${pending.id} of ${plan.service} ${plan.environment} is already ${pending.status === "awaiting_approval" ? "waiting for approval" : "running"}.`,
      );
    }
    const inFlight = recent.find(
      (x) => x.kind === "deploy" && (x.status === "deploying" || x.status === "baking" || x.status === "approved"),
    );
    const lastGood = this.d.store
      .history(plan.service, plan.environment, 50)
      .find((x) => x.kind === "deploy" && x.status === "succeeded" && x.version === plan.fromVersion);
    const rolledBack = inFlight ?? lastGood ?? null;
    const r = this.d.store.tx(() => {
      const created = this.d.store.createDeployment(
        {
          kind: "rollback",
          service: plan.service,
          environment: plan.environment,
          version: plan.toVersion,
          requestedBy: actor.name,
          reason: plan.reason,
          previousVersion: plan.fromVersion,
          taskDefinition: plan.toTaskDefinition,
          flags: {
            ...(plan.severity ? { severity: plan.severity } : {}),
            ...(actor.automatic ? { automatic: true } : {}),
            ...(rolledBack ? { rollsBack: rolledBack.id } : {}),
          },
        },
        now,
      );
      const approvals = this.d.config.environments[plan.environment]?.rollback?.approvals ?? [];
      const decision = {
        outcome: needsApprovals ? "needs_approval" : "allow",
        reasons: [actor.authority],
        bypassed: [],
      };
      const next =
        needsApprovals && !actor.automatic
          ? this.d.store.transition(created.id, "awaiting_approval", now, {
              decision,
              approvalRule: approvals,
              expiresAt: new Date(now.getTime() + t.policy.approval_ttl).toISOString(),
            })
          : this.d.store.transition(created.id, "approved", now, { decision });
      this.deployments.audit(next, actor.name, "rollback.requested", {
        from: plan.fromVersion,
        to: plan.toVersion,
        reason: plan.reason,
        severity: plan.severity,
        authority: actor.authority,
        automatic: actor.automatic,
        rollsBack: rolledBack?.id ?? null,
      });
      return next;
    });
    await this.deployments.postCard(r);
    if (r.status === "approved") await this.run(r.id);
    return this.d.store.getDeployment(r.id) as Deployment;
  }

  /** Runs an approved rollback on ECS: stop the deployment in flight, else deploy the target revision. */
  private async run(id: number): Promise<void> {
    const r = this.d.store.getDeployment(id) as Deployment;
    // Only an approved rollback starts, and only once: the check and the move to deploying happen in one
    // synchronous step, so a tick and a click racing to start it cannot both get past here.
    if (r.status !== "approved") return;
    const t = this.target(r.service, r.environment);
    const now = this.d.clock.now();
    const rolledBack = r.flags.rollsBack ? this.d.store.getDeployment(r.flags.rollsBack) : undefined;
    const held = this.d.store.tx(() => {
      const lock = this.d.store.getLock(r.service, r.environment);
      // The rollback takes the lock from the deploy it ends; that deploy moves to rolling_back, not left dangling.
      const endsHolder = lock && rolledBack && lock.deploymentId === rolledBack.id;
      if (lock && !endsHolder && lock.deploymentId !== r.id) return lock;
      if (rolledBack && (rolledBack.status === "deploying" || rolledBack.status === "baking")) {
        this.d.store.transition(rolledBack.id, "rolling_back", now);
        this.d.store.releaseLock(rolledBack.id);
      }
      this.d.store.acquireLock(r.service, r.environment, r.id, r.requestedBy, now);
      this.d.store.transition(id, "deploying", now);
      this.deployments.audit(r, "deploybot", "ecs.rollback.intent", { rollsBack: rolledBack?.id ?? null });
      return null;
    });
    if (held) {
      const detail = `deployment #${held.deploymentId} holds the lock of ${r.service} ${r.environment}`;
      const failed = this.d.store.transition(id, "failed", now, { progress: { detail } });
      this.deployments.audit(failed, "deploybot", "rollback.failed", {
        reason: "lock held",
        holder: held.deploymentId,
      });
      await this.deployments.refreshCard(id, `Could not start: ${detail}.`);
      await this.ended(failed, false, detail);
      return;
    }
    if (r.flags.severity === "P0" || r.flags.severity === "P1") await this.page(r, "trigger");
    try {
      let viaStop = false;
      if (rolledBack?.ecsDeploymentArn && rolledBack.status !== "succeeded") {
        const ecs = await this.d.ecs.describeServiceDeployment(t.ecs, rolledBack.ecsDeploymentArn);
        if (ecs.status === "IN_PROGRESS" || ecs.status === "PENDING") {
          // Recorded before the call: a restart follows the stopped deployment, never a new one.
          this.d.store.patch(
            id,
            { ecsDeploymentArn: rolledBack.ecsDeploymentArn, startedAt: this.d.clock.now().toISOString() },
            this.d.clock.now(),
          );
          this.d.store.patch(id, { flags: { ...r.flags, viaStop: true } }, this.d.clock.now());
          await this.d.ecs.stopServiceDeployment(t.ecs, rolledBack.ecsDeploymentArn);
          this.deployments.audit(r, "deploybot", "ecs.stop_service_deployment", {
            arn: rolledBack.ecsDeploymentArn,
            stopType: "ROLLBACK",
          });
          viaStop = true;
        }
      }
      if (!viaStop) {
        let arn = r.taskDefinition;
        if (!arn) {
          const svc = await this.d.ecs.describeService(t.ecs);
          const base = await this.d.ecs.describeTaskDefinition(t.ecs, svc.taskDefinitionArn);
          const image = base.containers.find((c) => c.name === t.ecs.container)?.image;
          if (!image)
            throw new DeploybotError(
              ErrorCode.AwsFailed,
              `container ${t.ecs.container} is not in ${base.family}:${base.revision}`,
            );
          arn = (await this.d.ecs.registerTaskDefinition(t.ecs, base, imageWithTag(image, r.version))).arn;
          this.d.store.patch(id, { taskDefinition: arn }, this.d.clock.now());
        }
        const startedAt = new Date(this.d.clock.now().getTime() - 1000);
        this.d.store.patch(id, { startedAt: this.d.clock.now().toISOString() }, this.d.clock.now());
        await this.d.ecs.updateService(t.ecs, arn, strategyOf(t.settings));
        this.deployments.audit(r, "deploybot", "ecs.update_service", { taskDefinition: arn, rollback: true });
        const [latest] = await this.d.ecs.listServiceDeployments(t.ecs, startedAt);
        if (latest) this.d.store.patch(id, { ecsDeploymentArn: latest.arn }, this.d.clock.now());
      }
      if (rolledBack)
        await this.deployments.refreshCard(
          rolledBack.id,
          `Rolling back to ${r.version}: rollback #${r.id} by ${r.flags.automatic ? "deploybot (automatic)" : `<@${this.d.people.slackIdOf(r.requestedBy)}>`}.`,
        );
      await this.deployments.refreshCard(
        id,
        viaStop ? `Stopping ECS deployment in flight (StopServiceDeployment, ROLLBACK).` : `Deploying ${r.version}.`,
      );
    } catch (err) {
      const e = asDeploybotError(err, ErrorCode.AwsFailed);
      const failed = this.d.store.transition(id, "failed", this.d.clock.now(), { progress: { detail: e.message } });
      this.deployments.audit(failed, "deploybot", "rollback.failed", { error: e.message });
      await this.deployments.refreshCard(id, `:red_circle: Rollback could not start: ${e.message}`);
      await this.ended(failed, false, e.message);
    }
  }

  /** A rollback ended: settle the deploy it rolled back, and report in #incidents. */
  private async ended(r: Deployment, ok: boolean, detail: string): Promise<void> {
    const now = this.d.clock.now();
    const rolledBack = r.flags.rollsBack ? this.d.store.getDeployment(r.flags.rollsBack) : undefined;
    // A rollback that worked ends the deploy it rolled back; one that failed leaves a finished deploy as it was
    // (it still runs) and marks one caught mid-rollout failed.
    const settle = ok
      ? rolledBack?.status === "rolling_back" || rolledBack?.status === "succeeded"
      : rolledBack?.status === "rolling_back";
    if (rolledBack && settle) {
      try {
        const settled = this.d.store.transition(
          rolledBack.id,
          ok ? "rolled_back" : "failed",
          now,
          ok ? {} : { progress: { detail: `rollback #${r.id} failed: ${detail}` } },
        );
        this.deployments.audit(settled, "deploybot", ok ? "deploy.rolled_back" : "deploy.failed", { rollback: r.id });
        await this.deployments.refreshCard(
          rolledBack.id,
          ok ? `Rolled back to ${r.version} by rollback #${r.id}.` : `Rollback #${r.id} failed: ${detail}`,
        );
      } catch (err) {
        this.d.logger.error({ err, deployment: rolledBack.id }, "could not settle the rolled-back deploy");
      }
    }
    const took = formatRelative(now.getTime() - Date.parse(r.createdAt));
    const who = r.flags.automatic ? "deploybot (automatic)" : `<@${this.d.people.slackIdOf(r.requestedBy)}>`;
    const text = ok
      ? `:leftwards_arrow_with_hook: Rolled back *${r.service} ${r.environment}* from \`${r.previousVersion}\` to \`${r.version}\` by ${who}${r.flags.severity ? ` (${r.flags.severity})` : ""}${r.reason ? `: “${r.reason}”` : ""}. Took ${took}.`
      : `:red_circle: Rollback of *${r.service} ${r.environment}* to \`${r.version}\` by ${who} FAILED after ${took}: ${detail}`;
    await this.d.chat.post(this.d.config.channels.incidents, { text }).catch((err: unknown) => {
      this.d.logger.error({ err, rollback: r.id }, "could not report the rollback in #incidents");
    });
    if (ok && (r.flags.severity === "P0" || r.flags.severity === "P1")) await this.page(r, "resolve");
  }

  /** The page for a P0/P1 rollback, deduplicated per service and environment. */
  private async page(r: Deployment, action: "trigger" | "resolve"): Promise<void> {
    const dedupKey = `deploybot/${r.service}/${r.environment}/rollback`;
    try {
      const sent = await this.d.paging.send(
        {
          action,
          dedupKey,
          severity: r.flags.severity === "P0" ? "critical" : "error",
          summary: `${r.flags.severity} rollback of ${r.service} ${r.environment} from ${r.previousVersion} to ${r.version}${r.reason ? `: ${r.reason}` : ""}`,
          source: `deploybot/${r.service}/${r.environment}`,
          customDetails: { rollback: r.id, requestedBy: r.requestedBy, automatic: Boolean(r.flags.automatic) },
        },
        r.createdAt,
      );
      if (sent) this.deployments.audit(r, "deploybot", `page.${action}`, { dedupKey });
    } catch (err) {
      await this.d.chat
        .post(this.d.config.channels.incidents, {
          text: `:warning: Could not page PagerDuty for rollback #${r.id}: ${asDeploybotError(err).message}`,
        })
        .catch((postErr: unknown) => this.d.logger.error({ err: postErr }, "could not report a paging failure"));
    }
  }
}
