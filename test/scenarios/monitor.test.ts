import { afterEach, describe, expect, it } from "vitest";
import {
  APPROVED_PRODUCTION_DEPLOY,
  type MonitorConsole,
  openMonitorConsole,
  TUESDAY,
  tempDir,
  writeShadowConfig,
} from "../helpers/monitor-console.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A console at Tuesday 10:15 SAST with web v1.4.2 approved; after `:advance 6m` it bakes (10:21): the CANARY
 * rollout brings the new tasks up in a minute, then holds 10% of the traffic for its 5-minute canary bake.
 */
async function bakingDeploy(configFile?: string): Promise<MonitorConsole> {
  const t = await openMonitorConsole({ at: TUESDAY, ...(configFile ? { configFile } : {}) });
  cleanups.push(() => t.stop());
  await t.run(...APPROVED_PRODUCTION_DEPLOY, ":advance 6m");
  expect((await t.con.store.deployments.get(1))?.status).toBe("baking");
  expect(t.updateServices()).toHaveLength(1);
  return t;
}

/** Baking web with its error rate at 3.2% from 10:21, paged at 10:26; returns at 10:27, the rollback due at 10:28. */
async function criticalBreach(configFile?: string): Promise<MonitorConsole> {
  const t = await bakingDeploy(configFile);
  await t.run(":metric web production error_rate 3.2", ":advance 6m");
  return t;
}

const at = (hhmm: string) => new Date(`2026-11-24T${hhmm}:00+02:00`).toISOString();

