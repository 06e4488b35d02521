import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { ApprovalRule, EnvironmentPolicy } from "../../src/config/schema.js";
import { type Approver, approvalProgress, canApprove } from "../../src/policies/approvals.js";
import { type DeployRequest, decideDeploy, type LockHolder } from "../../src/policies/gate.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/deploybot.yml", import.meta.url));
const config = loadConfig(EXAMPLE);
const production = config.environments.production as EnvironmentPolicy;
const staging = config.environments.staging as EnvironmentPolicy;
const JNB = "Africa/Johannesburg";

/** "2026-11-21 10:00" read as SAST (UTC+2 all year). */
const sast = (local: string) => new Date(`${local.replace(" ", "T")}:00+02:00`);

const SATURDAY = "2026-11-21 10:00";
const TUESDAY = "2026-11-24 10:15";
const THURSDAY = "2026-11-26 10:15";

const request = (over: Partial<DeployRequest> = {}): DeployRequest => ({
  service: "web",
  environment: "production",
  version: "v1.4.2",
  requester: "alice",
  hotfix: false,
  emergency: null,
  ...over,
});

const baking: LockHolder = {
  deploymentId: 7,
  holder: "alice",
  version: "v1.4.2",
  status: "baking",
  since: sast("2026-11-24 10:19"),
};

const noEmergencyRule: EnvironmentPolicy = { ...production, emergency: undefined };

describe("decideDeploy with the Comply360 policies (examples/deploybot.yml, Africa/Johannesburg)", () => {
  it.each([
    {
      name: "denies production on a Saturday, naming the weekend freeze and when it ends, relatively",
      policy: production,
      at: SATURDAY,
      req: request(),
      lock: null,
      outcome: "deny",
      reasons: ["Weekend freeze", "Mon 23 Nov 09:00", "(in "],
    },
    {
      name: "asks for one tech lead or DevOps lead on a Tuesday at 10:15, inside the window",
      policy: production,
      at: TUESDAY,
      req: request(),
      lock: null,
      outcome: "needs_approval",
      kind: "normal",
      rule: [{ from: ["tech_lead", "devops_lead"], count: 1 }],
      reasons: ["Tue/Wed morning window"],
    },
    {
      name: "denies production on a Thursday at 10:15, outside the Tue/Wed window",
      policy: production,
      at: THURSDAY,
      req: request(),
      lock: null,
      outcome: "deny",
      reasons: ["outside its deploy windows", "Tue 01 Dec 10:00"],
    },
    {
      name: "allows staging on a Saturday without approval",
      policy: staging,
      at: SATURDAY,
      req: request({ environment: "staging" }),
      lock: null,
      outcome: "allow",
      reasons: ["needs no approval"],
    },
    {
      name: "allows staging on a Thursday night without approval",
      policy: staging,
      at: "2026-11-26 23:30",
      req: request({ environment: "staging" }),
      lock: null,
      outcome: "allow",
      reasons: ["needs no approval"],
    },
    {
      name: "asks a hotfix on a Tuesday for two expedited approvals",
      policy: production,
      at: TUESDAY,
      req: request({ hotfix: true }),
      lock: null,
      outcome: "needs_approval",
      kind: "hotfix",
      rule: [{ from: ["tech_lead", "devops_lead", "cto"], count: 2 }],
      reasons: ["A hotfix needs approval"],
    },
    {
      name: "lets an emergency on a Saturday through only with an override approval, recording the bypassed freeze",
      policy: production,
      at: SATURDAY,
      req: request({ emergency: "payments down" }),
      lock: null,
      outcome: "needs_approval",
      kind: "emergency",
      rule: [{ from: ["cto", "oncall"], count: 1 }],
      bypassed: ["freeze: Weekend freeze"],
      reasons: ["payments down", "never the requester"],
    },
    {
      name: "denies while the lock is held, naming the holder, version, phase and since when",
      policy: production,
      at: "2026-11-24 10:30",
      req: request({ version: "v1.4.3", requester: "bob" }),
      lock: baking,
      outcome: "deny",
      reasons: ["deploy #7", "alice", "v1.4.2", "(baking)", "Tue 24 Nov 10:19", "11 min ago"],
    },
    {
      name: "denies an emergency when the environment has no emergency approvers",
      policy: noEmergencyRule,
      at: SATURDAY,
      req: request({ emergency: "payments down" }),
      lock: null,
      outcome: "deny",
      reasons: ["Weekend freeze", "no emergency approvers configured"],
    },
  ] as Array<{
    name: string;
    policy: EnvironmentPolicy;
    at: string;
    req: DeployRequest;
    lock: LockHolder | null;
    outcome: string;
    kind?: string;
    rule?: Array<{ from: string[]; count: number }>;
    bypassed?: string[];
    reasons: string[];
  }>)("$name", ({ policy, at, req, lock, outcome, kind, rule, bypassed, reasons }) => {
    const d = decideDeploy({ request: req, policy, timeZone: JNB, now: sast(at), lock });
    expect(d.outcome).toBe(outcome);
    const said = d.reasons.join("\n");
    for (const r of reasons) expect(said).toContain(r);
    if (d.outcome === "needs_approval") {
      expect(d.kind).toBe(kind);
      expect(d.rule.map((g) => ({ from: g.from, count: g.count }))).toEqual(rule);
    }
    expect(d.bypassed).toEqual(expect.arrayContaining(bypassed ?? []));
    if (!bypassed) expect(d.bypassed).toEqual([]);
  });
});

