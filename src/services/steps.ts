import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { formatLocal, formatRelative } from "../clock.js";
import type { Config } from "../config/schema.js";
import { type Deployment, IN_FLIGHT, STEPPING } from "../domain/deployment.js";
import { blocksSuccess } from "../domain/incident.js";
import { findTarget, type Target } from "../domain/targets.js";
import {
  anyStepsOf,
  isLastStep,
  liveSideOf,
  otherSide,
  type Side,
  type SidePlacement,
  sameWeights,
  stepsStrategyOf,
  strangers,
  type TrafficPlan,
  type TrafficState,
  trafficPlan,
  weightNow,
  weightsFor,
} from "../domain/traffic.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import { approverRoles } from "../policies/approvals.js";
import { canOverride } from "../policies/rollback.js";
import { judgeStep } from "../policies/steps.js";
import type { EcsPort, EcsTarget, ElbPort, Stickiness } from "../ports.js";
import { escapeMrkdwn as esc, mention } from "../slack/blocks.js";
import type { Store } from "../store/index.js";
import type { Lifecycle } from "./lifecycle.js";
import type { Outbox } from "./outbox.js";
import type { People, Person } from "./people.js";
import type { Handlers, IntentOf, Performed } from "./reconciler.js";
import type { Placement } from "./rollout.js";

/** How long a new side may take to pass its target group's health check once ECS has rolled it out. */
export const HEALTH_PATIENCE_MS = 10 * 60_000;
/** How long a deploy's step retries setting its weights (throttling, an outage) before it pauses for a person. */
const STEP_PATIENCE_MS = 15 * 60_000;

export interface StepsDeps {
  config: Config;
  store: Store;
  clock: Clock;
  ecs: EcsPort;
  elb: ElbPort;
  outbox: Outbox;
  lifecycle: Lifecycle;
  people: People;
  logger: Logger;
}

/** "web-green" or "comply360-green/frontend": a side's ECS service as people read it. */
export function sideName(t: { ecs: { cluster: string } }, side: SidePlacement): string {
  return side.cluster === t.ecs.cluster ? side.service : `${side.cluster}/${side.service}`;
}

/**
 * Traffic steps driven by deploybot (seed 000, 002, 003, 004): the new version goes to the idle side of a two-sided
 * target, its target group's health is checked, then the weights of the ALB listener rule (or listener) move to it
 * step by step, each step judged by the guardrails on the new target group's own metrics; after 100% the previous
 * side is kept for a while, so a rollback is one weight switch. Every weight change and scale-down is an intent;
 * the handlers read the listener before they set anything, so a repeated attempt never shifts twice.
 */
export class TrafficSteps {
  constructor(private readonly d: StepsDeps) {}

  private now(): Date {
    return this.d.clock.now();
  }

  private target(d: Pick<Deployment, "service" | "environment">): Target {
    const t = findTarget(this.d.config, d.service, d.environment);
    if (!t) throw new DeploybotError(ErrorCode.NotFound, `${d.service} is not configured in ${d.environment}`);
    return t;
  }

  private ecsOf(t: Target, side: SidePlacement): EcsTarget {
    return { region: t.ecs.region, container: t.ecs.container, cluster: side.cluster, service: side.service };
  }

  private stickiness(plan: TrafficPlan): Stickiness | undefined {
    return plan.stickinessSeconds !== null ? { enabled: true, seconds: plan.stickinessSeconds } : undefined;
  }

  /** Reads the router's weights: which side is live. Refuses a forward action that also sends traffic elsewhere. */
  private async liveSide(plan: TrafficPlan): Promise<Side> {
    const weights = await this.d.elb.describeWeights(plan.router);
    const others = strangers(plan, weights);
    if (others.length > 0)
      throw new DeploybotError(
        ErrorCode.AwsFailed,
        `the forward action of ${plan.router.arn} also sends traffic to ${others.join(", ")}: deploybot moves traffic between its two target groups only; take the others out of that forward action`,
      );
    return liveSideOf(plan, weights);
  }

