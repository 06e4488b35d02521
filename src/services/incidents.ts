import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Config, Guardrail } from "../config/schema.js";
import { type Deployment, PENDING, STEPPING, WATCHED } from "../domain/deployment.js";
import {
  ACTIONABLE,
  ACTIVE,
  type GuardrailAction,
  type Incident,
  type IncidentDetail,
  incidentMachine,
} from "../domain/incident.js";
import type { Target } from "../domain/targets.js";
import { asDeploybotError, DeploybotError, ErrorCode } from "../errors.js";
import { alreadyBreachingNote } from "../policies/guardrail-format.js";
import { type GuardrailVerdict, guardrailUnit } from "../policies/guardrails.js";
import { canOverride, decideRollbackAuthority, rollbackRoles } from "../policies/rollback.js";
import { escapeMrkdwn as esc, mention } from "../slack/blocks.js";
import type { Store } from "../store/index.js";
import type { Lifecycle } from "./lifecycle.js";
import type { Outbox } from "./outbox.js";
import type { People, Person } from "./people.js";
import type { RollbackActor, RollbackService } from "./rollbacks.js";

export interface IncidentDeps {
  config: Config;
  store: Store;
  clock: Clock;
  outbox: Outbox;
  lifecycle: Lifecycle;
  people: People;
  rollbacks: RollbackService;
  logger: Logger;
}

/** One guardrail of one deployment, as the monitor evaluates it. */
export interface Watch {
  deployment: Deployment;
  target: Target;
  guardrail: Guardrail;
  index: number;
}

/**
 * Guardrail incidents: a verdict opens, updates, recovers or re-opens one (moving it along the incident machine),
 * pages and schedules the automatic rollback; the #incidents buttons act on it. Every change and the effects it
 * needs are one transaction; the reconciler does the talking.
 */
export class IncidentService {
  /** Card notes already recorded by this process (their intent keys), so that each costs one write. */
  private readonly noted = new Set<string>();

  constructor(private readonly d: IncidentDeps) {}

  private pageKey(d: Deployment, g: Guardrail): string {
    return `deploybot/${d.service}/${d.environment}/deploy-${d.id}/${g.name.replace(/\s+/g, "-")}`;
  }

  private async page(i: Incident, d: Deployment, action: "trigger" | "acknowledge" | "resolve", summary: string) {
    if (!i.pageKey || i.shadow) return;
    await this.d.outbox.page(
      {
        action,
        dedupKey: i.pageKey,
        severity: i.severity === "critical" ? "critical" : "warning",
        summary,
        source: `deploybot/${d.service}/${d.environment}`,
        customDetails: { deployment: d.id, version: d.version, guardrail: i.guardrail, reason: i.detail.reason },
      },
      `page:${i.pageKey}:${action}:${i.episode}`,
      { deploymentId: d.id, incidentId: i.id },
    );
  }

  private triggerSummary(i: Incident, d: Deployment): string {
    return `${i.severity.toUpperCase()}: ${i.detail.reason} on ${d.service} ${d.environment} (${d.kind} #${d.id} ${d.version})`;
  }

  /**
   * What a guardrail does here: a rollback never rolls back (it pages). In traffic steps one that pages on the new
   * side's own metrics (a preset) switches back too; on a shared metric it pages and holds the step for people.
   */
  private actionOf({ guardrail: g, deployment: d }: Watch): GuardrailAction {
    if (g.action === "rollback" && d.kind === "rollback") return "page";
    return g.action === "page" && typeof g.metric === "string" && STEPPING.has(d.status) ? "rollback" : g.action;
  }

