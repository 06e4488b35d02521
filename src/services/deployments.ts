import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { formatLocal, formatRelative } from "../clock.js";
import type { Config } from "../config/schema.js";
import type { DeployRequest } from "../domain/requests.js";
import { findTarget, imageWithTag, REVISION_RE, strategyOf, type Target, versionOfImage } from "../domain/targets.js";
import { asDeploybotError, DeploybotError, ErrorCode } from "../errors.js";
import { type Approver, approvalProgress, canApprove, describeRule } from "../policies/approvals.js";
import { type Decision, decideDeploy } from "../policies/gate.js";
import type { ChatPort, EcsPort } from "../ports.js";
import { deployCard } from "../slack/cards.js";
import type { Deployment, DeploymentStatus, Store } from "../store/index.js";
import type { People, Person } from "./people.js";

type Deploy = DeployRequest;

/** How long after recording an intent deploybot waits to see its ECS deployment before calling it lost. */
const NO_ECS_DEPLOYMENT_AFTER_MS = 3 * 60_000;

export interface DeploymentDeps {
  config: Config;
  store: Store;
  clock: Clock;
  ecs: EcsPort;
  chat: ChatPort;
  people: People;
  logger: Logger;
}

/** Deploy orchestration: the gate, approvals, ECS execution and the live card, with every step audited. */
export class DeploymentService {
  /** The last card text sent per deployment, so a tick that changes nothing sends nothing. */
  private readonly lastCard = new Map<number, string>();

  /** Set by the rollback service: how an approved rollback starts, and what happens when one ends. */
  rollbackHooks: {
    start(id: number): Promise<void>;
    ended(d: Deployment, ok: boolean, detail: string): Promise<void>;
  } | null = null;

  constructor(private readonly d: DeploymentDeps) {}

  private target(service: string, environment: string): Target {
    const t = findTarget(this.d.config, service, environment);
    if (!t) throw new DeploybotError(ErrorCode.NotFound, `${service} is not configured in ${environment}`);
    return t;
  }

  private facts(cmd: Deploy, requester: Person, t: Target) {
    const lock = this.d.store.getLock(cmd.service, cmd.environment);
    const holder = lock ? this.d.store.getDeployment(lock.deploymentId) : undefined;
    return {
      request: {
        service: cmd.service,
        environment: cmd.environment,
        version: cmd.version,
        requester: requester.name,
        hotfix: cmd.hotfix,
        emergency: cmd.emergency,
      },
      policy: t.policy,
      timeZone: t.timeZone,
      now: this.d.clock.now(),
      lock:
        lock && holder
          ? {
              deploymentId: lock.deploymentId,
              holder: holder.requestedBy,
              version: holder.version,
              status: holder.status,
              since: new Date(lock.since),
            }
          : null,
    };
  }

  /** `/deploy`: decides, records and posts the card; returns an ephemeral reply for the requester, if any. */
  async request(cmd: Deploy, requester: Person): Promise<string | null> {
    const t = this.target(cmd.service, cmd.environment);
    const decision = decideDeploy(this.facts(cmd, requester, t));
    if (cmd.dryRun) return this.dryRun(cmd, t, decision);
    const now = this.d.clock.now();
    const d = this.d.store.tx(() => {
      const created = this.d.store.createDeployment(
        {
          kind: "deploy",
          service: cmd.service,
          environment: cmd.environment,
          version: cmd.version,
          requestedBy: requester.name,
          reason: cmd.reason ?? cmd.emergency,
          flags: { ...(cmd.hotfix ? { hotfix: true } : {}), ...(cmd.emergency ? { emergency: cmd.emergency } : {}) },
        },
        now,
      );
      const next: DeploymentStatus =
        decision.outcome === "allow" ? "approved" : decision.outcome === "deny" ? "denied" : "awaiting_approval";
      const record = { outcome: decision.outcome, reasons: decision.reasons, bypassed: decision.bypassed };
      const updated = this.d.store.transition(created.id, next, now, {
        decision: record,
        ...(decision.outcome === "needs_approval"
          ? { approvalRule: decision.rule, expiresAt: new Date(now.getTime() + t.policy.approval_ttl).toISOString() }
          : {}),
      });
      this.audit(updated, requester.name, `deploy.${decision.outcome}`, {
        ...record,
        hotfix: cmd.hotfix,
        emergency: cmd.emergency,
        reason: cmd.reason,
      });
      return updated;
    });
    if (decision.outcome === "deny") {
      return `:no_entry: Deploy of ${cmd.service} ${cmd.version} to ${cmd.environment} denied.\n${decision.reasons.map((r) => `• ${r}`).join("\n")}`;
    }
    await this.postCard(d);
    if (decision.outcome === "allow") await this.start(d.id);
    return null;
  }