  /** The ECS service that serves the target now: the live side of a two-sided target, else the configured one. */
  async liveEcs(t: Target): Promise<EcsTarget> {
    const steps = anyStepsOf(t.settings);
    if (!steps) return t.ecs;
    const plan = trafficPlan(t, steps);
    return this.ecsOf(t, plan.sides[await this.liveSide(plan)]);
  }

  /**
   * Where the ECS rollout of `d` goes, decided once (from the router's weights) and recorded on the deployment: a
   * stepped deploy goes to the idle side, sized like the live one; anything else is rolled out in place on the live
   * side. Null on a target with one ECS service.
   */
  async placement(d: Deployment, t: Target): Promise<Placement | null> {
    const any = anyStepsOf(t.settings);
    if (!any) return null;
    let traffic = d.progress?.traffic;
    if (!traffic) {
      const stepped = d.kind === "deploy" ? stepsStrategyOf(t.settings, Boolean(d.flags.canary)) : null;
      const plan = trafficPlan(t, stepped ?? any);
      const live = await this.liveSide(plan);
      traffic = stepped
        ? { plan, side: otherSide(live), mode: "steps", step: -1, stepAt: null, since: null }
        : { plan, side: live, mode: "in_place", step: -1, stepAt: null, since: null };
      await this.d.store.deployments.patch(d.id, { progress: { ...d.progress, traffic } }, this.now());
    }
    const on = this.ecsOf(t, traffic.plan.sides[traffic.side]);
    if (traffic.mode !== "steps") return { ecs: on, from: on };
    const live = this.ecsOf(t, traffic.plan.sides[otherSide(traffic.side)]);
    const desired = (await this.d.ecs.describeService(live)).desiredCount;
    return { ecs: on, from: live, desiredCount: Math.max(1, desired) };
  }

  handlers(): Pick<Handlers, "elb.weights" | "ecs.scale"> {
    return {
      "elb.weights": {
        perform: (i) => this.setWeights(i),
        unwanted: async (i) => {
          const d = await this.d.store.deployments.get(i.effect.deploymentId);
          if (!d) return `deployment #${i.effect.deploymentId} is gone`;
          if (d.kind === "rollback") return d.status === "deploying" ? null : `rollback #${d.id} is ${d.status}`;
          if (!STEPPING.has(d.status)) return `deploy #${d.id} is ${d.status.replace(/_/g, " ")}`;
          const step = d.progress?.traffic?.step;
          return step === i.effect.step ? null : `step ${i.effect.step + 1} was superseded by step ${(step ?? 0) + 1}`;
        },
        abandoned: async (i, reason) => {
          const d = await this.d.store.deployments.get(i.effect.deploymentId);
          if (!d) return;
          if (d.kind === "rollback") {
            if (d.status === "deploying" && !d.startedAt) await this.d.lifecycle.notStarted(d, reason);
            return;
          }
          const t = d.progress?.traffic;
          if (d.status === "shifting" && t?.step === i.effect.step && !t.stepAt)
            await this.pauseNow(d, "deploybot", `the weights of step ${i.effect.step + 1} could not be set: ${reason}`);
        },
        // A rollback's switch back keeps trying (a rollback must happen); a deploy's step pauses for a person.
        patienceMs: async (i) => {
          const d = await this.d.store.deployments.get(i.effect.deploymentId);
          return d?.kind === "deploy" ? STEP_PATIENCE_MS : Number.POSITIVE_INFINITY;
        },
      },
      "ecs.scale": {
        perform: (i) => this.scale(i),
        unwanted: async (i) => {
          const d = await this.d.store.deployments.get(i.effect.deploymentId);
          if (!d) return `deployment #${i.effect.deploymentId} is gone`;
          const newer = (await this.d.store.deployments.history(d.service, d.environment, 20)).find(
            (x) => x.id > d.id && (x.startedAt !== null || IN_FLIGHT.has(x.status)),
          );
          return newer
            ? `${d.kind} #${newer.id} of ${d.service} ${d.environment} started since: what runs where is its business now`
            : null;
        },
      },
    };
  }

