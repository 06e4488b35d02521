import { setImmediate as yieldToLoop } from "node:timers/promises";
import type { Logger } from "pino";
import { requestSeriesId } from "../adapters/aws/cloudwatch.js";
import type { Clock } from "../clock.js";
import { formatLocal, formatRelative } from "../clock.js";
import type { Config, Guardrail } from "../config/schema.js";
import { findTarget, type Target } from "../domain/targets.js";
import { asDeploybotError } from "../errors.js";
import {
  evaluateGuardrail,
  evaluationShape,
  formatValue,
  type GuardrailVerdict,
  guardrailUnit,
  parseThreshold,
  sparkline,
} from "../policies/guardrails.js";
import { canOverride, decideRollbackAuthority, rollbackRoles } from "../policies/rollback.js";
import type { ChatPort, MetricQuery, MetricSeries, MetricsPort } from "../ports.js";
import { ACTION } from "../slack/actions.js";
import { actions, type Block, context, mention, section } from "../slack/blocks.js";
import type { Deployment, Incident, IncidentDetail, Store } from "../store/index.js";
import type { DeploymentService } from "./deployments.js";
import type { Paging } from "./paging.js";
import type { People, Person } from "./people.js";
import type { RollbackService } from "./rollbacks.js";

/** How long a watch schedule lasts after the rollout starts (0 without one). */
function watchLength(schedule: Array<{ every: number; for: number }> | undefined): number {
  return (schedule ?? []).reduce((sum, p) => sum + p.for, 0);
}

/** The longest the monitor runs without giving the event loop a turn, so a big cycle never delays acks. */
const SLICE_MS = 8;

/** A function to await often: it yields to the event loop once SLICE_MS have passed since the last yield. */
function timeSlicer(): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < SLICE_MS) return;
    await yieldToLoop();
    since = performance.now();
  };
}

export interface MonitorDeps {
  config: Config;
  store: Store;
  clock: Clock;
  metrics: MetricsPort;
  chat: ChatPort;
  people: People;
  paging: Paging;
  logger: Logger;
}

interface Watch {
  deployment: Deployment;
  target: Target;
  guardrail: Guardrail;
  index: number;
}

/**
 * The guardrail monitor: every cycle, one batch of metric queries for every guardrail of every deploy
 * from rollout start to the end of its bake window; breaches are recorded before they are acted on, so a
 * restarted process never pages, posts or rolls back twice.
 */
export class Monitor {
  private readonly lastMessage = new Map<number, string>();
  /** Permalinks of deploy cards, by deployment id (a card's link never changes once posted). */
  private readonly cardLinks = new Map<number, string>();

  constructor(
    private readonly d: MonitorDeps,
    private readonly deployments: DeploymentService,
    private readonly rollbacks: RollbackService,
  ) {}

  /** The deploys being watched now, and deploys whose incidents are still open. */
  private watches(): Watch[] {
    const now = this.d.clock.now().getTime();
    const ids = new Set<number>();
    const list: Deployment[] = [];
    const add = (d: Deployment | undefined) => {
      if (d && !ids.has(d.id)) {
        ids.add(d.id);
        list.push(d);
      }
    };
    for (const d of this.d.store.byStatus(["deploying", "baking"])) if (d.kind === "deploy") add(d);
    // Environments with a watch schedule go on watching after the bake window, for as long as it says.
    const longest = Math.max(0, ...Object.values(this.d.config.environments).map((e) => watchLength(e.watch)));
    if (longest > 0) {
      for (const d of this.d.store.succeededSince(new Date(now - longest - this.d.config.monitor.interval))) add(d);
    }
    const open = new Set<number>();
    for (const i of this.d.store.incidentsByStatus("open")) {
      open.add(i.deploymentId);
      add(this.d.store.getDeployment(i.deploymentId));
    }
    return list.flatMap((deployment) => {
      const target = findTarget(this.d.config, deployment.service, deployment.environment);
      // A deploy with an open incident is evaluated every cycle, so recovery is seen as soon as it happens.
      if (!target || (!open.has(deployment.id) && !this.due(deployment, target, now))) return [];
      return target.settings.guardrails.map((guardrail, index) => ({ deployment, target, guardrail, index }));
    });
  }

