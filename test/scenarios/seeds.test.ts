import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { Config, Guardrail } from "../../src/config/schema.js";
import { approvalProgress } from "../../src/policies/approvals.js";
import { decideDeploy } from "../../src/policies/gate.js";
import { evaluateGuardrail, pagesOnBreach } from "../../src/policies/guardrails.js";
import { type Scenario, scenario } from "../helpers/scenario.js";
import { SEED_TRIGGERS, simName } from "../helpers/seed-triggers.js";

const examples = fileURLToPath(new URL("../../examples/", import.meta.url));

const files = readdirSync(examples).filter((f) => f.endsWith(".yml"));

/** Every guardrail of an example with where it sits: service, environment, and the ECS target's load balancer. */
function guardrailsOf(config: Config) {
  return Object.entries(config.services).flatMap(([service, svc]) =>
    Object.entries(svc.environments).flatMap(([environment, se]) =>
      se.guardrails.map((g) => ({ service, environment, g, targetGroup: se.load_balancer?.target_group })),
    ),
  );
}

describe("the seed runbooks as example configs", () => {
  it("has an example for each of the five seeds", () => {
    expect(files.sort()).toEqual([
      "complinist.yml",
      "deploybot.yml",
      "ecommerce.yml",
      "multitenant.yml",
      "tickettoken.yml",
    ]);
  });

  it.each(files)("accepts examples/%s", (file) => {
    expect(() => loadConfig(`${examples}${file}`)).not.toThrow();
  });

  it.each(files)("accepts examples/%s in both modes without a warning", (file) => {
    for (const mode of ["console", "slack"] as const) {
      const warnings: string[] = [];
      expect(() => loadConfig(`${examples}${file}`, { mode, onWarning: (w) => warnings.push(w) })).not.toThrow();
      expect(warnings).toEqual([]);
    }
  });

  it.each(files)("examples/%s has a pagerduty section for the guardrails that page", (file) => {
    const config = loadConfig(`${examples}${file}`);
    const paging = guardrailsOf(config).filter(({ g }) => pagesOnBreach(g));
    expect(paging.length).toBeGreaterThan(0);
    expect(config.pagerduty?.schedules.length).toBeGreaterThan(0);
  });

  it.each(files)("examples/%s gives every custom metric a healthy simulated default", (file) => {
    const config = loadConfig(`${examples}${file}`);
    const now = new Date("2026-03-02T10:36:00Z");
    for (const { service, environment, g } of guardrailsOf(config)) {
      if (typeof g.metric === "string") continue;
      const value = config.simulation.metrics?.[simName(g)];
      expect(value, `${service} ${environment} '${g.name}' has no simulation.metrics.${simName(g)}`).toBeTypeOf(
        "number",
      );
      // A steady reading at the default, for as long as the guardrail looks, must be judged healthy.
      const datapoints = Array.from({ length: 40 }, (_, i) => ({
        at: new Date(now.getTime() - (i + 1) * g.period),
        value: value as number,
      }));
      const verdict = evaluateGuardrail({ guardrail: g, datapoints, baseline: value as number, now });
      expect(verdict.status, `${service} ${environment} '${g.name}': ${verdict.reason}`).toBe("ok");
    }
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

describe("every rollback trigger a seed names, as a guardrail", () => {
  it.each(SEED_TRIGGERS)("seed $seed: $service $metric $threshold -> $action", (t) => {
    const config = loadConfig(`${examples}${t.file}`);
    const list = config.services[t.service]?.environments.production?.guardrails ?? [];
    const found = list.filter((g) => simName(g) === t.metric && g.threshold === t.threshold && g.action === t.action);
    expect(found, list.map((g) => `${simName(g)} ${g.threshold} ${g.action}`).join("; ")).toHaveLength(1);
    const g = found[0] as Guardrail;
    if (t.action !== "alert") expect(pagesOnBreach(g)).toBe(true);
    if (t.period !== undefined) expect(g.period).toBe(t.period);
    if (t.for !== undefined) expect(g.for).toBe(t.for);
  });
});

describe("seed 004: each service is judged by its own metrics", () => {
  const config = loadConfig(`${examples}ecommerce.yml`);
  const of = (service: string) => config.services[service]?.environments.production;

  it("does not judge a frontend deploy by database errors or payment failures", () => {
    const names = (of("frontend")?.guardrails ?? []).map(simName);
    expect(names).not.toContain("Errors");
    expect(names).not.toContain("FailureRate");
    expect((of("backend")?.guardrails ?? []).map(simName)).toEqual(expect.arrayContaining(["Errors", "FailureRate"]));
  });

  it.each(["frontend", "backend"])(
    "reads %s's response time from its own target group, not the whole ALB",
    (service) => {
      const se = of(service);
      const albMetrics = (se?.guardrails ?? []).flatMap((g) =>
        typeof g.metric !== "string" && "namespace" in g.metric && g.metric.namespace === "AWS/ApplicationELB"
          ? [g.metric]
          : [],
      );
      expect(albMetrics.length).toBeGreaterThan(0);
      // The target group as ALB metrics name it: the end of its ARN (targetgroup/NAME/ID).
      const own = se?.load_balancer?.target_group.split(":").slice(5).join(":");
      expect(own).toMatch(new RegExp(`^targetgroup/${service}/`));
      for (const m of albMetrics) expect(m.dimensions.TargetGroup).toBe(own);
    },
  );

  it("rolls production back by switching the listener back to blue", () => {
    expect(config.environments.production?.rollback_strategy).toEqual({ type: "BLUE_GREEN", bake_time: 0 });
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
      // production-green up and health-checked in a few minutes, 10% for 10 min, then 100% and the 30-min bake.
      ":advance 65m",
    );
    expect(s.card(1)).toContain("Succeeded");
    await s.run(":as tom", '/rollback frontend production --reason "checkout broken"', ":click Roll back");
    const before = s.mark();
    expect((await s.con.store.deployments.get(2))?.status).toBe("awaiting_approval");
    await s.run(":as mike", ":click Approve", ":advance 1m");
    expect(s.awsOps(before)).not.toContain("ModifyListener");
    await s.run(":as jane", ":click Approve");
    // Blue still runs the previous version (kept 24 h): the listener is switched back to it.
    expect(s.awsOps(before)).toContain("ModifyListener");
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
        // A check reads up to now; the one read of the window before the deploy ends at its start.
        const check = Date.parse(String(e.input?.EndTime)) === Date.parse(e.at);
        return check && mins > fromMin && mins <= toMin && queries.some((q) => q.includes("portal production"));
      }).length ?? 0;
    await s.run(":advance 150m");
    // Minutes 5, 10 ... 30, then 45, 60 ... 120, then nothing.
    expect(checksBetween(0, 30)).toBe(6);
    expect(checksBetween(30, 120)).toBe(6);
    expect(checksBetween(120, 150)).toBe(0);
    expect((await s.con.store.deployments.get(1))?.status).toBe("succeeded");
  });
});