  private async setWeights(intent: IntentOf<"elb.weights">): Promise<Performed> {
    const d = await this.d.store.deployments.must(intent.effect.deploymentId);
    const traffic = d.progress?.traffic;
    if (!traffic) throw new DeploybotError(ErrorCode.Unknown, `deployment #${d.id} has no traffic plan`);
    const { router } = traffic.plan;
    // Read first: after a crash between the call and its record, the weights are already set and are not sent again.
    const current = await this.d.elb.describeWeights(router);
    const others = strangers(traffic.plan, current);
    if (others.length > 0)
      throw new DeploybotError(
        ErrorCode.AwsFailed,
        `the forward action of ${router.arn} also sends traffic to ${others.join(", ")}: deploybot moves traffic between its two target groups only; take the others out of that forward action`,
      );
    if (sameWeights(current, intent.effect.weights))
      return { result: { already: intent.effect.weights }, record: () => this.applied(intent) };
    await this.d.elb.setWeights(router, intent.effect.weights, intent.effect.stickiness);
    return { result: { set: intent.effect.weights }, record: () => this.applied(intent) };
  }

  /** The weights took effect: the step's pause starts (or the deploy has all traffic, or the rollback is done). */
  private async applied(intent: IntentOf<"elb.weights">): Promise<void> {
    const { store, outbox, lifecycle } = this.d;
    const d = await store.deployments.must(intent.effect.deploymentId);
    const t = d.progress?.traffic;
    if (!t) return;
    const now = this.now().toISOString();
    const traffic: TrafficState = { ...t, stepAt: now, since: t.since ?? now };
    const target = this.target(d);
    const to = (side: Side) => sideName(target, t.plan.sides[side]);
    if (d.kind === "rollback") {
      if (d.status !== "deploying" || d.startedAt) return;
      const moved = await store.deployments.patch(
        d.id,
        { startedAt: now, progress: { ...d.progress, traffic } },
        this.now(),
      );
      await lifecycle.audit(moved, "deploybot", "elb.switch_back", {
        router: t.plan.router.arn,
        weights: intent.effect.weights,
        to: to(t.side),
      });
      await outbox.noteOnCard(
        moved,
        `All traffic back on ${esc(d.version)} (${to(t.side)}) in one ${t.plan.router.kind === "rule" ? "ModifyRule" : "ModifyListener"} call.`,
      );
      const desired = moved.progress?.desired ?? 0;
      await lifecycle.rolledOut(moved, { runningCount: desired, desiredCount: desired });
      // The side switched away from runs the version rolled back: it takes no traffic any more.
      await outbox.scale(moved, t.plan.sides[otherSide(t.side)], 0);
      return;
    }
    if (!STEPPING.has(d.status) || t.step !== intent.effect.step || t.stepAt) return;
    await lifecycle.audit(d, "deploybot", "elb.weights", {
      step: t.step + 1,
      of: t.plan.steps.length,
      router: t.plan.router.arn,
      weights: intent.effect.weights,
    });
    if (isLastStep(traffic) && d.status === "shifting") {
      await this.allTraffic(d, traffic);
      return;
    }
    const moved = await store.deployments.patch(d.id, { progress: { ...d.progress, traffic } }, this.now());
    await outbox.card(moved);
    const w = weightNow(traffic);
    const next = t.plan.steps[t.step + 1];
    const pause = t.plan.steps[t.step]?.pauseMs ?? 0;
    await outbox.noteOnCard(
      moved,
      `Step ${t.step + 1} of ${t.plan.steps.length}: ${w}% of the traffic on ${esc(d.version)} (${to(t.side)}), ${100 - w}% on ${esc(d.previousVersion ?? "the previous version")} (${to(otherSide(t.side))}).${next ? ` Next step (${next.weight}%) in ${formatRelative(pause)} if the guardrails pass.` : ""}`,
    );
  }