  /** Acts on one verdict: `existing` is the guardrail's incident on this deployment, if any. */
  async onVerdict(
    w: Watch,
    verdict: GuardrailVerdict,
    values: number[],
    existing: Incident | undefined,
  ): Promise<void> {
    const { deployment: d, guardrail: g } = w;
    const { store, outbox, lifecycle, clock } = this.d;
    const now = clock.now();
    const already = WATCHED.has(d.status) ? alreadyBreachingNote(g, verdict.preDeploy) : null;
    const alreadyKey = `predeploy:${d.id}:${g.name}`;
    if (already && !this.noted.has(alreadyKey)) {
      // Said on the card as soon as the monitor knows it, since no breach (and no #incidents post) may follow;
      // once per guardrail, also across restarts (the intent's key).
      await outbox.commit(() => outbox.noteOnCard(d, `:information_source: ${esc(already)}`, alreadyKey));
      this.noted.add(alreadyKey);
    }
    const detail: IncidentDetail = {
      reason: verdict.reason,
      observed: verdict.observed,
      values: values.slice(-15),
      unit: guardrailUnit(g),
      threshold: g.threshold,
    };
    if (verdict.status === "breaching") {
      if (existing && existing.state !== "recovered" && existing.state !== "closed") {
        await outbox.commit(async () => {
          await outbox.incident(await store.incidents.patch(existing.id, { lastSeen: now.toISOString(), detail }));
        });
        return;
      }
      if (!WATCHED.has(d.status)) return;
      if (existing?.state === "recovered") {
        await outbox.commit(async () => {
          // Breaching again after a recovery is a new episode: paged again, its grace period started again.
          let i = await store.incidents.apply(existing.id, "breach_again", {
            lastSeen: now.toISOString(),
            resolvedAt: null,
            overriddenBy: null,
            acknowledgedBy: null,
            note: null,
            episode: existing.episode + 1,
            detail,
          });
          await lifecycle.audit(d, "deploybot", "guardrail.breach_again", {
            guardrail: g.name,
            reason: verdict.reason,
          });
          i = await this.scheduleRollback(i, w);
          await outbox.incident(i);
          await outbox.noteOnIncident(i, `:warning: Breaching again: ${esc(verdict.reason)}`);
          await this.page(i, d, "trigger", this.triggerSummary(i, d));
        });
        return;
      }
      if (existing) return;
      // The deploy a rollback ended still has this guardrail's incident open: it is judged on the restored version
      // and resolves its own page; a second incident would page twice for one problem.
      if (d.kind === "rollback" && d.rollsBack) {
        const covering = await store.incidents.get(d.rollsBack, g.name);
        if (covering && ACTIVE.has(covering.state)) return;
      }
      const action = this.actionOf(w);
      await outbox.commit(async () => {
        const rollback = action === "rollback" && !g.shadow;
        const noPrevious = rollback && !d.previousVersion;
        const opened = await store.incidents.open({
          deploymentId: d.id,
          guardrail: g.name,
          severity: g.severity,
          action,
          shadow: g.shadow,
          state: rollback && !noPrevious ? "rollback_pending" : "open",
          at: verdict.since ?? now,
          rollbackAt:
            rollback && !noPrevious ? new Date(now.getTime() + w.target.policy.rollback_grace).toISOString() : null,
          pageKey: !g.shadow && (g.severity === "critical" || action !== "alert") ? this.pageKey(d, g) : null,
          detail,
        });
        if (!opened) return;
        const i = noPrevious
          ? await store.incidents.patch(opened.id, {
              note: "no previous version is known for this deploy; use /rollback with a version",
            })
          : opened;
        await lifecycle.audit(d, "deploybot", "guardrail.breach", {
          guardrail: g.name,
          severity: g.severity,
          action,
          shadow: g.shadow,
          reason: verdict.reason,
          firstSeen: i.firstSeen,
        });
        if (i.rollbackAt)
          await lifecycle.audit(d, "deploybot", "rollback.scheduled", { guardrail: g.name, at: i.rollbackAt });
        await outbox.incident(i);
        await this.page(i, d, "trigger", this.triggerSummary(i, d));
      });
      return;
    }
    if (verdict.status === "ok" && existing && incidentMachine.can(existing.state, "recover")) {
      await outbox.commit(async () => {
        const skipped = existing.state === "rollback_pending";
        const i = await store.incidents.apply(existing.id, "recover", {
          resolvedAt: now.toISOString(),
          detail,
          ...(skipped ? { note: "recovered before the grace period ended" } : {}),
        });
        await lifecycle.audit(d, "deploybot", "guardrail.recovered", { guardrail: g.name, reason: verdict.reason });
        await outbox.incident(i);
        const after = existing.state === "rolled_back" ? ` after rollback #${existing.rollbackId}` : "";
        await outbox.noteOnIncident(
          i,
          `:white_check_mark: Recovered${after}: ${esc(verdict.reason)}${skipped ? " (before the grace period ended: no rollback)" : ""}`,
        );
        await this.page(i, d, "resolve", `${g.name} recovered on ${d.service} ${d.environment}`);
      });
    }
  }

