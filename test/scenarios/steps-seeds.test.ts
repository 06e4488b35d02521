import { afterEach, describe, expect, it } from "vitest";
import type { ConsoleEvent } from "../../src/local/events.js";
import { type Scenario, scenario } from "../helpers/scenario.js";

/**
 * The traffic steps of seeds 002, 003 and 004 through the console, on their examples as they are (issue 13 §6): each
 * schedule runs its weights in order, each step held for its pause, and a breach switches all the traffic back to
 * the kept version in one Elastic Load Balancing call.
 */

let s: Scenario | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const open = async (at: string, example: string) => {
  s = await scenario(at, example);
  return s;
};

/** A router's weight changes the simulated ALB took, in order: when, and [blue, green]. */
function shifts(t: Scenario, op: "ModifyRule" | "ModifyListener", blue: string, green: string, from = 0) {
  return t
    .since(from)
    .filter((e) => e.kind === "aws" && e.op === op && !e.error)
    .map((e) => {
      const groups = forwardOf(e).TargetGroups ?? [];
      expect(groups.map((g) => g.TargetGroupArn)).toEqual([blue, green]);
      return { at: Date.parse(e.at), weights: [groups[0]?.Weight, groups[1]?.Weight] as [number, number] };
    });
}

/** The forward action a ModifyRule (Actions) or ModifyListener (DefaultActions) call sent. */
function forwardOf(e: ConsoleEvent): { TargetGroups?: Array<{ TargetGroupArn: string; Weight: number }> } {
  const actions = (e.input?.Actions ?? e.input?.DefaultActions ?? []) as Array<{
    Type: string;
    ForwardConfig?: { TargetGroups?: Array<{ TargetGroupArn: string; Weight: number }> };
  }>;
  return actions.find((a) => a.Type === "forward")?.ForwardConfig ?? {};
}

const minutes = (ms: number) => ms / 60_000;

/** Advances a minute at a time until `done` (at most `limit` minutes). */
async function advanceUntil(t: Scenario, done: () => Promise<boolean> | boolean, limit: number): Promise<void> {
  for (let m = 0; m <= limit; m++) {
    if (await done()) return;
    await t.run(":advance 1m");
  }
  throw new Error(`not reached within ${limit} simulated minutes`);
}

