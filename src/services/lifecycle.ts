import type { Clock } from "../clock.js";
import { formatRelative } from "../clock.js";
import type { Config } from "../config/schema.js";
import type { Deployment, DeploymentEvent } from "../domain/deployment.js";
import { ACTIVE, blocksSuccess, type Incident } from "../domain/incident.js";
import { findTarget } from "../domain/targets.js";
import type { EcsDeployment } from "../ports.js";
import { escapeMrkdwn as esc } from "../slack/blocks.js";
import { postmortem, rollbackReport } from "../slack/incidents.js";
import type { DeploymentPatch } from "../store/deployments.js";
import type { Store } from "../store/index.js";
import type { Outbox } from "./outbox.js";
import type { People } from "./people.js";

export interface LifecycleDeps {
  config: Config;
  store: Store;
  clock: Clock;
  outbox: Outbox;
  people: People;
}

/**
 * What follows from what: each method applies a deployment event and records, in the caller's transaction, every
 * consequence (the other deployment a rollback ends, the incidents it settles, the card, the notes, the report and
 * the pages). Callers wrap them in `outbox.commit`.
 */
export class Lifecycle {
  constructor(private readonly d: LifecycleDeps) {}

  private now(): Date {
    return this.d.clock.now();
  }

  async audit(d: Deployment, actor: string, action: string, detail: Record<string, unknown> = {}): Promise<void> {
    await this.d.store.audit.append({
      at: this.now(),
      actor,
      action,
      deploymentId: d.id,
      service: d.service,
      environment: d.environment,
      detail,
    });
  }

  /** Applies `event` and queues the card's update, with a note in its thread when given. */
  async move(d: Deployment, event: DeploymentEvent, patch: DeploymentPatch = {}, note?: string): Promise<Deployment> {
    const moved = await this.d.store.deployments.apply(d.id, event, this.now(), patch);
    await this.d.outbox.card(moved);
    if (note) await this.d.outbox.noteOnCard(moved, note);
    return moved;
  }

  /** It never reached ECS (or ECS refused the start): nothing changed there; the lock is free again. */
  async notStarted(d: Deployment, reason: string): Promise<void> {
    const traffic = d.progress?.traffic;
    const failed = await this.move(
      d,
      "not_started",
      { progress: { detail: reason, ...(traffic ? { traffic } : {}) } },
      `:red_circle: Could not start: ${esc(reason)}`,
    );
    await this.audit(failed, "deploybot", `${d.kind}.failed`, { reason });
    if (d.kind === "rollback") await this.rollbackEnded(failed, false, reason);
  }

  /**
   * ECS finished rolling out `d` (or, with traffic steps, the last step took all traffic): a deploy bakes (or
   * succeeds), a rollback ends well. A stepped deploy whose new side ECS has just brought up takes no traffic yet:
   * it waits for its target group's health check (TrafficSteps), and nothing else happens here.
   */
  async rolledOut(
    d: Deployment,
    ecs: Pick<EcsDeployment, "runningCount" | "desiredCount">,
    stepsNote?: string,
  ): Promise<void> {
    const bake = findTarget(this.d.config, d.service, d.environment)?.policy.bake ?? 0;
    const now = this.now();
    const traffic = d.progress?.traffic;
    if (traffic?.mode === "steps" && d.kind === "deploy" && d.status === "deploying") {
      if (traffic.upAt) return;
      const up = await this.d.store.deployments.patch(
        d.id,
        {
          progress: {
            ...d.progress,
            running: ecs.runningCount,
            desired: ecs.desiredCount,
            traffic: { ...traffic, upAt: now.toISOString() },
          },
        },
        now,
      );
      await this.d.outbox.card(up);
      await this.d.outbox.noteOnCard(
        up,
        `${esc(d.version)} is up on the idle side (${ecs.runningCount}/${ecs.desiredCount} tasks), taking no traffic yet: checking its target group's health before the first step.`,
      );
      await this.audit(up, "deploybot", "steps.side_up", { running: ecs.runningCount, desired: ecs.desiredCount });
      return;
    }
    const progress = {
      ...(traffic ? { traffic } : {}),
      running: ecs.runningCount,
      desired: ecs.desiredCount,
      rolledOutAt: now.toISOString(),
    };
    if (bake > 0) {
      const bakeEndsAt = new Date(now.getTime() + bake).toISOString();
      const baking = await this.move(
        d,
        "rolled_out",
        { progress: { ...progress, bakeEndsAt } },
        d.kind === "rollback"
          ? `Rollback finished: the service is stable on ${d.version}. Watching it for ${formatRelative(bake)}.`
          : stepsNote
            ? `${stepsNote} Baking for ${formatRelative(bake)} with guardrails on.`
            : `Rolled out (${ecs.runningCount}/${ecs.desiredCount} tasks). Baking for ${formatRelative(bake)} with guardrails on.`,
      );
      await this.audit(baking, "deploybot", `${d.kind}.baking`, { bakeEndsAt });
    } else {
      const done = await this.move(
        d,
        "succeed",
        { progress },
        d.kind === "rollback"
          ? "Rollback finished: the service is stable on the previous version."
          : stepsNote
            ? `${stepsNote} Succeeded.`
            : "Rolled out: succeeded.",
      );
      await this.audit(done, "deploybot", `${d.kind}.succeeded`, {});
    }
    if (d.kind === "rollback") await this.rollbackEnded(await this.d.store.deployments.must(d.id), true, "");
  }