  /** Is this cycle one of the deploy's checks? Every cycle in flight, or on the watch schedule's grid. */
  private due(d: Deployment, t: Target, now: number): boolean {
    const inFlight = d.status === "deploying" || d.status === "baking";
    const schedule = t.policy.watch;
    if (!schedule || !d.startedAt) return inFlight;
    // Phase p checks at every `every` after its start, up to and including its end: with 5m for 30m then
    // 15m for 90m, that is minutes 5, 10 ... 30, then 45, 60 ... 120 after the rollout started.
    const interval = this.d.config.monitor.interval;
    let start = Date.parse(d.startedAt);
    for (const phase of schedule) {
      const offset = now - start;
      if (offset >= phase.every && offset < phase.for + interval && offset % phase.every < interval) return true;
      start += phase.for;
    }
    return false;
  }

  private query(w: Watch, id: string): MetricQuery {
    const m = w.guardrail.metric;
    const spec =
      typeof m === "string"
        ? { preset: m }
        : "expression" in m
          ? { expression: m.expression }
          : { namespace: m.namespace, name: m.name, dimensions: m.dimensions, stat: m.stat };
    return {
      id,
      region: w.target.ecs.region,
      service: w.deployment.service,
      environment: w.deployment.environment,
      metricName: typeof m === "string" ? m : "expression" in m ? (m.label ?? w.guardrail.name) : m.name,
      spec,
      periodSeconds: Math.round(w.guardrail.period / 1000),
      context: {
        cluster: w.target.ecs.cluster,
        ecsService: w.target.ecs.service,
        ...(w.target.settings.load_balancer
          ? {
              loadBalancer: w.target.settings.load_balancer.name,
              targetGroup: w.target.settings.load_balancer.target_group,
            }
          : {}),
      },
    };
  }

  /** One monitoring cycle. */
  async cycle(): Promise<void> {
    const now = this.d.clock.now();
    const slice = timeSlicer();
    const watches = this.watches();
    await slice();
    if (watches.length > 0) {
      const queries: MetricQuery[] = [];
      for (const w of watches) {
        queries.push(this.query(w, `g${w.deployment.id}_${w.index}`));
        await slice();
      }
      const longest = Math.max(...watches.map((w) => (evaluationShape(w.guardrail).n + 1) * w.guardrail.period));
      let series: MetricSeries[];
      try {
        series = await this.d.metrics.getMetricData(queries, new Date(now.getTime() - longest), now);
      } catch (err) {
        this.d.logger.warn({ err }, "metrics could not be read this cycle: every guardrail is inconclusive");
        series = [];
      }
      await slice();
      const byId = new Map(series.map((s) => [s.id, s]));
      const baselines = await this.baselines(watches);
      for (let i = 0; i < watches.length; i++) {
        await slice();
        const w = watches[i] as Watch;
        const id = queries[i]?.id as string;
        const s = byId.get(id);
        const verdict: GuardrailVerdict =
          !s || s.status === "error"
            ? {
                status: "inconclusive",
                reason: `${w.guardrail.name}: ${s?.message ?? "no data returned"}`,
                observed: null,
                breachingPoints: 0,
                evaluatedPoints: 0,
              }
            : evaluateGuardrail({
                guardrail: w.guardrail,
                datapoints: s.datapoints,
                requestCounts: byId.get(requestSeriesId(id))?.datapoints ?? [],
                baseline: baselines.get(`${w.deployment.id}/${w.index}`) ?? null,
                now,
                timeZone: w.target.timeZone,
              });
        try {
          await this.act(w, verdict, s?.datapoints.map((p) => p.value) ?? []);
        } catch (err) {
          this.d.logger.error(
            { err, deployment: w.deployment.id, guardrail: w.guardrail.name },
            "acting on a guardrail failed; will retry next cycle",
          );
        }
      }
    }
    try {
      await this.pendingRollbacks();
    } catch (err) {
      this.d.logger.error({ err }, "pending rollbacks could not be checked this cycle");
    }
  }