  /** A rollback guardrail starts its grace period on a new episode (when a previous version is known). */
  private async scheduleRollback(i: Incident, w: Watch): Promise<Incident> {
    if (i.action !== "rollback" || i.shadow || !w.deployment.previousVersion) return i;
    const at = new Date(this.d.clock.now().getTime() + w.target.policy.rollback_grace).toISOString();
    await this.d.lifecycle.audit(w.deployment, "deploybot", "rollback.scheduled", { guardrail: i.guardrail, at });
    return this.d.store.incidents.apply(i.id, "schedule_rollback", { rollbackAt: at });
  }

  /** Automatic rollbacks whose grace period is over: recorded once each (the ECS call is the reconciler's). */
  async dueRollbacks(): Promise<void> {
    const now = this.d.clock.now().getTime();
    for (const i of await this.d.store.incidents.inStates(["rollback_pending"])) {
      if (!i.rollbackAt || now < Date.parse(i.rollbackAt)) continue;
      try {
        await this.rollback(i, {
          name: "deploybot",
          slackId: null,
          automatic: true,
          authority: `automatic: guardrail “${i.guardrail}” breached (${i.detail.reason})`,
        });
      } catch (err) {
        this.d.logger.error(
          { err, incident: i.id },
          "the automatic rollback could not be recorded; retried next cycle",
        );
      }
    }
  }

  /** Records the rollback of the incident's deploy (its start links every incident of that deploy). */
  private async rollback(i: Incident, actor: RollbackActor, needsApprovals = false): Promise<string | null> {
    const d = await this.d.store.deployments.must(i.deploymentId);
    if (!d.previousVersion) return "No previous version is known for this deploy; use /rollback with a version.";
    try {
      await this.d.rollbacks.execute(
        {
          service: d.service,
          environment: d.environment,
          fromVersion: d.version,
          toVersion: d.previousVersion,
          toTaskDefinition: d.previousTaskDefinition,
          reason: `guardrail “${i.guardrail}”: ${i.detail.reason}`,
          severity: null,
        },
        actor,
        needsApprovals,
      );
    } catch (err) {
      const e = asDeploybotError(err);
      if (e.code !== ErrorCode.LockHeld) throw err;
      return e.message;
    }
    return null;
  }

  /** Roll back now: someone with rollback authority skips the wait. */
  async rollbackNow(incidentId: number, person: Person): Promise<string | null> {
    const i = await this.d.store.incidents.byId(incidentId);
    if (!i) return "That incident no longer exists.";
    if (!ACTIONABLE.has(i.state)) {
      // Say which rollback and where it stands (a stale copy of the button is pressed while one is retried).
      const state = i.state.replace(/_/g, " ");
      const r = i.rollbackId ? await this.d.store.deployments.get(i.rollbackId) : undefined;
      if (!r) return `This incident is ${state}; nothing to roll back.`;
      const where = `Rollback #${r.id} of ${r.service} ${r.environment}`;
      if (i.state !== "rolling_back") return `${where} already ran; this incident is ${state}.`;
      return `${where} is already ${PENDING.has(r.status) ? "waiting for approval" : "running"}.`;
    }
    const d = await this.d.store.deployments.must(i.deploymentId);
    if (d.kind !== "deploy") return "This is a rollback already; use /rollback to choose another version.";
    let auth: { reason: string; needsApprovals: boolean };
    try {
      auth = await this.d.rollbacks.authorize(person, d.environment, d.service);
    } catch (err) {
      return asDeploybotError(err).message;
    }
    await this.d.lifecycle.audit(d, person.name, "rollback.now", { by: person.name, guardrail: i.guardrail });
    // A person's rollback keeps the environment's rollback approvals; only deploybot's own skips them.
    return this.rollback(
      i,
      { name: person.name, slackId: person.slackId, automatic: false, authority: auth.reason },
      auth.needsApprovals,
    );
  }

