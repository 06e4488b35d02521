import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import type { ConsoleEvent } from "../../src/local/events.js";
import { strategyOf } from "../../src/services/rollout.js";
import {
  APPROVED_PRODUCTION_DEPLOY,
  EXAMPLE_CONFIG,
  type MonitorConsole,
  openMonitorConsole,
  TUESDAY,
  tempDir,
} from "../helpers/monitor-console.js";
import { simHarness, WEB_PROD } from "../helpers/sim-world.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const MINUTE = 60_000;
const at = (hhmm: string, day = "2026-11-24") => new Date(`${day}T${hhmm}:00+02:00`).toISOString();
const minutesBetween = (from: string, to: string | undefined) => (Date.parse(to ?? "") - Date.parse(from)) / MINUTE;

async function open(opts: { at?: string; configFile?: string } = {}): Promise<MonitorConsole> {
  const t = await openMonitorConsole({ at: TUESDAY, ...opts });
  cleanups.push(() => t.stop());
  return t;
}

/** Tuesday 10:15: web v1.4.2 approved; at 10:21 its CANARY has shifted all traffic and it bakes. */
async function baking(t: MonitorConsole, ...before: string[]): Promise<void> {
  await t.run(...before, ...APPROVED_PRODUCTION_DEPLOY, ":advance 6m");
  expect((await t.con.store.deployments.get(1))?.status).toBe("baking");
  expect(t.con.world.trafficAt("comply360-prod", "web").map((s) => [s.version, s.share])).toEqual([["v1.4.2", 1]]);
}

/** The detection target of web production's "error rate (rollback)": `for` + lag + one poll, and + rollback_grace. */
function targets(t: MonitorConsole, lagMs: number): { pageMin: number; rollbackMin: number } {
  const g = t.con.config.services.web?.environments.production?.guardrails.find(
    (x) => x.name === "error rate (rollback)",
  );
  const policy = t.con.config.environments.production;
  if (!g || !policy) throw new Error("examples/deploybot.yml no longer has web production's error rate guardrail");
  const pageMs = g.for + lagMs + t.con.config.monitor.interval;
  return { pageMin: pageMs / MINUTE, rollbackMin: (pageMs + policy.rollback_grace) / MINUTE };
}

/** Replies in the thread of deploy #id's card in #deploys. */
function cardNotes(t: MonitorConsole, id: number): string[] {
  const card = t.events.find(
    (e) => e.kind === "message" && e.channel === "#deploys" && !e.thread_ts && e.text?.includes(`Deploy #${id} ·`),
  );
  if (!card?.ts) throw new Error(`no card for deploy #${id}`);
  return t.events
    .filter((e) => e.kind === "message" && e.channel === "#deploys" && e.thread_ts === card.ts)
    .map((e) => e.text ?? "");
}

const posts = (t: MonitorConsole, from = 0) => t.incidentPosts(from).map((e) => e.text ?? "");