  /** Pre-deploy baselines for relative thresholds, read once per deploy and guardrail and kept in the store. */
  private async baselines(watches: Watch[]): Promise<Map<string, number | null>> {
    const out = new Map<string, number | null>();
    const missing: Array<{ w: Watch; key: string; q: MetricQuery }> = [];
    for (const w of watches) {
      if (parseThreshold(w.guardrail.threshold).unit !== "baseline") continue;
      const key = `${w.deployment.id}/${w.index}`;
      const saved = this.d.store.getKv<{ value: number | null }>(`baseline/${key}`);
      if (saved) out.set(key, saved.value);
      else missing.push({ w, key, q: this.query(w, `b${w.deployment.id}_${w.index}`) });
    }
    if (missing.length === 0) return out;
    const start = new Date(missing[0]?.w.deployment.createdAt as string);
    const windowMs = Math.max(...missing.map((m) => m.w.guardrail.baseline));
    try {
      const series = await this.d.metrics.getMetricData(
        missing.map((m) => m.q),
        new Date(start.getTime() - windowMs),
        start,
      );
      for (const m of missing) {
        const s = series.find((x) => x.id === m.q.id);
        const values = s?.status === "ok" ? s.datapoints.map((p) => p.value).filter(Number.isFinite) : [];
        const value = values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
        this.d.store.setKv(`baseline/${m.key}`, { value });
        out.set(m.key, value);
      }
    } catch (err) {
      this.d.logger.warn({ err }, "pre-deploy baselines could not be read; relative guardrails stay inconclusive");
    }
    return out;
  }

  private pageKey(d: Deployment, g: Guardrail): string {
    return `deploybot/${d.service}/${d.environment}/deploy-${d.id}/${g.name.replace(/\s+/g, "-")}`;
  }