  /** ECS stopped it, or its circuit breaker rolled it back: what ran before runs. */
  async ecsFailed(d: Deployment, status: string, reason: string): Promise<void> {
    const traffic = d.progress?.traffic;
    const failed = await this.move(
      d,
      "ecs_failed",
      { progress: { detail: reason, ...(traffic ? { traffic } : {}) } },
      `:red_circle: ECS reports ${status}: ${esc(reason)}`,
    );
    await this.audit(failed, "deploybot", `${d.kind}.failed`, { ecsStatus: status, reason });
    // A stepped deploy's idle side never took traffic: it goes back to running nothing.
    if (traffic?.mode === "steps" && d.kind === "deploy")
      await this.d.outbox.scale(failed, traffic.plan.sides[traffic.side], 0);
    if (d.kind === "rollback") {
      await this.rollbackEnded(failed, false, reason);
      return;
    }
    // Its version is not running: nothing is left to watch or to roll back.
    for (const i of await this.d.store.incidents.of(d.id)) {
      if (ACTIVE.has(i.state) && i.state !== "rolling_back") await this.closeIncident(i, "the deploy failed on ECS");
    }
  }

  /** A rollback ended (well or not): settle the deploy it rolled back, its incidents, the report and the pages. */
  async rollbackEnded(r: Deployment, ok: boolean, detail: string): Promise<void> {
    const { store, outbox, config, people } = this.d;
    const now = this.now();
    const deploy = r.rollsBack ? await store.deployments.get(r.rollsBack) : undefined;
    if (deploy?.status === "rolling_back") {
      if (ok) {
        const settled = await this.move(deploy, "rolled_back", {}, `Rolled back to ${r.version} by rollback #${r.id}.`);
        await this.audit(settled, "deploybot", "deploy.rolled_back", { rollback: r.id });
      } else {
        // Its version still runs: watched again, and people decide (Roll back now is offered again).
        const back = await this.move(
          deploy,
          "rollback_abandoned",
          {},
          `:red_circle: Rollback #${r.id} failed: ${esc(detail)}`,
        );
        await this.audit(back, "deploybot", "deploy.rollback_abandoned", { rollback: r.id, reason: detail });
      }
    }
    if (deploy) {
      for (const i of await store.incidents.of(deploy.id)) {
        if (i.state !== "rolling_back" || i.rollbackId !== r.id) continue;
        if (ok) {
          const done = await store.incidents.apply(i.id, "rollback_done");
          await outbox.incident(done);
          const tz = findTarget(config, deploy.service, deploy.environment)?.timeZone ?? config.timezone;
          const text = postmortem(done, deploy, r, {
            timeZone: tz,
            deployLog: await store.audit.list({ deploymentId: deploy.id }),
            rollbackLog: await store.audit.list({ deploymentId: r.id }),
            stableAt: now.toISOString(),
            slackIdOf: (n) => people.slackIdOf(n),
          });
          await outbox.noteOnIncident(done, text, `postmortem:${done.id}:${r.id}`);
        } else {
          const open = await store.incidents.apply(i.id, "rollback_failed", { rollbackId: null });
          await outbox.incident(open);
          await outbox.noteOnIncident(
            open,
            `:red_circle: Rollback #${r.id} failed: ${esc(detail)}. Roll back now to try again.`,
          );
        }
      }
    }
    const took = formatRelative(now.getTime() - Date.parse(r.createdAt));
    await outbox.post(
      config.channels.incidents,
      rollbackReport(r, ok, detail, took, (n) => people.slackIdOf(n)),
      `report:${r.id}`,
      {
        deploymentId: r.id,
      },
    );
    if (ok && (r.flags.severity === "P0" || r.flags.severity === "P1")) await this.pageRollback(r, "resolve");
  }

  /** The page of a P0/P1 rollback, one dedup key per service and environment, each action once per rollback. */
  async pageRollback(r: Deployment, action: "trigger" | "resolve"): Promise<void> {
    await this.d.outbox.page(
      {
        action,
        dedupKey: `deploybot/${r.service}/${r.environment}/rollback`,
        severity: r.flags.severity === "P0" ? "critical" : "error",
        // PagerDuty's own Slack integration posts summaries to Slack: what a person typed is escaped here too.
        summary: `${r.flags.severity} rollback of ${r.service} ${r.environment} from ${r.previousVersion} to ${r.version}${r.reason ? `: ${esc(r.reason)}` : ""}`,
        source: `deploybot/${r.service}/${r.environment}`,
        customDetails: { rollback: r.id, requestedBy: r.requestedBy, automatic: Boolean(r.flags.automatic) },
      },
      `page:rollback:${r.id}:${action}`,
      { deploymentId: r.id },
    );
  }