  /** The last step's weights took effect: the deploy has all the traffic; it bakes, and the previous side is kept. */
  private async allTraffic(d: Deployment, traffic: TrafficState): Promise<void> {
    const target = this.target(d);
    const keepUntil = new Date(Date.parse(traffic.stepAt ?? this.now().toISOString()) + traffic.plan.keepMs);
    const kept: TrafficState = { ...traffic, keepUntil: keepUntil.toISOString() };
    const withTraffic = await this.d.store.deployments.patch(
      d.id,
      { progress: { ...d.progress, traffic: kept } },
      this.now(),
    );
    const previous = sideName(target, traffic.plan.sides[otherSide(traffic.side)]);
    const desired = d.progress?.desired ?? 0;
    await this.d.lifecycle.rolledOut(
      withTraffic,
      { runningCount: d.progress?.running ?? desired, desiredCount: desired },
      `All traffic on ${esc(d.version)} (${sideName(target, traffic.plan.sides[traffic.side])}). ${esc(d.previousVersion ?? "The previous version")} stays up on ${previous} until ${formatLocal(keepUntil, target.timeZone)}: a /rollback before then is one weight switch.`,
    );
  }

  private async scale(intent: IntentOf<"ecs.scale">): Promise<Performed> {
    const d = await this.d.store.deployments.must(intent.effect.deploymentId);
    const t = this.target(d);
    const on: EcsTarget = {
      region: t.ecs.region,
      container: t.ecs.container,
      cluster: intent.effect.cluster,
      service: intent.effect.service,
    };
    const record = async () => {
      await this.d.lifecycle.audit(d, "deploybot", "ecs.scale", {
        cluster: on.cluster,
        service: on.service,
        desiredCount: intent.effect.desiredCount,
      });
      const name = sideName(t, { ...on, targetGroup: "" });
      const why =
        d.kind === "rollback"
          ? `it ran ${esc(d.previousVersion ?? "the version rolled back")}, which takes no traffic any more`
          : d.status === "failed"
            ? "its version never took traffic"
            : `it kept ${esc(d.previousVersion ?? "the previous version")} for ${formatRelative(d.progress?.traffic?.plan.keepMs ?? 0)} after ${esc(d.version)} took all traffic`;
      await this.d.outbox.noteOnCard(d, `Scaled ${name} to ${intent.effect.desiredCount} tasks: ${why}.`);
    };
    const svc = await this.d.ecs.describeService(on);
    if (svc.desiredCount === intent.effect.desiredCount) return { result: { already: svc.desiredCount }, record };
    await this.d.ecs.scaleService(on, intent.effect.desiredCount);
    return { result: { scaled: intent.effect.desiredCount }, record };
  }

  /**
   * The scheduled step of a stepped deploy: once ECS has the new side up, its target group's health; then, at the
   * end of each step's pause, the step's analysis: advance on a pass, hold while inconclusive (pausing for a person
   * after max_inconclusive), and leave a breach to its incident (whose rollback switches back).
   */
  async tick(d: Deployment): Promise<void> {
    const t = d.progress?.traffic;
    if (t?.mode !== "steps" || d.kind !== "deploy") return;
    if (d.status === "deploying") await this.checkHealth(d, t);
    else if (d.status === "shifting") await this.judge(d, t);
  }

