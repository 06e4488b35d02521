import { formatRelative } from "../clock.js";
import type { Deployment } from "../domain/deployment.js";
import { blocksSuccess } from "../domain/incident.js";
import { isLastStep, type TrafficState, weightNow, weightsFor } from "../domain/traffic.js";
import { judgeStep } from "../policies/steps.js";
import { escapeMrkdwn as esc } from "../slack/blocks.js";
import { HEALTH_PATIENCE_MS, type StepsDeps, StepsPart, sideName } from "./steps-common.js";
import type { StepEffects } from "./steps-effects.js";

/**
 * The scheduled part of traffic steps: the new side's target group health before the first shift, and the analysis
 * at the end of each step's pause.
 */
export class StepAnalysis extends StepsPart {
  constructor(
    d: StepsDeps,
    private readonly effects: StepEffects,
  ) {
    super(d);
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
          await this.effects.allTraffic(fresh, fresh.progress.traffic);
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
}