  private async act(w: Watch, verdict: GuardrailVerdict, values: number[]): Promise<void> {
    const { deployment: d, guardrail: g } = w;
    const now = this.d.clock.now();
    const existing = this.d.store.getIncident(d.id, g.name);
    if (verdict.status === "breaching") {
      if (existing?.status === "open") {
        const updated = this.d.store.updateIncident(existing.id, {
          lastSeen: now,
          detail: { reason: verdict.reason, observed: verdict.observed, values: values.slice(-15) },
        });
        await this.render(updated);
        return;
      }
      if (existing) {
        // Breaching again after a recovery is a new episode: paged again, its grace period scheduled again, and
        // a new Continue anyway or Acknowledge needed. A rollback already done is not repeated.
        const reopened = this.d.store.updateIncident(existing.id, {
          status: "open",
          lastSeen: now,
          resolvedAt: null,
          detail: {
            reason: verdict.reason,
            observed: verdict.observed,
            values: values.slice(-15),
            rollbackAt: undefined,
            rollbackIntentAt: undefined,
            rollbackSkipped: undefined,
            overriddenBy: undefined,
            acknowledgedBy: undefined,
          },
        });
        this.audit(d, "guardrail.breach_again", { guardrail: g.name, reason: verdict.reason });
        await this.thread(reopened, `:warning: Breaching again: ${verdict.reason}`);
        await this.startActions(reopened, w, now.toISOString());
        return;
      }
      const detail: IncidentDetail = {
        action: g.action,
        shadow: g.shadow,
        reason: verdict.reason,
        observed: verdict.observed,
        values: values.slice(-15),
        unit: guardrailUnit(g),
        threshold: g.threshold,
        ...(g.severity === "critical" || g.action !== "alert" ? { pageKey: this.pageKey(d, g) } : {}),
        ...(g.action === "rollback" && !g.shadow
          ? { rollbackAt: new Date(now.getTime() + w.target.policy.rollback_grace).toISOString() }
          : {}),
      };
      const incident = this.d.store.tx(() => {
        const opened = this.d.store.openIncident({
          deploymentId: d.id,
          guardrail: g.name,
          severity: g.severity,
          at: new Date(verdict.since ?? now),
          detail,
        });
        if (opened) {
          this.audit(d, "guardrail.breach", {
            guardrail: g.name,
            severity: g.severity,
            action: g.action,
            shadow: g.shadow,
            reason: verdict.reason,
            firstSeen: opened.firstSeen,
          });
          if (detail.rollbackAt) this.audit(d, "rollback.scheduled", { guardrail: g.name, at: detail.rollbackAt });
        }
        return opened;
      });
      if (!incident) return;
      await this.render(incident);
      await this.startActions(incident, w, incident.firstSeen);
      return;
    }
    if (verdict.status === "ok" && existing?.status === "open") {
      const rollback = existing.detail.rollbackId ? this.d.store.getDeployment(existing.detail.rollbackId) : undefined;
      if (rollback && rollback.status !== "succeeded" && rollback.status !== "failed") return; // wait for the rollback to finish
      const recovered = this.d.store.updateIncident(existing.id, {
        status: "recovered",
        resolvedAt: now,
        detail:
          existing.detail.rollbackAt && !existing.detail.rollbackIntentAt
            ? { rollbackSkipped: "recovered before the grace period ended" }
            : {},
      });
      this.audit(d, "guardrail.recovered", { guardrail: g.name, reason: verdict.reason });
      if (recovered.detail.pageKey && !recovered.detail.shadow) {
        await this.page(recovered, d, "resolve", `${g.name} recovered on ${d.service} ${d.environment}`);
      }
      await this.render(recovered);
      await this.thread(recovered, `:white_check_mark: Recovered: ${verdict.reason}`);
    }
  }

  /** Page, and schedule the automatic rollback, for a breach just recorded (never in shadow mode). */
  private async startActions(incident: Incident, w: Watch, since: string): Promise<void> {
    const { deployment: d, guardrail: g } = w;
    if (g.shadow) return;
    if (incident.detail.pageKey)
      await this.page(
        incident,
        d,
        "trigger",
        `${g.severity.toUpperCase()}: ${incident.detail.reason} on ${d.service} ${d.environment} (deploy #${d.id} ${d.version})`,
        since,
      );
    if (g.action === "rollback" && !incident.detail.rollbackAt && !incident.detail.rollbackId) {
      const at = new Date(this.d.clock.now().getTime() + w.target.policy.rollback_grace);
      const updated = this.d.store.updateIncident(incident.id, { detail: { rollbackAt: at.toISOString() } });
      this.audit(d, "rollback.scheduled", { guardrail: g.name, at: at.toISOString() });
      await this.render(updated);
    }
  }

  private async page(
    incident: Incident,
    d: Deployment,
    action: "trigger" | "acknowledge" | "resolve",
    summary: string,
    since = incident.firstSeen,
  ): Promise<void> {
    const dedupKey = incident.detail.pageKey as string;
    try {
      const sent = await this.d.paging.send(
        {
          action,
          dedupKey,
          severity: incident.severity === "critical" ? "critical" : "warning",
          summary,
          source: `deploybot/${d.service}/${d.environment}`,
          customDetails: {
            deployment: d.id,
            version: d.version,
            guardrail: incident.guardrail,
            reason: incident.detail.reason,
          },
        },
        since,
      );
      if (sent) this.audit(d, `page.${action}`, { dedupKey, guardrail: incident.guardrail });
    } catch (err) {
      await this.thread(
        incident,
        `:warning: Could not ${action} the PagerDuty incident: ${asDeploybotError(err).message}`,
      );
    }
  }