  private async checkHealth(d: Deployment, t: TrafficState): Promise<void> {
    if (!t.upAt) return;
    const { elb, outbox, lifecycle, store } = this.d;
    const target = this.target(d);
    const side = t.plan.sides[t.side];
    const desired = d.progress?.desired ?? 0;
    const health = await elb.targetHealth(t.plan.router.region, side.targetGroup);
    const now = this.now();
    if (desired > 0 && health.healthy >= desired) {
      await outbox.commit(async () => {
        const fresh = await store.deployments.must(d.id);
        if (fresh.status !== "deploying") return;
        const first = t.plan.steps[0]?.weight ?? 100;
        const traffic: TrafficState = { ...t, step: 0, stepAt: null, healthy: { healthy: health.healthy, desired } };
        const moved = await lifecycle.move(
          fresh,
          "shift",
          { progress: { ...fresh.progress, traffic } },
          `${sideName(target, side)}: ${health.healthy} of ${desired} targets healthy in its target group. Step 1 of ${t.plan.steps.length}: ${first}% of the traffic to ${esc(d.version)}.`,
        );
        await lifecycle.audit(moved, "deploybot", "steps.health_check", { healthy: health.healthy, desired });
        await outbox.weights(moved, 0, weightsFor(t.plan, t.side, first), this.stickiness(t.plan));
      });
      return;
    }
    if (now.getTime() - Date.parse(t.upAt) >= HEALTH_PATIENCE_MS) {
      const reason = `${sideName(target, side)} had ${health.healthy} of ${desired} targets healthy in its target group ${formatRelative(HEALTH_PATIENCE_MS)} after ECS rolled it out: no traffic was moved`;
      await outbox.commit(async () => {
        const fresh = await store.deployments.must(d.id);
        if (fresh.status !== "deploying") return;
        const failed = await lifecycle.move(
          fresh,
          "unhealthy",
          { progress: { ...fresh.progress, detail: reason } },
          `:red_circle: ${esc(reason)}.`,
        );
        await lifecycle.audit(failed, "deploybot", "deploy.failed", { reason, healthy: health.healthy, desired });
        await outbox.scale(failed, side, 0);
      });
      return;
    }
    if (t.healthy?.healthy !== health.healthy || t.healthy?.desired !== desired) {
      await outbox.commit(async () => {
        const moved = await store.deployments.patch(
          d.id,
          { progress: { ...d.progress, traffic: { ...t, healthy: { healthy: health.healthy, desired } } } },
          now,
        );
        await outbox.card(moved);
      });
    }
  }

  private async judge(d: Deployment, t: TrafficState): Promise<void> {
    if (!t.stepAt || t.step < 0) return;
    const { store, outbox, lifecycle } = this.d;
    if (isLastStep(t)) {
      // The last weights took effect while the deploy was paused: it has all the traffic now.
      await outbox.commit(async () => {
        const fresh = await store.deployments.must(d.id);
        if (fresh.status === "shifting" && fresh.progress?.traffic)
          await this.allTraffic(fresh, fresh.progress.traffic);
      });
      return;
    }
    const now = this.now();
    const pause = t.plan.steps[t.step]?.pauseMs ?? 0;
    if (now.getTime() < Date.parse(t.stepAt) + pause) return;
    const target = this.target(d);
    const verdict = judgeStep({
      guardrails: target.settings.guardrails,
      checks: await store.checks.latest(d.id),
      incidents: (await store.incidents.of(d.id)).map((i) => ({
        guardrail: i.guardrail,
        state: i.state,
        blocking: blocksSuccess(i),
      })),
      stepAt: new Date(t.stepAt),
      since: new Date(t.since ?? t.stepAt),
      now,
    });
    const label = `step ${t.step + 1} (${weightNow(t)}%)`;
    await outbox.commit(async () => {
      const fresh = await store.deployments.must(d.id);
      const ft = fresh.progress?.traffic;
      if (fresh.status !== "shifting" || !ft || ft.step !== t.step || ft.stepAt !== t.stepAt) return;
      if (verdict.outcome === "pass") {
        const next = ft.step + 1;
        const traffic: TrafficState = { ...ft, step: next, stepAt: null, holdingSince: null, hold: null };
        const moved = await lifecycle.move(fresh, "advance", { progress: { ...fresh.progress, traffic } });
        await lifecycle.audit(moved, "deploybot", "steps.advance", {
          from: ft.step + 1,
          to: next + 1,
          weight: t.plan.steps[next]?.weight,
          reason: verdict.reason,
        });
        await outbox.weights(
          moved,
          next,
          weightsFor(ft.plan, ft.side, ft.plan.steps[next]?.weight ?? 100),
          this.stickiness(ft.plan),
        );
        return;
      }
      if (verdict.outcome === "breach") {
        if (ft.hold === verdict.reason) return;
        const moved = await store.deployments.patch(
          fresh.id,
          { progress: { ...fresh.progress, traffic: { ...ft, hold: verdict.reason } } },
          now,
        );
        await outbox.card(moved);
        return;
      }
      if (!ft.holdingSince) {
        const traffic: TrafficState = { ...ft, holdingSince: now.toISOString(), hold: verdict.reason };
        const moved = await lifecycle.move(
          fresh,
          "hold",
          { progress: { ...fresh.progress, traffic } },
          `Holding ${label}: ${esc(verdict.reason)}. It pauses for a person if this lasts ${formatRelative(ft.plan.maxInconclusiveMs)}.`,
        );
        await lifecycle.audit(moved, "deploybot", "steps.hold", { step: ft.step + 1, reason: verdict.reason });
        return;
      }
      if (now.getTime() - Date.parse(ft.holdingSince) >= ft.plan.maxInconclusiveMs) {
        await this.pauseNow(
          fresh,
          "deploybot",
          `${label} stayed inconclusive for ${formatRelative(now.getTime() - Date.parse(ft.holdingSince))}: ${verdict.reason}`,
        );
        return;
      }
      if (ft.hold !== verdict.reason) {
        const moved = await store.deployments.patch(
          fresh.id,
          { progress: { ...fresh.progress, traffic: { ...ft, hold: verdict.reason } } },
          now,
        );
        await outbox.card(moved);
      }
    });
  }