  private dryRun(cmd: Deploy, t: Target, decision: Decision): string {
    const plan = REVISION_RE.test(cmd.version)
      ? [`DescribeServices ${t.ecs.cluster}/${t.ecs.service}`, `DescribeTaskDefinition ${cmd.version}`]
      : [
          `DescribeServices ${t.ecs.cluster}/${t.ecs.service}`,
          "DescribeTaskDefinition (the running revision)",
          `RegisterTaskDefinition with container ${t.ecs.container} on image tag ${cmd.version}`,
        ];
    plan.push(
      `UpdateService ${t.ecs.cluster}/${t.ecs.service} (${t.settings.strategy.type}, circuit breaker with rollback)`,
      "follow ListServiceDeployments / DescribeServiceDeployments",
    );
    if (t.policy.bake > 0)
      plan.push(`bake ${formatRelative(t.policy.bake)} with ${t.settings.guardrails.length} guardrails on`);
    const verdict = {
      allow: "would go ahead now",
      needs_approval: `would need approval (${decision.outcome === "needs_approval" ? describeRule(decision.rule) : ""})`,
      deny: "would be denied",
    }[decision.outcome];
    return [
      `*Dry run* (nothing was changed): ${cmd.service} ${cmd.version} → ${cmd.environment} ${verdict}.`,
      ...decision.reasons.map((r) => `• ${r}`),
      ...(decision.bypassed.length ? [`Would bypass: ${decision.bypassed.join("; ")}`] : []),
      `*Plan* (ECS, ${t.ecs.region}):`,
      ...plan.map((p, i) => `${i + 1}. ${p}`),
    ].join("\n");
  }

  /** Approve clicked: checked now, with the clicker's roles now; returns a refusal for the clicker, or null. */
  async approve(id: number, clicker: Person): Promise<string | null> {
    const open = await this.stillOpen(id);
    if (typeof open === "string") return open;
    const d = open;
    const held = await this.d.people.rolesOf(clicker);
    const approver: Approver = { user: clicker.name, roles: held.roles };
    const already = this.approvers(id);
    const check = canApprove(d.approvalRule ?? [], approver, d.requestedBy, already);
    if (!check.ok) {
      this.audit(d, clicker.name, "approval.refused", {
        reason: check.reason,
        roles: [...held.roles],
        oncall: held.oncall,
      });
      return check.reason;
    }
    const now = this.d.clock.now();
    const satisfied = this.d.store.tx(() => {
      // Read again inside the transaction: another approver may have clicked while roles were looked up.
      if (this.d.store.getDeployment(id)?.status !== "awaiting_approval") return false;
      const recorded = this.d.store.recordApproval({
        deploymentId: id,
        user: clicker.name,
        decision: "approve",
        groupName: null,
        roles: [...held.roles],
        note: null,
        at: now.toISOString(),
      });
      if (!recorded) return false;
      this.audit(d, clicker.name, "approval.approve", { roles: [...held.roles], oncall: held.oncall });
      const progress = approvalProgress(d.approvalRule ?? [], this.approvers(id));
      if (progress.satisfied) {
        const ok = this.d.store.transition(id, "approved", now);
        this.audit(ok, "deploybot", "deploy.approved", { approvers: progress.groups.flatMap((g) => g.approvedBy) });
      }
      return progress.satisfied;
    });
    await this.refreshCard(id, `Approved by <@${clicker.slackId}>.`);
    if (satisfied) {
      if (d.flags.emergency) await this.announceEmergency(id, clicker);
      if (d.kind === "rollback" && this.rollbackHooks) await this.rollbackHooks.start(id);
      else await this.start(id);
    }
    return null;
  }