describe("seed 002 (examples/tickettoken.yml): 5 → 25 → 50 → 100 chosen per deploy with --canary", () => {
  const AT = "2026-11-24T09:00:00Z";
  const ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012";
  const BLUE = `${ARN}:targetgroup/compliance/8796a5b4c3d2e1f0`;
  const GREEN = `${ARN}:targetgroup/compliance-canary/9a8b7c6d5e4f3a2b`;
  const RULE = `${ARN}:listener-rule/app/tickettoken-prod/0f1e2d3c4b5a6978/1a2b3c4d5e6f7a8b/2b3c4d5e6f7a8b9c`;

  it("keeps ECS's own 5% canary for a regular deploy: one UpdateService of compliance, no weights set", async () => {
    const t = await open(AT, "tickettoken.yml");
    await t.run(":as kai", "/deploy compliance v2.0.0 to production", ":as lena", ":click Approve", ":advance 40m");
    const updates = t.since(0).filter((e) => e.kind === "aws" && e.op === "UpdateService");
    expect(updates.map((e) => [e.input?.service, e.input?.deploymentConfiguration])).toEqual([
      [
        "compliance",
        expect.objectContaining({
          strategy: "CANARY",
          canaryConfiguration: { canaryPercent: 5, canaryBakeTimeInMinutes: 30 },
        }),
      ],
    ]);
    expect(t.awsOps()).not.toContain("ModifyRule");
    expect(t.con.world.weightsNow(RULE)).toEqual({ [BLUE]: 100, [GREEN]: 0 });
  });

  it("runs 5%, 25%, 50% and 100% on compliance-canary, each after its pause (30 min, 30 min, 1 h)", async () => {
    const t = await open(AT, "tickettoken.yml");
    await t.run(":as kai", "/deploy compliance v2.0.0 to production --canary", ":as lena", ":click Approve");
    const updates = t.since(0).filter((e) => e.kind === "aws" && e.op === "UpdateService");
    expect(updates.map((e) => e.input?.service)).toEqual(["compliance-canary"]);
    await advanceUntil(t, async () => (await t.con.store.deployments.must(1)).status === "baking", 150);
    const steps = shifts(t, "ModifyRule", BLUE, GREEN);
    expect(steps.map((x) => x.weights)).toEqual([
      [95, 5],
      [75, 25],
      [50, 50],
      [0, 100],
    ]);
    // Each step is judged for its pause before the next (the ticks come a minute apart, so up to a minute later).
    const gaps = steps.slice(1).map((x, i) => minutes(x.at - (steps[i]?.at ?? 0)));
    expect(gaps.map(Math.floor)).toEqual([30, 30, 60]);
    expect(t.card(1)).toContain("kept on compliance until");
  });

  it("switches all traffic back to compliance in one ModifyRule when the error rate breaches at 25%", async () => {
    const t = await open(AT, "tickettoken.yml");
    await t.run(":as kai", "/deploy compliance v2.0.0 to production --canary", ":as lena", ":click Approve");
    await advanceUntil(t, () => shifts(t, "ModifyRule", BLUE, GREEN).length === 2, 60);
    const breach = t.mark();
    await t.run(":metric compliance production error_rate 40");
    await advanceUntil(t, () => shifts(t, "ModifyRule", BLUE, GREEN, breach).length > 0, 15);
    await t.run(":advance 2m");
    expect(shifts(t, "ModifyRule", BLUE, GREEN, breach).map((x) => x.weights)).toEqual([[100, 0]]);
    expect((await t.con.store.deployments.must(1)).status).toBe("rolled_back");
    const incidents = t.since(breach).filter((e) => e.kind === "message" && e.channel === "#incidents");
    expect(incidents.map((e) => e.text)).toContainEqual(expect.stringContaining("guardrail “error rate critical”"));
    const pages = t.since(breach).filter((e) => e.kind === "page" && e.action === "trigger");
    expect(pages.map((p) => p.dedupKey)).toContain("deploybot/compliance/production/deploy-1/error-rate-critical");
  });
});