  /** Pauses the steps of `d` (in the caller's transaction): who, why, a note and an audit row. */
  private async pauseNow(d: Deployment, by: string, why: string): Promise<void> {
    const t = d.progress?.traffic;
    if (!t || d.status !== "shifting") return;
    const traffic: TrafficState = { ...t, pausedBy: by, pauseReason: why, holdingSince: null, hold: null };
    const who = by === "deploybot" ? "deploybot" : mention(this.d.people.slackIdOf(by));
    const moved = await this.d.lifecycle.move(
      d,
      "pause",
      { progress: { ...d.progress, traffic } },
      `:double_vertical_bar: Paused at step ${t.step + 1} (${weightNow(t)}%) by ${who}: ${esc(why)}. Resume to judge the step again, Promote to take all traffic, Abort to switch back.`,
    );
    await this.d.lifecycle.audit(moved, by, "steps.pause", { step: t.step + 1, reason: why });
  }

  /** The deploy a card button acts on, if it is a deploy in its traffic steps; else why not. */
  private async stepping(id: number): Promise<Deployment | string> {
    const d = await this.d.store.deployments.get(id);
    if (d?.kind !== "deploy") return `There is no deploy #${id}.`;
    if (!STEPPING.has(d.status) || !d.progress?.traffic)
      return `Deploy #${id} is ${d.status.replace(/_/g, " ")}: its traffic steps are over; nothing changed.`;
    return d;
  }

  /** Promote: the override role skips the remaining steps; the last (100%) weights are recorded at once. */
  async promote(id: number, person: Person): Promise<string | null> {
    const d = await this.stepping(id);
    if (typeof d === "string") return d;
    const target = this.target(d);
    const held = await this.d.people.rolesOf(person);
    const { lifecycle, outbox, store } = this.d;
    if (!canOverride(target.policy, held.roles)) {
      await lifecycle.audit(d, person.name, "override.refused", { by: person.name, action: "promote" });
      return `Promoting skips the remaining steps and their analysis, so it takes ${target.policy.override.join(" or ") || "an override role"}; you hold ${[...held.roles].join(", ") || "no role"}.`;
    }
    let refusal: string | null = null;
    await outbox.commit(async () => {
      const fresh = await store.deployments.must(id);
      const t = fresh.progress?.traffic;
      if (!STEPPING.has(fresh.status) || !t) {
        refusal = `Deploy #${id} is ${fresh.status.replace(/_/g, " ")}; nothing changed.`;
        return;
      }
      const last = t.plan.steps.length - 1;
      if (t.step === last) {
        refusal = "The last step (100%) is already being set; nothing to skip.";
        return;
      }
      const skipped = t.plan.steps.slice(t.step + 1, last).map((s) => `${s.weight}%`);
      const traffic: TrafficState = {
        ...t,
        step: last,
        stepAt: null,
        holdingSince: null,
        hold: null,
        pausedBy: null,
        pauseReason: null,
      };
      const moved = await lifecycle.move(
        fresh,
        "promote",
        { progress: { ...fresh.progress, traffic } },
        `:fast_forward: Promoted by ${mention(person.slackId)} at step ${t.step + 1} (${weightNow(t)}%): all traffic to ${esc(fresh.version)} now${skipped.length ? `, skipping ${skipped.join(", ")}` : ""}.`,
      );
      await lifecycle.audit(moved, person.name, "override.promote", {
        by: person.name,
        fromStep: t.step + 1,
        bypassed: [`traffic steps ${skipped.join(", ") || "none"} and their analysis`],
      });
      await outbox.weights(moved, last, weightsFor(t.plan, t.side, 100), this.stickiness(t.plan));
    });
    return refusal;
  }