  /** Reject clicked: an eligible approver (or the requester, withdrawing) ends the request. */
  async reject(id: number, clicker: Person, note: string | null = null): Promise<string | null> {
    const open = await this.stillOpen(id);
    if (typeof open === "string") return open;
    const d = open;
    const held = await this.d.people.rolesOf(clicker);
    const roles = new Set((d.approvalRule ?? []).flatMap((g) => g.from));
    const isRequester = clicker.name === d.requestedBy;
    if (!isRequester && ![...held.roles].some((r) => roles.has(r))) {
      return `Rejecting needs one of these roles: ${[...roles].join(", ")} (or being the requester).`;
    }
    const now = this.d.clock.now();
    this.d.store.tx(() => {
      this.d.store.recordApproval({
        deploymentId: id,
        user: clicker.name,
        decision: "reject",
        groupName: null,
        roles: [...held.roles],
        note,
        at: now.toISOString(),
      });
      const to = isRequester ? "cancelled" : "rejected";
      this.d.store.transition(id, to, now);
      this.audit(d, clicker.name, `deploy.${to}`, { note });
    });
    await this.refreshCard(
      id,
      `${isRequester ? "Withdrawn" : "Rejected"} by <@${clicker.slackId}>${note ? `: “${note}”` : ""}.`,
    );
    return null;
  }

  /** The request a click is about, if it still awaits approval; else why not (expiring it when its time is up). */
  private async stillOpen(id: number): Promise<Deployment | string> {
    const d = this.d.store.getDeployment(id);
    if (!d) return `There is no deploy #${id}.`;
    const refusal = this.refusalForDecided(d);
    if (refusal) return refusal;
    if (this.expireIfDue(d)) {
      await this.refreshCard(id, "Approval request expired.");
      return `This request expired at ${formatLocal(new Date(d.expiresAt as string), this.timeZone(d))}; ask again with /deploy.`;
    }
    return d;
  }

  private refusalForDecided(d: Deployment): string | null {
    if (d.status === "awaiting_approval") return null;
    if (d.status === "expired")
      return `This request expired${d.expiresAt ? ` at ${formatLocal(new Date(d.expiresAt), this.timeZone(d))}` : ""}; ask again with /deploy.`;
    return `This request is already ${d.status.replace(/_/g, " ")}; nothing changed.`;
  }

  /** Moves an awaiting request past its expiry to expired; true when it did. */
  private expireIfDue(d: Deployment): boolean {
    const now = this.d.clock.now();
    if (d.status !== "awaiting_approval" || !d.expiresAt || now.getTime() < Date.parse(d.expiresAt)) return false;
    this.d.store.tx(() => {
      const e = this.d.store.transition(d.id, "expired", now);
      this.audit(e, "deploybot", "deploy.expired", { expiresAt: d.expiresAt });
    });
    return true;
  }

  private async announceEmergency(id: number, approver: Person): Promise<void> {
    const d = this.d.store.getDeployment(id) as Deployment;
    this.audit(d, approver.name, "override.emergency", {
      bypassed: d.decision?.bypassed ?? [],
      reason: d.flags.emergency,
    });
    await this.d.chat.post(this.d.config.channels.incidents, {
      text: `:rotating_light: Emergency deploy #${d.id}: ${d.service} ${d.version} → ${d.environment}, requested by <@${this.d.people.slackIdOf(d.requestedBy)}> (“${d.flags.emergency}”), approved by <@${approver.slackId}>. Bypassed: ${(d.decision?.bypassed ?? []).join("; ") || "nothing"}.`,
    });
  }

