import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SimPagerDuty } from "../../src/adapters/sim/pagerduty.js";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import type { EnvironmentPolicy } from "../../src/config/schema.js";
import { canOverride, decideRollbackAuthority } from "../../src/policies/rollback.js";
import { OnCallDirectory } from "../../src/services/oncall.js";
import { People } from "../../src/services/people.js";

const config = loadConfig(fileURLToPath(new URL("../../examples/deploybot.yml", import.meta.url)));
const production = config.environments.production as EnvironmentPolicy;
const slackIdByEmail = new Map(Object.values(config.users).map((u) => [u.email?.toLowerCase(), u.slack_id]));

/** The real chain the bot uses: SimWorld → SimPagerDuty → OnCallDirectory (no cache) → People → the policy. */
async function decide(user: string, erinOnCall: boolean, pagerDutyReachable: boolean) {
  const clock = new ManualClock("2026-11-24T10:15:00+02:00");
  const world = new SimWorld(config, clock);
  world.setOnCall(erinOnCall ? "erin" : null);
  world.setPagerDutyReachable(pagerDutyReachable);
  const directory = new OnCallDirectory({
    pager: new SimPagerDuty(world),
    scheduleIds: config.pagerduty?.schedules ?? [],
    maxLevel: config.pagerduty?.max_escalation_level ?? 1,
    cacheMs: 0,
    clock,
    resolveEmail: async (email) => slackIdByEmail.get(email.toLowerCase()),
  });
  const people = new People(config, directory);
  const person = people.bySlackId(config.users[user]?.slack_id as string);
  const held = await people.rolesOf(person);
  return decideRollbackAuthority({
    environment: "production",
    policy: production,
    user: person.name,
    roles: held.roles,
    oncall: held.oncall,
  });
}

const ERIN_ON_CALL = "erin is on call in schedule PC360OPS, level 1";
const NOT_CHECKED = /PagerDuty could not be checked.*so the on-call right was not granted/;
const NEEDS = /^Rolling back production needs devops_lead or being on call\./;

type Case = [user: string, erinOnCall: boolean, reachable: boolean, allowed: boolean, reason: string | RegExp];

const cases: Case[] = [
  ["carol", true, true, true, "carol holds devops_lead"],
  ["carol", false, true, true, "carol holds devops_lead"],
  ["carol", true, false, true, "carol holds devops_lead"],
  ["carol", false, false, true, "carol holds devops_lead"],
  ["erin", true, true, true, ERIN_ON_CALL],
  ["erin", false, true, false, /erin holds engineer and is not on call \(schedule PC360OPS, level 1\)\.$/],
  ["erin", true, false, false, NOT_CHECKED],
  ["erin", false, false, false, NOT_CHECKED],
  ["alice", true, true, false, /alice holds engineer and is not on call/],
  ["alice", false, true, false, /alice holds engineer and is not on call/],
  ["alice", true, false, false, NOT_CHECKED],
  ["alice", false, false, false, NOT_CHECKED],
  ["frank", true, true, false, /frank holds no role and is not on call/],
  ["frank", false, true, false, /frank holds no role and is not on call/],
  ["frank", true, false, false, NOT_CHECKED],
  ["frank", false, false, false, NOT_CHECKED],
  ["dave", true, true, false, /dave holds cto, executive and is not on call/],
  ["dave", false, true, false, /dave holds cto, executive and is not on call/],
  ["dave", true, false, false, NOT_CHECKED],
  ["dave", false, false, false, NOT_CHECKED],
];

describe("rollback authority in production (roles from the config, on call from PagerDuty)", () => {
  it.each(cases)(
    "decides %s (erin on call: %s, PagerDuty reachable: %s) → allowed: %s, reason %s",
    async (user, erinOnCall, reachable, allowed, reason) => {
      const verdict = await decide(user, erinOnCall, reachable);

      expect(verdict.allowed).toBe(allowed);
      if (typeof reason === "string") expect(verdict.reason).toBe(reason);
      else expect(verdict.reason).toMatch(reason);
      if (!allowed) expect(verdict.reason).toMatch(NEEDS);
    },
  );

  it("grants erin's on-call right again as soon as PagerDuty answers, since nothing is cached", async () => {
    const clock = new ManualClock("2026-11-24T10:15:00+02:00");
    const world = new SimWorld(config, clock);
    const directory = new OnCallDirectory({
      pager: new SimPagerDuty(world),
      scheduleIds: ["PC360OPS"],
      maxLevel: 1,
      cacheMs: 0,
      clock,
      resolveEmail: async (email) => slackIdByEmail.get(email.toLowerCase()),
    });
    const people = new People(config, directory);
    const erin = people.bySlackId("U0ERIN001");

    world.setPagerDutyReachable(false);
    expect((await people.rolesOf(erin)).roles.has("oncall")).toBe(false);
    world.setPagerDutyReachable(true);
    expect((await people.rolesOf(erin)).roles.has("oncall")).toBe(true);
  });

  it("falls back to the deploy approvers where there is no rollback section, and to anyone where nobody approves", () => {
    const staging = config.environments.staging as EnvironmentPolicy;
    const verdict = decideRollbackAuthority({
      environment: "production",
      policy: { ...production, rollback: undefined, approvals: [{ name: "lead", from: ["devops_lead"], count: 1 }] },
      user: "frank",
      roles: new Set(),
      oncall: "not on call",
    });
    expect(verdict).toEqual({
      allowed: false,
      reason: "Rolling back production needs devops_lead. frank holds no role.",
    });
    // Staging has neither a rollback section nor approvals: anyone may roll it back.
    expect(
      decideRollbackAuthority({
        environment: "staging",
        policy: staging,
        user: "frank",
        roles: new Set(),
        oncall: "not on call",
      }),
    ).toEqual({ allowed: true, reason: "staging has no rollback restriction", approvals: [] });
  });
});

describe("who may override a pending automatic rollback", () => {
  it.each([
    ["dave", ["cto", "executive"], true],
    ["carol", ["devops_lead"], false],
    ["erin", ["engineer", "oncall"], false],
    ["frank", [], false],
  ])("answers %s holding %j → may override: %s", (_who, roles, expected) => {
    expect(canOverride(production, new Set(roles))).toBe(expected);
  });

  it("takes dave's override roles from the config, not from a fixed list", async () => {
    const people = new People(config, null);
    expect(canOverride(production, (await people.rolesOf(people.bySlackId("U0DAVE001"))).roles)).toBe(true);
    expect(canOverride(production, (await people.rolesOf(people.bySlackId("U0CAROL01"))).roles)).toBe(false);
    expect(canOverride({ ...production, override: ["cto"] }, new Set(["cto"]))).toBe(true);
  });
});
