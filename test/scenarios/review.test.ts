import { afterEach, describe, expect, it } from "vitest";
import { type Scenario, scenario } from "../helpers/scenario.js";

// Behaviour found by a review of the whole flow: who may press what, and what happens on the second go.
const TUESDAY = "2026-11-24T10:15:00+02:00";
const approvedProductionDeploy = [":as alice", "/deploy web v1.4.2 to production", ":as bob", ":click Approve"];

describe("guardrail buttons and repeated breaches", () => {
  let s: Scenario | undefined;
  afterEach(async () => {
    await s?.stop();
    s = undefined;
  });

  it("refuses Acknowledge from frank, who holds no role and is not on call, and pages nothing", async () => {
    s = await scenario(TUESDAY);
    await s.run(...approvedProductionDeploy, ":advance 5m", ":metric web production error_rate 3.2", ":advance 6m");
    const before = s.mark();
    await s.run(":as frank", ":click Acknowledge");
    expect(s.ephemeralsFor("frank", before)[0]).toContain("Acknowledging pauses PagerDuty's escalation");
    expect(s.since(before).filter((e) => e.kind === "page")).toEqual([]);
    expect(
      (await s.con.store.audit.list()).some((e) => e.action === "incident.acknowledge_refused" && e.actor === "frank"),
    ).toBe(true);
  });

  it("pages again and schedules the rollback again when a guardrail breaches a second time after recovering", async () => {
    s = await scenario(TUESDAY);
    // Baking from 10:21, after web's 10% canary; the error rate is v1.4.2's from then on.
    await s.run(...approvedProductionDeploy, ":advance 6m", ":metric web production error_rate 3.2", ":advance 5m");
    await s.run(":metric web production error_rate 0.1", ":advance 4m");
    const pages = () => s?.events.filter((e) => e.kind === "page").map((e) => e.action) ?? [];
    expect(pages()).toEqual(["trigger", "resolve"]);
    expect(s.awsOps()).toContain("UpdateService");
    // Recovered inside the grace period: only the deploy's own UpdateService, no rollback.
    expect(s.awsOps().filter((op) => op === "UpdateService").length).toBe(1);

    await s.run(":metric web production error_rate 9", ":advance 10m");
    expect(pages()).toEqual(["trigger", "resolve", "trigger"]);
    expect(s.awsOps().filter((op) => op === "UpdateService").length).toBe(2);
  });
});

describe("a rollback that fails", () => {
  let s: Scenario | undefined;
  afterEach(async () => {
    await s?.stop();
    s = undefined;
  });

  it("reports the failure in #incidents and leaves the finished deploy it tried to roll back as it was", async () => {
    s = await scenario(TUESDAY);
    await s.run(...approvedProductionDeploy, ":advance 40m", ":as carol", '/rollback web production --reason "test"');
    await s.run(":fail web production", ":click Roll back", ":advance 10m");
    expect((await s.con.store.deployments.get(2))?.status).toBe("failed");
    expect((await s.con.store.deployments.get(1))?.status).toBe("succeeded");
    const incidents = s.events.filter((e) => e.kind === "message" && e.channel === "#incidents").map((e) => e.text);
    expect(incidents.some((t) => t?.includes("FAILED"))).toBe(true);
    expect(s.events.some((e) => e.kind === "error")).toBe(false);
    expect(await s.con.store.locks.get("web", "production")).toBeUndefined();
  });
});

describe("a deploy recorded but never sent to ECS", () => {
  let s: Scenario | undefined;
  afterEach(async () => {
    await s?.stop();
    s = undefined;
  });

  it("is started once by the reconciler's next pass: the recorded intent is the decision, not a guess about ECS", async () => {
    s = await scenario(TUESDAY);
    // The state a crash between "deploying recorded" and "UpdateService called" leaves: the start and its intent.
    s.con.services.outbox.onCommit = () => {};
    await s.run(":as alice", "/deploy web v1.4.2 to staging");
    const d = (await s.con.store.deployments.history("web", "staging"))[0];
    expect(d?.status).toBe("deploying");
    expect(s.awsOps()).not.toContain("UpdateService");
    await s.run(":advance 5s");
    expect(s.awsOps().filter((op) => op === "UpdateService")).toHaveLength(1);
    await s.run(":advance 10m");
    expect(s.awsOps().filter((op) => op === "UpdateService")).toHaveLength(1);
    expect((await s.con.store.deployments.get(d?.id as number))?.status).toBe("baking");
  });
});

describe("Roll back now where manual rollbacks need approvals (seed 004)", () => {
  let s: Scenario | undefined;
  afterEach(async () => {
    await s?.stop();
    s = undefined;
  });

  it("asks for the Technical Lead and the Project Manager instead of rolling back at once", async () => {
    s = await scenario("2026-11-24T10:15:00-06:00", "ecommerce.yml");
    await s.run(
      ":as tom",
      "/deploy frontend v2.0.0 to production",
      ":as mike",
      ":click Approve",
      ":as jane",
      ":click Approve",
    );
    // Breach at 10:25; the automatic rollback would come at 10:26 (rollback_grace 1m).
    await s.run(":advance 5m", ":metric frontend production error_rate 9", ":advance 5m");
    const before = s.mark();
    await s.run(":as tom", ":click Roll back now");
    expect(s.awsOps(before)).not.toContain("UpdateService");
    const rollback = (await s.con.store.deployments.history("frontend", "production")).find(
      (x) => x.kind === "rollback",
    );
    expect(rollback?.status).toBe("awaiting_approval");
  });
});