  /** Pause: anyone who may approve deploys here holds the current step until someone resumes. */
  async pause(id: number, person: Person): Promise<string | null> {
    const d = await this.stepping(id);
    if (typeof d === "string") return d;
    const refusal = await this.mayApprove(d, person, "pause");
    if (refusal) return refusal;
    if (d.status === "paused")
      return `Deploy #${id} is already paused by ${d.progress?.traffic?.pausedBy ?? "someone"}.`;
    await this.d.outbox.commit(async () => {
      const fresh = await this.d.store.deployments.must(id);
      await this.pauseNow(fresh, person.name, "paused by hand");
    });
    return null;
  }

  /** Resume: the held step is judged again at its next check and the schedule goes on. */
  async resume(id: number, person: Person): Promise<string | null> {
    const d = await this.stepping(id);
    if (typeof d === "string") return d;
    const refusal = await this.mayApprove(d, person, "resume");
    if (refusal) return refusal;
    if (d.status !== "paused") return `Deploy #${id} is not paused.`;
    const { store, outbox, lifecycle } = this.d;
    await outbox.commit(async () => {
      const fresh = await store.deployments.must(id);
      const t = fresh.progress?.traffic;
      if (fresh.status !== "paused" || !t) return;
      const traffic: TrafficState = { ...t, pausedBy: null, pauseReason: null, holdingSince: null, hold: null };
      const moved = await lifecycle.move(
        fresh,
        "resume",
        { progress: { ...fresh.progress, traffic } },
        `:arrow_forward: Resumed by ${mention(person.slackId)} at step ${t.step + 1} (${weightNow(t)}%).`,
      );
      await lifecycle.audit(moved, person.name, "steps.resume", { step: t.step + 1 });
    });
    return null;
  }

  /** Pause and Resume take someone who may approve deploys in the environment (anyone, where none is asked for). */
  private async mayApprove(d: Deployment, person: Person, what: string): Promise<string | null> {
    const target = this.target(d);
    const roles = approverRoles(target.policy);
    const held = await this.d.people.rolesOf(person);
    if (roles.length === 0 || roles.some((r) => held.roles.has(r))) return null;
    await this.d.lifecycle.audit(d, person.name, `steps.${what}_refused`, { roles: [...held.roles] });
    return `Only someone who may approve ${d.environment} deploys (${roles.join(", ")}) may ${what} its traffic steps; you hold ${[...held.roles].join(", ") || "no role"}.`;
  }