  /** Takes the lock and starts the ECS deployment; the intent is recorded (status deploying) before any ECS call. */
  async start(id: number): Promise<void> {
    const d = this.d.store.getDeployment(id) as Deployment;
    // Only an approved deploy starts, once: this check and the move to deploying below run in one synchronous
    // step, so a click and a tick racing to start the same deploy cannot both get through.
    if (d.status !== "approved") return;
    const t = this.target(d.service, d.environment);
    const now = this.d.clock.now();
    const held = this.d.store.acquireLock(d.service, d.environment, id, d.requestedBy, now);
    if (held) {
      this.d.store.transition(id, "failed", now, {
        progress: { detail: `locked by deploy #${held.deploymentId} of ${held.holder}` },
      });
      this.audit(d, "deploybot", "deploy.failed", { reason: "lock held", holder: held.deploymentId });
      await this.refreshCard(id, `Could not start: deploy #${held.deploymentId} holds the lock.`);
      return;
    }
    this.d.store.tx(() => {
      this.d.store.transition(id, "deploying", now);
      this.audit(d, "deploybot", "ecs.deploy.intent", { cluster: t.ecs.cluster, service: t.ecs.service });
    });
    try {
      const svc = await this.d.ecs.describeService(t.ecs);
      const current = await this.d.ecs.describeTaskDefinition(t.ecs, svc.taskDefinitionArn);
      const currentImage = current.containers.find((c) => c.name === t.ecs.container)?.image;
      if (!currentImage)
        throw new DeploybotError(
          ErrorCode.AwsFailed,
          `container ${t.ecs.container} is not in task definition ${current.family}:${current.revision}: check the ecs.container setting`,
        );
      let targetArn: string;
      if (REVISION_RE.test(d.version)) {
        targetArn = (await this.d.ecs.describeTaskDefinition(t.ecs, d.version)).arn;
      } else if (versionOfImage(currentImage) === d.version) {
        targetArn = current.arn;
      } else {
        targetArn = (await this.d.ecs.registerTaskDefinition(t.ecs, current, imageWithTag(currentImage, d.version)))
          .arn;
      }
      this.d.store.patch(
        id,
        {
          taskDefinition: targetArn,
          previousTaskDefinition: current.arn,
          previousVersion: versionOfImage(currentImage),
        },
        this.d.clock.now(),
      );
      const startedAt = new Date(this.d.clock.now().getTime() - 1000);
      this.d.store.patch(id, { startedAt: this.d.clock.now().toISOString() }, this.d.clock.now());
      await this.d.ecs.updateService(t.ecs, targetArn, strategyOf(t.settings));
      this.audit(d, "deploybot", "ecs.update_service", {
        taskDefinition: targetArn,
        strategy: t.settings.strategy.type,
      });
      const [latest] = await this.d.ecs.listServiceDeployments(t.ecs, startedAt);
      if (latest) this.d.store.patch(id, { ecsDeploymentArn: latest.arn }, this.d.clock.now());
      await this.refreshCard(id, `Deploying ${d.version} (${t.settings.strategy.type}).`);
    } catch (err) {
      const e = asDeploybotError(err, ErrorCode.AwsFailed);
      this.d.store.transition(id, "failed", this.d.clock.now(), { progress: { detail: e.message } });
      this.audit(d, "deploybot", "deploy.failed", { error: e.message });
      await this.refreshCard(id, `Failed to start: ${e.message}`);
    }
  }

  /** The scheduled step: expire approvals, follow ECS deployments, end bake windows. */
  async tick(): Promise<void> {
    const now = this.d.clock.now();
    for (const d of this.d.store.byStatus(["approved", "awaiting_approval", "deploying", "baking"])) {
      try {
        if (d.status === "approved") {
          // Approved but never started: the process stopped between recording the approval and the first
          // ECS call. Starting it now is the one call that was intended.
          if (d.kind === "rollback" && this.rollbackHooks) await this.rollbackHooks.start(d.id);
          else await this.start(d.id);
        } else if (d.status === "awaiting_approval") {
          if (this.expireIfDue(d)) await this.refreshCard(d.id, "Nobody approved in time: the request expired.");
        } else if (d.status === "deploying") {
          await this.follow(d);
        } else if (d.progress?.bakeEndsAt && now.getTime() >= Date.parse(d.progress.bakeEndsAt)) {
          const done = this.d.store.transition(d.id, "succeeded", now);
          this.audit(done, "deploybot", "deploy.succeeded", { bakedUntil: d.progress.bakeEndsAt });
          await this.refreshCard(d.id, "Bake window over with no guardrail breached: succeeded.");
        } else {
          await this.refreshCard(d.id);
        }
      } catch (err) {
        this.d.logger.error({ err, deployment: d.id }, "could not follow a deployment; will try again next tick");
      }
    }
  }

