import { type Deployment, STEPPING } from "../domain/deployment.js";
import type { Target } from "../domain/targets.js";
import {
  anyStepsOf,
  otherSide,
  stepsStrategyOf,
  type TrafficState,
  trafficPlan,
  weightNow,
  weightsFor,
} from "../domain/traffic.js";
import { approverRoles } from "../policies/approvals.js";
import { canOverride } from "../policies/rollback.js";
import type { EcsTarget } from "../ports.js";
import { escapeMrkdwn as esc, mention } from "../slack/blocks.js";
import type { Person } from "./people.js";
import type { Handlers } from "./reconciler.js";
import type { Placement } from "./rollout.js";
import { StepAnalysis } from "./steps-analysis.js";
import { type StepsDeps, StepsPart } from "./steps-common.js";
import { StepEffects } from "./steps-effects.js";
import { KeptVersions } from "./steps-keep.js";

/**
 * Traffic steps driven by deploybot (seed 000, 002, 003, 004): the new version goes to the idle side of a two-sided
 * target, its target group's health is checked, then the weights of the ALB listener rule (or listener) move to it
 * step by step, each step judged by the guardrails on the new target group's own metrics; after 100% the previous
 * side is kept for a while, so a rollback is one weight switch. Every weight change and scale-down is an intent;
 * the handlers read the listener before they set anything, so a repeated attempt never shifts twice.
 * This class places a deploy on a side and answers the card's buttons; the effects (steps-effects), the schedule
 * (steps-analysis) and the kept version (steps-keep) are its parts.
 */
export class TrafficSteps extends StepsPart {
  private readonly effects: StepEffects;
  private readonly analysis: StepAnalysis;
  private readonly keep: KeptVersions;

  constructor(d: StepsDeps) {
    super(d);
    this.effects = new StepEffects(d);
    this.analysis = new StepAnalysis(d, this.effects);
    this.keep = new KeptVersions(d);
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
    return this.effects.handlers();
  }

  /** The scheduled step of a stepped deploy (see StepAnalysis). */
  tick(d: Deployment): Promise<void> {
    return this.analysis.tick(d);
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
    // Checked again inside the transaction: a click on another replica, or the schedule, may have moved it since.
    return this.d.outbox.commit(async (): Promise<string | null> => {
      const fresh = await this.d.store.deployments.must(id);
      if (fresh.status !== "shifting") return this.unchanged(fresh);
      await this.pauseNow(fresh, person.name, "paused by hand");
      return null;
    });
  }

  /** Resume: the held step is judged again at its next check and the schedule goes on. */
  async resume(id: number, person: Person): Promise<string | null> {
    const d = await this.stepping(id);
    if (typeof d === "string") return d;
    const refusal = await this.mayApprove(d, person, "resume");
    if (refusal) return refusal;
    if (d.status !== "paused") return `Deploy #${id} is not paused.`;
    const { store, outbox, lifecycle } = this.d;
    return outbox.commit(async (): Promise<string | null> => {
      const fresh = await store.deployments.must(id);
      const t = fresh.progress?.traffic;
      if (fresh.status !== "paused" || !t) return this.unchanged(fresh);
      const traffic: TrafficState = { ...t, pausedBy: null, pauseReason: null, holdingSince: null, hold: null };
      const moved = await lifecycle.move(
        fresh,
        "resume",
        { progress: { ...fresh.progress, traffic } },
        `:arrow_forward: Resumed by ${mention(person.slackId)} at step ${t.step + 1} (${weightNow(t)}%).`,
      );
      await lifecycle.audit(moved, person.name, "steps.resume", { step: t.step + 1 });
      return null;
    });
  }

  /** What a Pause or Resume that changed nothing (someone else's click came first) tells the clicker. */
  private unchanged(d: Deployment): string {
    const where =
      d.status === "paused" ? `paused by ${d.progress?.traffic?.pausedBy ?? "someone"}` : d.status.replace(/_/g, " ");
    return `Deploy #${d.id} is ${where} now; nothing changed.`;
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

  /** What a rollback `r` of `deploy` does to traffic (see KeptVersions). */
  rollbackTraffic(deploy: Deployment | undefined, r: Deployment): Promise<TrafficState | null> {
    return this.keep.rollbackTraffic(deploy, r);
  }

  /** Records the switch back of rollback `r` (in the caller's transaction). */
  switchBack(r: Deployment, traffic: TrafficState): Promise<void> {
    return this.keep.switchBack(r, traffic);
  }

  /** Scales down the previous versions whose keep_previous is over. */
  expireKeeps(): Promise<void> {
    return this.keep.expireKeeps();
  }

  /** The previous version a stepped target keeps running (for /status). */
  kept(t: Target): Promise<{ version: string; where: string; until: string; deploymentId: number } | null> {
    return this.keep.kept(t);
  }
}