  /**
   * What a rollback `r` of `deploy` does to traffic. A deploy whose previous version still runs on the other side (in
   * its steps, or after them within keep_previous, with nothing newer started there) is switched back in one call;
   * otherwise the rollback is an ECS rollout in place on the side the deploy runs on. Null on a one-service target.
   */
  async rollbackTraffic(deploy: Deployment | undefined, r: Deployment): Promise<TrafficState | null> {
    const t = deploy?.progress?.traffic;
    if (!deploy || !t) return null;
    const now = this.now().getTime();
    const previous = r.version === deploy.previousVersion || (r.taskDefinition ?? "") === deploy.previousTaskDefinition;
    const kept =
      STEPPING.has(deploy.status) ||
      deploy.status === "deploying" ||
      ((deploy.status === "baking" || deploy.status === "succeeded") &&
        !t.scaledDown &&
        t.keepUntil !== undefined &&
        t.keepUntil !== null &&
        now < Date.parse(t.keepUntil));
    const newer = (await this.d.store.deployments.history(deploy.service, deploy.environment, 20)).some(
      (x) => x.id > deploy.id && x.id !== r.id && x.startedAt !== null,
    );
    const base = { plan: t.plan, stepAt: null, since: null };
    if (t.mode === "steps" && previous && kept && !newer)
      return { ...base, side: otherSide(t.side), mode: "switch", step: 0 };
    // The deploy's version runs on its side; the previous one is gone from the other: roll back where it runs.
    const live = t.mode === "steps" && STEPPING.has(deploy.status) ? otherSide(t.side) : t.side;
    return { ...base, side: live, mode: "in_place", step: -1 };
  }

  /** Records the switch back of rollback `r` (in the caller's transaction): 100% on its side, stickiness off. */
  async switchBack(r: Deployment, traffic: TrafficState): Promise<void> {
    const moved = await this.d.store.deployments.patch(r.id, { progress: { ...r.progress, traffic } }, this.now());
    await this.d.outbox.weights(moved, 0, weightsFor(traffic.plan, traffic.side, 100), { enabled: false });
  }

  /**
   * Scales down the previous version of each stepped target whose keep_previous is over (one intent each), unless a
   * newer deployment has started there since.
   */
  async expireKeeps(): Promise<void> {
    const { store, outbox, lifecycle, config } = this.d;
    const now = this.now();
    for (const [service, svc] of Object.entries(config.services)) {
      for (const [environment, se] of Object.entries(svc.environments)) {
        if (!anyStepsOf(se)) continue;
        const recent = await store.deployments.history(service, environment, 10);
        const d = recent.find((x) => x.startedAt !== null || IN_FLIGHT.has(x.status));
        const t = d?.progress?.traffic;
        if (!d || !t || d.kind !== "deploy" || t.mode !== "steps" || t.scaledDown || !t.keepUntil) continue;
        if (d.status !== "succeeded" && d.status !== "baking") continue;
        if (now.getTime() < Date.parse(t.keepUntil)) continue;
        await outbox.commit(async () => {
          const fresh = await store.deployments.must(d.id);
          const ft = fresh.progress?.traffic;
          if (!ft || ft.scaledDown) return;
          const moved = await store.deployments.patch(
            fresh.id,
            { progress: { ...fresh.progress, traffic: { ...ft, scaledDown: true } } },
            now,
          );
          await lifecycle.audit(moved, "deploybot", "steps.keep_over", { keptUntil: ft.keepUntil });
          await outbox.scale(moved, ft.plan.sides[otherSide(ft.side)], 0);
        });
      }
    }
  }

  /** The previous version a stepped target keeps running (for /status): which, where, until when. */
  async kept(t: Target): Promise<{ version: string; where: string; until: string; deploymentId: number } | null> {
    if (!anyStepsOf(t.settings)) return null;
    const recent = await this.d.store.deployments.history(t.service, t.environment, 10);
    const d = recent.find((x) => x.startedAt !== null || IN_FLIGHT.has(x.status));
    const traffic = d?.progress?.traffic;
    if (!d || !traffic || d.kind !== "deploy" || traffic.mode !== "steps" || traffic.scaledDown || !traffic.keepUntil)
      return null;
    if ((d.status !== "succeeded" && d.status !== "baking") || this.now().getTime() >= Date.parse(traffic.keepUntil))
      return null;
    return {
      version: d.previousVersion ?? "the previous version",
      where: sideName(t, traffic.plan.sides[otherSide(traffic.side)]),
      until: traffic.keepUntil,
      deploymentId: d.id,
    };
  }
}
