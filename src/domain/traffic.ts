import type { ServiceEnvironment, StepsStrategy } from "../config/schema.js";
import type { Router, TargetGroupWeight } from "../ports.js";
import type { Deployment } from "./deployment.js";
import type { Target } from "./targets.js";

/**
 * Traffic steps, in deploybot's own words: a target with two sides (two ECS services, each behind its own target
 * group) and one ALB listener rule (or listener default action) whose forward weights decide which side takes what.
 * Pure: what the config says, what a deployment recorded, and the weights that follow.
 */

export type Side = "blue" | "green";
export type { Router, TargetGroupWeight };

/** Where one side runs: its ECS service and the target group the load balancer forwards to. */
export interface SidePlacement {
  cluster: string;
  service: string;
  targetGroup: string;
}

/** The steps of a deploy and where they act, copied from the config when the deploy starts (a config change later does not move it). */
export interface TrafficPlan {
  router: Router;
  sides: Record<Side, SidePlacement>;
  /** Weight on the new side, and how long the step is judged before the next one (0 for the last). */
  steps: Array<{ weight: number; pauseMs: number }>;
  keepMs: number;
  maxInconclusiveMs: number;
  /** Target group stickiness while traffic is split, in seconds; null: off. */
  stickinessSeconds: number | null;
}

/**
 * How a deployment on a two-sided target moves traffic: `steps` (deployed to the idle side, then weight by weight),
 * `switch` (a rollback that puts all traffic back on the side still running the previous version, in one call),
 * `in_place` (an ECS rollout on the live side, as on any other service: a deploy with ECS's own strategy, or a
 * rollback once the previous version is no longer kept).
 */
export type TrafficMode = "steps" | "switch" | "in_place";

/** What a deployment records about its traffic (progress.traffic). */
export interface TrafficState {
  plan: TrafficPlan;
  /** The side this deployment's version runs on; the other side is the stable one (or the one it replaced). */
  side: Side;
  mode: TrafficMode;
  /** The step in progress (its weights set, or being set by an elb.weights intent); -1 before the first shift. */
  step: number;
  /** When the current step's weights took effect: its pause runs from here. Null while they are being set. */
  stepAt: string | null;
  /** When the new version first took traffic (the first step's weights took effect): guardrails judge from here. */
  since: string | null;
  /** When the new side finished its ECS rollout; its target group's health is checked from then on. */
  upAt?: string | null;
  /** The new target group's last health check. */
  healthy?: { healthy: number; desired: number } | null;
  /** Since when the current step's analysis has been inconclusive, and why. */
  holdingSince?: string | null;
  hold?: string | null;
  /** Who paused it (a person's name, or deploybot), and why. */
  pausedBy?: string | null;
  pauseReason?: string | null;
  /** After 100%: the previous version keeps running on the other side until then. */
  keepUntil?: string | null;
  /** The kept side was scaled down (keep over, or a newer deploy replaced it). */
  scaledDown?: boolean;
}

export const otherSide = (side: Side): Side => (side === "blue" ? "green" : "blue");

/** The STEPS strategy in force for one deploy: the canary one for `--canary`, else the target's own when it steps. */
export function stepsStrategyOf(settings: ServiceEnvironment, canary: boolean): StepsStrategy | null {
  const own = settings.strategy.type === "STEPS" ? settings.strategy : null;
  return canary ? (settings.canary ?? own) : own;
}

/** Any STEPS strategy of the target (its own or its canary): the target then has two sides, whatever the deploy. */
export function anyStepsOf(settings: ServiceEnvironment): StepsStrategy | null {
  return settings.strategy.type === "STEPS" ? settings.strategy : (settings.canary ?? null);
}

/** The config's steps for a target, as a deploy records them. The config check guarantees load_balancer is set. */
export function trafficPlan(t: Target, s: StepsStrategy): TrafficPlan {
  const blueGroup = t.settings.load_balancer?.target_group ?? "";
  return {
    router: s.listener_rule
      ? { kind: "rule", arn: s.listener_rule, region: t.ecs.region }
      : { kind: "listener", arn: s.listener ?? "", region: t.ecs.region },
    sides: {
      blue: { cluster: t.ecs.cluster, service: t.ecs.service, targetGroup: blueGroup },
      green: { cluster: s.green.cluster ?? t.ecs.cluster, service: s.green.service, targetGroup: s.green.target_group },
    },
    steps: s.steps.map((x) => ({ weight: x.weight, pauseMs: x.pause ?? 0 })),
    keepMs: s.keep_previous,
    maxInconclusiveMs: s.max_inconclusive,
    stickinessSeconds: s.stickiness !== undefined ? Math.max(1, Math.round(s.stickiness / 1000)) : null,
  };
}

