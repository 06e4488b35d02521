import { afterEach, describe, expect, it } from "vitest";
import type { SimWorld } from "../../src/adapters/sim/world.js";
import { slackError } from "../../src/adapters/slack.js";
import type { ConsoleEvent } from "../../src/local/events.js";
import { at, CrashableBot, iso } from "../helpers/crash.js";
import {
  APPROVED_PRODUCTION_DEPLOY,
  INCIDENTS,
  type MonitorConsole,
  openMonitorConsole,
  PREVIOUS_TASK_DEFINITION,
  TUESDAY,
} from "../helpers/monitor-console.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function open(): Promise<MonitorConsole> {
  const t = await openMonitorConsole({ at: TUESDAY });
  cleanups.push(() => t.stop());
  return t;
}

async function crashable(): Promise<CrashableBot> {
  const { bot, cleanup } = await CrashableBot.inTempDir(TUESDAY);
  cleanups.push(cleanup);
  return bot;
}

/** web v1.4.2 approved at 10:15, baking from 10:21 with its error rate at 3.2%: paged at 10:26, rolled back at 10:28. */
const BREACHING = [...APPROVED_PRODUCTION_DEPLOY, at("10:21:00"), ":metric web production error_rate 3.2"];
const ROLLBACK_KEY = "deploybot/web/production/rollback";
const BREACH_KEY = "deploybot/web/production/deploy-1/error-rate-(rollback)";

const aws = (events: ConsoleEvent[], op: string) => events.filter((e) => e.kind === "aws" && e.op === op);
const accepted = (events: ConsoleEvent[], op: string) => aws(events, op).filter((e) => !e.error);
const toPrevious = (e: ConsoleEvent) => PREVIOUS_TASK_DEFINITION.test(String(e.input?.taskDefinition));
/** The minutes (HH:MM, UTC) in which CloudWatch answered a GetMetricData call. */
const metricMinutes = (events: ConsoleEvent[]) => [
  ...new Set(accepted(events, "GetMetricData").map((e) => e.at.slice(11, 16))),
];
const minutes = (from: string, to: string) => {
  const out: string[] = [];
  for (let t = Date.parse(iso(from)); t <= Date.parse(iso(to)); t += 60_000)
    out.push(new Date(t).toISOString().slice(11, 16));
  return out;
};

/** Anything with a console on the simulated world: a MonitorConsole or a CrashableBot. */
type WithWorld = { con: { world: SimWorld } };

/** What PagerDuty accepted for a dedup key: [action, deduplicated] in order. */
const pagesOf = (t: WithWorld, key: string) =>
  t.con.world
    .pages()
    .filter((p) => p.dedupKey === key)
    .map((p) => [p.action, p.deduplicated] as const);

/** The messages Slack holds in a channel (top-level and replies, oldest first), without ephemerals. */
const slackIn = (t: WithWorld, channel: string) =>
  t.con.world.slackMessages().filter((m) => m.channel === channel && !m.ephemeralFor);