  /** Runs automatic rollbacks whose grace period is over, exactly once each (the intent is recorded first). */
  private async pendingRollbacks(): Promise<void> {
    const now = this.d.clock.now();
    for (const incident of this.d.store.incidentsByStatus("open")) {
      const det = incident.detail;
      if (det.rollbackId || !det.rollbackAt || det.overriddenBy || det.rollbackSkipped) continue;
      if (now.getTime() < Date.parse(det.rollbackAt)) {
        await this.render(incident);
        continue;
      }
      try {
        await this.rollback(incident, {
          name: "deploybot",
          slackId: null,
          automatic: true,
          authority: `automatic: guardrail “${incident.guardrail}” breached (${det.reason})`,
        });
      } catch (err) {
        this.d.logger.error(
          { err, incident: incident.id },
          "automatic rollback failed; retried next cycle unless one was recorded",
        );
      }
    }
  }

  private async rollback(
    incident: Incident,
    actor: { name: string; slackId: string | null; automatic: boolean; authority: string },
    needsApprovals = false,
  ): Promise<string | null> {
    const d = this.d.store.getDeployment(incident.deploymentId) as Deployment;
    // Another guardrail of the same deploy may already have rolled it back, or a person may have, or this
    // very rollback was recorded before the process stopped: whatever its outcome, never call it twice.
    const sibling = this.d.store.incidentsOf(d.id).find((i) => i.detail.rollbackId);
    const rolledBack = this.d.store
      .history(d.service, d.environment, 50)
      .find((x) => x.kind === "rollback" && x.flags.rollsBack === d.id && x.status !== "cancelled");
    if (sibling?.detail.rollbackId || rolledBack) {
      const id = sibling?.detail.rollbackId ?? rolledBack?.id;
      const updated = this.d.store.updateIncident(incident.id, { detail: { rollbackId: id as number } });
      await this.render(updated);
      return `Deploy #${d.id} is already being rolled back (rollback #${id}).`;
    }
    if (!d.previousVersion) {
      const updated = this.d.store.updateIncident(incident.id, {
        detail: { rollbackSkipped: "no previous version is known for this deploy" },
      });
      await this.thread(
        updated,
        ":warning: Cannot roll back automatically: no previous version is known for this deploy. Use /rollback with a version.",
      );
      return "No previous version is known for this deploy.";
    }
    this.d.store.updateIncident(incident.id, { detail: { rollbackIntentAt: this.d.clock.now().toISOString() } });
    const r = await this.rollbacks.execute(
      {
        service: d.service,
        environment: d.environment,
        fromVersion: d.version,
        toVersion: d.previousVersion,
        toTaskDefinition: d.previousTaskDefinition,
        reason: `guardrail “${incident.guardrail}”: ${incident.detail.reason}`,
        severity: null,
      },
      actor,
      needsApprovals,
    );
    const updated = this.d.store.updateIncident(incident.id, { detail: { rollbackId: r.id } });
    await this.render(updated);
    await this.thread(
      updated,
      `:rewind: Rollback #${r.id} to ${d.previousVersion} started by ${actor.automatic ? "deploybot (automatic)" : mention(actor.slackId ?? "")}.`,
    );
    return null;
  }

  /** After each rollback the monitor started: the post-mortem draft in the incident's thread, once. */
  async postmortems(): Promise<void> {
    for (const status of ["open", "recovered"] as const) {
      for (const incident of this.d.store.incidentsByStatus(status)) {
        const det = incident.detail;
        if (!det.rollbackId || det.postmortemPosted) continue;
        const r = this.d.store.getDeployment(det.rollbackId);
        if (r?.status !== "succeeded") continue;
        const updated = this.d.store.updateIncident(incident.id, { detail: { postmortemPosted: true } });
        await this.thread(updated, this.postmortem(updated, r));
      }
    }
  }