/** The forward weights with `weight` percent on `side` and the rest on the other, blue first. */
export function weightsFor(plan: TrafficPlan, side: Side, weight: number): TargetGroupWeight[] {
  const on = (s: Side) => (s === side ? weight : 100 - weight);
  return (["blue", "green"] as const).map((s) => ({ targetGroupArn: plan.sides[s].targetGroup, weight: on(s) }));
}

/** The same weights, whatever their order and scale (ALB weights are relative: 1/9 is 10/90). */
export function sameWeights(a: TargetGroupWeight[], b: TargetGroupWeight[]): boolean {
  const share = (list: TargetGroupWeight[]) => {
    const total = list.reduce((sum, w) => sum + w.weight, 0);
    const m = new Map<string, number>();
    for (const w of list) if (w.weight > 0) m.set(w.targetGroupArn, total > 0 ? w.weight / total : 0);
    return m;
  };
  const x = share(a);
  const y = share(b);
  return x.size === y.size && [...x].every(([tg, s]) => Math.abs((y.get(tg) ?? -1) - s) < 1e-9);
}

/** The share (0-100) of traffic the forward weights give `side`. */
export function shareOf(plan: TrafficPlan, side: Side, weights: TargetGroupWeight[]): number {
  const total = weights.reduce((sum, w) => sum + w.weight, 0);
  if (total <= 0) return 0;
  const mine = weights.filter((w) => w.targetGroupArn === plan.sides[side].targetGroup);
  return (100 * mine.reduce((sum, w) => sum + w.weight, 0)) / total;
}

/** The side taking most of the traffic (blue on a tie): the live one, where a deploy in place goes. */
export function liveSideOf(plan: TrafficPlan, weights: TargetGroupWeight[]): Side {
  return shareOf(plan, "green", weights) > shareOf(plan, "blue", weights) ? "green" : "blue";
}

/** Target groups in the forward action that are neither side: deploybot will not guess what they are for. */
export function strangers(plan: TrafficPlan, weights: TargetGroupWeight[]): string[] {
  const mine = new Set([plan.sides.blue.targetGroup, plan.sides.green.targetGroup]);
  return weights.filter((w) => w.weight > 0 && !mine.has(w.targetGroupArn)).map((w) => w.targetGroupArn);
}

/** The weight on the new side of the step in progress (0 before the first shift). */
export function weightNow(t: TrafficState): number {
  return t.step >= 0 ? (t.plan.steps[t.step]?.weight ?? 0) : 0;
}

/** True for the last step (100%): once its weights are set the deploy has all the traffic. */
export function isLastStep(t: TrafficState, step = t.step): boolean {
  return step === t.plan.steps.length - 1;
}

/**
 * When the deployment's version took traffic: for traffic steps the first shift (the new side takes nothing while
 * ECS rolls it out); otherwise when ECS took the rollout. Null while it takes none.
 */
export function tookTrafficAt(d: Pick<Deployment, "startedAt" | "progress">): string | null {
  const t = d.progress?.traffic;
  return t?.mode === "steps" ? t.since : d.startedAt;
}

/**
 * Where the guardrails of `d` read their metrics: the side its version runs on. For a deploy that was switched
 * back (its incidents are judged on the restored version), the other side.
 */
export function judgedPlacement(d: Pick<Deployment, "status" | "progress">): SidePlacement | null {
  const t = d.progress?.traffic;
  if (!t) return null;
  const switchedBack = t.mode === "steps" && (d.status === "rolling_back" || d.status === "rolled_back");
  return t.plan.sides[switchedBack ? otherSide(t.side) : t.side];
}

/** The side opposite the one `d` runs on, as a placement (the stable group a stepped deploy is compared with). */
export function stablePlacement(d: Pick<Deployment, "progress">): SidePlacement | null {
  const t = d.progress?.traffic;
  return t ? t.plan.sides[otherSide(t.side)] : null;
}
