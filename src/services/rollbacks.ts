import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import { type Deployment, NOT_YET_STARTED, STEPPING, UNFINISHED } from "../domain/deployment.js";
import type { RollbackRequest, Severity } from "../domain/requests.js";
import { findTarget, type Target } from "../domain/targets.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import { decideRollbackAuthority } from "../policies/rollback.js";
import type { EcsPort } from "../ports.js";
import { escapeMrkdwn as esc } from "../slack/blocks.js";
import { who } from "../slack/cards.js";
import type { Store } from "../store/index.js";
import type { Lifecycle } from "./lifecycle.js";
import type { Outbox } from "./outbox.js";
import type { People, Person } from "./people.js";
import { RollbackTargets } from "./rollback-targets.js";
import type { TrafficSteps } from "./steps.js";

/** What a confirmed rollback will do; the confirmation button names it, and it is derived again at the click. */
export interface RollbackPlan {
  service: string;
  environment: string;
  fromVersion: string;
  toVersion: string;
  /** Known task definition of the target; null when only an image tag is known (registered at execution). */
  toTaskDefinition: string | null;
  reason: string | null;
  severity: Severity | null;
}

/** Who is rolling back: a person (with the reason their authority was granted) or deploybot itself. */
export interface RollbackActor {
  name: string;
  slackId: string | null;
  automatic: boolean;
  authority: string;
}

export interface RollbackDeps {
  config: Config;
  store: Store;
  clock: Clock;
  ecs: EcsPort;
  people: People;
  outbox: Outbox;
  lifecycle: Lifecycle;
  logger: Logger;
  steps: TrafficSteps;
}

/** `/rollback` and the monitor's rollbacks: authority (roles + on call now), the target version, and the start. */
export class RollbackService {
  private readonly targets: RollbackTargets;

