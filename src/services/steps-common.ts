import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import type { Deployment } from "../domain/deployment.js";
import { findTarget, type Target } from "../domain/targets.js";
import {
  liveSideOf,
  type Side,
  type SidePlacement,
  strangers,
  type TrafficPlan,
  type TrafficState,
  weightNow,
} from "../domain/traffic.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import type { EcsPort, EcsTarget, ElbPort, Stickiness } from "../ports.js";
import { escapeMrkdwn as esc, mention } from "../slack/blocks.js";
import type { Store } from "../store/index.js";
import type { Lifecycle } from "./lifecycle.js";
import type { Outbox } from "./outbox.js";
import type { People } from "./people.js";

/** How long a new side may take to pass its target group's health check once ECS has rolled it out. */
export const HEALTH_PATIENCE_MS = 10 * 60_000;

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
 * What every part of traffic steps shares: the clock, the target of a deployment, a side's ECS service, which side
 * the router sends traffic to, and pausing a deploy's steps.
 */
export abstract class StepsPart {
  constructor(protected readonly d: StepsDeps) {}

  protected now(): Date {
    return this.d.clock.now();
  }

  protected target(d: Pick<Deployment, "service" | "environment">): Target {
    const t = findTarget(this.d.config, d.service, d.environment);
    if (!t) throw new DeploybotError(ErrorCode.NotFound, `${d.service} is not configured in ${d.environment}`);
    return t;
  }

  protected ecsOf(t: Target, side: SidePlacement): EcsTarget {
    return { region: t.ecs.region, container: t.ecs.container, cluster: side.cluster, service: side.service };
  }

  protected stickiness(plan: TrafficPlan): Stickiness | undefined {
    return plan.stickinessSeconds !== null ? { enabled: true, seconds: plan.stickinessSeconds } : undefined;
  }

  /** Reads the router's weights: which side is live. Refuses a forward action that also sends traffic elsewhere. */
  protected async liveSide(plan: TrafficPlan): Promise<Side> {
    const weights = await this.d.elb.describeWeights(plan.router);
    const others = strangers(plan, weights);
    if (others.length > 0)
      throw new DeploybotError(
        ErrorCode.AwsFailed,
        `the forward action of ${plan.router.arn} also sends traffic to ${others.join(", ")}: deploybot moves traffic between its two target groups only; take the others out of that forward action`,
      );
    return liveSideOf(plan, weights);
  }

  /** Pauses the steps of `d` (in the caller's transaction): who, why, a note and an audit row. */
  protected async pauseNow(d: Deployment, by: string, why: string): Promise<void> {
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
}