  /** Seed 000's post-mortem template, filled from the audit log. */
  private postmortem(incident: Incident, r: Deployment): string {
    const d = this.d.store.getDeployment(incident.deploymentId) as Deployment;
    const tz = findTarget(this.d.config, d.service, d.environment)?.timeZone ?? this.d.config.timezone;
    const log = this.d.store.auditLog({ deploymentId: d.id });
    const rlog = this.d.store.auditLog({ deploymentId: r.id });
    const t = (iso: string | undefined) => (iso ? formatLocal(new Date(iso), tz).replace(/^\w+ \d+ \w+ /, "") : "?");
    const started = log.find((e) => e.action === "ecs.update_service")?.at ?? d.createdAt;
    const initiated = rlog.find((e) => e.action === "rollback.requested")?.at;
    const stable = rlog.find((e) => e.action === "rollback.succeeded")?.at ?? r.finishedAt ?? undefined;
    const span = (a?: string, b?: string) => (a && b ? ` (+${formatRelative(Date.parse(b) - Date.parse(a))})` : "");
    return [
      "*Post-mortem draft*",
      `*Incident/Deployment:* ${d.service} ${d.version} → ${d.environment} (deploy #${d.id}, rollback #${r.id})`,
      `*Date:* ${formatLocal(new Date(started), tz)}`,
      `*Severity:* ${incident.severity === "critical" ? "P1" : "P2"} (guardrail “${incident.guardrail}”)`,
      `*Duration:* ${stable ? formatRelative(Date.parse(stable) - Date.parse(incident.firstSeen)) : "?"} from breach to stable`,
      "*What Happened:*",
      incident.detail.reason,
      "*Root Cause:*",
      "_to be written_",
      "*Timeline:*",
      `• ${t(started)}: Deployment started`,
      `• ${t(incident.firstSeen)}: ${incident.guardrail} breach detected${span(started, incident.firstSeen)}`,
      `• ${t(initiated)}: Rollback initiated${span(incident.firstSeen, initiated)}${r.flags.automatic ? " (automatic)" : ` by ${mention(this.d.people.slackIdOf(r.requestedBy))}`}`,
      `• ${t(stable)}: Services stable on ${r.version}${span(initiated, stable)}`,
      "*Action Items:*",
      "• [ ] Improve pre-deployment testing",
      `• [ ] Review the “${incident.guardrail}” guardrail`,
    ].join("\n");
  }

  /** Roll back now: someone with rollback authority skips the wait. */
  async rollbackNow(incidentId: number, person: Person): Promise<string | null> {
    const incident = this.d.store.incidentById(incidentId);
    if (!incident) return "That incident no longer exists.";
    if (incident.detail.rollbackId)
      return `A rollback is already running or done (rollback #${incident.detail.rollbackId}).`;
    const d = this.d.store.getDeployment(incident.deploymentId) as Deployment;
    let auth: { reason: string; needsApprovals: boolean };
    try {
      auth = await this.rollbacks.authorize(person, d.environment, d.service);
    } catch (err) {
      return asDeploybotError(err).message;
    }
    this.audit(d, "rollback.now", { by: person.name, guardrail: incident.guardrail }, person.name);
    // A person's rollback keeps the environment's rollback approvals; only deploybot's own skips them.
    return this.rollback(
      incident,
      { name: person.name, slackId: person.slackId, automatic: false, authority: auth.reason },
      auth.needsApprovals,
    );
  }