  private async follow(d: Deployment): Promise<void> {
    const t = this.target(d.service, d.environment);
    let arn = d.ecsDeploymentArn;
    if (!arn) {
      // The process may have stopped between UpdateService and recording the ECS deployment: find it.
      const [latest] = await this.d.ecs.listServiceDeployments(t.ecs, new Date(d.updatedAt));
      if (!latest) {
        // Still nothing well after the intent: the process stopped before calling ECS. Nothing changed on
        // ECS, so the safe end is to fail it and free the lock, rather than make a call nobody is watching.
        if (this.d.clock.now().getTime() - Date.parse(d.updatedAt) < NO_ECS_DEPLOYMENT_AFTER_MS) return;
        const detail =
          "ECS shows no deployment for this request (deploybot stopped before calling ECS); nothing was changed, ask again";
        const failed = this.d.store.transition(d.id, "failed", this.d.clock.now(), { progress: { detail } });
        this.audit(failed, "deploybot", `${d.kind}.failed`, { reason: detail });
        await this.refreshCard(d.id, `:red_circle: ${detail}.`);
        if (d.kind === "rollback") await this.rollbackHooks?.ended(failed, false, detail);
        return;
      }
      arn = latest.arn;
      this.d.store.patch(d.id, { ecsDeploymentArn: arn }, this.d.clock.now());
    }
    const ecs = await this.d.ecs.describeServiceDeployment(t.ecs, arn);
    const now = this.d.clock.now();
    if (d.kind === "rollback") {
      // A rollback that stopped an in-flight deployment succeeds when ECS finishes rolling that one back.
      const success = d.flags.viaStop ? "ROLLBACK_SUCCESSFUL" : "SUCCESSFUL";
      if (ecs.status === success) {
        const done = this.d.store.transition(d.id, "succeeded", now, {
          progress: { running: ecs.runningCount, desired: ecs.desiredCount },
        });
        this.audit(done, "deploybot", "rollback.succeeded", { ecsStatus: ecs.status });
        await this.refreshCard(d.id, "Rollback finished: the service is stable on the previous version.");
        await this.rollbackHooks?.ended(done, true, "");
      } else if (["SUCCESSFUL", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED", "STOPPED"].includes(ecs.status)) {
        const detail = ecs.statusReason ?? `ECS ended the rollback with ${ecs.status}`;
        const failed = this.d.store.transition(d.id, "failed", now, { progress: { detail } });
        this.audit(failed, "deploybot", "rollback.failed", { ecsStatus: ecs.status, reason: detail });
        await this.refreshCard(d.id, `:red_circle: Rollback failed: ${detail}`);
        await this.rollbackHooks?.ended(failed, false, detail);
      } else if (ecs.runningCount !== d.progress?.running) {
        this.d.store.patch(d.id, { progress: { running: ecs.runningCount, desired: ecs.desiredCount } }, now);
        await this.refreshCard(d.id);
      }
      return;
    }
    if (ecs.status === "SUCCESSFUL") {
      if (t.policy.bake > 0) {
        const bakeEndsAt = new Date(now.getTime() + t.policy.bake).toISOString();
        this.d.store.transition(d.id, "baking", now, {
          progress: { running: ecs.runningCount, desired: ecs.desiredCount, bakeEndsAt },
        });
        this.audit(d, "deploybot", "deploy.baking", { bakeEndsAt });
        await this.refreshCard(
          d.id,
          `Rolled out (${ecs.runningCount}/${ecs.desiredCount} tasks). Baking for ${formatRelative(t.policy.bake)} with guardrails on.`,
        );
      } else {
        this.d.store.transition(d.id, "succeeded", now, {
          progress: { running: ecs.runningCount, desired: ecs.desiredCount },
        });
        this.audit(d, "deploybot", "deploy.succeeded", {});
        await this.refreshCard(d.id, "Rolled out: succeeded.");
      }
      return;
    }
    if (ecs.status === "ROLLBACK_SUCCESSFUL" || ecs.status === "ROLLBACK_FAILED" || ecs.status === "STOPPED") {
      const detail = ecs.statusReason ?? `ECS ended the deployment with ${ecs.status}`;
      this.d.store.transition(d.id, "failed", now, { progress: { detail } });
      this.audit(d, "deploybot", "deploy.failed", { ecsStatus: ecs.status, reason: detail });
      await this.refreshCard(d.id, `:red_circle: ECS reports ${ecs.status}: ${detail}`);
      return;
    }
    const progress = { running: ecs.runningCount, desired: ecs.desiredCount };
    if (progress.running !== d.progress?.running || progress.desired !== d.progress?.desired) {
      this.d.store.patch(d.id, { progress }, now);
      await this.refreshCard(d.id);
    }
  }

  private approvers(id: number): Approver[] {
    return this.d.store
      .approvals(id)
      .filter((a) => a.decision === "approve")
      .map((a) => ({ user: a.user, roles: new Set(a.roles) }));
  }

  timeZone(d: Deployment): string {
    return this.target(d.service, d.environment).timeZone;
  }

  private render(d: Deployment) {
    return deployCard(d, {
      timeZone: this.timeZone(d),
      now: this.d.clock.now(),
      approvals: this.d.store.approvals(d.id),
      approvers: this.approvers(d.id),
      bakeEndsAt: d.progress?.bakeEndsAt ? new Date(d.progress.bakeEndsAt) : null,
      slackIdOf: (n) => this.d.people.slackIdOf(n),
    });
  }

  async postCard(d: Deployment): Promise<void> {
    const card = this.render(d);
    const posted = await this.d.chat.post(this.d.config.channels.deploys, card);
    this.lastCard.set(d.id, JSON.stringify(card));
    this.d.store.patch(d.id, { cardChannel: posted.channel, cardTs: posted.ts }, this.d.clock.now());
  }

  /**
   * Re-renders the card in place; with `note`, also a short reply in its thread. Slack is best effort:
   * the deployment's state is already recorded, so a card that cannot be updated is posted again, and a
   * Slack failure never undoes or repeats an ECS action.
   */
  async refreshCard(id: number, note?: string): Promise<void> {
    const d = this.d.store.getDeployment(id);
    if (!d?.cardChannel || !d.cardTs) return;
    const card = this.render(d);
    const key = JSON.stringify(card);
    let channel = d.cardChannel;
    let ts = d.cardTs;
    if (this.lastCard.get(id) !== key) {
      try {
        await this.d.chat.update(channel, ts, card);
        this.lastCard.set(id, key);
      } catch (err) {
        this.d.logger.warn({ err, deployment: id }, "could not update the deploy card; posting it again");
        try {
          ({ channel, ts } = await this.d.chat.post(this.d.config.channels.deploys, card));
          this.d.store.patch(id, { cardChannel: channel, cardTs: ts }, this.d.clock.now());
          this.lastCard.set(id, key);
        } catch (postErr) {
          this.d.logger.error({ err: postErr, deployment: id }, "could not post the deploy card");
          return;
        }
      }
    }
    if (note) {
      await this.d.chat.post(channel, { text: note }, ts).catch((err: unknown) => {
        this.d.logger.error({ err, deployment: id }, "could not post in the deploy card's thread");
      });
    }
  }

  audit(d: Deployment, actor: string, action: string, detail: Record<string, unknown>): void {
    this.d.store.audit({
      at: this.d.clock.now(),
      actor,
      action,
      deploymentId: d.id,
      service: d.service,
      environment: d.environment,
      detail,
    });
  }
}
