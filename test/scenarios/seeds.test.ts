import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { approvalProgress } from "../../src/policies/approvals.js";
import { decideDeploy } from "../../src/policies/gate.js";
import { type Scenario, scenario } from "../helpers/scenario.js";

const examples = fileURLToPath(new URL("../../examples/", import.meta.url));

describe("the seed runbooks as example configs", () => {
  it.each(readdirSync(examples).filter((f) => f.endsWith(".yml")))("accepts examples/%s", (file) => {
    expect(() => loadConfig(`${examples}${file}`)).not.toThrow();
  });

  it("asks seed 004's production for a Technical Lead AND a Project Manager, two people", () => {
    const config = loadConfig(`${examples}ecommerce.yml`);
    const policy = config.environments.production;
    if (!policy) throw new Error("no production");
    const decision = decideDeploy({
      request: {
        service: "frontend",
        environment: "production",
        version: "v2",
        requester: "tom",
        hotfix: false,
        emergency: null,
      },
      policy,
      timeZone: "America/Chicago",
      now: new Date("2026-11-24T16:00:00Z"),
      lock: null,
    });
    expect(decision.outcome).toBe("needs_approval");
    if (decision.outcome !== "needs_approval") return;
    const lead = { user: "mike", roles: new Set(["technical_lead"]) };
    const pm = { user: "jane", roles: new Set(["project_manager"]) };
    expect(approvalProgress(decision.rule, [lead]).satisfied).toBe(false);
    expect(approvalProgress(decision.rule, [lead, pm]).satisfied).toBe(true);
  });
});

describe("seed 004: a manual rollback needs the Technical Lead and the Project Manager", () => {
  let s: Scenario | undefined;
  afterEach(async () => {
    await s?.stop();
    s = undefined;
  });

  it("holds tom's confirmed rollback until both have approved, then rolls back", async () => {
    s = await scenario("2026-11-24T10:15:00-06:00", "ecommerce.yml");
    await s.run(
      ":as tom",
      "/deploy frontend v2.0.0 to production",
      ":as mike",
      ":click Approve",
      ":as jane",
      ":click Approve",
      // BLUE_GREEN with a 30-minute ECS bake: green up in 1 min, SUCCESSFUL at 31 min, then deploybot's 30-min bake.
      ":advance 65m",
    );
    expect(s.card(1)).toContain("Succeeded");
    await s.run(":as tom", '/rollback frontend production --reason "checkout broken"', ":click Roll back");
    const before = s.mark();
    expect((await s.con.store.deployments.get(2))?.status).toBe("awaiting_approval");
    await s.run(":as mike", ":click Approve", ":advance 1m");
    expect(s.awsOps(before)).not.toContain("UpdateService");
    await s.run(":as jane", ":click Approve");
    expect(s.awsOps(before)).toContain("UpdateService");
    await s.run(":advance 6m");
    expect((await s.con.store.deployments.get(1))?.status).toBe("rolled_back");
    // The restored version is watched for the environment's bake time before the rollback ends succeeded.
    expect((await s.con.store.deployments.get(2))?.status).toBe("baking");
  });
});

describe("seed 001: checks every 5 min for 30 min, then every 15 min for 90 min", () => {
  let s: Scenario | undefined;
  afterEach(async () => {
    await s?.stop();
    s = undefined;
  });

  it("reads the deploy's guardrails on that schedule and stops after two hours", async () => {
    s = await scenario("2026-11-24T10:00:00-05:00", "complinist.yml");
    await s.run(":as maria", "/deploy portal v3.1.0 to production", ":as devon", ":click Approve");
    const checksBetween = (fromMin: number, toMin: number) =>
      s?.events.filter((e) => {
        if (e.kind !== "aws" || e.op !== "GetMetricData") return false;
        const mins = (Date.parse(e.at) - Date.parse("2026-11-24T15:00:00Z")) / 60_000;
        const queries = (e.input?.MetricDataQueries as string[] | undefined) ?? [];
        return mins > fromMin && mins <= toMin && queries.some((q) => q.startsWith("g1_"));
      }).length ?? 0;
    await s.run(":advance 150m");
    // Minutes 5, 10 ... 30, then 45, 60 ... 120, then nothing.
    expect(checksBetween(0, 30)).toBe(6);
    expect(checksBetween(30, 120)).toBe(6);
    expect(checksBetween(120, 150)).toBe(0);
    expect((await s.con.store.deployments.get(1))?.status).toBe("succeeded");
  });
});