  /** Continue anyway: only the executive override role stops a pending automatic rollback. */
  async continueAnyway(incidentId: number, person: Person): Promise<string | null> {
    const incident = this.d.store.incidentById(incidentId);
    if (!incident) return "That incident no longer exists.";
    const d = this.d.store.getDeployment(incident.deploymentId) as Deployment;
    const policy = this.d.config.environments[d.environment];
    const held = await this.d.people.rolesOf(person);
    if (!policy || !canOverride(policy, held.roles)) {
      this.audit(d, "override.refused", { by: person.name, guardrail: incident.guardrail }, person.name);
      return `Only ${policy?.override.join(" or ") || "an override role"} may continue despite a breach; you hold ${[...held.roles].join(", ") || "no role"}.`;
    }
    if (incident.detail.rollbackId) return `Too late: rollback #${incident.detail.rollbackId} has already started.`;
    if (incident.detail.overriddenBy) return `${incident.detail.overriddenBy} already chose to continue.`;
    const updated = this.d.store.updateIncident(incident.id, { detail: { overriddenBy: person.name } });
    this.audit(
      d,
      "override.continue",
      {
        by: person.name,
        guardrail: incident.guardrail,
        bypassed: [`guardrail: ${incident.guardrail}`],
      },
      person.name,
    );
    await this.render(updated);
    await this.thread(
      updated,
      `:fast_forward: ${mention(person.slackId)} chose to continue despite the breach: no automatic rollback.`,
    );
    return null;
  }

  /** Acknowledge: the PagerDuty incident is acknowledged and the thread says who is on it. */
  async acknowledge(incidentId: number, person: Person): Promise<string | null> {
    const incident = this.d.store.incidentById(incidentId);
    if (!incident) return "That incident no longer exists.";
    if (incident.detail.acknowledgedBy) return `${incident.detail.acknowledgedBy} already acknowledged it.`;
    const d = this.d.store.getDeployment(incident.deploymentId) as Deployment;
    // Acknowledging stops PagerDuty's escalation, so only a responder may: someone who may roll back here
    // (including whoever is on call now) or hold the override role. Checked at the click.
    const policy = this.d.config.environments[d.environment];
    const held = await this.d.people.rolesOf(person);
    const responder =
      policy &&
      (decideRollbackAuthority({
        environment: d.environment,
        policy,
        user: person.name,
        roles: held.roles,
        oncall: held.oncall,
      }).allowed ||
        canOverride(policy, held.roles));
    if (!responder) {
      this.audit(d, "incident.acknowledge_refused", { by: person.name, guardrail: incident.guardrail }, person.name);
      return `Acknowledging pauses PagerDuty's escalation, so it takes someone who may roll back ${d.environment} (${rollbackRoles(policy as NonNullable<typeof policy>).join(", ")}) or ${policy?.override.join(", ") || "an override role"}.`;
    }
    const updated = this.d.store.updateIncident(incident.id, { detail: { acknowledgedBy: person.name } });
    this.audit(d, "incident.acknowledged", { by: person.name, guardrail: incident.guardrail }, person.name);
    if (updated.detail.pageKey) await this.page(updated, d, "acknowledge", `acknowledged by ${person.name}`);
    await this.render(updated);
    await this.thread(updated, `:eyes: Acknowledged by ${mention(person.slackId)}.`);
    return null;
  }

  /**
   * The #incidents message of a breach, re-rendered from the incident and updated in place. Slack is best
   * effort here: a message that cannot be updated (deleted, or lost) is posted again, and a Slack outage
   * never stops the monitor from acting.
   */
  private async render(incident: Incident): Promise<void> {
    const d = this.d.store.getDeployment(incident.deploymentId) as Deployment;
    await this.linkCard(d);
    const msg = this.message(incident, d);
    const key = JSON.stringify(msg);
    try {
      if (incident.ts && incident.channel) {
        if (this.lastMessage.get(incident.id) === key) return;
        try {
          await this.d.chat.update(incident.channel, incident.ts, msg);
          this.lastMessage.set(incident.id, key);
          return;
        } catch (err) {
          this.d.logger.warn({ err, incident: incident.id }, "could not update the incident message; posting it again");
        }
      }
      const posted = await this.d.chat.post(this.d.config.channels.incidents, msg);
      this.d.store.updateIncident(incident.id, { channel: posted.channel, ts: posted.ts });
      this.lastMessage.set(incident.id, key);
    } catch (err) {
      this.d.logger.error({ err, incident: incident.id }, "could not post the incident message");
    }
  }