describe("the guardrail monitor through the local console (issue 5 §7)", () => {
  it("pages PagerDuty once and posts the breach with 3.2%, > 1% and three buttons in #incidents when web's error rate reaches 3.2% while baking", async () => {
    const t = await criticalBreach();

    const triggers = t.pages("trigger");
    expect(triggers).toHaveLength(1);
    expect(triggers[0]).toMatchObject({ severity: "critical", at: at("10:26") });
    expect(triggers[0]?.dedupKey).toMatch(/\S/);

    const posts = t.incidentPosts();
    expect(posts).toHaveLength(1);
    expect(posts[0]?.text).toContain("CRITICAL");
    expect(posts[0]?.text).toContain("3.2%");
    expect(posts[0]?.text).toContain("> 1%");
    expect(posts[0]?.buttons).toEqual(["Roll back now", "Continue anyway", "Acknowledge"]);
    expect(t.rollbackUpdates()).toEqual([]);
  });

  it("rolls web back to comply360-prod-web:1 when the 2-minute grace period ends at 10:28, and not before", async () => {
    const t = await criticalBreach();
    expect(t.rollbackUpdates()).toEqual([]);

    const before = t.mark();
    await t.run(":advance 3m");

    const rollbacks = t.rollbackUpdates(before);
    expect(rollbacks).toHaveLength(1);
    expect(rollbacks[0]?.at).toBe(at("10:28"));
    expect(rollbacks[0]?.input).toMatchObject({ cluster: "comply360-prod", service: "web" });
    expect(t.updateServices(before)).toHaveLength(1);
    const rollback = await t.con.store.deployments.get(2);
    expect([rollback?.kind, rollback?.version, rollback?.flags.automatic]).toEqual(["rollback", "v1.4.0", true]);
  });

  it("resolves the page with the same dedup key once the error rate is back to 0.2% and drafts a post-mortem with the timeline in the incident's thread", async () => {
    const t = await criticalBreach();
    await t.run(":advance 3m", ":metric web production error_rate 0.2", ":advance 8m");

    const [trigger, ...moreTriggers] = t.pages("trigger");
    expect(moreTriggers).toEqual([]);
    const resolves = t.pages("resolve");
    expect(resolves).toHaveLength(1);
    expect(resolves[0]?.dedupKey).toBe(trigger?.dedupKey);
    expect(t.rollbackUpdates()).toHaveLength(1);
    // Rollback #2 finished on ECS and watches the restored version for the bake time.
    expect((await t.con.store.deployments.get(2))?.status).toBe("baking");
    expect((await t.con.store.incidents.of(1))[0]?.state).toBe("recovered");

    const incident = t.incidentPosts()[0];
    const postmortems = t.incidentReplies(incident?.ts as string).filter((e) => e.text?.includes("Post-mortem draft"));
    expect(postmortems).toHaveLength(1);
    const draft = postmortems[0]?.text ?? "";
    expect(draft).toContain("10:15 SAST: Deployment started");
    expect(draft).toMatch(/10:2\d SAST: error rate \(rollback\) breach detected/);
    expect(draft).toContain("10:28 SAST: Rollback initiated");
    expect(draft).toMatch(/\d\d:\d\d SAST: Services stable on v1\.4\.0/);
  });

  it("posts a warning in #incidents for an error rate of 0.7% held for 10 minutes, without paging or rolling back", async () => {
    const t = await bakingDeploy();
    const before = t.mark();
    await t.run(":metric web production error_rate 0.7", ":advance 9m");
    expect(t.incidentPosts(before)).toEqual([]);

    await t.run(":advance 3m");
    const posts = t.incidentPosts(before);
    expect(posts).toHaveLength(1);
    expect(posts[0]?.text).toContain("Warning");
    expect(posts[0]?.text).toContain("error rate (warning)");
    expect(posts[0]?.text).toContain("0.7%");
    expect(posts[0]?.buttons).toBeUndefined();
    expect(t.pages()).toEqual([]);
    expect(t.updateServices(before)).toEqual([]);
  });

  it("lets dave (executive) press Continue anyway before the grace period ends, so web is never rolled back and the override is audited", async () => {
    const t = await criticalBreach();
    await t.run(":as dave", ":click Continue anyway");
    expect(t.ephemeralsFor("dave")).toEqual([]);

    const before = t.mark();
    await t.run(":advance 10m");
    expect(t.rollbackUpdates()).toEqual([]);
    expect(t.updateServices(before)).toEqual([]);

    const overrides = (await t.con.store.audit.list()).filter((a) => a.action === "override.continue");
    expect(overrides).toHaveLength(1);
    expect(overrides[0]?.detail.by).toBe("dave");
    expect(overrides[0]?.deploymentId).toBe(1);
    const incident = t.incidentPosts()[0];
    expect(t.latest(incident?.ts as string).buttons).not.toContain("Continue anyway");
  });

  it("refuses carol's Continue anyway in a message only she sees and still rolls back when the grace period ends", async () => {
    const t = await criticalBreach();
    await t.run(":as carol", ":click Continue anyway");

    const refusal = t.ephemeralsFor("carol");
    expect(refusal).toHaveLength(1);
    expect(refusal[0]).toContain("executive");
    expect((await t.con.store.audit.list()).filter((a) => a.action === "override.continue")).toEqual([]);
    expect((await t.con.store.incidents.of(1))[0]?.overriddenBy).toBeNull();
    const incident = t.incidentPosts()[0];
    expect(t.latest(incident?.ts as string).buttons).toContain("Continue anyway");

    await t.run(":advance 3m");
    expect(t.rollbackUpdates()).toHaveLength(1);
  });

  it("reports a breaching shadow guardrail in #incidents marked shadow, and neither pages nor rolls back", async () => {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    const t = await criticalBreach(writeShadowConfig(tmp.dir));
    await t.run(":advance 3m");

    const posts = t.incidentPosts();
    expect(posts).toHaveLength(1);
    expect(posts[0]?.text).toContain("error rate (rollback)");
    expect(posts[0]?.text).toMatch(/shadow/i);
    expect(posts[0]?.buttons).toBeUndefined();
    expect(t.pages()).toEqual([]);
    expect(t.rollbackUpdates()).toEqual([]);
    expect(t.updateServices()).toHaveLength(1);
    expect((await t.con.store.incidents.of(1)).map((i) => [i.guardrail, i.shadow])).toEqual([
      ["error rate (rollback)", true],
    ]);
  });

  it("rolls back at once when carol (devops_lead) presses Roll back now, without waiting for the grace period", async () => {
    const t = await criticalBreach();
    const before = t.mark();
    await t.run(":as carol", ":click Roll back now");

    expect(t.ephemeralsFor("carol")).toEqual([]);
    const rollbacks = t.rollbackUpdates(before);
    expect(rollbacks).toHaveLength(1);
    expect(rollbacks[0]?.at).toBe(at("10:27"));
    expect((await t.con.store.deployments.get(2))?.requestedBy).toBe("carol");

    await t.run(":advance 5m");
    expect(t.rollbackUpdates()).toHaveLength(1);
  });

  it("refuses frank's Roll back now, naming who may, and leaves the rollback to the grace period", async () => {
    const t = await criticalBreach();
    await t.run(":as frank", ":click Roll back now");

    const refusal = t.ephemeralsFor("frank");
    expect(refusal).toHaveLength(1);
    expect(refusal[0]).toContain("devops_lead");
    expect(t.rollbackUpdates()).toEqual([]);
    expect(await t.con.store.deployments.get(2)).toBeUndefined();
  });

  it("acknowledges the PagerDuty incident with the same dedup key when erin presses Acknowledge", async () => {
    const t = await criticalBreach();
    const before = t.mark();
    await t.run(":as erin", ":click Acknowledge");

    const [trigger] = t.pages("trigger");
    const acks = t.pages("acknowledge", before);
    expect(acks).toHaveLength(1);
    expect(acks[0]?.dedupKey).toBe(trigger?.dedupKey);
    const incident = t.incidentPosts()[0];
    expect(t.incidentReplies(incident?.ts as string, before).map((e) => e.text)).toEqual([
      expect.stringContaining("Acknowledged by @erin"),
    ]);
    expect(t.latest(incident?.ts as string).buttons).not.toContain("Acknowledge");
  });
});
