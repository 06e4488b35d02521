import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { summarize } from "../../src/cli.js";
import { loadConfig, parseConfig } from "../../src/config/load.js";
import type { Config, EnvironmentPolicy } from "../../src/config/schema.js";
import { ConfigError, DeploybotError, ErrorCode } from "../../src/errors.js";
import { decideDeploy } from "../../src/policies/gate.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/deploybot.yml", import.meta.url));
const EXAMPLE_TEXT = readFileSync(EXAMPLE, "utf8");

/** The example with one small edit; fails loudly when the edit no longer applies, so a case never tests nothing. */
function edited(find: string, replace: string): string {
  const at = EXAMPLE_TEXT.indexOf(find);
  if (at < 0) throw new Error(`the example no longer contains ${JSON.stringify(find)}`);
  return EXAMPLE_TEXT.slice(0, at) + replace + EXAMPLE_TEXT.slice(at + find.length);
}

/** The 1-based line of the example on which `text` first appears. */
function lineOf(text: string): number {
  const at = EXAMPLE_TEXT.indexOf(text);
  if (at < 0) throw new Error(`the example no longer contains ${JSON.stringify(text)}`);
  return EXAMPLE_TEXT.slice(0, at).split("\n").length;
}

/** Parses `text` as `file` and returns the ConfigError; fails the test when it parses. */
function configError(text: string, file = "broken.yml"): ConfigError {
  try {
    parseConfig(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError, but the config parsed");
}

const tmp = mkdtempSync(join(tmpdir(), "deploybot-config-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the example config (examples/deploybot.yml)", () => {
  const config: Config = loadConfig(EXAMPLE);
  const production = config.environments.production;
  const staging = config.environments.staging;

  it("is valid and reads the time zone, the users and the channels", () => {
    expect(config.timezone).toBe("Africa/Johannesburg");
    expect(Object.keys(config.users)).toEqual(["alice", "bob", "carol", "dave", "erin", "frank"]);
    expect(config.users.alice?.slack_id).toBe("U0ALICE01");
    expect(config.channels).toEqual({ deploys: "#deploys", incidents: "#incidents" });
  });

  it("drops the x- anchor section once its aliases are resolved", () => {
    expect(Object.keys(config)).not.toContain("x-guardrails");
  });

  it("opens production only on Tuesday and Wednesday from 10:00 to 12:00", () => {
    expect(production?.windows).toEqual([
      { name: "Tue/Wed morning window", days: ["tue", "wed"], start: "10:00", end: "12:00" },
    ]);
  });

  it("freezes production at the weekend by cron, at month end, on ZA public holidays and in tax season", () => {
    expect(production?.freezes).toEqual([
      { name: "Weekend freeze", start: "0 17 * * 5", end: "0 9 * * 1" },
      { name: "Month-end freeze", start: "0 0 L * *", end: "0 9 1 * *" },
      { name: "South African public holidays", holidays: "ZA" },
      { name: "Tax season filing peak", from: "2027-10-19T00:00:00+02:00", to: "2027-10-24T00:00:00+02:00" },
    ]);
  });

  it("asks one approval from a tech lead or the DevOps lead, two for a hotfix, and the CTO or on-call in an emergency", () => {
    expect(production?.approvals).toEqual([{ name: "lead", from: ["tech_lead", "devops_lead"], count: 1 }]);
    expect(production?.hotfix_approvals).toEqual([
      { name: "expedited review", from: ["tech_lead", "devops_lead", "cto"], count: 2 },
    ]);
    expect(production?.emergency?.approvals).toEqual([{ name: "emergency", from: ["cto", "oncall"], count: 1 }]);
    expect(production?.approval_ttl).toBe(30 * 60_000);
  });

  it("lets the DevOps lead and the on-call roll back, and the executive override", () => {
    expect(production?.rollback).toEqual({ allowed: ["devops_lead", "oncall"], approvals: [] });
    expect(production?.override).toEqual(["executive"]);
    expect(config.roles.executive?.users).toEqual(["dave"]);
  });

  it("bakes production for 30 minutes (1 800 000 ms) and staging for 10", () => {
    expect(production?.bake).toBe(1_800_000);
    expect(production?.rollback_grace).toBe(120_000);
    expect(staging?.bake).toBe(600_000);
  });

  it.each(["web", "api"])(
    "guards %s in production: error rate over 1%% for 5 min rolls back and is critical",
    (svc) => {
      const guardrails = config.services[svc]?.environments.production?.guardrails ?? [];
      expect(guardrails).toHaveLength(6);
      expect(guardrails[0]).toMatchObject({
        name: "error rate (rollback)",
        metric: "error_rate",
        threshold: "> 1%",
        for: 300_000,
        min_requests: 100,
        severity: "critical",
        action: "rollback",
      });
      expect(guardrails.filter((g) => g.action === "rollback").map((g) => g.metric)).toEqual([
        "error_rate",
        "p95_latency",
      ]);
      expect(guardrails.find((g) => g.metric === "cpu")).toMatchObject({ threshold: "> 80%", for: 900_000 });
    },
  );

  it("lets staging deploy any time: no windows, freezes or approvals", () => {
    expect(staging?.windows).toEqual([]);
    expect(staging?.freezes).toEqual([]);
    expect(staging?.approvals).toEqual([]);
    expect(staging?.hotfix_approvals ?? []).toEqual([]);
    expect(staging?.emergency).toBeUndefined();
    expect(config.services.web?.environments.staging?.guardrails).toEqual([]);
  });

  it("runs web as a canary and api blue/green in production, both rolling in staging", () => {
    expect(config.services.web?.environments.production?.strategy).toEqual({
      type: "CANARY",
      canary_percent: 10,
      canary_bake: 300_000,
    });
    expect(config.services.api?.environments.production?.strategy).toEqual({ type: "BLUE_GREEN", bake_time: 900_000 });
    expect(config.services.api?.environments.staging?.strategy).toEqual({ type: "ROLLING" });
  });

  it("simulates erin on call and v1.4.0 everywhere", () => {
    expect(config.simulation).toEqual({ oncall: "erin", initial_version: "v1.4.0" });
  });

  it("parses the same from text as from the file", () => {
    expect(parseConfig(EXAMPLE_TEXT, "x.yml")).toEqual(config);
  });
});

describe("a broken config", () => {
  it.each<{ what: string; text: () => string; fragments: (string | RegExp)[] }>([
    {
      what: "a duration that is not one (approval_ttl: soon)",
      text: () => edited("approval_ttl: 30m", "approval_ttl: soon"),
      fragments: [
        `environments.production.approval_ttl (line ${lineOf("approval_ttl: 30m")})`,
        'found "soon"',
        "expected a duration such as 90s, 5m, 2h or 1d",
      ],
    },
    {
      what: "an unknown time zone",
      text: () => edited("timezone: Africa/Johannesburg", "timezone: Africa/Joburg"),
      fragments: [
        `timezone (line ${lineOf("timezone: Africa")})`,
        'found "Africa/Joburg"',
        "expected an IANA time zone such as Africa/Johannesburg",
      ],
    },
    {
      what: "an unknown key",
      text: () => edited("    bake: 10m\n", "    bake: 10m\n    bakery: 5m\n"),
      fragments: ["environments.staging", /\(line 8[12]\)/, "unknown key 'bakery'"],
    },
    {
      what: "a cron expression with an hour of 25",
      text: () => edited('start: "0 17 * * 5"', 'start: "0 25 * * 5"'),
      fragments: [
        `environments.production.freezes[0].start (line ${lineOf('start: "0 17 * * 5"')})`,
        "'0 25 * * 5' is not a valid cron expression",
        "hour",
      ],
    },
    {
      what: "a cron expression with four fields",
      text: () => edited('start: "0 17 * * 5"', 'start: "0 17 * *"'),
      fragments: [
        "environments.production.freezes[0].start",
        'found "0 17 * *"',
        "expected a five-field cron expression such as '0 17 * * 5'",
      ],
    },
    {
      what: "invalid YAML syntax",
      text: () => edited("  interval: 60s", "  interval: [60s"),
      // yaml reports an unclosed flow sequence where it gives up, a few lines further on.
      fragments: [/line \d+: Flow sequence/],
    },
    {
      what: "a key given twice",
      text: () => edited("monitor:\n", "monitor:\n  interval: 30s\n"),
      // The duplicate is the original `interval` line, one line lower after the insertion.
      fragments: [`line ${lineOf("  interval: 60s") + 1}: Map keys must be unique`],
    },
    {
      what: "no channels section",
      text: () =>
        edited(
          'channels:\n  deploys: "#deploys"\n  incidents: "#incidents" # §6.3 "Team: Slack #incidents channel"\n',
          "",
        ),
      fragments: ["channels", "found nothing", "expected required (object)"],
    },
    {
      what: "a service in an unknown environment",
      text: () =>
        edited(
          "      staging:\n        ecs: { cluster: comply360-staging, service: web",
          "      stagin:\n        ecs: { cluster: comply360-staging, service: web",
        ),
      fragments: [
        "services.web.environments.stagin",
        /\(line 10[89]\)/,
        "unknown environment 'stagin'; environments are staging, production",
      ],
    },
    {
      what: "a window that ends before it starts",
      text: () => edited('start: "10:00", end: "12:00"', 'start: "12:00", end: "10:00"'),
      fragments: [
        `environments.production.windows[0] (line ${lineOf("Tue/Wed morning window")})`,
        "window ends (10:00) before it starts (12:00)",
      ],
    },
    {
      what: "an unknown approver role",
      text: () => edited("from: [tech_lead, devops_lead], count: 1", "from: [tech_lead, tech_led], count: 1"),
      fragments: [
        `environments.production.approvals[0].from[1] (line ${lineOf("from: [tech_lead, devops_lead], count: 1")})`,
        "unknown role 'tech_led'; roles are engineer, tech_lead, devops_lead, cto, executive, oncall",
      ],
    },
    {
      what: "an unknown user as the simulated on-call",
      text: () => edited("oncall: erin", "oncall: erinn"),
      fragments: [
        `simulation.oncall (line ${lineOf("oncall: erin")})`,
        "unknown user 'erinn'; users are alice, bob, carol, dave, erin, frank",
      ],
    },
    {
      what: "an unknown user in a role",
      text: () => edited("devops_lead: { users: [carol] }", "devops_lead: { users: [karol] }"),
      fragments: ["roles.devops_lead.users[0]", /\(line \d+\)/, "unknown user 'karol'"],
    },
    {
      what: "an unknown deploy strategy",
      text: () => edited("strategy: { type: BLUE_GREEN, bake_time: 15m }", "strategy: { type: RAINBOW }"),
      fragments: [
        "services.api.environments.production.strategy.type",
        'found "RAINBOW"',
        /ROLLING.*BLUE_GREEN.*LINEAR.*CANARY/,
      ],
    },
  ])("names the file, the path, the line, what was found and what is allowed for $what", ({ text, fragments }) => {
    const err = configError(text(), "ops/deploybot.yml");
    expect(err.code).toBe(ErrorCode.ConfigInvalid);
    expect(err.file).toBe("ops/deploybot.yml");
    expect(err.message.startsWith("ops/deploybot.yml is not a valid deploybot config:\n  - ")).toBe(true);
    for (const fragment of fragments) {
      if (typeof fragment === "string") expect(err.message).toContain(fragment);
      else expect(err.message).toMatch(fragment);
    }
  });

  it("lists every problem, not only the first", () => {
    const schema = edited("approval_ttl: 30m", "approval_ttl: soon").replace(
      "timezone: Africa/Johannesburg",
      "timezone: Africa/Joburg",
    );
    expect(configError(schema).problems).toHaveLength(2);
    const references = edited("oncall: erin", "oncall: erinn").replace(
      "from: [tech_lead, devops_lead], count: 1",
      "from: [tech_lead, tech_led], count: 1",
    );
    const problems = configError(references).problems.join("\n");
    expect(problems).toContain("unknown role 'tech_led'");
    expect(problems).toContain("unknown user 'erinn'");
  });

  it("says what the top level must be when the file is not a mapping", () => {
    expect(configError("- just\n- a list\n").message).toContain(
      "the file must be a YAML mapping with users, channels, environments and services",
    );
  });

  it.each([
    ["a schema problem", () => edited("approval_ttl: 30m", "approval_ttl: soon")],
    ["a YAML syntax error", () => edited("  interval: 60s", "  interval: [60s")],
    ["a cross-reference problem", () => edited("oncall: erin", "oncall: erinn")],
  ])("never puts a stack trace in the message for %s", (_what, text) => {
    const message = configError(text()).message;
    expect(message).not.toContain("    at ");
    expect(message).not.toMatch(/\.ts:\d+:\d+/);
    expect(message).not.toContain("ZodError");
  });

  it("loadConfig names the file it read in the message", () => {
    const file = join(tmp, "broken.yml");
    writeFileSync(file, edited("approval_ttl: 30m", "approval_ttl: soon"));
    expect(() => loadConfig(file)).toThrow(`${file} is not a valid deploybot config`);
  });

  it("loadConfig says it cannot read a missing file, with its own code", () => {
    const file = join(tmp, "missing.yml");
    let caught: unknown;
    try {
      loadConfig(file);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DeploybotError);
    expect((caught as DeploybotError).code).toBe(ErrorCode.ConfigUnreadable);
    expect((caught as DeploybotError).message).toContain(`cannot read config file ${file}`);
  });
});

describe("an environment without hotfix_approvals", () => {
  const text = edited(
    '    hotfix_approvals: # §4.2 "Expedited review (2 approvals required)"\n      - { name: expedited review, from: [tech_lead, devops_lead, cto], count: 2 }\n',
    "",
  );
  const config = parseConfig(text, "no-hotfix-rule.yml");
  const production = config.environments.production as EnvironmentPolicy;

  it("still asks a production hotfix for the normal approvals, inside the window", () => {
    const decision = decideDeploy({
      request: {
        service: "web",
        environment: "production",
        version: "v1.4.3",
        requester: "alice",
        hotfix: true,
        emergency: null,
      },
      policy: production,
      timeZone: config.timezone,
      now: new Date("2026-11-24T10:15:00+02:00"),
      lock: null,
    });
    expect(decision.outcome).toBe("needs_approval");
    expect(decision.outcome === "needs_approval" && decision.rule).toEqual(production.approvals);
  });

  it("is summarized with the normal approvals as the hotfix rule", () => {
    expect(summarize(config, "no-hotfix-rule.yml")).toContain("hotfix 1 of tech_lead/devops_lead;");
  });
});

describe("summarize", () => {
  const summary = summarize(loadConfig(EXAMPLE), "examples/deploybot.yml");
  const lines = summary.split("\n");

  it("says which file is valid", () => {
    expect(lines[0]).toBe("examples/deploybot.yml: valid");
  });

  it("prints one line per service and environment with the ECS target and strategy", () => {
    const targets = lines.filter((l) => /^ {2}(web|api) +(staging|production) /.test(l));
    expect(targets).toHaveLength(4);
    expect(summary).toMatch(
      /web +production +af-south-1 comply360-prod\/web \[web\] CANARY · 6 guardrails \(2 roll back\)/,
    );
    expect(summary).toMatch(/api +production +af-south-1 comply360-prod\/api \[api\] BLUE_GREEN/);
    expect(summary).toMatch(/web +staging +af-south-1 comply360-staging\/web \[web\] ROLLING$/m);
  });

  it("prints who holds each role, and who the on-call is", () => {
    expect(summary).toMatch(/^ {2}tech_lead +bob, @tech-leads$/m);
    expect(summary).toMatch(/^ {2}devops_lead +carol$/m);
    expect(summary).toMatch(/^ {2}executive +dave$/m);
    expect(summary).toContain("oncall       whoever PagerDuty schedule PC360OPS has on call");
  });

  it("prints production's approvals, window and every freeze, and staging as any time", () => {
    expect(summary).toContain("approvals 1 of tech_lead/devops_lead; hotfix 2 of tech_lead/devops_lead/cto");
    expect(summary).toContain("emergency 1 of cto/oncall");
    expect(summary).toContain("rollback: devops_lead or oncall; override: executive; bake 30 min");
    expect(summary).toContain("windows: tue/wed 10:00-12:00");
    expect(summary).toContain("freeze: Weekend freeze: cron 0 17 * * 5 → 0 9 * * 1");
    expect(summary).toContain("freeze: South African public holidays: public holidays of ZA");
    expect(summary).toContain("freeze: Tax season filing peak: 2027-10-19T00:00:00+02:00 → 2027-10-24T00:00:00+02:00");
    const stagingAt = lines.findIndex((l) => l.startsWith("  staging ("));
    expect(lines[stagingAt]).toContain("approvals none");
    expect(lines[stagingAt + 2]).toBe("    windows: any time");
    expect(lines[stagingAt + 3]).toMatch(/^ {2}production \(/);
  });
});
