import { formatRelative } from "../clock.js";
import type { DeployRequest } from "../domain/requests.js";
import type { Target } from "../domain/targets.js";
import { anyStepsOf, stepsStrategyOf } from "../domain/traffic.js";
import { describeRule } from "../policies/approvals.js";
import type { Decision } from "../policies/gate.js";
import { escapeMrkdwn as esc } from "../slack/blocks.js";
import { REVISION_RE, strategyOf } from "./rollout.js";

/** `/deploy … --dry-run`: what the gate would decide and every call the deploy would make, in order; changes nothing. */
export function dryRunPlan(cmd: DeployRequest, t: Target, decision: Decision): string {
  const steps = stepsStrategyOf(t.settings, Boolean(cmd.canary));
  const sides = anyStepsOf(t.settings);
  const plan = REVISION_RE.test(cmd.version)
    ? [`DescribeServices ${t.ecs.cluster}/${t.ecs.service}`, `DescribeTaskDefinition ${cmd.version}`]
    : [
        `DescribeServices ${t.ecs.cluster}/${t.ecs.service}`,
        "DescribeTaskDefinition (the running revision)",
        `RegisterTaskDefinition with container ${t.ecs.container} on image tag ${cmd.version}`,
      ];
  if (steps) {
    const rule = steps.listener_rule ? `ModifyRule ${steps.listener_rule}` : `ModifyListener ${steps.listener}`;
    plan.unshift(`${steps.listener_rule ? "DescribeRules" : "DescribeListeners"}: the live side takes the traffic`);
    plan.push(
      `UpdateService of the idle side (${t.ecs.service} or ${steps.green.service}) to the live side's size (ROLLING, circuit breaker with rollback)`,
      "follow ListServiceDeployments / DescribeServiceDeployments",
      "DescribeTargetHealth of its target group: healthy targets ≥ desired",
      `${rule}, step by step: ${steps.steps.map((x) => `${x.weight}%${x.pause ? ` for ${formatRelative(x.pause)}` : ""}`).join(" → ")}, each step judged by the guardrails on the new target group`,
      `keep the previous version ${formatRelative(steps.keep_previous)}, then scale it down`,
    );
  } else {
    if (sides) plan.unshift("DescribeRules: the live side, where this deploy goes in place");
    plan.push(
      `UpdateService ${t.ecs.cluster}/${sides ? "(live side)" : t.ecs.service} (${strategyOf(t.settings).type}, circuit breaker with rollback)`,
      "follow ListServiceDeployments / DescribeServiceDeployments",
    );
  }
  if (t.policy.bake > 0)
    plan.push(`bake ${formatRelative(t.policy.bake)} with ${t.settings.guardrails.length} guardrails on`);
  const verdict = {
    allow: "would go ahead now",
    needs_approval: `would need approval (${decision.outcome === "needs_approval" ? describeRule(decision.rule) : ""})`,
    deny: "would be denied",
  }[decision.outcome];
  return [
    `*Dry run* (nothing was changed): ${cmd.service} ${esc(cmd.version)} → ${cmd.environment} ${verdict}.`,
    ...decision.reasons.map((r) => `• ${esc(r)}`),
    ...(decision.bypassed.length ? [`Would bypass: ${esc(decision.bypassed.join("; "))}`] : []),
    `*Plan* (ECS, ${t.ecs.region}):`,
    ...plan.map((p, i) => `${i + 1}. ${p}`),
  ].join("\n");
}
