import { formatLocal, formatRelative } from "../clock.js";
import { type Deployment, IN_FLIGHT, STEPPING } from "../domain/deployment.js";
import {
  isLastStep,
  otherSide,
  type Side,
  sameWeights,
  strangers,
  type TrafficState,
  weightNow,
} from "../domain/traffic.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import type { EcsTarget } from "../ports.js";
import { escapeMrkdwn as esc } from "../slack/blocks.js";
import type { Handlers, IntentOf, Performed } from "./reconciler.js";
import { StepsPart, sideName } from "./steps-common.js";

/** How long a deploy's step retries setting its weights (throttling, an outage) before it pauses for a person. */
const STEP_PATIENCE_MS = 15 * 60_000;

/**
 * The intents of traffic steps: set the router's weights (read first, so a repeated attempt never shifts twice) and
 * scale a side's ECS service; and what each one's taking effect means for the deployment.
 */
export class StepEffects extends StepsPart {
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
  async allTraffic(d: Deployment, traffic: TrafficState): Promise<void> {
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
}