  /** An incident nothing watches any more is closed, and its message says so. */
  async closeIncident(i: Incident, why: string): Promise<void> {
    const closed = await this.d.store.incidents.apply(i.id, "close", { note: why });
    await this.d.outbox.incident(closed);
    // Nothing watches it any more, so nothing would ever resolve its page: resolve it now, saying why.
    if (closed.pageKey && !closed.shadow && closed.state === "closed" && i.state !== "recovered") {
      const d = await this.d.store.deployments.must(i.deploymentId);
      await this.d.outbox.page(
        {
          action: "resolve",
          dedupKey: closed.pageKey,
          severity: closed.severity === "critical" ? "critical" : "warning",
          summary: `${closed.guardrail} on ${d.service} ${d.environment}: closed, ${why}`,
          source: `deploybot/${d.service}/${d.environment}`,
        },
        `page:${closed.pageKey}:resolve:${closed.episode}`,
        { deploymentId: d.id, incidentId: closed.id },
      );
    }
  }

  /**
   * The bake window of `d` is over. It ends `succeeded` only when none of its incidents holds it open and every
   * guardrail reached a verdict; otherwise it waits (once noted). Overrides and missing data are said, never hidden.
   */
  async bakeEnd(d: Deployment): Promise<void> {
    const { store, outbox, config } = this.d;
    const target = findTarget(config, d.service, d.environment);
    const incidents = await store.incidents.of(d.id);
    // A rollback is never held open (nothing would roll it back); what still breaches is reported instead.
    const blocking = d.kind === "deploy" ? incidents.filter(blocksSuccess) : [];
    if (blocking.length > 0) {
      const waiting = `waiting: ${blocking.map((i) => `“${i.guardrail}” ${i.state.replace(/_/g, " ")}`).join(", ")}`;
      if (d.progress?.detail !== waiting) {
        await store.deployments.patch(d.id, { progress: { ...d.progress, detail: waiting } }, this.now());
        await outbox.card(d);
        await outbox.noteOnCard(d, `Bake window over, but not succeeded: ${waiting}.`, `bake-wait:${d.id}:${waiting}`);
      }
      return;
    }
    // Verified means judged on recent data: a verdict in the last quarter of the bake (at least two cycles'
    // worth), not one reading early on before CloudWatch went quiet.
    const checks = await store.checks.of(d.id);
    const bake = target?.policy.bake ?? 0;
    const recent = this.now().getTime() - Math.max(bake / 4, 2 * config.monitor.interval);
    const unverified = (target?.settings.guardrails ?? []).filter((g) => {
      const at = checks.get(g.name)?.lastConclusiveAt;
      return !at || Date.parse(at) < recent;
    });
    const overridden = incidents.filter((i) => i.state === "overridden");
    const warnings = incidents.filter(
      (i) => ACTIVE.has(i.state) && (d.kind === "rollback" || !blocksSuccess(i)) && i.state !== "overridden",
    );
    const stillBreaching =
      d.kind === "rollback" && d.rollsBack
        ? (await store.incidents.of(d.rollsBack)).filter((i) => i.state === "rolled_back")
        : [];
    const parts: string[] = [];
    if (overridden.length)
      parts.push(`overridden by ${[...new Set(overridden.map((i) => i.overriddenBy))].join(", ")}`);
    if (unverified.length)
      parts.push(
        `unverified: ${unverified.length} guardrail${unverified.length === 1 ? "" : "s"} had no data (${unverified.map((g) => g.name).join(", ")})`,
      );
    if (warnings.length) parts.push(`${warnings.length} warning${warnings.length === 1 ? "" : "s"} open`);
    if (stillBreaching.length)
      parts.push(`still breaching after the rollback: ${stillBreaching.map((i) => `“${i.guardrail}”`).join(", ")}`);
    const outcome = parts.length ? `succeeded, ${parts.join("; ")}` : "succeeded";
    const note =
      parts.length > 0 ? `Bake window over: ${outcome}.` : "Bake window over with no guardrail breached: succeeded.";
    const done = await this.move(
      d,
      "succeed",
      { progress: { ...d.progress, detail: parts.length ? outcome : undefined } },
      note,
    );
    await this.audit(done, "deploybot", `${d.kind}.succeeded`, {
      bakedUntil: d.progress?.bakeEndsAt,
      overriddenBy: overridden.map((i) => i.overriddenBy),
      unverified: unverified.map((g) => g.name),
    });
    for (const i of [...overridden, ...warnings]) await this.closeIncident(i, `the ${d.kind} ${outcome}`);
    for (const i of stillBreaching) {
      await outbox.noteOnIncident(
        i,
        `:warning: Still breaching ${formatRelative(this.now().getTime() - Date.parse(d.createdAt))} after rollback #${d.id}: the deploy may not be the cause. The page stays open.`,
        `still-breaching:${i.id}:${d.id}`,
      );
    }
  }
}
