import { afterEach, describe, expect, it } from "vitest";
import { type Scenario, scenario } from "../helpers/scenario.js";

const SATURDAY = "2026-11-21T10:00:00+02:00";
const TUESDAY = "2026-11-24T10:15:00+02:00";

let s: Scenario | undefined;
const open = async (at: string) => {
  s = await scenario(at);
  return s;
};
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

describe("/deploy through the local console (issue 3 §6)", () => {
  it("denies alice production on a Saturday, naming the weekend freeze and Monday 09:00, without calling ECS", async () => {
    const t = await open(SATURDAY);
    await t.run("/deploy web v1.4.2 to production");

    const denial = t.ephemeralsFor("alice");
    expect(denial).toHaveLength(1);
    expect(denial[0]).toContain("denied");
    expect(denial[0]).toContain("Weekend freeze");
    expect(denial[0]).toContain("Mon 23 Nov 09:00");
    expect(t.awsOps()).not.toContain("UpdateService");
    expect((await t.con.store.deployments.history("web", "production"))[0]?.status).toBe("denied");
  });

  it("deploys alice's web v1.4.2 to staging with no approval, registers the image tag, and ends succeeded", async () => {
    const t = await open(TUESDAY);
    await t.run("/deploy web v1.4.2 to staging");

    const ops = t.awsOps();
    expect(ops).toContain("RegisterTaskDefinition");
    expect(ops.indexOf("RegisterTaskDefinition")).toBeLessThan(ops.indexOf("UpdateService"));
    const register = t.events.find((e) => e.op === "RegisterTaskDefinition");
    expect(JSON.stringify(register?.input)).toMatch(/web:v1\.4\.2"/);
    expect(t.card(1)).not.toContain("[Approve]");

    await t.run(":advance 15m");
    expect(t.card(1)).toContain("Succeeded");
    expect(await t.con.store.locks.get("web", "staging")).toBeUndefined();
  });

  it("runs a Tuesday 10:15 production deploy once bob approves, then succeeds after the bake and frees the lock", async () => {
    const t = await open(TUESDAY);
    await t.run("/deploy web v1.4.2 to production");
    expect(t.card(1)).toContain("Awaiting approval");
    expect(t.awsOps()).not.toContain("UpdateService");

    await t.run(":as bob", ":click Approve");
    expect(t.awsOps()).toContain("UpdateService");
    expect(await t.con.store.locks.get("web", "production")).toBeDefined();

    await t.run(":advance 40m");
    expect(t.card(1)).toContain("Succeeded");
    expect(t.card(1)).toContain("@bob");
    expect(await t.con.store.locks.get("web", "production")).toBeUndefined();
  });

  it("refuses alice approving her own request and frank approving without a role, and calls no ECS", async () => {
    const t = await open(TUESDAY);
    await t.run("/deploy web v1.4.2 to production", ":click Approve", ":as frank", ":click Approve");

    expect(t.ephemeralsFor("alice")).toEqual([expect.stringContaining("cannot approve")]);
    expect(t.ephemeralsFor("frank")).toEqual([expect.stringContaining("tech_lead, devops_lead")]);
    expect(t.card(1)).toContain("Awaiting approval");
    expect(t.awsOps()).not.toContain("UpdateService");
  });

  it("expires a request nobody approves for 31 minutes and refuses a later approval", async () => {
    const t = await open(TUESDAY);
    await t.run("/deploy web v1.4.2 to production", ":advance 31m");
    expect(t.card(1)).toContain("Expired");
    expect(t.card(1)).not.toContain("[Approve]");

    // The expired card no longer offers Approve, so the console cannot click it...
    const before = t.mark();
    await t.run(":as bob", ":click Approve");
    expect(t.since(before)).toEqual([
      expect.objectContaining({ kind: "error", text: expect.stringContaining("Approve") }),
    ]);
    // ...but a Slack client still showing the old card can; the click is checked against the request then.
    const bob = t.con.services.people.bySlackId("U0BOB0001");
    const refusal = await t.con.services.deployments.approve(1, bob);
    expect(refusal).toContain("expired");
    expect(t.awsOps()).not.toContain("UpdateService");
    expect((await t.con.store.deployments.get(1))?.status).toBe("expired");
    expect(await t.con.store.approvals.of(1)).toEqual([]);
  });

  it("lets an emergency deploy through the weekend freeze once dave approves, telling #incidents and auditing the bypass", async () => {
    const t = await open(SATURDAY);
    await t.run('/deploy web v1.4.2 to production --emergency "payments down"');
    expect(t.awsOps()).not.toContain("UpdateService");

    await t.run(":as dave", ":click Approve");
    expect(t.awsOps()).toContain("UpdateService");
    const notice = t.events.filter((e) => e.kind === "message" && e.channel === "#incidents");
    expect(notice).toHaveLength(1);
    expect(notice[0]?.text).toMatch(/emergency/i);
    expect(notice[0]?.text).toContain("payments down");
    expect(notice[0]?.text).toContain("freeze: Weekend freeze");

    const override = (await t.con.store.audit.list()).filter((a) => a.action === "override.emergency");
    expect(override).toHaveLength(1);
    expect(override[0]?.actor).toBe("dave");
    expect(override[0]?.detail.bypassed).toContain("freeze: Weekend freeze");
  });

  it("refuses a second production deploy while the first is baking, naming deploy #1, alice, v1.4.2 and baking", async () => {
    const t = await open(TUESDAY);
    // Baking once web's canary (1 min to start, 5 min at 10%) has shifted all the traffic.
    await t.run("/deploy web v1.4.2 to production", ":as bob", ":click Approve", ":advance 6m");
    expect((await t.con.store.deployments.get(1))?.status).toBe("baking");

    const before = t.mark();
    await t.run(":as carol", "/deploy web v1.4.3 production");
    const refusal = t.ephemeralsFor("carol", before);
    expect(refusal).toHaveLength(1);
    for (const part of ["deploy #1", "alice", "v1.4.2", "baking"]) expect(refusal[0]).toContain(part);
    expect(t.awsOps(before)).not.toContain("UpdateService");
    expect((await t.con.store.locks.get("web", "production"))?.deploymentId).toBe(1);
  });

  it("needs two different approvers for a --hotfix: nothing runs after bob alone, it runs after carol", async () => {
    const t = await open(TUESDAY);
    await t.run("/deploy web v1.4.2 to production --hotfix", ":as bob", ":click Approve");
    expect(t.awsOps()).not.toContain("UpdateService");

    await t.run(":click Approve");
    expect(t.ephemeralsFor("bob")).toEqual([expect.stringContaining("already approved")]);
    expect(t.awsOps()).not.toContain("UpdateService");

    await t.run(":as carol", ":click Approve");
    expect(t.awsOps()).toContain("UpdateService");
    expect(t.card(1)).toContain("@bob");
    expect(t.card(1)).toContain("@carol");
  });

  it("ends a staging deploy failed with ECS's circuit-breaker reason and releases the lock", async () => {
    const t = await open(TUESDAY);
    await t.run(":fail web staging", "/deploy web v1.4.2 to staging");
    expect(await t.con.store.locks.get("web", "staging")).toBeDefined();

    await t.run(":advance 10m");
    expect(t.card(1)).toContain("Failed");
    expect(t.card(1)).toContain("circuit breaker");
    expect((await t.con.store.deployments.get(1))?.status).toBe("failed");
    expect(await t.con.store.locks.get("web", "staging")).toBeUndefined();
  });

  it("answers --dry-run with the decision and the plan and changes nothing", async () => {
    const t = await open(TUESDAY);
    await t.run("/deploy web v1.4.2 to production --dry-run");

    const answer = t.ephemeralsFor("alice");
    expect(answer).toHaveLength(1);
    expect(answer[0]).toContain("Dry run");
    expect(answer[0]).toContain("would need approval");
    expect(answer[0]).toContain("RegisterTaskDefinition");
    expect(answer[0]).toContain("UpdateService comply360-prod/web");
    expect(await t.con.store.deployments.history("web", "production")).toEqual([]);
    expect(t.awsOps()).not.toContain("RegisterTaskDefinition");
    expect(t.awsOps()).not.toContain("UpdateService");
  });

  it("deploys a task-definition revision without registering a new one", async () => {
    const t = await open(TUESDAY);
    await t.run("/deploy web comply360-staging-web:1 to staging");

    const ops = t.awsOps();
    expect(ops).toContain("UpdateService");
    expect(ops).not.toContain("RegisterTaskDefinition");
    const update = t.events.find((e) => e.op === "UpdateService");
    expect(update?.input?.taskDefinition).toMatch(/comply360-staging-web:1$/);
  });
});
