import { afterEach, describe, expect, it } from "vitest";
import type { Deployment } from "../../src/domain/deployment.js";
import type { ConsoleEvent } from "../../src/local/events.js";
import { STEPS_EXAMPLE } from "../helpers/ecs-canary-example.js";
import { type Scenario, scenario } from "../helpers/scenario.js";

/**
 * Seed 000's traffic steps through the console, on examples/deploybot.yml as it is (issue 13): web production goes to
 * web-green, is health-checked, then takes 10% → 50% → 90% → 100% of the traffic by ModifyRule, each step judged on
 * web-green's own target group; blue (web) is kept 24 h, so a rollback is one weight switch.
 *
 * Timeline (Tuesday, SAST): approved 10:15; web-green up at 10:19 (ROLLING, one task a minute); step 1 (10%) at
 * 10:19:15; step 2 (50%) at 10:29:15; step 3 (90%) at 10:44:15; step 4 (100%) at 11:14:15, baking until 11:44:15.
 */

const TUESDAY = "2026-11-24T10:15:00+02:00";
const ARN = "arn:aws:elasticloadbalancing:af-south-1:123456789012";
const RULE = `${ARN}:listener-rule/app/comply360-prod/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee`;
const BLUE = `${ARN}:targetgroup/comply360-web/73e2d6bc24d8a067`;
const GREEN = `${ARN}:targetgroup/comply360-web-green/6d0ecf831eec9f09`;
const V140 = "arn:aws:ecs:af-south-1:123456789012:task-definition/comply360-prod-web:1";
const V142 = "arn:aws:ecs:af-south-1:123456789012:task-definition/comply360-prod-web:2";
/** The moment each step's weights are set, and the weight on web-green. */
const STEPS = [
  { step: 1, weight: 10, at: "10:19:15" },
  { step: 2, weight: 50, at: "10:29:15" },
  { step: 3, weight: 90, at: "10:44:15" },
  { step: 4, weight: 100, at: "11:14:15" },
] as const;

let s: Scenario | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const open = async (at = TUESDAY) => {
  s = await scenario(at, "deploybot.yml");
  return s;
};

const time = (hhmmss: string) => `:time 2026-11-24T${hhmmss}+02:00`;
const iso = (hhmmss: string) => new Date(`2026-11-24T${hhmmss}+02:00`).toISOString();

/** ModifyRule calls that the simulated ALB took, as [blue, green] weights. */
function shifts(t: Scenario, from = 0): Array<[number, number]> {
  return t
    .since(from)
    .filter((e) => e.kind === "aws" && e.op === "ModifyRule" && !e.error)
    .map((e) => weights(e));
}

/** The forward action a ModifyRule call sent. */
function forwardOf(
  e: ConsoleEvent | undefined,
): { TargetGroups?: Array<Record<string, unknown>> } & Record<string, unknown> {
  const actions = (e?.input?.Actions ?? []) as Array<{ Type: string; ForwardConfig?: Record<string, unknown> }>;
  return actions.find((a) => a.Type === "forward")?.ForwardConfig ?? {};
}

function weights(e: ConsoleEvent): [number, number] {
  const groups = forwardOf(e).TargetGroups;
  expect(groups?.map((g) => g.TargetGroupArn)).toEqual([BLUE, GREEN]);
  return [groups?.[0]?.Weight as number, groups?.[1]?.Weight as number];
}

/** The weights the simulated ALB forwards with now, [blue, green]. */
function live(t: Scenario): [number, number] {
  const w = t.con.world.weightsNow(RULE);
  return [w[BLUE] ?? 0, w[GREEN] ?? 0];
}

const deploy = async (t: Scenario, id = 1): Promise<Deployment> => t.con.store.deployments.must(id);

/** alice asks for web v1.4.2 in production and bob approves it. */
async function approved(t: Scenario): Promise<void> {
  await t.run(":as alice", "/deploy web v1.4.2 to production", ":as bob", ":click Approve");
}