describe("the safety loop finishes what it starts (issue 8 §3)", () => {
  it("retries an automatic rollback whose UpdateService ECS throttles, answers Roll back now and /rollback meanwhile, and never marks the live deploy failed", async () => {
    const t = await open();
    await t.run(...BREACHING, at("10:27:00"), ":throttle ecs UpdateService 6", at("10:28:30"));

    // The grace period ended at 10:28: rollback #2 is recorded and its UpdateService refused, to be tried again.
    expect(aws(t.events, "UpdateService").filter(toPrevious)[0]).toMatchObject({ error: "ThrottlingException" });
    expect(t.rollbackUpdates().filter((e) => !e.error)).toEqual([]);
    expect((await t.con.store.deployments.get(1))?.status).toBe("rolling_back");
    expect((await t.con.store.deployments.get(2))?.status).toBe("deploying");
    expect((await t.con.store.incidents.of(1))[0]).toMatchObject({ state: "rolling_back", rollbackId: 2 });
    expect(await t.con.store.intents.byKey("ecs.rollout:2")).toMatchObject({
      status: "open",
      lastError: expect.stringContaining("throttled UpdateService"),
    });

    // The #incidents message says the rollback runs (no second one is offered), and /rollback says so too.
    const [post] = t.incidentPosts();
    const message = t.latest(post?.ts as string);
    expect(message.text).toContain("Rollback #2 (deploying) is running.");
    expect(message.buttons ?? []).not.toContain("Roll back now");
    const asked = t.mark();
    await t.run(":as carol", "/rollback web production");
    expect(t.ephemeralsFor("carol", asked)).toEqual([
      expect.stringContaining("Rollback #2 of web production is already running."),
    ]);
    expect(t.since(asked).filter((e) => e.buttons?.includes("Roll back"))).toEqual([]);
    expect(await t.con.store.deployments.get(3)).toBeUndefined();

    await t.run(at("10:37:00"));
    // Six refusals, each retried later than the one before (backoff), then ECS takes it once.
    const calls = t.rollbackUpdates();
    expect(calls.map((e) => e.error ?? "ok")).toEqual([...Array(6).fill("ThrottlingException"), "ok"]);
    const gaps = calls.slice(1).map((e, i) => Date.parse(e.at) - Date.parse(calls[i]?.at as string));
    expect(gaps.every((g, i) => i === 0 || g > (gaps[i - 1] as number))).toBe(true);
    expect((await t.con.store.deployments.get(1))?.status).toBe("rolled_back");
    expect((await t.con.store.deployments.get(2))?.status).toBe("baking");
    const actions = (await t.con.store.audit.list({ deploymentId: 1 })).map((a) => a.action);
    expect(actions).not.toContain("deploy.failed");
    expect(actions).not.toContain("deploy.rollback_abandoned");
    expect(slackIn(t, INCIDENTS).filter((m) => m.text.includes("Rolled back *web production*"))).toHaveLength(1);
    expect(t.errors()).toEqual([]);
  });

  it("keeps a deploy in flight and watched when ListServiceDeployments is throttled right after UpdateService, and the follow step finds its ECS deployment", async () => {
    const t = await open();
    await t.run(
      ":as alice",
      "/deploy web v1.4.2 to production",
      ":throttle ecs ListServiceDeployments 12",
      ":as bob",
      ":click Approve",
    );
    const update = aws(t.events, "UpdateService")[0] as ConsoleEvent;
    const afterUpdate = t.events.slice(t.events.indexOf(update));
    expect(aws(afterUpdate, "ListServiceDeployments")[0]).toMatchObject({ error: "ThrottlingException" });
    expect(await t.con.store.deployments.get(1)).toMatchObject({ status: "deploying", ecsDeploymentArn: null });
    expect((await t.con.store.deployments.get(1))?.startedAt).toBe(iso("10:15:00"));
    expect((await t.con.store.locks.get("web", "production"))?.deploymentId).toBe(1);

    await t.run(":metric web production error_rate 3.2", at("10:18:00"));
    expect(aws(t.events, "ListServiceDeployments").filter((e) => e.error)).toHaveLength(12);
    const [made] = t.con.world.read().services["comply360-prod/web"]?.deployments ?? [];
    expect((await t.con.store.deployments.get(1))?.ecsDeploymentArn).toBe(made?.arn);
    expect(metricMinutes(t.events)).toEqual(minutes("10:16", "10:18"));
    expect(t.events.filter((e) => e.text?.includes("Failed to start") || e.text?.includes("Could not start"))).toEqual(
      [],
    );

    await t.run(at("10:27:00"));
    expect((await t.con.store.deployments.get(1))?.status).toBe("baking");
    expect(pagesOf(t, BREACH_KEY)).toEqual([["trigger", false]]);
  });

  it.each(["ecs:StopServiceDeployment", "pagerduty:trigger"])(
    "after a crash at %s during a manual P1 rollback of a rollout in flight, adopts the stop, keeps the service watched and resolves the page when the rollback ends",
    async (point) => {
      const bot = await crashable();
      await bot.run(
        ...APPROVED_PRODUCTION_DEPLOY,
        at("10:17:00"),
        ":as carol",
        '/rollback web production --severity P1 --reason "canary errors"',
        `:crash-after ${point}`,
      );
      const inFlight = (await bot.con.store.deployments.get(1))?.ecsDeploymentArn;
      expect(inFlight).toBeTruthy();
      expect(await bot.run(":click Roll back")).toBe(0);
      expect(bot.events.at(-1)).toMatchObject(
        point.startsWith("ecs") ? { op: "StopServiceDeployment" } : { kind: "page", action: "trigger" },
      );

      await bot.restart();
      const restarted = bot.events.length;
      await bot.run(at("10:25:00"));
      expect(accepted(bot.events, "StopServiceDeployment").map((e) => e.input?.serviceDeploymentArn)).toEqual([
        inFlight,
      ]);
      expect(accepted(bot.events, "UpdateService").filter(toPrevious)).toEqual([]);
      expect((await bot.con.store.deployments.get(1))?.status).toBe("rolled_back");
      expect((await bot.con.store.deployments.get(2))?.status).toBe("baking");
      // The service stays under its guardrails every minute through the rollback.
      expect(metricMinutes(bot.events.slice(restarted))).toEqual(minutes("10:18", "10:25"));
      expect(pagesOf(bot, ROLLBACK_KEY).filter(([, dedup]) => !dedup)).toEqual([
        ["trigger", false],
        ["resolve", false],
      ]);
      expect(bot.con.world.alert(ROLLBACK_KEY)?.status).toBe("resolved");

      await bot.run(at("11:00:00"));
      expect((await bot.con.store.deployments.get(2))?.status).toBe("succeeded");
      expect(await bot.con.store.locks.get("web", "production")).toBeUndefined();
      expect(await bot.con.store.intents.open()).toEqual([]);
    },
  );

  it("redeploys the previous version after a crash when the rollout finished before the stop could be sent, and resolves the page once", async () => {
    const bot = await crashable();
    await bot.run(
      ...APPROVED_PRODUCTION_DEPLOY,
      at("10:17:00"),
      ":as carol",
      '/rollback web production --severity P1 --reason "canary errors"',
      ":throttle ecs StopServiceDeployment 8",
      ":crash-after pagerduty:trigger",
    );
    expect(await bot.run(":click Roll back")).toBe(0);
    await bot.restart();
    await bot.run(at("10:30:00"));

    // v1.4.2 completed at 10:21 while the stop was refused: the rollback deploys v1.4.0 again instead.
    expect(accepted(bot.events, "StopServiceDeployment")).toEqual([]);
    const redeploys = accepted(bot.events, "UpdateService").filter(toPrevious);
    expect(redeploys).toHaveLength(1);
    expect((await bot.con.store.deployments.get(1))?.status).toBe("rolled_back");
    expect((await bot.con.store.deployments.get(2))?.status).toBe("baking");
    expect(pagesOf(bot, ROLLBACK_KEY)).toEqual([
      ["trigger", false],
      ["trigger", true],
      ["resolve", false],
    ]);
    // By design: once a rollback is decided (10:17), the deploy it ends raises no new warnings or pages (issue 9
    // §4: that noise says nothing new), and the rollback is judged only once the restored version has the
    // traffic back; incidents already open on the deploy stay watched. With no incident open, nothing is read.
    const gap = metricMinutes(bot.events).filter((m) => m >= "08:18" && m <= "08:22");
    expect(gap).toEqual([]);
    expect(Date.parse(redeploys[0]?.at as string)).toBeGreaterThan(Date.parse(iso("10:22:00")));
  });

  it("after a crash right after the 'Rollback finished' note, settles the deploy, posts the report and resolves the page, each exactly once", async () => {
    const bot = await crashable();
    await bot.run(
      ...APPROVED_PRODUCTION_DEPLOY,
      at("10:22:00"),
      ":as carol",
      '/rollback web production --severity P1 --reason "5xx spike"',
      ":click Roll back",
    );
    bot.crashWhen({ api: "slack", op: "chat.postMessage" }, (e) => Boolean(e.text?.startsWith("Rollback finished")));
    expect(await bot.run(at("10:25:00"))).toBe(0);
    expect(bot.events.at(-1)?.text).toMatch(/^Rollback finished/);

    await bot.restart();
    await bot.run(at("10:25:00"), at("11:00:00"));
    expect((await bot.con.store.deployments.get(1))?.status).toBe("rolled_back");
    expect((await bot.con.store.deployments.get(2))?.status).toBe("succeeded");
    const reports = slackIn(bot, INCIDENTS).filter((m) => m.text.includes("Rolled back *web production*"));
    expect(reports).toHaveLength(1);
    expect(slackIn(bot, "#deploys").filter((m) => m.text.startsWith("Rollback finished"))).toHaveLength(1);
    expect(slackIn(bot, "#deploys").filter((m) => m.text.startsWith("Rolled back to v1.4.0"))).toHaveLength(1);
    expect(pagesOf(bot, ROLLBACK_KEY).filter(([, dedup]) => !dedup)).toEqual([
      ["trigger", false],
      ["resolve", false],
    ]);
    expect(accepted(bot.events, "UpdateService").filter(toPrevious)).toHaveLength(1);
    const actions = (await bot.con.store.audit.list()).map((a) => a.action);
    expect(actions.filter((a) => a === "deploy.rolled_back")).toHaveLength(1);
    expect(actions.filter((a) => a === "page.resolve")).toHaveLength(1);
    expect(await bot.con.store.intents.open()).toEqual([]);
  });
});

