import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { EnvironmentPolicy, Guardrail } from "../../src/config/schema.js";
import { approverRoles } from "../../src/policies/approvals.js";
import { type CheckRecord, guardrailWindowMs, judgeStep, type StepFacts } from "../../src/policies/steps.js";

const config = loadConfig(fileURLToPath(new URL("../../examples/deploybot.yml", import.meta.url)));
const guardrails = config.services.web?.environments.production?.guardrails as Guardrail[];

const SINCE = new Date("2026-11-24T08:19:15Z");
const min = (m: number) => new Date(SINCE.getTime() + m * 60_000);

/** Every guardrail's last verdict `status`, reached at `at` (conclusive ones only move lastConclusiveAt). */
function allChecks(status: string, at: Date, except: Record<string, CheckRecord> = {}): Map<string, CheckRecord> {
  const conclusive = status === "ok" || status === "breaching";
  return new Map(
    guardrails.map((g) => [
      g.name,
      except[g.name] ?? { lastStatus: status, lastConclusiveAt: conclusive ? at.toISOString() : null },
    ]),
  );
}

/** Step 2 (50%) of seed 000's schedule: 10% from minute 0, 50% from minute 10, judged at minute 25. */
const facts = (over: Partial<StepFacts> = {}): StepFacts => ({
  guardrails,
  checks: allChecks("ok", min(24)),
  incidents: [],
  stepAt: min(10),
  since: SINCE,
  now: min(25),
  ...over,
});

describe("judgeStep: the analysis at the end of a traffic step", () => {
  it.each<[string, Partial<StepFacts>, "pass" | "hold" | "breach", string]>([
    ["every guardrail judged ok during the step", {}, "pass", "9 guardrails passed"],
    [
      "a guardrail whose last conclusive verdict is from the step before",
      {
        checks: allChecks("ok", min(24), {
          "error rate (rollback)": { lastStatus: "ok", lastConclusiveAt: min(9).toISOString() },
        }),
      },
      "hold",
      "no verdict yet from “error rate (rollback)” (too few requests or late data)",
    ],
    [
      "too few requests: the error rate is inconclusive now",
      {
        checks: allChecks("ok", min(24), {
          "error rate (rollback)": { lastStatus: "inconclusive", lastConclusiveAt: min(20).toISOString() },
        }),
      },
      "hold",
      "no verdict yet from “error rate (rollback)”",
    ],
    [
      "a warning breaching (Slack only)",
      {
        checks: allChecks("ok", min(24), {
          "error rate (warning)": { lastStatus: "breaching", lastConclusiveAt: min(24).toISOString() },
        }),
      },
      "hold",
      "warning “error rate (warning)” breaching",
    ],
    [
      "a guardrail that rolls back, breaching before its incident is open",
      {
        checks: allChecks("ok", min(24), {
          "p95 latency (rollback)": { lastStatus: "breaching", lastConclusiveAt: min(24).toISOString() },
        }),
      },
      "breach",
      "“p95 latency (rollback)” breaching",
    ],
    [
      "an incident waiting out its grace period",
      { incidents: [{ guardrail: "error rate (rollback)", state: "rollback_pending", blocking: true }] },
      "breach",
      "“error rate (rollback)” rollback pending: the step holds",
    ],
    [
      "a breach an executive chose to continue despite",
      {
        checks: allChecks("ok", min(24), {
          "error rate (rollback)": { lastStatus: "breaching", lastConclusiveAt: min(24).toISOString() },
        }),
        incidents: [{ guardrail: "error rate (rollback)", state: "overridden", blocking: false }],
      },
      "pass",
      "passed",
    ],
  ])("%s: %s", (_what, over, outcome, reason) => {
    const verdict = judgeStep(facts(over));
    expect(verdict.outcome).toBe(outcome);
    expect(verdict.reason).toContain(reason);
  });

  it("leaves guardrails whose window is longer than the new version's traffic to later steps", () => {
    // At minute 10 the 10- and 15-minute guardrails cannot have judged the new version yet: they do not hold step 1.
    const verdict = judgeStep(facts({ stepAt: SINCE, now: min(10), checks: allChecks("inconclusive", min(9), {}) }));
    const young = guardrails.filter((g) => guardrailWindowMs(g) > 10 * 60_000).map((g) => `“${g.name}”`);
    expect(young.length).toBeGreaterThan(0);
    expect(verdict.outcome).toBe("hold");
    for (const name of young) expect(verdict.reason).not.toContain(name);
    expect(verdict.reason).toContain("“error rate (rollback)”");
  });

  it("holds when no guardrail could judge yet, and passes a target with no guardrails", () => {
    expect(judgeStep(facts({ now: min(2), stepAt: SINCE })).outcome).toBe("hold");
    expect(judgeStep(facts({ guardrails: [] }))).toEqual({ outcome: "pass", reason: "no guardrails are configured" });
  });

  it("needs a guardrail's whole window plus the period the first shift fell in", () => {
    const fiveMinutes = guardrails.find((g) => g.name === "error rate (rollback)") as Guardrail;
    expect(guardrailWindowMs(fiveMinutes)).toBe(6 * 60_000);
  });
});

describe("approverRoles: who may pause and resume a deploy's steps", () => {
  it("is everyone who may approve a production deploy, by any rule", () => {
    expect(approverRoles(config.environments.production as EnvironmentPolicy).sort()).toEqual([
      "cto",
      "devops_lead",
      "oncall",
      "tech_lead",
    ]);
  });

  it("is nobody in particular where no approval is asked for", () => {
    expect(approverRoles(config.environments.staging as EnvironmentPolicy)).toEqual([]);
  });
});