const who = (user: string, ...roles: string[]): Approver => ({ user, roles: new Set(roles) });

const leadAndPm: ApprovalRule = [
  { from: ["tech_lead"], count: 1 },
  { from: ["project_manager"], count: 1 },
];
const lead = production.approvals;
const hotfix = production.hotfix_approvals as ApprovalRule;

describe("approvalProgress", () => {
  it.each([
    {
      name: "is not satisfied by one person holding both roles",
      approvers: [who("bob", "tech_lead", "project_manager")],
      satisfied: false,
    },
    {
      name: "is satisfied by a tech lead and a project manager",
      approvers: [who("bob", "tech_lead"), who("pat", "project_manager")],
      satisfied: true,
    },
    {
      name: "is satisfied whatever the order when the double-role holder clicks first",
      approvers: [who("bob", "tech_lead", "project_manager"), who("tom", "tech_lead")],
      satisfied: true,
    },
    {
      name: "is satisfied whatever the order when the double-role holder clicks last",
      approvers: [who("tom", "tech_lead"), who("bob", "tech_lead", "project_manager")],
      satisfied: true,
    },
    {
      name: "is not satisfied by two tech leads",
      approvers: [who("bob", "tech_lead"), who("tom", "tech_lead")],
      satisfied: false,
    },
    { name: "is not satisfied by nobody", approvers: [], satisfied: false },
  ])("$name (tech lead AND project manager)", ({ approvers, satisfied }) => {
    const p = approvalProgress(leadAndPm, approvers);
    expect(p.satisfied).toBe(satisfied);
    const counted = p.groups.flatMap((g) => g.approvedBy);
    expect(new Set(counted).size).toBe(counted.length);
  });

  it("assigns the double-role holder to the group nobody else can fill", () => {
    const p = approvalProgress(leadAndPm, [who("bob", "tech_lead", "project_manager"), who("tom", "tech_lead")]);
    expect(p.groups.map((g) => g.approvedBy)).toEqual([["tom"], ["bob"]]);
  });

  it.each([
    { name: "is not satisfied by one hotfix approver", approvers: [who("bob", "tech_lead")], satisfied: false },
    {
      name: "is satisfied by two different hotfix approvers",
      approvers: [who("bob", "tech_lead"), who("carol", "devops_lead")],
      satisfied: true,
    },
  ])("$name (2 of tech_lead/devops_lead/cto)", ({ approvers, satisfied }) => {
    expect(approvalProgress(hotfix, approvers).satisfied).toBe(satisfied);
  });
});

describe("canApprove", () => {
  it.each([
    {
      name: "refuses the requester approving their own deploy",
      rule: lead,
      approver: who("alice", "tech_lead"),
      already: [],
      ok: false,
      says: ["you cannot approve it"],
    },
    {
      name: "refuses someone with no role, listing the roles that may approve",
      rule: lead,
      approver: who("frank"),
      already: [],
      ok: false,
      says: ["tech_lead, devops_lead", "You hold none"],
    },
    {
      name: "refuses the same approver twice",
      rule: hotfix,
      approver: who("bob", "tech_lead"),
      already: [who("bob", "tech_lead")],
      ok: false,
      says: ["already approved"],
    },
    {
      name: "refuses an approver whose roles are already covered, saying what is still needed",
      rule: leadAndPm,
      approver: who("tom", "tech_lead"),
      already: [who("bob", "tech_lead")],
      ok: false,
      says: ["already covered", "1 from project_manager"],
    },
    {
      name: "accepts a tech lead on someone else's deploy",
      rule: lead,
      approver: who("bob", "tech_lead"),
      already: [],
      ok: true,
      says: [],
    },
    {
      name: "accepts a second, different hotfix approver",
      rule: hotfix,
      approver: who("carol", "devops_lead"),
      already: [who("bob", "tech_lead")],
      ok: true,
      says: [],
    },
  ])("$name", ({ rule, approver, already, ok, says }) => {
    const check = canApprove(rule, approver, "alice", already);
    expect(check.ok).toBe(ok);
    const reason = check.ok ? "" : check.reason;
    for (const s of says) expect(reason).toContain(s);
  });
});