/** A copy of a button as a Slack client showed it before an edit removed it: `:click LABEL` presses that copy. */
function keepStaleButton(t: MonitorConsole, label: string, userId: string): void {
  const slack = t.con.slack;
  const stale = structuredClone(slack.findButton(label, userId));
  if (!stale) throw new Error(`no message has a button "${label}" yet`);
  const find = slack.findButton.bind(slack);
  slack.findButton = (l, id) => (l === label ? stale : find(l, id));
}

const deploysOf = async (t: MonitorConsole) => t.con.store.deployments.history("web", "production", 20);
const taskDefinitions = (t: MonitorConsole) =>
  accepted(t.events, "UpdateService").map((e) => String(e.input?.taskDefinition).replace(/^.*\//, ""));

describe("Roll back now after an automatic rollback failed or while it is retried (issue 8 §3)", () => {
  /** BREACHING, with the next ECS deployment of web production failing: rollback #2 (10:28) fails at 10:31. */
  const ROLLBACK_FAILS = [...BREACHING, at("10:27:00"), ":fail web production", at("10:32:00")];

  it("offers Roll back now again once an automatic rollback failed on ECS, and carol's click rolls back for good and resolves the page", async () => {
    const t = await open();
    await t.run(...ROLLBACK_FAILS);
    expect((await t.con.store.deployments.get(2))?.status).toBe("failed");
    expect((await t.con.store.deployments.get(1))?.status).toBe("baking");
    expect((await t.con.store.incidents.of(1))[0]).toMatchObject({ state: "open", rollbackId: null });
    const [post] = t.incidentPosts();
    expect(t.latest(post?.ts as string).buttons).toEqual(["Roll back now", "Continue anyway", "Acknowledge"]);
    expect(t.incidentReplies(post?.ts as string).map((e) => e.text)).toContainEqual(
      expect.stringMatching(/^:red_circle: Rollback #2 failed: .*Roll back now to try again\.$/),
    );
    expect(t.con.world.alert(BREACH_KEY)?.status).toBe("triggered");

    // carol (devops_lead, allowed to roll back in production) presses the button the message offers again.
    const clicked = t.mark();
    await t.run(":as carol", ":click Roll back now");
    expect(t.ephemeralsFor("carol", clicked)).toEqual([]);
    expect(await t.con.store.deployments.get(3)).toMatchObject({
      kind: "rollback",
      rollsBack: 1,
      requestedBy: "carol",
      version: "v1.4.0",
    });
    expect((await t.con.store.incidents.of(1))[0]).toMatchObject({ state: "rolling_back", rollbackId: 3 });

    await t.run(at("10:50:00"));
    expect((await t.con.store.deployments.get(1))?.status).toBe("rolled_back");
    expect((await t.con.store.deployments.get(3))?.status).toMatch(/^(baking|succeeded)$/);
    expect((await deploysOf(t)).map((d) => `${d.id}:${d.kind}:${d.status}`).sort()).toEqual([
      "1:deploy:rolled_back",
      "2:rollback:failed",
      expect.stringMatching(/^3:rollback:/),
    ]);
    expect((await t.con.store.incidents.of(1))[0]?.state).toBe("recovered");
    expect(pagesOf(t, BREACH_KEY)).toEqual([
      ["trigger", false],
      ["resolve", false],
    ]);
    expect(t.con.world.alert(BREACH_KEY)?.status).toBe("resolved");
    // v1.4.2, the failed rollback #2 to v1.4.0, carol's rollback #3 to v1.4.0: nothing else reached ECS.
    expect(taskDefinitions(t)).toEqual(["comply360-prod-web:2", "comply360-prod-web:1", "comply360-prod-web:1"]);
    expect(aws(t.events, "UpdateService").filter((e) => e.error)).toEqual([]);
    expect(t.con.world.read().services["comply360-prod/web"]?.taskDefinitionArn).toMatch(PREVIOUS_TASK_DEFINITION);
    const reports = slackIn(t, INCIDENTS).filter((m) => !m.threadTs && /Rollback #\d|Rolled back \*web/.test(m.text));
    expect(reports.map((m) => m.text.split("\n")[0])).toEqual([
      expect.stringContaining("Rollback #2 of *web production* to `v1.4.0` by deploybot (automatic) FAILED"),
      expect.stringContaining("Rolled back *web production*"),
    ]);
    expect(t.errors()).toEqual([]);
  });

  it("answers a click on an older copy of Roll back now while the automatic rollback is retried: rollback #2 is running, and no second one starts", async () => {
    const t = await open();
    await t.run(...BREACHING, at("10:27:00"));
    // 10:27: the grace period runs and the message offers Roll back now; a client keeps showing that copy.
    keepStaleButton(t, "Roll back now", "U0CAROL01");
    await t.run(":throttle ecs UpdateService 6", at("10:28:30"));
    expect((await t.con.store.incidents.of(1))[0]).toMatchObject({ state: "rolling_back", rollbackId: 2 });
    const [post] = t.incidentPosts();
    expect(t.latest(post?.ts as string).buttons ?? []).not.toContain("Roll back now");

    const clicked = t.mark();
    await t.run(":as carol", ":click Roll back now");
    expect(t.ephemeralsFor("carol", clicked)).toEqual(["Rollback #2 of web production is already running."]);
    expect((await deploysOf(t)).filter((d) => d.kind === "rollback").map((d) => d.id)).toEqual([2]);
    expect((await t.con.store.incidents.of(1))[0]).toMatchObject({ state: "rolling_back", rollbackId: 2 });
    expect(t.since(clicked).filter((e) => e.kind === "message")).toEqual([]);
    expect((await t.con.store.audit.list()).filter((a) => a.action === "rollback.now")).toEqual([]);

    await t.run(at("10:37:00"));
    expect((await t.con.store.deployments.get(1))?.status).toBe("rolled_back");
    expect((await deploysOf(t)).filter((d) => d.kind === "rollback").map((d) => d.id)).toEqual([2]);
    expect(t.rollbackUpdates().filter((e) => !e.error)).toHaveLength(1);
    expect(t.errors()).toEqual([]);
  });

  it.each([
    ["alice", "engineer"],
    ["frank", "no role"],
  ])(
    "refuses Roll back now from %s (%s, not on call) once it is offered again after a failed rollback, and changes nothing",
    async (user, held) => {
      const t = await open();
      await t.run(...ROLLBACK_FAILS);
      const [post] = t.incidentPosts();
      const before = t.latest(post?.ts as string);
      expect(before.buttons).toContain("Roll back now");
      const incident = (await t.con.store.incidents.of(1))[0];

      const clicked = t.mark();
      await t.run(`:as ${user}`, ":click Roll back now");
      const [answer, ...more] = t.ephemeralsFor(user, clicked);
      expect(more).toEqual([]);
      expect(answer).toBe(
        `Rolling back production needs devops_lead or being on call. ${user} holds ${held} and is not on call (schedule PC360OPS, level 1).`,
      );
      expect(t.since(clicked).filter((e) => e.kind !== "ephemeral")).toEqual([]);
      expect(await t.con.store.deployments.get(3)).toBeUndefined();
      expect((await t.con.store.deployments.get(1))?.status).toBe("baking");
      expect((await t.con.store.incidents.of(1))[0]).toEqual(incident);
      expect(t.latest(post?.ts as string)).toBe(before);
      expect(await t.con.store.intents.open()).toEqual([]);
      const denied = (await t.con.store.audit.list()).filter((a) => a.action === "rollback.denied");
      expect(denied.map((a) => a.actor)).toEqual([user]);
      expect((await t.con.store.audit.list()).filter((a) => a.action === "rollback.now")).toEqual([]);
    },
  );
});

describe("pages reach PagerDuty (issue 8 §3)", () => {
  it("re-sends a page PagerDuty could not take at the breach (:down pagerduty 1m) with the same dedup key until it is accepted", async () => {
    const t = await open();
    await t.run(...BREACHING, at("10:25:30"), ":down pagerduty 1m", at("10:27:30"));
    const [incident] = await t.con.store.incidents.of(1);
    expect(incident?.pageKey).toBe(BREACH_KEY);
    expect(pagesOf(t, BREACH_KEY)).toEqual([["trigger", false]]);
    expect(Date.parse(t.pages("trigger")[0]?.at as string)).toBeGreaterThanOrEqual(Date.parse(iso("10:26:30")));
    const intent = await t.con.store.intents.byKey(`page:${BREACH_KEY}:trigger:1`);
    expect(intent?.status).toBe("done");
    expect(intent?.attempts).toBeGreaterThan(1);
    expect((await t.con.store.audit.list()).filter((a) => a.action === "page.trigger")).toHaveLength(1);
  });

  it("re-sends a page a crash left unrecorded right after PagerDuty took it, and PagerDuty folds the resend into the same incident", async () => {
    const bot = await crashable();
    await bot.run(...BREACHING, at("10:25:30"), ":crash-after pagerduty:trigger");
    expect(await bot.run(at("10:27:30"))).toBe(0);
    await bot.restart();
    await bot.run(at("10:27:30"));
    expect(pagesOf(bot, BREACH_KEY)).toEqual([
      ["trigger", false],
      ["trigger", true],
    ]);
    expect(await bot.con.store.intents.byKey(`page:${BREACH_KEY}:trigger:1`)).toMatchObject({ status: "done" });
    expect((await bot.con.store.audit.list()).filter((a) => a.action === "page.trigger")).toHaveLength(1);
  });

  it("sends a page left intended by a crash during a PagerDuty outage once PagerDuty is back, with the same dedup key", async () => {
    const bot = await crashable();
    // PagerDuty refuses the trigger at 10:26, then the bot dies right after posting the incident message.
    await bot.run(...BREACHING, at("10:25:30"), ":down pagerduty 3m", ":crash-after slack:chat.postMessage");
    expect(await bot.run(at("10:27:30"))).toBe(0);
    expect(bot.con.world.pages()).toEqual([]);
    await bot.restart();
    expect(await bot.con.store.intents.byKey(`page:${BREACH_KEY}:trigger:1`)).toMatchObject({ status: "open" });
    await bot.run(at("10:31:00"));
    expect(pagesOf(bot, BREACH_KEY)).toEqual([["trigger", false]]);
    expect(Date.parse(bot.con.world.pages()[0]?.at as string)).toBeGreaterThanOrEqual(Date.parse(iso("10:28:30")));
    expect(bot.con.world.alert(BREACH_KEY)?.status).toBe("triggered");
  });

  it("does not page for a breach that recovered before PagerDuty came back, and says so in the incident's thread", async () => {
    const t = await open();
    await t.run(...BREACHING, at("10:25:30"), ":down pagerduty 10m", at("10:45:00"));
    // Rolled back at 10:28, recovered at 10:34; PagerDuty answers again from 10:35:30.
    expect((await t.con.store.incidents.of(1))[0]?.state).toBe("recovered");
    expect(t.con.world.pages().filter((p) => p.action === "trigger")).toEqual([]);
    const thread = slackIn(t, INCIDENTS).filter((m) => m.threadTs);
    expect(thread.map((m) => m.text)).toContainEqual(
      expect.stringContaining("Could not trigger the PagerDuty incident"),
    );
  });
});

describe("Slack cards and notifications (issue 8 §3)", () => {
  it("retries a card Slack rate-limits before the deploy starts, tells the requester, and starts only once the card is up", async () => {
    const t = await open();
    await t.run(":as alice", ":throttle slack chat.postMessage 3", "/deploy web v1.4.2 to staging");
    expect(t.ephemeralsFor("alice")).toEqual([expect.stringContaining("Slack has not taken its card yet")]);
    expect(aws(t.events, "UpdateService")).toEqual([]);

    await t.run(at("10:20:00"));
    const card = t.events.find((e) => e.kind === "message" && e.text?.includes("Deploy #1 ·"));
    const update = aws(t.events, "UpdateService")[0];
    expect(card).toBeDefined();
    expect(t.events.indexOf(update as ConsoleEvent)).toBeGreaterThan(t.events.indexOf(card as ConsoleEvent));
    expect(slackIn(t, "#deploys").filter((m) => !m.threadTs)).toHaveLength(1);
    expect((await t.con.store.deployments.get(1))?.status).toBe("baking");
  });

  it("gives a request up once it has gone 10 minutes without its card, frees the lock, and tells the requester directly once Slack is back", async () => {
    const t = await open();
    await t.run(":as alice", ":down slack 25m", "/deploy web v1.4.2 to staging", ":advance 16m");
    expect((await t.con.store.deployments.get(1))?.status).toBe("failed");
    expect(await t.con.store.locks.get("web", "staging")).toBeUndefined();
    expect(aws(t.events, "UpdateService")).toEqual([]);
    await t.run(":advance 15m");
    const told = t.events.filter((e) => e.kind === "message" && e.text?.startsWith(":red_circle: Deploy #1"));
    expect(told).toHaveLength(1);
    expect(told[0]?.text).toContain("was not started: Slack refused its card");
    expect(await t.con.store.intents.byKey("card-given-up:1")).toMatchObject({ status: "done" });
  });

  it("answers a production request whose card Slack rate-limits with its card and buttons once Slack takes it", async () => {
    const t = await open();
    await t.run(":as alice", ":throttle slack chat.postMessage 3", "/deploy web v1.4.2 to production", at("10:20:00"));
    const cards = t.events.filter((e) => e.kind === "message" && e.text?.includes("Deploy #1 ·"));
    expect(cards).toHaveLength(1);
    expect(cards[0]?.buttons).toEqual(["Approve", "Reject"]);
    await t.run(":as bob", ":click Approve");
    expect(accepted(t.events, "UpdateService")).toHaveLength(1);
  });

  // The simulated Slack cannot refuse a post for good (it knows every channel name), so Slack's own
  // channel_not_found answer is given at the chat port, as the Slack adapter would raise it.
  it.each(["staging", "production"])(
    "ends a %s request cleanly when Slack refuses its card for good: says so to the requester, frees the lock and never calls ECS",
    async (environment) => {
      const t = await open();
      const chat = t.con.services.chat;
      const post = chat.post.bind(chat);
      chat.post = async (channel, message, threadTs) => {
        if (!threadTs && message.text.includes("Deploy #1"))
          throw slackError(
            "chat.postMessage",
            Object.assign(new Error("An API error occurred: channel_not_found"), {
              code: "slack_webapi_platform_error",
              data: { ok: false, error: "channel_not_found" },
            }),
          );
        return post(channel, message, threadTs);
      };
      await t.run(":as alice", `/deploy web v1.4.2 to ${environment}`);
      expect(t.ephemeralsFor("alice")).toEqual([
        expect.stringMatching(/^:red_circle: Deploy #1 was not started: Slack refused its card .*channel_not_found/),
      ]);
      expect((await t.con.store.deployments.get(1))?.status).toBe("failed");
      expect(await t.con.store.locks.get("web", environment)).toBeUndefined();

      await t.run(at("10:30:00"), ":as bob");
      expect(t.events.filter((e) => e.buttons?.includes("Approve"))).toEqual([]);
      expect(aws(t.events, "RegisterTaskDefinition")).toEqual([]);
      expect(aws(t.events, "UpdateService")).toEqual([]);
      expect((await t.con.store.deployments.get(1))?.status).toBe("failed");
    },
  );

  it("updates the card in place after Retry-After while chat.update is rate-limited, never posting it again", async () => {
    const t = await open();
    const chat = t.con.services.chat;
    const update = chat.update.bind(chat);
    const tried: number[] = [];
    chat.update = async (...args) => {
      tried.push(t.con.clock.now().getTime());
      return update(...args);
    };
    await t.run(":as alice", "/deploy web v1.4.2 to production", ":throttle slack chat.update 20", ":as bob");
    await t.run(":click Approve", at("10:40:00"));

    const cards = slackIn(t, "#deploys").filter((m) => !m.threadTs);
    expect(cards).toHaveLength(1);
    const refused = t.con.slack.calls.filter((c) => c.method === "chat.update");
    expect(refused.length).toBeGreaterThan(20);
    // Each of the 20 refusals (429, Retry-After: 30) is followed by the next try no sooner than 30 s later.
    for (let i = 1; i <= 20; i++)
      expect((tried[i] as number) - (tried[i - 1] as number)).toBeGreaterThanOrEqual(30_000);
    // ... and not much later: the card and the notes queued behind it are up within 20 × 36 s.
    expect((tried[20] as number) - (tried[0] as number)).toBeLessThanOrEqual(20 * 36_000);
    const edits = t.events.filter((e) => e.kind === "update" && e.ts === cards[0]?.ts);
    expect(edits.at(-1)?.text).toContain("Baking");
    expect(slackIn(t, "#deploys").map((m) => m.text.split("\n")[0])).toEqual([
      expect.stringContaining("Deploy #1"),
      expect.stringContaining("Approved by"),
      "Deploying v1.4.2 (CANARY).",
      expect.stringContaining("Rolled out (4/4 tasks)"),
    ]);
  });

  it("delivers what failed during a Slack outage at the breach once Slack is back, once each and in the order of a run without it", async () => {
    const clean = await open();
    await clean.run(...BREACHING, at("10:50:00"));
    const t = await open();
    await t.run(...BREACHING, at("10:25:30"), ":down slack 10m", at("10:35:00"));
    // Slack is down until 10:35:30: the rollback happened on time, nothing was posted.
    expect(accepted(t.events, "UpdateService").filter(toPrevious)[0]?.at).toBe(iso("10:28:00"));
    expect(slackIn(t, INCIDENTS)).toEqual([]);

    await t.run(at("10:50:00"));
    for (const channel of [INCIDENTS, "#deploys"]) {
      const texts = (x: MonitorConsole) =>
        slackIn(x, channel).map((m) => `${m.threadTs ? "reply" : "top"}: ${m.text.split("\n")[0]}`);
      expect(texts(t)).toEqual(texts(clean));
    }
    const report = slackIn(t, INCIDENTS).filter((m) => m.text.includes("Rolled back *web production*"));
    expect(report).toHaveLength(1);
    expect(slackIn(t, INCIDENTS).filter((m) => m.text.includes("Post-mortem draft"))).toHaveLength(1);
    expect(slackIn(t, "#deploys").filter((m) => m.text.includes("Rollback #2 ·"))).toHaveLength(1);
  });
});

describe("how a bake ends (issue 8 §3)", () => {
  it("waits while a paging incident is open, then ends 'succeeded, overridden by dave' after Continue anyway, never 'no guardrail breached'", async () => {
    const t = await open();
    await t.run(
      ...APPROVED_PRODUCTION_DEPLOY,
      at("10:21:00"),
      ":metric web production ConnectionPoolUtilization 100",
      ":metric web production error_rate 3.2",
      at("10:27:00"),
      ":as dave",
      ":click Continue anyway",
      at("11:00:00"),
    );
    // The bake window ended at 10:51 with “database connection pool exhausted” (page only) still breaching.
    expect((await t.con.store.deployments.get(1))?.status).toBe("baking");
    expect(t.events.map((e) => e.text)).toContainEqual(
      "Bake window over, but not succeeded: waiting: “database connection pool exhausted” open.",
    );

    await t.run(":metric web production ConnectionPoolUtilization 30", at("11:10:00"));
    const d = await t.con.store.deployments.get(1);
    expect(d?.status).toBe("succeeded");
    expect(d?.progress?.detail).toMatch(/^succeeded, overridden by dave/);
    const said = t.events.map((e) => e.text ?? "");
    expect(said).toContainEqual(expect.stringMatching(/^Bake window over: succeeded, overridden by dave/));
    expect(said.filter((s) => s.includes("no guardrail breached"))).toEqual([]);
    expect(t.updateServices()).toHaveLength(1);
  });

  it("ends a bake CloudWatch never answered 'succeeded, unverified' and never 'no guardrail breached'", async () => {
    const t = await open();
    await t.run(...APPROVED_PRODUCTION_DEPLOY, ":down cloudwatch 40m", at("11:00:00"));
    expect(accepted(t.events, "GetMetricData")).toEqual([]);
    const d = await t.con.store.deployments.get(1);
    expect(d?.status).toBe("succeeded");
    expect(d?.progress?.detail).toMatch(/^succeeded, unverified: 9 guardrails had no data \(error rate \(rollback\), /);
    const said = t.events.map((e) => e.text ?? "");
    expect(said).toContainEqual(
      expect.stringMatching(/^Bake window over: succeeded, unverified: 9 guardrails had no data/),
    );
    expect(said.filter((s) => s.includes("no guardrail breached"))).toEqual([]);
    const audit = (await t.con.store.audit.list({ deploymentId: 1 })).find((a) => a.action === "deploy.succeeded");
    expect(audit?.detail.unverified).toHaveLength(9);
  });
});