describe("a guardrail fires with CloudWatch's data late (issue 9 §7)", () => {
  it("pages and rolls back web when its error rate reaches 3.2% with every datapoint published 2 minutes late, and says how late the data was", async () => {
    const t = await open();
    await baking(t, ":lag 2m");
    const breachStart = t.con.clock.now().toISOString();
    expect(breachStart).toBe(at("10:21"));
    await t.run(":metric web production error_rate 3.2", ":advance 12m");

    const [page, ...morePages] = t.pages("trigger");
    expect(morePages).toEqual([]);
    expect(page?.summary).toContain("error rate (rollback) 3.2% > 1% in 5 of 5 datapoints since 10:21 SAST");
    expect(page?.summary).toContain("(data up to 10:26 SAST, 2 min behind)");
    const [incident] = posts(t);
    expect(incident).toContain("(data up to 10:26 SAST, 2 min behind)");
    const [rollback, ...moreRollbacks] = t.rollbackUpdates();
    expect(moreRollbacks).toEqual([]);

    // Five breaching minutes 10:21-10:25, the last published at 10:28: paged then; rolled back 2 min later.
    expect([page?.at, rollback?.at]).toEqual([at("10:28"), at("10:30")]);
    const target = targets(t, 2 * MINUTE);
    expect(target).toEqual({ pageMin: 8, rollbackMin: 10 });
    expect(minutesBetween(breachStart, page?.at)).toBeLessThanOrEqual(target.pageMin);
    expect(minutesBetween(breachStart, rollback?.at)).toBeLessThanOrEqual(target.rollbackMin);
  });

  it("pages 5 minutes after the breach starts and rolls back 2 minutes later when CloudWatch publishes at once", async () => {
    const t = await open();
    await baking(t);
    const breachStart = t.con.clock.now().toISOString();
    await t.run(":metric web production error_rate 3.2", ":advance 12m");

    const [page] = t.pages("trigger");
    const [rollback] = t.rollbackUpdates();
    expect([page?.at, rollback?.at]).toEqual([at("10:26"), at("10:28")]);
    expect(page?.summary).not.toContain("behind");
    const target = targets(t, 0);
    expect(target).toEqual({ pageMin: 6, rollbackMin: 8 });
    expect(minutesBetween(breachStart, page?.at)).toBeLessThanOrEqual(target.pageMin);
    expect(minutesBetween(breachStart, rollback?.at)).toBeLessThanOrEqual(target.rollbackMin);
  });
});