describe("seed 003 (examples/multitenant.yml): 10 → 25 → 50 → 100, validated before each shift", () => {
  const AT = "2026-11-24T10:00:00Z";
  const ARN = "arn:aws:elasticloadbalancing:eu-west-2:123456789012";
  const BLUE = `${ARN}:targetgroup/api/3c4d5e6f7a8b9c0d`;
  const GREEN = `${ARN}:targetgroup/api-green/4d5e6f7a8b9c0d1e`;

  const approved = async (t: Scenario) => {
    await t.run(":as ola", "/deploy api v2.0.0 to production", ":as ravi", ":click Approve");
  };

  it("shifts 10, 25, 50 and 100% to api-green, each after 10 minutes of passing guardrails", async () => {
    const t = await open(AT, "multitenant.yml");
    await approved(t);
    await advanceUntil(t, async () => (await t.con.store.deployments.must(1)).status === "baking", 90);
    const steps = shifts(t, "ModifyRule", BLUE, GREEN);
    expect(steps.map((x) => x.weights)).toEqual([
      [90, 10],
      [75, 25],
      [50, 50],
      [0, 100],
    ]);
    const gaps = steps.slice(1).map((x, i) => minutes(x.at - (steps[i]?.at ?? 0)));
    expect(gaps.map(Math.floor)).toEqual([10, 10, 10]);
    // Each shift came after its step's analysis passed, and the health check came before the first.
    const audit = (await t.con.store.audit.list({ deploymentId: 1 })).map((a) => a.action);
    expect(audit.filter((a) => a === "steps.advance")).toHaveLength(3);
    expect(audit.indexOf("steps.health_check")).toBeLessThan(audit.indexOf("elb.weights"));
  });

  it("does not shift while a step is inconclusive: no requests on api-green hold 10% until a person is asked", async () => {
    const t = await open(AT, "multitenant.yml");
    await approved(t);
    await advanceUntil(t, () => shifts(t, "ModifyRule", BLUE, GREEN).length === 1, 15);
    await t.run(":metric api production request_count 0", ":advance 30m");
    expect(shifts(t, "ModifyRule", BLUE, GREEN).map((x) => x.weights)).toEqual([[90, 10]]);
    expect(await t.con.store.deployments.must(1)).toMatchObject({
      status: "paused",
      progress: { traffic: { pausedBy: "deploybot", pauseReason: expect.stringContaining("stayed inconclusive") } },
    });
  });

  it("puts all traffic back on api within the monitor cycle that finds the breach: well under 2 minutes", async () => {
    const t = await open(AT, "multitenant.yml");
    await approved(t);
    await advanceUntil(t, () => shifts(t, "ModifyRule", BLUE, GREEN).length === 2, 30);
    const breach = t.mark();
    await t.run(":metric api production p95_latency 1.2");
    await advanceUntil(t, () => shifts(t, "ModifyRule", BLUE, GREEN, breach).length > 0, 15);
    const [back] = shifts(t, "ModifyRule", BLUE, GREEN, breach);
    expect(back?.weights).toEqual([100, 0]);
    // rollback_grace 0s: found (reported in #incidents) and switched back in the same poll; the one ModifyRule is
    // the whole rollback.
    const found = t
      .since(breach)
      .find((e) => e.kind === "message" && e.channel === "#incidents" && e.text?.includes("“p95 latency”"));
    expect(found).toBeDefined();
    expect((back?.at ?? 0) - Date.parse(found?.at ?? "")).toBeLessThan(60_000);
    expect(
      t.since(breach).filter((e) => e.kind === "aws" && e.op === "UpdateService" && e.input?.taskDefinition),
    ).toEqual([]);
    expect(t.con.world.read().services["platform-prod/api-green"]?.desiredCount).toBe(0);
  });

  it("switches back on a breach of a guardrail that pages, when it reads api-green's own metrics, and pages as configured", async () => {
    const t = await open(AT, "multitenant.yml");
    await approved(t);
    await advanceUntil(t, () => shifts(t, "ModifyRule", BLUE, GREEN).length === 2, 30);
    const breach = t.mark();
    // 450 ms: over “performance degradation” (1.5x the 250 ms before the deploy, action: page), under “p95 latency”
    // (500 ms, action: rollback).
    await t.run(":metric api production p95_latency 0.45");
    await advanceUntil(t, () => shifts(t, "ModifyRule", BLUE, GREEN, breach).length > 0, 15);
    expect(shifts(t, "ModifyRule", BLUE, GREEN, breach).map((x) => x.weights)).toEqual([[100, 0]]);
    const incidents = await t.con.store.incidents.of(1);
    expect(incidents.map((i) => [i.guardrail, i.action])).toEqual([["performance degradation", "rollback"]]);
    const pages = t.since(breach).filter((e) => e.kind === "page" && e.action === "trigger");
    expect(pages.map((p) => p.summary)).toEqual([expect.stringContaining("performance degradation")]);
    expect((await t.con.store.deployments.must(1)).status).toBe("rolled_back");
  });
});

