import { type ServiceEnvironment, type StepsStrategy, targetGroupArn } from "../config/schema.js";

/** A problem of a traffic-steps config, at a path in the config file, for the config loader. */
export interface StepsProblem {
  path: PropertyKey[];
  message: string;
}

/** ALB target group stickiness lasts 1 s to 7 days. */
const MAX_STICKINESS_MS = 7 * 24 * 3_600_000;

/** The region an ELB ARN is in (arn:aws:elasticloadbalancing:REGION:…). */
const regionOf = (arn: string) => arn.split(":")[3] ?? "";

/**
 * What a STEPS strategy (the service's own, or its canary) must say that the schema alone cannot check: steps that
 * go up to 100% with a pause before each next one, exactly one place to set the weights, two distinct sides with
 * target group ARNs in the service's region, and the same sides and listener for both strategies.
 */
export function stepsProblems(se: ServiceEnvironment, base: PropertyKey[]): StepsProblem[] {
  const problems: StepsProblem[] = [];
  const strategies: Array<[StepsStrategy, PropertyKey[]]> = [];
  if (se.strategy.type === "STEPS") strategies.push([se.strategy, [...base, "strategy"]]);
  if (se.canary) strategies.push([se.canary, [...base, "canary"]]);
  for (const [s, path] of strategies) {
    s.steps.forEach((step, i) => {
      const prev = s.steps[i - 1];
      const last = i === s.steps.length - 1;
      if (prev && step.weight <= prev.weight)
        problems.push({
          path: [...path, "steps", i, "weight"],
          message: `each step moves more traffic than the one before: ${step.weight}% after ${prev.weight}%`,
        });
      if (last && step.weight !== 100)
        problems.push({
          path: [...path, "steps", i, "weight"],
          message: `the last step takes all the traffic: weight 100 (found ${step.weight}); the bake window follows it`,
        });
      if (!last && !step.pause)
        problems.push({
          path: [...path, "steps", i],
          message: `step ${i + 1} (${step.weight}%) needs a pause: how long its guardrails judge the new version before the next step, e.g. pause: 10m`,
        });
      if (last && step.pause)
        problems.push({
          path: [...path, "steps", i, "pause"],
          message:
            "the last step takes all the traffic and the environment's bake window follows it: leave out its pause",
        });
    });
    if (Boolean(s.listener_rule) === Boolean(s.listener))
      problems.push({
        path,
        message:
          "say where the weights are set, once: listener_rule (a listener rule's forward action, ModifyRule) or listener (a listener's default action, ModifyListener)",
      });
    for (const key of ["listener_rule", "listener"] as const) {
      const arn = s[key];
      if (arn && regionOf(arn) !== se.ecs.region)
        problems.push({
          path: [...path, key],
          message: `is in ${regionOf(arn)}, but ecs.region is ${se.ecs.region}: the load balancer must be in the service's region`,
        });
    }
    if (regionOf(s.green.target_group) !== se.ecs.region)
      problems.push({
        path: [...path, "green", "target_group"],
        message: `is in ${regionOf(s.green.target_group)}, but ecs.region is ${se.ecs.region}`,
      });
    if ((s.green.cluster ?? se.ecs.cluster) === se.ecs.cluster && s.green.service === se.ecs.service)
      problems.push({
        path: [...path, "green", "service"],
        message: `the green side needs an ECS service of its own: ${se.ecs.cluster}/${se.ecs.service} is the blue side (ecs)`,
      });
    if (s.stickiness !== undefined && (s.stickiness < 1000 || s.stickiness > MAX_STICKINESS_MS))
      problems.push({ path: [...path, "stickiness"], message: "target group stickiness lasts from 1s to 7d" });
    if (!se.load_balancer) {
      problems.push({
        path,
        message:
          "traffic steps need load_balancer {name, target_group}: the ALB, and the target group (ARN) of the blue side, whose ECS service is `ecs`",
      });
    } else if (!targetGroupArn.safeParse(se.load_balancer.target_group).success) {
      problems.push({
        path: [...base, "load_balancer", "target_group"],
        message: `traffic steps set forward weights by target group ARN: write the blue side's target group as an ARN such as arn:aws:elasticloadbalancing:${se.ecs.region}:123456789012:${se.load_balancer.target_group.replace(/^arn:.*?:targetgroup\//, "targetgroup/")}`,
      });
    } else if (se.load_balancer.target_group === s.green.target_group) {
      problems.push({
        path: [...path, "green", "target_group"],
        message: "the green side needs a target group of its own: this is the blue side's (load_balancer.target_group)",
      });
    }
  }
  if (se.strategy.type === "STEPS" && se.canary) {
    const a = se.strategy;
    const b = se.canary;
    const same =
      (a.green.cluster ?? "") === (b.green.cluster ?? "") &&
      a.green.service === b.green.service &&
      a.green.target_group === b.green.target_group &&
      a.listener_rule === b.listener_rule &&
      a.listener === b.listener;
    if (!same)
      problems.push({
        path: [...base, "canary"],
        message:
          "the canary moves traffic between the same two sides as the strategy: give it the same green and listener_rule (or listener)",
      });
  }
  return problems;
}