  constructor(private readonly d: RollbackDeps) {
    this.targets = new RollbackTargets(d);
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
      await this.d.store.audit.append({
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
    cmd: RollbackRequest,
    person: Person,
  ): Promise<{ plan: RollbackPlan; authority: string; needsApprovals: boolean }> {
    const t = this.target(cmd.service, cmd.environment);
    const auth = await this.authorize(person, cmd.environment, cmd.service);
    // While a rollback is running (its ECS call retried, say), the deploy it ends is no longer in flight and
    // nothing earlier may have succeeded: say what is going on rather than "nothing to roll back to".
    await this.refuseWhilePending(t.service, t.environment);
    const current = await this.targets.current(t);
    // A deploy of deploybot's still in flight is what gets rolled back: back to what ran before it.
    const inFlight = await this.d.store.deployments.latestOf(t.service, t.environment, UNFINISHED, "deploy");
    if (inFlight) current.version = inFlight.version;
    if (
      inFlight?.progress?.traffic?.mode === "steps" &&
      (STEPPING.has(inFlight.status) || inFlight.status === "deploying") &&
      cmd.version &&
      cmd.version !== inFlight.previousVersion
    ) {
      throw new DeploybotError(
        ErrorCode.CommandInvalid,
        `${t.service} ${t.environment} is in the traffic steps of ${inFlight.version} (deploy #${inFlight.id}): a rollback now switches all traffic back to ${inFlight.previousVersion ?? "the previous version"}, which still runs. Use \`/rollback ${t.service} ${t.environment}\` (or Abort on its card), then deploy ${cmd.version}.`,
      );
    }
    const to = cmd.version
      ? await this.targets.named(t, cmd.version)
      : inFlight?.previousVersion
        ? { version: inFlight.previousVersion, taskDefinition: inFlight.previousTaskDefinition }
        : await this.targets.previousGood(t, current.version, current.taskDefinition);
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

  /** One rollback at a time, counting one that still waits for its approvals: throws LockHeld naming it. */
  private async refuseWhilePending(service: string, environment: string): Promise<void> {
    const pending = await this.d.store.deployments.latestOf(service, environment, NOT_YET_STARTED, "rollback");
    if (pending) {
      throw new DeploybotError(
        ErrorCode.LockHeld,
        `Rollback #${pending.id} of ${service} ${environment} is already ${pending.status === "awaiting_approval" ? "waiting for approval" : "running"}.`,
      );
    }
  }

  /** Step two: the Roll back click (authority checked again by the caller) or the monitor; records and starts it. */
  async execute(plan: RollbackPlan, actor: RollbackActor, needsApprovals = false): Promise<Deployment> {
    const t = this.target(plan.service, plan.environment);
    const { store, outbox, lifecycle, clock } = this.d;
    const now = clock.now();
    return outbox.commit(async () => {
      await this.refuseWhilePending(plan.service, plan.environment);
      const inFlight = await store.deployments.latestOf(plan.service, plan.environment, UNFINISHED, "deploy");
      const lastGood = (await store.deployments.history(plan.service, plan.environment, 50)).find(
        (x) => x.kind === "deploy" && x.status === "succeeded" && x.version === plan.fromVersion,
      );
      const rolledBack = inFlight ?? lastGood ?? null;
      const created = await store.deployments.create(
        {
          kind: "rollback",
          service: plan.service,
          environment: plan.environment,
          version: plan.toVersion,
          requestedBy: actor.name,
          reason: plan.reason,
          previousVersion: plan.fromVersion,
          taskDefinition: plan.toTaskDefinition,
          rollsBack: rolledBack?.id ?? null,
          flags: {
            ...(plan.severity ? { severity: plan.severity } : {}),
            ...(actor.automatic ? { automatic: true } : {}),
          },
        },
        now,
      );
      const decision = {
        outcome: needsApprovals ? "needs_approval" : "allow",
        reasons: [actor.authority],
        bypassed: [],
      };
      const next =
        needsApprovals && !actor.automatic
          ? await store.deployments.apply(created.id, "ask_approval", now, {
              decision,
              approvalRule: this.d.config.environments[plan.environment]?.rollback?.approvals ?? [],
              expiresAt: new Date(now.getTime() + t.policy.approval_ttl).toISOString(),
            })
          : await store.deployments.apply(created.id, "allow", now, { decision });
      await lifecycle.audit(next, actor.name, "rollback.requested", {
        from: plan.fromVersion,
        to: plan.toVersion,
        reason: plan.reason,
        severity: plan.severity,
        authority: actor.authority,
        automatic: actor.automatic,
        rollsBack: rolledBack?.id ?? null,
      });
      await outbox.card(next);
      if (next.status === "approved") await this.begin(next);
      else if (rolledBack?.status === "shifting" && rolledBack.progress?.traffic) {
        // No further traffic step while the rollback of this deploy waits for its approvals.
        const t = rolledBack.progress.traffic;
        await lifecycle.move(
          rolledBack,
          "pause",
          {
            progress: {
              ...rolledBack.progress,
              traffic: { ...t, pausedBy: actor.name, pauseReason: `rollback #${next.id} awaits its approvals` },
            },
          },
          `:double_vertical_bar: Paused at step ${t.step + 1}: rollback #${next.id} by ${who(actor.name, (n) => this.d.people.slackIdOf(n))} awaits its approvals.`,
        );
      }
      return store.deployments.must(next.id);
    });
  }

  /**
   * Starts an approved rollback, in the caller's transaction: it takes the lock from the deploy it ends (which moves
   * to rolling_back and stops paging and warning), links that deploy's incidents, pages for P0/P1, and records the
   * ECS intent: stop the deployment still rolling out, else deploy the previous version. None of this waits for
   * Slack: a rollback must happen even while Slack is down.
   */
  async begin(r: Deployment): Promise<void> {
    const { store, outbox, lifecycle, clock, people } = this.d;
    if (r.status !== "approved") return;
    const deploy = r.rollsBack ? await store.deployments.get(r.rollsBack) : undefined;
    const lock = await store.locks.get(r.service, r.environment);
    if (lock && lock.deploymentId !== r.id && lock.deploymentId !== deploy?.id) {
      await lifecycle.notStarted(r, `deployment #${lock.deploymentId} holds the lock of ${r.service} ${r.environment}`);
      return;
    }
    const by = r.flags.automatic ? "deploybot (automatic)" : who(r.requestedBy, (n) => people.slackIdOf(n));
    // On a target with two sides: back in one weight switch while the previous version still runs, else in place.
    const traffic = await this.d.steps.rollbackTraffic(deploy, r);
    const wasRollingOut =
      deploy?.status === "deploying" && deploy.startedAt && deploy.ecsDeploymentArn && traffic?.mode !== "switch";
    if (deploy && (deploy.status === "deploying" || deploy.status === "baking" || deploy.status === "succeeded")) {
      await lifecycle.move(deploy, "roll_back", {}, `Rolling back to ${esc(r.version)}: rollback #${r.id} by ${by}.`);
    } else if (deploy && STEPPING.has(deploy.status)) {
      await lifecycle.move(
        deploy,
        "abort",
        {},
        `Switching back to ${esc(r.version)} at step ${(deploy.progress?.traffic?.step ?? 0) + 1}: rollback #${r.id} by ${by}.`,
      );
    }
    await store.locks.acquire(r.service, r.environment, r.id, r.requestedBy, clock.now());
    const started = await store.deployments.apply(
      r.id,
      "start",
      clock.now(),
      traffic ? { progress: { ...r.progress, traffic } } : {},
    );
    await lifecycle.audit(
      started,
      "deploybot",
      traffic?.mode === "switch" ? "elb.rollback.intent" : "ecs.rollback.intent",
      {
        rollsBack: deploy?.id ?? null,
      },
    );
    await outbox.card(started);
    if (deploy) {
      for (const i of await store.incidents.of(deploy.id)) {
        if (i.state === "open" || i.state === "rollback_pending" || i.state === "overridden") {
          if (i.action === "alert" || i.shadow) {
            // Warnings about a deploy being rolled back say nothing new: they stop with the rollback.
            await lifecycle.closeIncident(i, `deploy #${deploy.id} is being rolled back`);
            continue;
          }
          const linked = await store.incidents.apply(i.id, "start_rollback", { rollbackId: r.id });
          await outbox.incident(linked);
          await outbox.noteOnIncident(linked, `:rewind: Rollback #${r.id} to ${esc(r.version)} started by ${by}.`);
        }
      }
    }
    if (r.flags.severity === "P0" || r.flags.severity === "P1") await lifecycle.pageRollback(started, "trigger");
    if (traffic?.mode === "switch") await this.d.steps.switchBack(started, traffic);
    else if (wasRollingOut && deploy?.ecsDeploymentArn) await outbox.stop(started, deploy.ecsDeploymentArn);
    else await outbox.rollout(started);
  }

  /**
   * Abort, on a deploy's card while it shifts traffic: someone with rollback authority switches back at once (a
   * rollback of the deploy, confirmed by the click). Where rollbacks need approvals, the steps pause until they are in.
   */
  async abort(id: number, person: Person): Promise<string | null> {
    const { store, lifecycle } = this.d;
    const d = await store.deployments.get(id);
    if (d?.kind !== "deploy") return `There is no deploy #${id}.`;
    if (!STEPPING.has(d.status))
      return `Deploy #${id} is ${d.status.replace(/_/g, " ")}: its traffic steps are over; use /rollback.`;
    let auth: { reason: string; needsApprovals: boolean };
    try {
      auth = await this.authorize(person, d.environment, d.service);
    } catch (err) {
      return (err as Error).message;
    }
    if (!d.previousVersion) return "No previous version is known for this deploy; use /rollback with a version.";
    await lifecycle.audit(d, person.name, "steps.abort", { step: (d.progress?.traffic?.step ?? 0) + 1 });
    try {
      await this.execute(
        {
          service: d.service,
          environment: d.environment,
          fromVersion: d.version,
          toVersion: d.previousVersion,
          toTaskDefinition: d.previousTaskDefinition,
          reason: `aborted at step ${(d.progress?.traffic?.step ?? 0) + 1}`,
          severity: null,
        },
        { name: person.name, slackId: person.slackId, automatic: false, authority: auth.reason },
        auth.needsApprovals,
      );
    } catch (err) {
      if (err instanceof DeploybotError && err.code === ErrorCode.LockHeld) return err.message;
      throw err;
    }
    return null;
  }
}