describe("seed 004 (examples/ecommerce.yml): two clusters behind one ALB, the listener switched", () => {
  const AT = "2026-11-24T10:15:00-06:00";
  const ARN = "arn:aws:elasticloadbalancing:us-east-2:123456789012";
  const BLUE = `${ARN}:targetgroup/frontend/5e6f7a8b9c0d1e2f`;
  const GREEN = `${ARN}:targetgroup/frontend-green/7a8b9c0d1e2f3a4b`;
  const LISTENER = `${ARN}:listener/app/shop-prod/4d5e6f7a8b9c0d1e/f2f7dc8efc522ab2`;

  const approved = async (t: Scenario) => {
    await t.run(
      ":as tom",
      "/deploy frontend v2.0.0 to production",
      ":as mike",
      ":click Approve",
      ":as jane",
      ":click Approve",
    );
  };

  it("deploys to production-green, health-checks green, sends it 10% then all by ModifyListener", async () => {
    const t = await open(AT, "ecommerce.yml");
    await approved(t);
    const updates = t.since(0).filter((e) => e.kind === "aws" && e.op === "UpdateService");
    expect(updates.map((e) => [e.input?.cluster, e.input?.service])).toEqual([["production-green", "frontend"]]);
    await advanceUntil(t, async () => (await t.con.store.deployments.must(1)).status === "baking", 30);
    const ops = t.awsOps();
    expect(ops).not.toContain("ModifyRule");
    expect(ops.indexOf("DescribeTargetHealth")).toBeLessThan(ops.indexOf("ModifyListener"));
    const health = t.since(0).find((e) => e.kind === "aws" && e.op === "DescribeTargetHealth");
    expect(health?.input).toEqual({ TargetGroupArn: GREEN });
    const steps = shifts(t, "ModifyListener", BLUE, GREEN);
    expect(steps.map((x) => x.weights)).toEqual([
      [90, 10],
      [0, 100],
    ]);
    expect(Math.floor(minutes((steps[1]?.at ?? 0) - (steps[0]?.at ?? 0)))).toBe(10);
    // The console prints each call as an `aws` line of the elbv2 API with the exact input sent.
    const set = t.since(0).find((e) => e.kind === "aws" && e.op === "ModifyListener");
    expect({ api: set?.api, op: set?.op, input: set?.input }).toEqual({
      api: "elbv2",
      op: "ModifyListener",
      input: {
        ListenerArn: LISTENER,
        DefaultActions: [
          {
            Type: "forward",
            ForwardConfig: {
              TargetGroups: [
                { TargetGroupArn: BLUE, Weight: 90 },
                { TargetGroupArn: GREEN, Weight: 10 },
              ],
            },
          },
        ],
      },
    });
    expect(t.con.world.weightsNow(LISTENER)).toEqual({ [BLUE]: 0, [GREEN]: 100 });
  });

  it("switches the listener back to blue in one call on a breach at 10%, and scales green down", async () => {
    const t = await open(AT, "ecommerce.yml");
    await approved(t);
    await advanceUntil(t, () => shifts(t, "ModifyListener", BLUE, GREEN).length === 1, 15);
    const breach = t.mark();
    await t.run(":metric frontend production error_rate 60");
    await advanceUntil(t, () => shifts(t, "ModifyListener", BLUE, GREEN, breach).length > 0, 15);
    await t.run(":advance 2m");
    expect(shifts(t, "ModifyListener", BLUE, GREEN, breach).map((x) => x.weights)).toEqual([[100, 0]]);
    const scaled = t.since(breach).filter((e) => e.kind === "aws" && e.op === "UpdateService");
    expect(scaled.map((e) => e.input)).toEqual([{ cluster: "production-green", service: "frontend", desiredCount: 0 }]);
    expect((await t.con.store.deployments.must(1)).status).toBe("rolled_back");
  });

  it("routes traffic back to blue by ModifyListener once the Technical Lead and the Project Manager approve", async () => {
    const t = await open(AT, "ecommerce.yml");
    await approved(t);
    await advanceUntil(t, async () => (await t.con.store.deployments.must(1)).status === "succeeded", 60);
    await t.run(":as tom", '/rollback frontend production --reason "checkout broken"', ":click Roll back");
    const before = t.mark();
    await t.run(":as mike", ":click Approve", ":advance 1m");
    expect(t.awsOps(before)).not.toContain("ModifyListener");
    await t.run(":as jane", ":click Approve");
    expect(shifts(t, "ModifyListener", BLUE, GREEN, before).map((x) => x.weights)).toEqual([[100, 0]]);
    expect((await t.con.store.deployments.must(1)).status).toBe("rolled_back");
  });
});