  /** Continue anyway: only the executive override role stops a pending automatic rollback. */
  async continueAnyway(incidentId: number, person: Person): Promise<string | null> {
    const { store, outbox, lifecycle, config } = this.d;
    const i = await store.incidents.byId(incidentId);
    if (!i) return "That incident no longer exists.";
    const d = await store.deployments.must(i.deploymentId);
    const policy = config.environments[d.environment];
    const held = await this.d.people.rolesOf(person);
    if (!policy || !canOverride(policy, held.roles)) {
      await lifecycle.audit(d, person.name, "override.refused", { by: person.name, guardrail: i.guardrail });
      return `Only ${policy?.override.join(" or ") || "an override role"} may continue despite a breach; you hold ${[...held.roles].join(", ") || "no role"}.`;
    }
    if (i.state === "overridden") return `${i.overriddenBy} already chose to continue.`;
    if (i.state !== "open" && i.state !== "rollback_pending")
      return i.rollbackId
        ? `Too late: rollback #${i.rollbackId} has already started.`
        : `This incident is ${i.state.replace(/_/g, " ")}.`;
    await outbox.commit(async () => {
      const overridden = await store.incidents.apply(i.id, "override", { overriddenBy: person.name });
      await lifecycle.audit(d, person.name, "override.continue", {
        by: person.name,
        guardrail: i.guardrail,
        bypassed: [`guardrail: ${i.guardrail}`],
      });
      await outbox.incident(overridden);
      await outbox.noteOnIncident(
        overridden,
        `:fast_forward: ${mention(person.slackId)} chose to continue despite the breach: no automatic rollback.`,
      );
    });
    return null;
  }

  /** Acknowledge: the PagerDuty incident is acknowledged and the thread says who is on it. */
  async acknowledge(incidentId: number, person: Person): Promise<string | null> {
    const { store, outbox, lifecycle, config } = this.d;
    const i = await store.incidents.byId(incidentId);
    if (!i) return "That incident no longer exists.";
    if (i.acknowledgedBy) return `${i.acknowledgedBy} already acknowledged it.`;
    const d = await store.deployments.must(i.deploymentId);
    // Acknowledging stops PagerDuty's escalation, so only a responder may: someone who may roll back here
    // (including whoever is on call now) or hold the override role. Checked at the click.
    const policy = config.environments[d.environment];
    if (!policy) throw new DeploybotError(ErrorCode.NotFound, `unknown environment ${d.environment}`);
    const { roles, oncall } = await this.d.people.rolesOf(person);
    const auth = decideRollbackAuthority({ environment: d.environment, policy, user: person.name, roles, oncall });
    if (!auth.allowed && !canOverride(policy, roles)) {
      await lifecycle.audit(d, person.name, "incident.acknowledge_refused", {
        by: person.name,
        guardrail: i.guardrail,
      });
      return `Acknowledging pauses PagerDuty's escalation, so it takes someone who may roll back ${d.environment} (${rollbackRoles(policy).join(", ")}) or ${policy.override.join(", ") || "an override role"}.`;
    }
    await outbox.commit(async () => {
      const acked = await store.incidents.patch(i.id, { acknowledgedBy: person.name });
      await lifecycle.audit(d, person.name, "incident.acknowledged", { by: person.name, guardrail: i.guardrail });
      await this.page(acked, d, "acknowledge", `acknowledged by ${person.name}`);
      await outbox.incident(acked);
      await outbox.noteOnIncident(acked, `:eyes: Acknowledged by ${mention(person.slackId)}.`);
    });
    return null;
  }
}
