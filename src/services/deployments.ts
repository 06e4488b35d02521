import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { formatLocal } from "../clock.js";
import type { Config } from "../config/schema.js";
import type { Deployment } from "../domain/deployment.js";
import type { Intent } from "../domain/effects.js";
import type { DeployRequest } from "../domain/requests.js";
import { findTarget, type Target } from "../domain/targets.js";
import { stepsStrategyOf } from "../domain/traffic.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import { type Approver, approvalProgress, canApprove } from "../policies/approvals.js";
import { decideDeploy } from "../policies/gate.js";
import { escapeMrkdwn as esc, mention } from "../slack/blocks.js";
import { quoted } from "../slack/cards.js";
import type { DeploymentBrief, Store } from "../store/index.js";
import { dryRunPlan } from "./dry-run.js";
import type { Lifecycle } from "./lifecycle.js";
import type { Outbox } from "./outbox.js";
import type { People, Person } from "./people.js";
import type { Reconciler } from "./reconciler.js";
import type { RollbackService } from "./rollbacks.js";
import { type EcsRollout, strategyOf } from "./rollout.js";
import type { TrafficSteps } from "./steps.js";
import { TimeSlicer } from "./time-slicer.js";

export interface DeploymentDeps {
  config: Config;
  store: Store;
  clock: Clock;
  people: People;
  outbox: Outbox;
  lifecycle: Lifecycle;
  rollout: EcsRollout;
  rollbacks: RollbackService;
  reconciler: Reconciler;
  steps: TrafficSteps;
  logger: Logger;
}

/** Deploy requests: the gate, approvals, the start on ECS (through the outbox) and the scheduled follow-up. */
export class DeploymentService {
  constructor(private readonly d: DeploymentDeps) {}

  private target(service: string, environment: string): Target {
    const t = findTarget(this.d.config, service, environment);
    if (!t) throw new DeploybotError(ErrorCode.NotFound, `${service} is not configured in ${environment}`);
    return t;
  }

