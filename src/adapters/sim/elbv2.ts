import type { Action } from "@aws-sdk/client-elastic-load-balancing-v2";
import { DeploybotError, ErrorCode } from "../../errors.js";
import type { ElbPort, Router, Stickiness, TargetGroupWeight } from "../../ports.js";
import { forwardWeights, modifyInput, routerSubject } from "../aws/elbv2.js";
import type { SimWorld } from "./world.js";

/**
 * Simulated Elastic Load Balancing: the same calls as the real adapter with the same inputs (the real adapter's own
 * ModifyRule / ModifyListener input builder), against the listener rules, listeners and target groups of SimWorld.
 * A weight change takes effect at once: the traffic, and the metrics the target groups publish, follow it.
 */
export class SimElb implements ElbPort {
  constructor(private readonly world: SimWorld) {}

  private actions(router: Router): Action[] {
    const op = router.kind === "rule" ? "DescribeRules" : "DescribeListeners";
    this.world.admit("elbv2", op, router.kind === "rule" ? { RuleArns: [router.arn] } : { ListenerArns: [router.arn] });
    const found = this.world.router(router.arn);
    if (!found || found.kind !== router.kind) {
      throw new DeploybotError(
        ErrorCode.NotFound,
        `Elastic Load Balancing has no ${routerSubject(router)} in ${router.region}: check ${router.kind === "rule" ? "strategy.listener_rule" : "strategy.listener"} of this service's environment in the config`,
      );
    }
    const actions = structuredClone(found.actions) as unknown as Action[];
    this.world.completed("elbv2", op);
    return actions;
  }

  async describeWeights(router: Router): Promise<TargetGroupWeight[]> {
    return forwardWeights(this.actions(router), router);
  }

  async setWeights(router: Router, weights: TargetGroupWeight[], stickiness?: Stickiness): Promise<void> {
    const modify = modifyInput(router, this.actions(router), weights, stickiness);
    if (this.world.dead) return;
    this.world.admit("elbv2", modify.op, modify.input as unknown as Record<string, unknown>);
    const actions = (modify.op === "ModifyRule" ? modify.input.Actions : modify.input.DefaultActions) ?? [];
    this.world.setRouterActions(
      router.arn,
      actions as unknown as Array<Record<string, unknown>>,
      Object.fromEntries(weights.map((w) => [w.targetGroupArn, w.weight])),
    );
    this.world.completed("elbv2", modify.op);
  }

  async targetHealth(_region: string, targetGroupArn: string): Promise<{ healthy: number; total: number }> {
    this.world.admit("elbv2", "DescribeTargetHealth", { TargetGroupArn: targetGroupArn });
    const health = this.world.targetHealth(targetGroupArn);
    if (!health) {
      throw new DeploybotError(
        ErrorCode.NotFound,
        `target group ${targetGroupArn} does not exist: check load_balancer.target_group and strategy.green.target_group of this service's environment in the config`,
      );
    }
    this.world.completed("elbv2", "DescribeTargetHealth");
    return health;
  }
}