/** Runs to just after step `n`'s weights were set (11:14:15 for the last, which starts the bake). */
async function atStep(t: Scenario, n: number): Promise<void> {
  await t.run(time((STEPS[n - 1] as (typeof STEPS)[number]).at), ":advance 1s");
}

describe("traffic steps through the console (seed 000's 10 → 50 → 90 → 100)", () => {
  it("deploys to web-green, checks its target group, then shifts 10, 50, 90 and 100% at the end of each passing step", async () => {
    const t = await open();
    await approved(t);
    const deployed = t.since(0).filter((e) => e.kind === "aws" && e.op === "UpdateService");
    expect(deployed.map((e) => [e.input?.service, e.input?.taskDefinition, e.input?.desiredCount])).toEqual([
      ["web-green", V142, 4],
    ]);
    expect((await deploy(t)).status).toBe("deploying");

    const beforeHealth = t.mark();
    await t.run(time("10:19:14"));
    expect(shifts(t)).toEqual([]);
    expect(live(t)).toEqual([100, 0]);
    await t.run(":advance 1s");
    // Green's target group is checked before anything is shifted.
    const ops = t.awsOps(beforeHealth);
    expect(ops.indexOf("DescribeTargetHealth")).toBeGreaterThanOrEqual(0);
    expect(ops.indexOf("DescribeTargetHealth")).toBeLessThan(ops.indexOf("ModifyRule"));
    expect(shifts(t)).toEqual([[90, 10]]);
    expect(live(t)).toEqual([90, 10]);
    expect(await deploy(t)).toMatchObject({ status: "shifting", progress: { traffic: { step: 0 } } });
    expect(t.card(1)).toContain("Step 1 of 4: `v1.4.2` 10% (web-green) · `v1.4.0` 90% (web)");
    expect(t.card(1)).toContain("Next step (50%) at Tue 24 Nov 10:29 SAST (in 10 min) if the guardrails pass");

    // Each step holds for its pause, then advances on a pass; never sooner.
    for (const { step, at } of STEPS.slice(1)) {
      const [h, m, sec] = at.split(":").map(Number) as [number, number, number];
      const just = `${String(h).padStart(2, "0")}:${String(m - 1).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
      await t.run(time(just));
      expect(shifts(t).length, `no step ${step} yet at ${just}`).toBe(step - 1);
      await t.run(time(at), ":advance 1s");
      expect(shifts(t).length, `step ${step} at ${at}`).toBe(step);
    }
    expect(shifts(t)).toEqual([
      [90, 10],
      [50, 50],
      [10, 90],
      [0, 100],
    ]);
    expect(live(t)).toEqual([0, 100]);
    expect(await deploy(t)).toMatchObject({ status: "baking" });
    expect(t.card(1)).toContain("`v1.4.0` kept on web until Wed 25 Nov 11:14 SAST");

    await t.run(time("11:45:00"));
    expect((await deploy(t)).status).toBe("succeeded");
    const audit = (await t.con.store.audit.list({ deploymentId: 1 })).map((a) => a.action);
    expect(audit.filter((a) => a === "elb.weights")).toHaveLength(4);
    expect(audit.filter((a) => a === "steps.advance")).toHaveLength(3);
    expect(audit).toContain("steps.health_check");
  });

  it("keeps v1.4.0 running on web for 24 h and says so in /status, then scales web down once and stops saying it", async () => {
    const t = await open();
    await approved(t);
    await t.run(time("11:45:00"));
    expect((await deploy(t)).status).toBe("succeeded");

    const asked = t.mark();
    await t.run(":as carol", "/status web production");
    const [status] = t.ephemeralsFor("carol", asked);
    expect(status).toContain("`v1.4.2` on web-green · tasks 4/4");
    expect(status).toContain("kept: `v1.4.0` on web until Wed 25 Nov 11:14 SAST (in 23 h 29 min)");

    const before = t.mark();
    await t.run(":time 2026-11-25T11:14:00+02:00");
    expect(t.since(before).filter((e) => e.kind === "aws" && e.op === "UpdateService")).toEqual([]);
    await t.run(":advance 1m");
    const scaled = t.since(before).filter((e) => e.kind === "aws" && e.op === "UpdateService");
    expect(scaled.map((e) => e.input)).toEqual([{ cluster: "comply360-prod", service: "web", desiredCount: 0 }]);
    expect(t.con.world.read().services["comply360-prod/web"]?.desiredCount).toBe(0);
    await t.run(":advance 1h");
    expect(t.since(before).filter((e) => e.kind === "aws" && e.op === "UpdateService")).toHaveLength(1);

    const later = t.mark();
    await t.run("/status web production");
    expect(t.ephemeralsFor("carol", later)[0]).not.toContain("kept:");
  });

  it.each(STEPS.map((x) => [x.step, x.weight, x.at] as const))(
    "switches all traffic back to blue in one ModifyRule when the error rate breaches at step %i (%i%%, from %s)",
    async (step) => {
      const t = await open();
      await approved(t);
      await atStep(t, step);
      expect(shifts(t)).toHaveLength(step);
      const breach = t.mark();
      await t.run(":metric web production error_rate 3.2");
      // 5 minutes over 1% on web-green's own target group, then the 2-minute grace period.
      await t.run(":advance 10m");
      const back = shifts(t, breach);
      expect(back).toEqual([[100, 0]]);
      const switched = t.since(breach).find((e) => e.kind === "aws" && e.op === "ModifyRule");
      expect(forwardOf(switched).TargetGroupStickinessConfig).toEqual({ Enabled: false });
      expect(live(t)).toEqual([100, 0]);
      // No ECS deployment: the previous version was still running on blue.
      expect(
        t.since(breach).filter((e) => e.kind === "aws" && e.op === "UpdateService" && e.input?.taskDefinition),
      ).toEqual([]);
      expect((await deploy(t)).status).toBe("rolled_back");
      expect(await deploy(t, 2)).toMatchObject({ kind: "rollback", status: "baking", flags: { automatic: true } });
      const pages = t.since(breach).filter((e) => e.kind === "page" && e.action === "trigger");
      expect(pages.map((p) => p.dedupKey)).toContain("deploybot/web/production/deploy-1/error-rate-(rollback)");
      const reported = t.since(breach).filter((e) => e.kind === "message" && e.channel === "#incidents");
      expect(reported.map((e) => e.text)).toContainEqual(expect.stringContaining("guardrail “error rate (rollback)”"));
      // web-green no longer takes traffic: scaled down.
      expect(t.con.world.read().services["comply360-prod/web-green"]?.desiredCount).toBe(0);
      const incident = (await t.con.store.incidents.of(1)).find((i) => i.guardrail === "error rate (rollback)");
      expect(incident?.state).toBe("rolled_back");
    },
  );

  it("does not advance while a breach waits out its grace period, and says why on the card", async () => {
    const t = await open();
    await approved(t);
    await atStep(t, 2);
    // Breaching from 10:39: detected at 10:44, its rollback due at 10:46; step 2's pause ends at 10:44:15.
    await t.run(time("10:39:00"), ":metric web production error_rate 3.2", time("10:45:00"));
    expect((await t.con.store.incidents.of(1)).map((i) => [i.guardrail, i.state])).toContainEqual([
      "error rate (rollback)",
      "rollback_pending",
    ]);
    expect(shifts(t)).toEqual([
      [90, 10],
      [50, 50],
    ]);
    expect(t.card(1)).toContain("Holding: “error rate (rollback)” rollback pending: the step holds");
    await t.run(time("10:47:00"));
    expect(shifts(t)).toEqual([
      [90, 10],
      [50, 50],
      [100, 0],
    ]);
  });
});

describe("before the first shift", () => {
  it("moves no traffic when ECS cannot bring web-green up: the deploy fails and web-green goes back to 0 tasks", async () => {
    const t = await open();
    await t.run(":fail web production");
    await approved(t);
    await t.run(":advance 10m");
    expect(shifts(t)).toEqual([]);
    expect(live(t)).toEqual([100, 0]);
    expect((await deploy(t)).status).toBe("failed");
    expect(t.con.world.read().services["comply360-prod/web-green"]?.desiredCount).toBe(0);
    expect(t.con.world.read().services["comply360-prod/web"]?.desiredCount).toBe(4);
    expect(await t.con.store.locks.get("web", "production")).toBeUndefined();
  });

  it("answers --dry-run with the steps it would take, changing nothing", async () => {
    const t = await open();
    const before = t.mark();
    await t.run(":as alice", "/deploy web v1.4.2 to production --dry-run");
    const [reply] = t.ephemeralsFor("alice", before);
    expect(reply).toContain("DescribeRules: the live side takes the traffic");
    expect(reply).toContain("DescribeTargetHealth of its target group: healthy targets ≥ desired");
    expect(reply).toContain("ModifyRule arn:aws:elasticloadbalancing:");
    expect(reply).toContain("10% for 10 min → 50% for 15 min → 90% for 30 min → 100%");
    expect(reply).toContain("keep the previous version 1 d, then scale it down");
    expect(t.awsOps(before).filter((op) => op === "ModifyRule" || op === "UpdateService")).toEqual([]);
  });

  it("refuses --canary where the environment has no canary strategy, saying how to add one", async () => {
    const t = await open();
    const before = t.mark();
    await t.run(":as alice", "/deploy web v1.4.2 to staging --canary");
    expect(t.ephemeralsFor("alice", before)[0]).toContain(
      "web staging has no canary: `--canary` chooses the traffic steps of its `canary` strategy",
    );
    expect(await t.con.store.deployments.history("web", "staging")).toEqual([]);
  });
});

describe("the card's buttons, each checked at the click", () => {
  it("Abort: carol (rollback authority) switches back at once; frank is refused and nothing moves", async () => {
    const t = await open();
    await approved(t);
    await atStep(t, 2);

    const refused = t.mark();
    await t.run(":as frank", ":click Abort");
    expect(t.ephemeralsFor("frank", refused)[0]).toContain(
      "Rolling back production needs devops_lead or being on call",
    );
    expect(shifts(t, refused)).toEqual([]);
    expect((await deploy(t)).status).toBe("shifting");

    const abort = t.mark();
    await t.run(":as carol", ":click Abort");
    expect(shifts(t, abort)).toEqual([[100, 0]]);
    expect(live(t)).toEqual([100, 0]);
    expect((await deploy(t)).status).toBe("rolled_back");
    expect(await deploy(t, 2)).toMatchObject({ kind: "rollback", requestedBy: "carol", reason: "aborted at step 2" });
    const report = t.since(abort).find((e) => e.kind === "message" && e.channel === "#incidents" && !e.thread_ts);
    expect(report?.text).toContain("Rolled back *web production* from `v1.4.2` to `v1.4.0`");
  });

  it("Promote: dave (override) takes all traffic at once, skipping the rest; bob is refused", async () => {
    const t = await open();
    await approved(t);
    await atStep(t, 1);

    const refused = t.mark();
    await t.run(":as bob", ":click Promote");
    expect(t.ephemeralsFor("bob", refused)[0]).toContain("Promoting skips the remaining steps and their analysis");
    expect(shifts(t, refused)).toEqual([]);

    const promote = t.mark();
    await t.run(":as dave", ":click Promote");
    expect(shifts(t, promote)).toEqual([[0, 100]]);
    expect(await deploy(t)).toMatchObject({ status: "baking" });
    const audit = (await t.con.store.audit.list({ deploymentId: 1 })).find((a) => a.action === "override.promote");
    expect(audit).toMatchObject({
      actor: "dave",
      detail: { fromStep: 1, bypassed: ["traffic steps 50%, 90% and their analysis"] },
    });
    // The 10% step's pause would have ended at 10:29:15: nothing more is shifted, ever.
    await t.run(time("11:00:00"));
    expect(shifts(t, promote)).toHaveLength(1);
  });

  it("Pause: bob (may approve) holds the step past its pause; Resume judges it again and the schedule goes on", async () => {
    const t = await open();
    await approved(t);
    await atStep(t, 1);

    const refused = t.mark();
    await t.run(":as frank", ":click Pause");
    expect(t.ephemeralsFor("frank", refused)[0]).toContain("Only someone who may approve production deploys");
    expect((await deploy(t)).status).toBe("shifting");

    await t.run(":as bob", ":click Pause");
    expect(await deploy(t)).toMatchObject({ status: "paused", progress: { traffic: { pausedBy: "bob" } } });
    expect(t.card(1)).toContain("Paused by @bob");
    expect(t.card(1)).toContain("[Promote] [Resume] [Abort]");
    await t.run(time("10:40:00"));
    expect(shifts(t)).toEqual([[90, 10]]);

    const resumed = t.mark();
    await t.run(":click Resume", ":advance 1m");
    expect(shifts(t, resumed)).toEqual([[50, 50]]);
    expect((await deploy(t)).status).toBe("shifting");
  });

  it("tells the second of two Pause clicks that raced (two replicas, say) that it changed nothing", async () => {
    const t = await open();
    await approved(t);
    await atStep(t, 1);
    const { services } = t.con;
    const bob = services.people.bySlackId(t.con.config.users.bob?.slack_id ?? "");
    const carol = services.people.bySlackId(t.con.config.users.carol?.slack_id ?? "");
    const answers = await Promise.all([services.steps.pause(1, bob), services.steps.pause(1, carol)]);
    expect(answers.filter((a) => a === null)).toHaveLength(1);
    expect(answers.find((a) => a !== null)).toMatch(/^Deploy #1 is paused by (bob|carol) now; nothing changed\.$/);
    const pauses = (await t.con.store.audit.list({ deploymentId: 1 })).filter((a) => a.action === "steps.pause");
    expect(pauses).toHaveLength(1);
  });
});

describe("inconclusive steps", () => {
  it("holds step 1 while CloudWatch gives nothing, then pauses for a person after max_inconclusive (15 min)", async () => {
    const t = await open();
    await approved(t);
    await t.run(time("10:19:00"), ":down cloudwatch 2h", time("10:29:20"));
    expect(shifts(t)).toEqual([[90, 10]]);
    expect((await deploy(t)).status).toBe("shifting");
    expect(t.card(1)).toContain("Holding: no verdict yet from");
    await t.run(time("10:44:14"));
    expect((await deploy(t)).status).toBe("shifting");
    await t.run(time("10:44:30"));
    expect(await deploy(t)).toMatchObject({ status: "paused", progress: { traffic: { pausedBy: "deploybot" } } });
    expect(t.card(1)).toContain("Paused by deploybot: step 1 (10%) stayed inconclusive for 15 min");
    expect(shifts(t)).toEqual([[90, 10]]);
  });
});

describe("/rollback of a stepped deploy", () => {
  it("within keep_previous: one ModifyRule puts all traffic back on blue within one poll, no ECS deployment", async () => {
    const t = await open();
    await approved(t);
    await t.run(time("11:45:00"));
    expect((await deploy(t)).status).toBe("succeeded");

    await t.run(":as carol", '/rollback web production --reason "slow checkout"');
    const click = t.mark();
    const clickedAt = t.con.clock.now().getTime();
    await t.run(":click Roll back");
    expect(shifts(t, click)).toEqual([[100, 0]]);
    expect(live(t)).toEqual([100, 0]);
    const switched = t.since(click).find((e) => e.kind === "aws" && e.op === "ModifyRule");
    // Seed 003's target: traffic restored in under 2 minutes; here within the click's own reconciler pass.
    expect(Date.parse(switched?.at ?? "") - clickedAt).toBeLessThan(2 * 60_000);
    expect(
      t.since(click).filter((e) => e.kind === "aws" && e.op === "UpdateService" && e.input?.taskDefinition),
    ).toEqual([]);
    expect((await deploy(t)).status).toBe("rolled_back");
    expect(await deploy(t, 2)).toMatchObject({ kind: "rollback", status: "baking", version: "v1.4.0" });
  });

  it("after keep_previous: blue is scaled down, so the rollback redeploys v1.4.0 on web-green, where the traffic is", async () => {
    const t = await open();
    await approved(t);
    await t.run(":time 2026-11-25T11:20:00+02:00");
    expect(t.con.world.read().services["comply360-prod/web"]?.desiredCount).toBe(0);

    await t.run(":as carol", "/rollback web production");
    const click = t.mark();
    await t.run(":click Roll back");
    expect(shifts(t, click)).toEqual([]);
    const redeployed = t.since(click).filter((e) => e.kind === "aws" && e.op === "UpdateService");
    expect(redeployed.map((e) => [e.input?.service, e.input?.taskDefinition])).toEqual([["web-green", V140]]);
    expect(live(t)).toEqual([0, 100]);
    await t.run(":advance 3m");
    expect((await deploy(t)).status).toBe("rolled_back");
  });
});

describe("a crash between two steps", () => {
  it("resumes at the recorded step after a kill right after ModifyRule, and never shifts twice", async () => {
    const { CrashableBot } = await import("../helpers/crash.js");
    const { tempDir } = await import("../helpers/monitor-console.js");
    const tmp = tempDir("deploybot-steps-crash-");
    const bot = new CrashableBot(`${tmp.dir}/deploybot.db`, STEPS_EXAMPLE);
    try {
      await bot.start(TUESDAY);
      await bot.run(":as alice", "/deploy web v1.4.2 to production", ":as bob", ":click Approve", time("10:25:00"));
      const died = await bot.run(":crash-after elbv2:ModifyRule", time("10:35:00"));
      expect(died).toBe(1);
      expect(bot.dead).toBe(true);
      // The world took step 2 before the bot died; the bot never recorded it.
      expect(bot.events.filter((e) => e.kind === "aws" && e.op === "ModifyRule").map(weights)).toEqual([
        [90, 10],
        [50, 50],
      ]);

      await bot.restart();
      const world = bot.con.world;
      expect(world.weightsNow(RULE)).toEqual({ [BLUE]: 50, [GREEN]: 50 });
      const d = await bot.con.store.deployments.must(1);
      expect(d).toMatchObject({ status: "shifting", progress: { traffic: { step: 1 } } });
      await bot.run(time("12:00:00"));
      // Read first, then nothing sent again for step 2; steps 3 and 4 once each.
      expect(bot.events.filter((e) => e.kind === "aws" && e.op === "ModifyRule").map(weights)).toEqual([
        [90, 10],
        [50, 50],
        [10, 90],
        [0, 100],
      ]);
      expect((await bot.con.store.deployments.must(1)).status).toBe("succeeded");
      const recorded = (await bot.con.store.audit.list({ deploymentId: 1 })).filter((a) => a.action === "elb.weights");
      expect(recorded.map((a) => a.detail.step)).toEqual([1, 2, 3, 4]);
    } finally {
      await bot.stop();
      tmp.remove();
    }
  });

  it("retries a throttled step and sets it once", async () => {
    const t = await open();
    await approved(t);
    await atStep(t, 1);
    const before = t.mark();
    await t.run(":throttle elbv2 ModifyRule 2", time("10:30:00"));
    const calls = t.since(before).filter((e) => e.kind === "aws" && e.op === "ModifyRule");
    expect(calls.map((e) => e.error ?? "ok")).toEqual(["Throttling", "Throttling", "ok"]);
    expect(shifts(t, before)).toEqual([[50, 50]]);
    // Backed off by seconds, not a step's pause: step 2 starts within the minute it was due.
    expect(Date.parse(calls.at(-1)?.at ?? "") - Date.parse(iso("10:29:15"))).toBeLessThan(60_000);
    expect(await deploy(t)).toMatchObject({ status: "shifting", progress: { traffic: { step: 1 } } });
  });
});