  private async linkCard(d: Deployment): Promise<void> {
    if (this.cardLinks.has(d.id) || !d.cardChannel || !d.cardTs) return;
    try {
      this.cardLinks.set(d.id, await this.d.chat.permalink(d.cardChannel, d.cardTs));
    } catch (err) {
      this.d.logger.warn({ err, deployment: d.id }, "no permalink for the deploy card");
    }
  }

  private message(incident: Incident, d: Deployment): { text: string; blocks: Block[] } {
    const det = incident.detail;
    const now = this.d.clock.now();
    const shadow = det.shadow ? "[shadow] " : "";
    const level = incident.severity === "critical" ? ":rotating_light: *CRITICAL*" : ":warning: *Warning*";
    const title = `${shadow}${level} ${d.service} ${d.environment}: guardrail “${incident.guardrail}” ${incident.status === "open" ? "breached" : "recovered"}`;
    const values = det.values.length
      ? `\`${sparkline(det.values)}\` latest ${det.observed !== null ? formatValue(det.observed, (det.unit ?? "count") as "count") : "?"}`
      : "";
    let what: string;
    if (det.shadow) what = "Shadow mode: reported only, nothing is done.";
    else if (det.overriddenBy) what = `Continued anyway by ${det.overriddenBy}: no automatic rollback.`;
    else if (det.rollbackId)
      what = `Rollback #${det.rollbackId} ${this.d.store.getDeployment(det.rollbackId)?.status.replace(/_/g, " ") ?? ""}.`;
    else if (det.rollbackSkipped) what = `No rollback: ${det.rollbackSkipped}.`;
    else if (det.rollbackAt)
      what = `Rolling back in ${formatRelative(Math.max(0, Date.parse(det.rollbackAt) - now.getTime()))} unless someone with the override role presses Continue anyway.`;
    else what = det.pageKey ? "Paged PagerDuty." : "Slack only.";
    const blocks: Block[] = [
      section(`${title}\n${det.reason}${values ? `\n${values}` : ""}`),
      context(
        `Deploy #${d.id} \`${d.version}\` by ${mention(this.d.people.slackIdOf(d.requestedBy))} · ${this.cardLinks.has(d.id) ? `<${this.cardLinks.get(d.id)}|deploy card>` : `card in ${this.d.config.channels.deploys}`} · threshold ${det.threshold} · ${what}${det.acknowledgedBy ? ` · acknowledged by ${det.acknowledgedBy}` : ""}`,
      ),
    ];
    if (incident.status === "open" && incident.severity === "critical" && !det.shadow) {
      blocks.push(
        actions(`incident_${incident.id}`, [
          ...(det.rollbackId
            ? []
            : [
                {
                  label: "Roll back now",
                  actionId: ACTION.incidentRollbackNow,
                  value: String(incident.id),
                  style: "danger" as const,
                },
              ]),
          ...(det.rollbackId || det.overriddenBy
            ? []
            : [{ label: "Continue anyway", actionId: ACTION.incidentContinue, value: String(incident.id) }]),
          ...(det.acknowledgedBy
            ? []
            : [{ label: "Acknowledge", actionId: ACTION.incidentAcknowledge, value: String(incident.id) }]),
        ]),
      );
    }
    return {
      text: title.replace(/[*:]/g, ""),
      blocks: blocks.filter((b) => b.type !== "actions" || (b.elements as unknown[]).length > 0),
    };
  }

  private async thread(incident: Incident, text: string): Promise<void> {
    const fresh = this.d.store.incidentById(incident.id) ?? incident;
    if (!fresh.ts || !fresh.channel) return;
    try {
      await this.d.chat.post(fresh.channel, { text }, fresh.ts);
    } catch (err) {
      this.d.logger.error({ err, incident: incident.id }, "could not post in the incident thread");
    }
  }

  private audit(d: Deployment, action: string, detail: Record<string, unknown>, actor = "deploybot"): void {
    this.deployments.audit(d, actor, action, detail);
  }
}