describe("an emergency fix deployed into an ongoing spike (issue 9 §7)", () => {
  /** Saturday 28 Nov (weekend freeze): web's live v1.4.0 at 3.2% errors from 13:20; at 14:00 alice ships an emergency fix that dave approves; the fix reads `fix`%. */
  async function emergencyFix(fix: number): Promise<MonitorConsole> {
    const t = await open({ at: "2026-11-28T13:20:00+02:00" });
    await t.run(
      ":metric web production error_rate 3.2",
      ":advance 40m",
      ":as alice",
      '/deploy web v1.4.2 production --emergency "5xx spike on checkout"',
      ":as dave",
      ":click Approve",
    );
    const fixDeploy = t.updateServices();
    expect(fixDeploy).toHaveLength(1);
    expect(fixDeploy[0]?.at).toBe(at("14:00", "2026-11-28"));
    expect(posts(t)).toEqual([
      expect.stringMatching(/Emergency deploy #1: .*approved by @dave\. Bypassed: freeze: Weekend freeze/),
    ]);
    await t.run(`:metric web production error_rate ${fix}`);
    return t;
  }

  it("does not roll back a fix that leaves the error rate at 3.2%, and says on the card that it was already 3.2% before this deploy", async () => {
    const t = await emergencyFix(3.2);
    await t.run(":advance 40m");

    expect(t.pages()).toEqual([]);
    expect(t.updateServices()).toHaveLength(1);
    expect(t.rollbackUpdates()).toEqual([]);
    expect(await t.con.store.incidents.of(1)).toEqual([]);
    expect(posts(t).filter((p) => p.includes("guardrail"))).toEqual([]);
    const notes = cardNotes(t, 1).filter((n) => n.includes("before this deploy"));
    expect(notes).toEqual([
      expect.stringContaining("“error rate (rollback)” was already 3.2% before this deploy (threshold > 1%)"),
      expect.stringContaining("“error rate (warning)” was already 3.2% before this deploy (threshold > 0.5%)"),
    ]);
    expect(notes[0]).toContain("only 50% worse (> 4.8%) counts against it");
    expect((await t.con.store.deployments.get(1))?.status).toBe("succeeded");
  });

  it("rolls back a fix that makes it clearly worse (8%), and the incident says the error rate was already 3.2% before this deploy", async () => {
    const t = await emergencyFix(8);
    await t.run(":advance 15m");

    const [page, ...morePages] = t.pages("trigger");
    expect(morePages).toEqual([]);
    expect(page?.dedupKey).toContain("error-rate-(rollback)");
    const incident = posts(t).find((p) => p.includes("“error rate (rollback)” breached"));
    expect(incident).toContain("8% > 4.8% (50% worse than before the deploy)");
    expect(incident).toContain("error rate (rollback) was already 3.2% before this deploy");
    const rollbacks = t.rollbackUpdates();
    expect(rollbacks).toHaveLength(1);
    // The fix took all traffic at 14:06 (its canary ended): 14:06-14:10 breaching, paged 14:11, grace 2 min.
    expect([page?.at, rollbacks[0]?.at]).toEqual([at("14:11", "2026-11-28"), at("14:13", "2026-11-28")]);
  });
});

/** The example config with production's rollback_strategy taken out (the default ROLLING 200/100 applies). */
function writeDefaultRollbackConfig(dir: string): string {
  const doc = parse(readFileSync(EXAMPLE_CONFIG, "utf8")) as {
    environments: { production: Record<string, unknown> };
  };
  delete doc.environments.production.rollback_strategy;
  const file = join(dir, "deploybot.yml");
  writeFileSync(file, stringify(doc));
  return file;
}

/**
 * The share of web production's traffic on v1.4.2 at the rollback's UpdateService and each minute after it,
 * had the rollback sent the deploy's own strategy (CANARY 10% for 5 min) instead: the simulated world's answer.
 */
async function trafficHadItReusedTheCanary(minutes: number): Promise<number[]> {
  const h = simHarness();
  const settings = h.config.services.web?.environments.production;
  if (!settings) throw new Error("no web production");
  const canary = strategyOf(settings);
  expect(canary).toEqual({ type: "CANARY", canaryPercent: 10, canaryBakeMinutes: 5 });
  const initial = (await h.ecs.describeService(WEB_PROD)).taskDefinitionArn;
  const bad = await h.deploy("v1.4.2", canary);
  h.at(10);
  expect(h.share(bad)).toBe(1);
  await h.ecs.updateService(WEB_PROD, initial, canary);
  const shares: number[] = [];
  for (let m = 0; m <= minutes; m++) {
    h.at(10 + m);
    shares.push(h.share(bad));
  }
  h.world.kill();
  return shares;
}

/**
 * Breaches web's error rate and follows the automatic rollback's UpdateService at 10:28 minute by minute: asserts
 * what it sent and how much traffic it leaves on v1.4.2, next to what reusing the deploy's canary would have left.
 */
async function followRollback(
  strategy: "BLUE_GREEN" | "ROLLING",
  sent: Record<string, unknown>,
  left: number[],
  configFile?: string,
): Promise<void> {
  const t = await open(configFile ? { configFile } : {});
  await baking(t);
  await t.run(":metric web production error_rate 3.2", ":advance 6m");
  expect(t.rollbackUpdates()).toEqual([]);

  const before = t.mark();
  await t.run(":advance 1m");
  const [rollback, ...more] = t.rollbackUpdates(before);
  expect(more).toEqual([]);
  expect(rollback?.at).toBe(at("10:28"));
  const config = rollback?.input?.deploymentConfiguration as Record<string, unknown>;
  expect(config).toMatchObject({ ...sent, deploymentCircuitBreaker: { enable: true, rollback: true } });
  expect(config).not.toHaveProperty("canaryConfiguration");
  expect(config).not.toHaveProperty("linearConfiguration");
  // The deploy itself did use its canary: the rollback's strategy is the environment's, not the deploy's.
  expect(t.updateServices()[0]?.input?.deploymentConfiguration).toHaveProperty("canaryConfiguration");

  const badShare = () => t.con.world.trafficAt("comply360-prod", "web").find((s) => s.version === "v1.4.2")?.share ?? 0;
  const shares = [badShare()];
  for (let m = 1; m < left.length; m++) {
    await t.run(":advance 1m");
    shares.push(badShare());
  }
  const canary = await trafficHadItReusedTheCanary(left.length - 1);
  const pct = (x: number | undefined) => `${Math.round((x ?? 0) * 100)}%`;
  console.log(
    [
      `traffic left on v1.4.2 after the rollback's UpdateService (${strategy} vs the deploy's CANARY 10%/5m)`,
      "| minute | sent | had it reused the canary |",
      "|---|---|---|",
      ...shares.map((s, m) => `| +${m} | ${pct(s)} | ${pct(canary[m])} |`),
    ].join("\n"),
  );
  expect(shares).toEqual(left);
  expect(canary).toEqual([1, 0.9, 0.9, 0.9, 0.9, 0.9, 0]);
}

describe("a rollback restores all traffic at once (issue 9 §7)", () => {
  it("sends BLUE_GREEN without canary or linear configuration for the example's rollback_strategy, leaving v1.4.2 no traffic after a minute where the deploy's 10% canary would leave 90% for 5", async () => {
    await followRollback("BLUE_GREEN", { strategy: "BLUE_GREEN", bakeTimeInMinutes: 0 }, [1, 0, 0, 0, 0, 0, 0]);
  });

  it("sends ROLLING 200/100 without canary or linear configuration when the environment sets no rollback_strategy, leaving v1.4.2 no traffic after 4 minutes", async () => {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    await followRollback(
      "ROLLING",
      { strategy: "ROLLING", maximumPercent: 200, minimumHealthyPercent: 100 },
      [1, 0.75, 0.5, 0.25, 0, 0, 0],
      writeDefaultRollbackConfig(tmp.dir),
    );
  });
});

describe("no warning follows the rollback of a deploy (issue 9 §7)", () => {
  const warnings = (t: MonitorConsole, from = 0) => posts(t, from).filter((p) => p.includes("*Warning*"));

  it("posts no error-rate warning after web's automatic rollback starts at 10:28, though it would have fired at 10:31", async () => {
    const t = await open();
    await baking(t);
    await t.run(":metric web production error_rate 3.2", ":advance 20m");

    expect(t.rollbackUpdates().map((e) => e.at)).toEqual([at("10:28")]);
    expect(warnings(t)).toEqual([]);
    expect(posts(t).filter((p) => p.includes("breached"))).toEqual([
      expect.stringContaining("guardrail “error rate (rollback)” breached"),
    ]);
    expect((await t.con.store.incidents.of(1)).map((i) => i.guardrail)).toEqual(["error rate (rollback)"]);
  });

  it("does post that warning at 10:31 when dave continues anyway and nothing is rolled back", async () => {
    const t = await open();
    await baking(t);
    await t.run(":metric web production error_rate 3.2", ":advance 6m", ":as dave", ":click Continue anyway");
    const before = t.mark();
    await t.run(":advance 6m");

    expect(t.rollbackUpdates()).toEqual([]);
    const posted = t.incidentPosts(before).filter((e) => e.text?.includes("*Warning*"));
    expect(posted.map((e) => [e.at, e.text?.includes("“error rate (warning)” breached")])).toEqual([
      [at("10:31"), true],
    ]);
  });

  it("closes the open error-rate warning when the rollback starts, and edits it no more", async () => {
    const t = await open();
    await baking(t);
    await t.run(":metric web production error_rate 0.7", ":advance 10m");
    const [warning] = t.incidentPosts().filter((e) => e.text?.includes("*Warning*"));
    expect(warning?.at).toBe(at("10:31"));

    await t.run(":metric web production error_rate 3.2", ":advance 15m");
    const [rollback] = t.rollbackUpdates();
    expect(rollback?.at).toBe(at("10:38"));
    const [incident] = (await t.con.store.incidents.of(1)).filter((i) => i.guardrail === "error rate (warning)");
    expect([incident?.state, incident?.note]).toEqual(["closed", "deploy #1 is being rolled back"]);
    const edits = t.events.filter((e: ConsoleEvent) => e.kind === "update" && e.ts === warning?.ts);
    expect(edits.at(-1)?.at).toBe(at("10:38"));
    expect(edits.at(-1)?.text).toContain("“error rate (warning)” closed");
    expect(warnings(t)).toHaveLength(1);
    expect(t.pages().filter((p) => p.dedupKey?.includes("warning"))).toEqual([]);
  });
});

describe("after a rollback the restored version is watched (issue 9 §7)", () => {
  /** web's error rate at 3.2% from 10:21: paged 10:26, rolled back 10:28 (BLUE_GREEN), v1.4.0 serving all from 10:29. */
  async function rolledBack(): Promise<MonitorConsole> {
    const t = await open();
    await baking(t);
    await t.run(":metric web production error_rate 3.2", ":advance 7m");
    expect(t.rollbackUpdates().map((e) => e.at)).toEqual([at("10:28")]);
    return t;
  }

  it("watches v1.4.0 with all nine guardrails for the 30-minute bake, and resolves the page at 10:34 when its error rate has been fine for 5 minutes, not before", async () => {
    const t = await rolledBack();
    await t.run(":advance 1m");
    const rollback = await t.con.store.deployments.get(2);
    expect([rollback?.kind, rollback?.status, rollback?.progress?.rolledOutAt]).toEqual([
      "rollback",
      "baking",
      at("10:29"),
    ]);
    const [incident] = t.incidentPosts();
    expect(t.latest(incident?.ts as string).text).toContain(
      "Rollback #2 (baking) finished; watching the restored version.",
    );

    await t.run(":advance 4m");
    expect(t.pages("resolve")).toEqual([]);
    expect((await t.con.store.incidents.of(1))[0]?.state).toBe("rolled_back");

    await t.run(":advance 1m");
    const [trigger] = t.pages("trigger");
    const resolves = t.pages("resolve");
    expect(resolves.map((p) => [p.at, p.dedupKey])).toEqual([[at("10:34"), trigger?.dedupKey]]);
    expect(t.incidentReplies(incident?.ts as string).map((e) => e.text)).toContainEqual(
      expect.stringMatching(/^:white_check_mark: Recovered after rollback #2: error rate \(rollback\) 0\.1%/),
    );

    await t.run(":advance 25m");
    expect((await t.con.store.deployments.get(2))?.status).toBe("succeeded");
    const checks = await t.con.store.checks.of(2);
    const guardrails = t.con.config.services.web?.environments.production?.guardrails ?? [];
    expect(guardrails).toHaveLength(9);
    for (const g of guardrails) expect(checks.get(g.name)?.verdicts, g.name).toBeGreaterThan(0);
    // Checked every minute from the moment v1.4.0 took all traffic until the bake ended at 10:59.
    const checked = new Set(
      t.events
        .filter((e) => e.kind === "aws" && e.op === "GetMetricData" && e.input?.EndTime === e.at)
        .map((e) => e.at)
        .filter((a) => a >= at("10:29")),
    );
    const everyMinute = Array.from({ length: 30 }, (_, m) =>
      new Date(Date.parse(at("10:29")) + m * MINUTE).toISOString(),
    );
    expect([...checked].sort()).toEqual(everyMinute);
    expect(t.pages("resolve")).toHaveLength(1);
  });

  it("keeps the page open and says the error rate still breaches when v1.4.0 reads 3.2% too", async () => {
    const t = await rolledBack();
    await t.run(":metric web production error_rate 3.2", ":advance 32m");

    const [trigger] = t.pages("trigger");
    expect(t.pages("resolve").filter((p) => p.dedupKey === trigger?.dedupKey)).toEqual([]);
    expect((await t.con.store.incidents.of(1))[0]?.state).toBe("rolled_back");
    const [incident] = t.incidentPosts();
    const replies = t.incidentReplies(incident?.ts as string).map((e) => e.text ?? "");
    expect(replies.filter((r) => r.includes("Recovered"))).toEqual([]);
    expect(replies).toContainEqual(
      expect.stringMatching(
        /Still breaching \d+ min after rollback #2: the deploy may not be the cause\. The page stays open\./,
      ),
    );
    expect(t.incidentReplies(incident?.ts as string).find((e) => e.text?.includes("Still breaching"))?.at).toBe(
      at("10:59"),
    );
  });
});