  private async facts(cmd: DeployRequest, requester: Person, t: Target) {
    const lock = await this.d.store.locks.get(cmd.service, cmd.environment);
    const holder = lock ? await this.d.store.deployments.get(lock.deploymentId) : undefined;
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

  /** `/deploy`: decides, records, posts the card (and starts when allowed); returns an ephemeral reply, if any. */
  async request(cmd: DeployRequest, requester: Person): Promise<string | null> {
    const t = this.target(cmd.service, cmd.environment);
    if (cmd.canary && !stepsStrategyOf(t.settings, true)) {
      throw new DeploybotError(
        ErrorCode.CommandInvalid,
        `${cmd.service} ${cmd.environment} has no canary: \`--canary\` chooses the traffic steps of its \`canary\` strategy, and services.${cmd.service}.environments.${cmd.environment} sets none. Deploy without --canary (${strategyOf(t.settings).type}), or add a canary (type STEPS) to the config.`,
      );
    }
    const decision = decideDeploy(await this.facts(cmd, requester, t));
    if (cmd.dryRun) return dryRunPlan(cmd, t, decision);
    const now = this.d.clock.now();
    const { store, outbox, lifecycle } = this.d;
    const { d, card } = await outbox.commit(async () => {
      const created = await store.deployments.create(
        {
          kind: "deploy",
          service: cmd.service,
          environment: cmd.environment,
          version: cmd.version,
          requestedBy: requester.name,
          reason: cmd.reason ?? cmd.emergency,
          flags: {
            ...(cmd.hotfix ? { hotfix: true } : {}),
            ...(cmd.emergency ? { emergency: cmd.emergency } : {}),
            ...(cmd.canary ? { canary: true } : {}),
          },
        },
        now,
      );
      const record = { outcome: decision.outcome, reasons: decision.reasons, bypassed: decision.bypassed };
      const decided =
        decision.outcome === "needs_approval"
          ? await store.deployments.apply(created.id, "ask_approval", now, {
              decision: record,
              approvalRule: decision.rule,
              expiresAt: new Date(now.getTime() + t.policy.approval_ttl).toISOString(),
            })
          : await store.deployments.apply(created.id, decision.outcome === "allow" ? "allow" : "deny", now, {
              decision: record,
            });
      await lifecycle.audit(decided, requester.name, `deploy.${decision.outcome}`, {
        ...record,
        hotfix: cmd.hotfix,
        emergency: cmd.emergency,
        reason: cmd.reason,
        ...(cmd.canary ? { canary: true } : {}),
      });
      if (decision.outcome === "deny") return { d: decided, card: null };
      const card = await outbox.card(decided);
      if (decision.outcome === "allow") await this.start(decided, card);
      return { d: decided, card };
    });
    if (decision.outcome === "deny") {
      return `:no_entry: Deploy of ${cmd.service} ${esc(cmd.version)} to ${cmd.environment} denied.\n${decision.reasons.map((r) => `• ${esc(r)}`).join("\n")}`;
    }
    return this.cardReport(d, card as Intent);
  }

  /** After the first attempt at posting a new card: nothing to say when it is up, else what happens now. */
  private async cardReport(d: Deployment, card: Intent): Promise<string | null> {
    const after = await this.d.reconciler.firstAttempt(card.id);
    if (!after || after.status === "done") return null;
    if (after.status === "abandoned")
      return `:red_circle: Deploy #${d.id} was not started: Slack refused its card (${esc(after.lastError ?? "unknown")}). Nothing changed on ECS and the lock is free; fix the channel setup and ask again.`;
    return `:warning: Deploy #${d.id} is recorded, but Slack has not taken its card yet (${esc(after.lastError ?? "not tried yet")}). deploybot keeps trying; the deploy ${d.status === "awaiting_approval" ? "can be approved" : "starts"} once the card is up, and fails cleanly (freeing the lock) if it cannot be posted within 10 min.`;
  }

  /**
   * Takes the lock and records the start with its ECS intent, in the caller's transaction. A deploy never starts
   * before its card is up: the ECS intent waits for `card` (and is abandoned with it).
   */
  async start(d: Deployment, card: Intent | null): Promise<void> {
    const { store, outbox, lifecycle, clock } = this.d;
    const held = await store.locks.acquire(d.service, d.environment, d.id, d.requestedBy, clock.now());
    if (held) {
      await lifecycle.notStarted(d, `deploy #${held.deploymentId} of ${held.holder} holds the lock`);
      return;
    }
    const started = await store.deployments.apply(d.id, "start", clock.now());
    const t = this.target(d.service, d.environment);
    await lifecycle.audit(started, "deploybot", "ecs.deploy.intent", {
      cluster: t.ecs.cluster,
      service: t.ecs.service,
    });
    await outbox.card(started);
    await outbox.rollout(started, card && card.status === "open" ? card.id : null);
  }

  /** Approve clicked: checked now, with the clicker's roles now; returns a refusal for the clicker, or null. */
  async approve(id: number, clicker: Person): Promise<string | null> {
    const open = await this.stillOpen(id);
    if (typeof open === "string") return open;
    const d = open;
    const held = await this.d.people.rolesOf(clicker);
    const approver: Approver = { user: clicker.name, roles: held.roles };
    const { store, outbox, lifecycle, clock } = this.d;
    const now = clock.now();
    // Checked inside the transaction, against the status and approvals as they are now: another click, on this
    // process or on another replica, may have been counted while the roles were looked up. Whoever it was, the
    // clicker whose click changed nothing is told why.
    return outbox.commit(async (): Promise<string | null> => {
      const current = await store.deployments.must(id);
      if (current.status !== "awaiting_approval") return this.closed(current);
      const check = canApprove(current.approvalRule ?? [], approver, current.requestedBy, await this.approvers(id));
      if (!check.ok) {
        await lifecycle.audit(current, clicker.name, "approval.refused", {
          reason: check.reason,
          roles: [...held.roles],
          oncall: held.oncall,
        });
        return check.reason;
      }
      const recorded = await store.approvals.record({
        deploymentId: id,
        user: clicker.name,
        decision: "approve",
        groupName: null,
        roles: [...held.roles],
        note: null,
        at: now.toISOString(),
      });
      if (!recorded) return "You have already approved this; an approval counts once.";
      await lifecycle.audit(d, clicker.name, "approval.approve", { roles: [...held.roles], oncall: held.oncall });
      await outbox.card(current);
      await outbox.noteOnCard(current, `Approved by ${mention(clicker.slackId)}.`);
      const progress = approvalProgress(d.approvalRule ?? [], await this.approvers(id));
      if (!progress.satisfied) return null;
      const ok = await store.deployments.apply(id, "approve", now);
      await lifecycle.audit(ok, "deploybot", "deploy.approved", {
        approvers: progress.groups.flatMap((g) => g.approvedBy),
      });
      if (d.flags.emergency) await this.announceEmergency(ok, clicker);
      if (ok.kind === "rollback") await this.d.rollbacks.begin(ok);
      // Its card is already up unless Slack never took it: only then does the start wait for the card.
      else
        await this.start(
          ok,
          current.cardTs ? null : ((await store.intents.openOf("slack.card", { deploymentId: id })) ?? null),
        );
      return null;
    });
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
    const { store, outbox, lifecycle, clock } = this.d;
    const now = clock.now();
    return outbox.commit(async (): Promise<string | null> => {
      // An Approve that completed the request (or another Reject) may have been handled since the check above,
      // here or on another replica: then this click changes nothing, and says so.
      const current = await store.deployments.must(id);
      if (current.status !== "awaiting_approval") return this.closed(current);
      await store.approvals.record({
        deploymentId: id,
        user: clicker.name,
        decision: "reject",
        groupName: null,
        roles: [...held.roles],
        note,
        at: now.toISOString(),
      });
      const event = isRequester ? "withdraw" : "reject";
      const ended = await lifecycle.move(
        current,
        event,
        {},
        `${isRequester ? "Withdrawn" : "Rejected"} by ${mention(clicker.slackId)}${note ? `: ${quoted(note)}` : ""}.`,
      );
      await lifecycle.audit(ended, clicker.name, `deploy.${ended.status}`, { note });
      return null;
    });
  }

  /** The request a click is about, if it still awaits approval; else why not (expiring it when its time is up). */
  private async stillOpen(id: number): Promise<Deployment | string> {
    const d = await this.d.store.deployments.get(id);
    if (!d) return `There is no deploy #${id}.`;
    if (d.status !== "awaiting_approval") return this.closed(d);
    if (await this.expireIfDue(d, "Approval request expired."))
      return `This request expired at ${formatLocal(new Date(d.expiresAt as string), this.timeZone(d))}; ask again with /deploy.`;
    return d;
  }

  /** What a click on a request that no longer awaits approval is told: where it is now, and that nothing changed. */
  private closed(d: Deployment): string {
    if (d.status === "expired")
      return `This request expired${d.expiresAt ? ` at ${formatLocal(new Date(d.expiresAt), this.timeZone(d))}` : ""}; ask again with /deploy.`;
    return `This request is already ${d.status.replace(/_/g, " ")}; nothing changed.`;
  }

  /** Moves an awaiting request past its expiry to expired; true when it did. */
  private async expireIfDue(d: Deployment, note: string): Promise<boolean> {
    const now = this.d.clock.now();
    if (d.status !== "awaiting_approval" || !d.expiresAt || now.getTime() < Date.parse(d.expiresAt)) return false;
    await this.d.outbox.commit(async () => {
      const e = await this.d.lifecycle.move(d, "expire", {}, note);
      await this.d.lifecycle.audit(e, "deploybot", "deploy.expired", { expiresAt: d.expiresAt });
    });
    return true;
  }

  private async announceEmergency(d: Deployment, approver: Person): Promise<void> {
    await this.d.lifecycle.audit(d, approver.name, "override.emergency", {
      bypassed: d.decision?.bypassed ?? [],
      reason: d.flags.emergency,
    });
    await this.d.outbox.post(
      this.d.config.channels.incidents,
      `:rotating_light: Emergency deploy #${d.id}: ${d.service} ${esc(d.version)} → ${d.environment}, requested by ${mention(this.d.people.slackIdOf(d.requestedBy))} (${quoted(d.flags.emergency ?? "")}), approved by ${mention(approver.slackId)}. Bypassed: ${esc((d.decision?.bypassed ?? []).join("; ")) || "nothing"}.`,
      `emergency:${d.id}`,
      { deploymentId: d.id },
    );
  }

  /**
   * The scheduled step: expire approvals, follow ECS deployments, check new sides' health and judge traffic steps,
   * end bake windows, scale down previous versions whose keep is over. Every deployment in those states is looked at
   * briefly; only those with something to do now are read in full (and ECS or the load balancer asked about them),
   * giving the event loop a turn every few milliseconds.
   */
  async tick(): Promise<void> {
    const now = this.d.clock.now();
    const { store, rollout, lifecycle, outbox, logger, steps } = this.d;
    const slicer = new TimeSlicer();
    await slicer.begin();
    const due = (b: DeploymentBrief) =>
      b.status === "deploying" ||
      b.status === "shifting" ||
      (b.status === "awaiting_approval" && b.expiresAt !== null && now.getTime() >= Date.parse(b.expiresAt)) ||
      (b.status === "baking" && b.bakeEndsAt !== null && now.getTime() >= Date.parse(b.bakeEndsAt));
    for (const brief of await store.deployments.briefs(["awaiting_approval", "deploying", "shifting", "baking"])) {
      if (!due(brief)) continue;
      if (slicer.due) await slicer.turn();
      const d = await store.deployments.get(brief.id);
      // Moved on since the brief was read (a click, the monitor): the next tick sees where it is now.
      if (!d || d.status !== brief.status) continue;
      try {
        if (d.status === "awaiting_approval")
          await this.expireIfDue(d, "Nobody approved in time: the request expired.");
        else if (d.status === "shifting" || (d.status === "deploying" && d.progress?.traffic?.upAt))
          await steps.tick(d);
        else if (d.status === "deploying") await rollout.observe(d);
        else if (d.progress?.bakeEndsAt && now.getTime() >= Date.parse(d.progress.bakeEndsAt))
          await outbox.commit(() => lifecycle.bakeEnd(d));
      } catch (err) {
        logger.error({ err, deployment: d.id }, "could not follow a deployment; will try again next tick");
      }
    }
    try {
      await steps.expireKeeps();
    } catch (err) {
      logger.error({ err }, "could not scale down the kept previous versions; will try again next tick");
    }
  }

  private async approvers(id: number): Promise<Approver[]> {
    return (await this.d.store.approvals.of(id))
      .filter((a) => a.decision === "approve")
      .map((a) => ({ user: a.user, roles: new Set(a.roles) }));
  }

  timeZone(d: Deployment): string {
    return this.target(d.service, d.environment).timeZone;
  }
}
