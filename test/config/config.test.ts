import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it, vi } from "vitest";
import { main, summarize } from "../../src/cli.js";
import { parseDuration } from "../../src/clock.js";
import { loadConfig, parseConfig } from "../../src/config/load.js";
import { cronEvery } from "../../src/config/schedule.js";
import type { Config, EnvironmentPolicy } from "../../src/config/schema.js";
import { ConfigError, DeploybotError, ErrorCode } from "../../src/errors.js";
import { decideDeploy } from "../../src/policies/gate.js";
import { cronFor } from "../../src/services/scheduler.js";

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
      expect(guardrails).toHaveLength(9);
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
        "healthy_hosts",
      ]);
      expect(guardrails.find((g) => g.metric === "healthy_hosts")).toMatchObject({
        name: "service down",
        threshold: "< 1",
        severity: "critical",
      });
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

  it("runs web in traffic steps (10/50/90/100, blue kept 24 h) and api blue/green in production, both rolling in staging", () => {
    expect(config.services.web?.environments.production?.strategy).toEqual({
      type: "STEPS",
      steps: [
        { weight: 10, pause: 600_000 },
        { weight: 50, pause: 900_000 },
        { weight: 90, pause: 1_800_000 },
        { weight: 100 },
      ],
      keep_previous: 86_400_000,
      max_inconclusive: 900_000,
      green: {
        service: "web-green",
        target_group:
          "arn:aws:elasticloadbalancing:af-south-1:123456789012:targetgroup/comply360-web-green/6d0ecf831eec9f09",
      },
      listener_rule:
        "arn:aws:elasticloadbalancing:af-south-1:123456789012:listener-rule/app/comply360-prod/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee",
    });
    expect(config.services.api?.environments.production?.strategy).toEqual({ type: "BLUE_GREEN", bake_time: 900_000 });
    expect(config.services.api?.environments.staging?.strategy).toEqual({ type: "ROLLING" });
  });

  it("simulates erin on call, v1.4.0 everywhere and healthy custom metrics", () => {
    expect(config.simulation).toEqual({
      oncall: "erin",
      initial_version: "v1.4.0",
      metrics: { ConnectionPoolUtilization: 35, DiskUsedPercent: 41 },
    });
  });

  it("rolls production back by one blue/green switch and staging by the default rolling update", () => {
    expect(production?.rollback_strategy).toEqual({ type: "BLUE_GREEN", bake_time: 0 });
    expect(staging?.rollback_strategy).toEqual({ type: "ROLLING", maximum_percent: 200, minimum_healthy_percent: 100 });
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
      fragments: [
        "environments.staging",
        new RegExp(`\\(line (${lineOf('    # "Staging deployments')}|${lineOf("    bake: 10m")})\\)`),
        "unknown key 'bakery'",
      ],
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
        new RegExp(
          `\\(line (${lineOf("      staging:\n        ecs: { cluster: comply360-staging, service: web")}|${lineOf("        ecs: { cluster: comply360-staging, service: web")})\\)`,
        ),
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
    {
      what: "a canary rollback",
      text: () =>
        edited(
          "rollback_strategy: { type: BLUE_GREEN }",
          "rollback_strategy: { type: CANARY, canary_percent: 10, canary_bake: 5m }",
        ),
      fragments: [
        `environments.production.rollback_strategy.type (line ${lineOf("rollback_strategy: { type: BLUE_GREEN }")})`,
        'found "CANARY"',
        "expected ROLLING or BLUE_GREEN: a rollback must restore all traffic at once, and CANARY would shift it back in steps",
      ],
    },
    {
      what: "a linear rollback",
      text: () =>
        edited(
          "rollback_strategy: { type: BLUE_GREEN }",
          "rollback_strategy: { type: LINEAR, step_percent: 10, step_bake: 1m }",
        ),
      fragments: [
        "environments.production.rollback_strategy.type",
        'found "LINEAR"',
        "a rollback must restore all traffic at once, and LINEAR would shift it back in steps",
      ],
    },
    {
      what: "a rollback strategy of an unknown type",
      text: () => edited("rollback_strategy: { type: BLUE_GREEN }", "rollback_strategy: { type: REDEPLOY }"),
      fragments: [
        "environments.production.rollback_strategy.type",
        'found "REDEPLOY"',
        "expected ROLLING or BLUE_GREEN",
      ],
    },
    {
      what: "a blue/green rollback that bakes",
      text: () =>
        edited("rollback_strategy: { type: BLUE_GREEN }", "rollback_strategy: { type: BLUE_GREEN, bake_time: 10m }"),
      fragments: [
        "environments.production.rollback_strategy.bake_time",
        'found "10m"',
        "expected 0: a rollback switches all traffic back at once, without a bake",
      ],
    },
    {
      what: "a rolling rollback with no room to replace a task",
      text: () =>
        edited(
          "rollback_strategy: { type: BLUE_GREEN }",
          "rollback_strategy: { type: ROLLING, maximum_percent: 100, minimum_healthy_percent: 100 }",
        ),
      fragments: [
        `environments.production.rollback_strategy.maximum_percent (line ${lineOf("rollback_strategy: { type: BLUE_GREEN }")})`,
        "maximum_percent (100) must be above minimum_healthy_percent (100)",
      ],
    },
    {
      what: "a rolling rollback keeping more than all tasks healthy",
      text: () =>
        edited(
          "rollback_strategy: { type: BLUE_GREEN }",
          "rollback_strategy: { type: ROLLING, minimum_healthy_percent: 150 }",
        ),
      fragments: ["environments.production.rollback_strategy.minimum_healthy_percent", "found 150", "100"],
    },
    {
      what: "a monitor interval of 7 s, which no cron expression can keep",
      text: () => edited("  interval: 60s", "  interval: 7s"),
      fragments: [
        `monitor.interval (line ${lineOf("  interval: 60s")})`,
        "an interval of 7 s cannot be scheduled: it must divide a minute or an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30 s",
      ],
    },
    {
      what: "a monitor interval of 45 s",
      text: () => edited("  interval: 60s", "  interval: 45s"),
      fragments: ["monitor.interval", "an interval of 45 s cannot be scheduled"],
    },
    {
      what: "a monitor interval of 90 s",
      text: () => edited("  interval: 60s", "  interval: 90s"),
      fragments: [
        "monitor.interval",
        "an interval of 90 s cannot be scheduled",
        "or 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60 min",
      ],
    },
    {
      what: "a max_lag that is not a duration",
      text: () => edited("    max_lag: 3m", "    max_lag: late"),
      fragments: [
        `services.web.environments.production.guardrails[0].max_lag (line ${lineOf("    max_lag: 3m")})`,
        'found "late"',
        "expected a duration such as 90s, 5m, 2h or 1d",
      ],
    },
    {
      what: "a max_lag of two hours",
      text: () => edited("    max_lag: 3m", "    max_lag: 2h"),
      fragments: [
        `services.web.environments.production.guardrails[0].max_lag (line ${lineOf("    max_lag: 3m")})`,
        "max_lag 2 h would judge data that old: at most 1 h",
      ],
    },
    {
      what: "an unknown already_breaching policy",
      text: () => edited("    already_breaching: compare", "    already_breaching: ignore"),
      fragments: [
        `services.web.environments.production.guardrails[0].already_breaching (line ${lineOf("    already_breaching: compare")})`,
        'found "ignore"',
        'expected one of "compare", "judge"',
      ],
    },
    {
      what: "a worse_by without a percent sign",
      text: () => edited("    worse_by: 50%", "    worse_by: 50"),
      fragments: [
        `services.web.environments.production.guardrails[0].worse_by (line ${lineOf("    worse_by: 50%")})`,
        "found 50",
        "expected a percentage such as 50%",
      ],
    },
    {
      what: "a simulated metric that is not a number",
      text: () => edited("    DiskUsedPercent: 41", "    DiskUsedPercent: lots"),
      fragments: [
        `simulation.metrics.DiskUsedPercent (line ${lineOf("    DiskUsedPercent: 41")})`,
        'found "lots"',
        "expected a number",
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

describe("a STEPS strategy that cannot run as written", () => {
  const steps =
    "            - { weight: 10, pause: 10m }\n" +
    "            - { weight: 50, pause: 15m }\n" +
    "            - { weight: 90, pause: 30m }\n" +
    "            - { weight: 100 }\n";
  const base = "services.web.environments.production.strategy";
  const RULE =
    "arn:aws:elasticloadbalancing:af-south-1:123456789012:listener-rule/app/comply360-prod/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
  const GREEN = "arn:aws:elasticloadbalancing:af-south-1:123456789012:targetgroup/comply360-web-green/6d0ecf831eec9f09";
  it.each<{ what: string; text: () => string; fragments: (string | RegExp)[] }>([
    {
      what: "steps that do not reach 100%",
      text: () => edited(steps, "            - { weight: 10, pause: 10m }\n            - { weight: 90 }\n"),
      fragments: [`${base}.steps[1].weight`, "the last step takes all the traffic: weight 100 (found 90)"],
    },
    {
      what: "a step that moves less traffic than the one before",
      text: () =>
        edited(
          steps,
          "            - { weight: 50, pause: 10m }\n            - { weight: 10, pause: 5m }\n            - { weight: 100 }\n",
        ),
      fragments: [`${base}.steps[1].weight`, "each step moves more traffic than the one before: 10% after 50%"],
    },
    {
      what: "a step before the last without a pause",
      text: () => edited("            - { weight: 50, pause: 15m }", "            - { weight: 50 }"),
      fragments: [
        `${base}.steps[1] (line ${lineOf("            - { weight: 50, pause: 15m }")})`,
        "step 2 (50%) needs a pause",
      ],
    },
    {
      what: "a pause on the last step",
      text: () => edited("            - { weight: 100 }", "            - { weight: 100, pause: 1h }"),
      fragments: [`${base}.steps[3].pause`, "the environment's bake window follows it: leave out its pause"],
    },
    {
      what: "a weight over 100",
      text: () => edited("            - { weight: 90, pause: 30m }", "            - { weight: 190, pause: 30m }"),
      fragments: [`${base}.steps[2].weight`, "found 190"],
    },
    {
      what: "both a listener rule and a listener",
      text: () =>
        edited(
          "          listener_rule:",
          '          listener: "arn:aws:elasticloadbalancing:af-south-1:123456789012:listener/app/comply360-prod/50dc6c495c0c9188/f2f7dc8efc522ab2"\n          listener_rule:',
        ),
      fragments: [base, "say where the weights are set, once: listener_rule"],
    },
    {
      what: "a listener rule given by name rather than ARN",
      text: () => edited(`"${RULE}"`, "web-production-rule"),
      fragments: [
        `${base}.listener_rule`,
        'found "web-production-rule"',
        "a listener-rule ARN such as arn:aws:elasticloadbalancing:",
      ],
    },
    {
      what: "a green target group in another region",
      text: () =>
        edited(
          "af-south-1:123456789012:targetgroup/comply360-web-green",
          "eu-west-1:123456789012:targetgroup/comply360-web-green",
        ),
      fragments: [`${base}.green.target_group`, "is in eu-west-1, but ecs.region is af-south-1"],
    },
    {
      what: "a green side that is the blue ECS service",
      text: () => edited("green: { service: web-green,", "green: { service: web,"),
      fragments: [
        `${base}.green.service`,
        "the green side needs an ECS service of its own: comply360-prod/web is the blue side (ecs)",
      ],
    },
    {
      what: "a blue target group that is not an ARN",
      text: () =>
        edited(
          'target_group: "arn:aws:elasticloadbalancing:af-south-1:123456789012:targetgroup/comply360-web/73e2d6bc24d8a067"',
          "target_group: targetgroup/comply360-web/73e2d6bc24d8a067",
        ),
      fragments: [
        "services.web.environments.production.load_balancer.target_group",
        "traffic steps set forward weights by target group ARN",
        "arn:aws:elasticloadbalancing:af-south-1:123456789012:targetgroup/comply360-web/73e2d6bc24d8a067",
      ],
    },
    {
      what: "a canary on a service without a load balancer",
      text: () =>
        edited(
          "        strategy: { type: ROLLING }\n      production:\n        # The blue side",
          `        strategy: { type: ROLLING }\n        canary: { steps: [{ weight: 5, pause: 5m }, { weight: 100 }], green: { service: web-green, target_group: "arn:aws:elasticloadbalancing:af-south-1:123456789012:targetgroup/staging-green/1" }, listener: "arn:aws:elasticloadbalancing:af-south-1:123456789012:listener/app/staging/1/2" }\n      production:\n        # The blue side`,
        ),
      fragments: ["services.web.environments.staging.canary", "traffic steps need load_balancer {name, target_group}"],
    },
    {
      what: "compare_with: stable where nothing steps",
      text: () =>
        edited(
          "    severity: critical # critical alerts page PagerDuty\n",
          "    severity: critical # critical alerts page PagerDuty\n    compare_with: stable\n",
        ),
      fragments: [
        "services.api.environments.production.guardrails[0].compare_with",
        "compare_with: stable compares the two sides of traffic steps",
      ],
    },
  ])("refuses $what, naming the path", ({ text, fragments }) => {
    const err = configError(text());
    for (const f of fragments) {
      if (typeof f === "string") expect(err.message).toContain(f);
      else expect(err.message).toMatch(f);
    }
  });

  const withCanary = (green: string, service = "web-green") =>
    edited(
      "        strategy:\n          type: STEPS\n",
      `        canary:\n          steps: [{ weight: 5, pause: 30m }, { weight: 100 }]\n          green: { service: ${service}, target_group: "${green}" }\n          listener_rule: "${RULE}"\n        strategy:\n          type: STEPS\n`,
    );

  it("accepts a --canary strategy on the same two sides as the service's own", () => {
    const config = parseConfig(withCanary(GREEN));
    expect(config.services.web?.environments.production?.canary).toMatchObject({
      type: "STEPS",
      steps: [{ weight: 5, pause: 1_800_000 }, { weight: 100 }],
      keep_previous: 86_400_000,
      max_inconclusive: 900_000,
    });
  });

  it("refuses a --canary strategy that moves traffic between other sides than the strategy", () => {
    const err = configError(
      withCanary(
        "arn:aws:elasticloadbalancing:af-south-1:123456789012:targetgroup/comply360-web-canary/1",
        "web-canary",
      ),
    );
    expect(err.message).toContain("services.web.environments.production.canary");
    expect(err.message).toContain("the canary moves traffic between the same two sides as the strategy");
  });
});

describe("the keys that judge late data and spikes from before the deploy", () => {
  const web = (config: Config) => config.services.web?.environments.production?.guardrails ?? [];

  it("reads max_lag, already_breaching and worse_by, and defaults them to 3 min, compare and 50%", () => {
    const config = parseConfig(
      edited(
        "    max_lag: 3m\n    already_breaching: compare\n    worse_by: 50%",
        "    max_lag: 5m\n    already_breaching: judge\n    worse_by: 25%",
      ),
      "x.yml",
    );
    expect(web(config)[0]).toMatchObject({ max_lag: 300_000, already_breaching: "judge", worse_by: 0.25 });
    expect(web(config)[1]).toMatchObject({ max_lag: 180_000, already_breaching: "compare", worse_by: 0.5 });
  });

  it("reads a rolling rollback's percentages, 200% and 100% unless given", () => {
    const config = parseConfig(
      edited(
        "rollback_strategy: { type: BLUE_GREEN }",
        "rollback_strategy: { type: ROLLING, minimum_healthy_percent: 50 }",
      ),
      "x.yml",
    );
    expect(config.environments.production?.rollback_strategy).toEqual({
      type: "ROLLING",
      maximum_percent: 200,
      minimum_healthy_percent: 50,
    });
  });

  it("accepts every monitor interval the scheduler can keep, from 1 s to an hour", () => {
    for (const interval of ["1s", "15s", "30s", "1m", "2m", "5m", "15m", "30m", "1h"]) {
      expect(parseConfig(edited("  interval: 60s", `  interval: ${interval}`), "x.yml").monitor.interval).toBe(
        parseDuration(interval),
      );
    }
  });
});

describe("cronEvery, the scheduler's rule for intervals", () => {
  it("accepts and refuses exactly the intervals cronFor does, with the same cron expression", () => {
    for (let ms = 500; ms <= 2 * 3_600_000; ms += 500) {
      let expected: string | undefined;
      try {
        expected = cronFor(ms);
      } catch {
        expected = undefined;
      }
      expect(cronEvery(ms)).toBe(expected);
    }
  });
});

describe("a critical guardrail without a pagerduty section", () => {
  const withoutPagerDuty = EXAMPLE_TEXT.replace(/^pagerduty:\n(?: {2}.*\n)+/m, "");
  const expected = [
    "guardrail 'error rate (rollback)' pages on a breach (severity: critical), but there is no pagerduty section, so nobody would be paged: add pagerduty (routing_key_env, api_token_env, schedules) or set severity: warning",
    "guardrail 'p95 latency (rollback)' pages on a breach (severity: critical)",
    "guardrail 'service down' pages on a breach (severity: critical)",
    "guardrail 'database connection pool exhausted' pages on a breach (severity: critical)",
    "guardrail 'disk usage' pages on a breach (severity: critical)",
  ];

  it("removes the whole pagerduty section from the example, so the cases below test something", () => {
    expect(withoutPagerDuty).not.toContain("pagerduty:");
    expect(withoutPagerDuty).not.toContain("routing_key_env");
  });

  it("is a warning in the console, with the path and the line of each guardrail", () => {
    const warnings: string[] = [];
    const config = parseConfig(withoutPagerDuty, "x.yml", { onWarning: (w) => warnings.push(w) });
    expect(config.pagerduty).toBeUndefined();
    // Five paging guardrails, shared by web and api.
    expect(warnings).toHaveLength(10);
    const line = withoutPagerDuty
      .slice(0, withoutPagerDuty.indexOf("  - name: error rate (rollback)"))
      .split("\n").length;
    expect(warnings[0]).toBe(`services.web.environments.production.guardrails[0] (line ${line}): ${expected[0]}`);
    for (const text of expected) expect(warnings.filter((w) => w.includes(text))).toHaveLength(2);
    expect(warnings.some((w) => w.includes("'error rate (warning)'"))).toBe(false);
  });

  it("is the same warning with mode console given explicitly", () => {
    const warnings: string[] = [];
    parseConfig(withoutPagerDuty, "x.yml", { mode: "console", onWarning: (w) => warnings.push(w) });
    expect(warnings).toHaveLength(10);
  });

  it("is an error in Slack mode, naming every guardrail that could not page", () => {
    let caught: unknown;
    try {
      parseConfig(withoutPagerDuty, "ops/deploybot.yml", { mode: "slack" });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const err = caught as ConfigError;
    expect(err.problems).toHaveLength(10);
    expect(err.message.startsWith("ops/deploybot.yml is not a valid deploybot config:\n  - services.web")).toBe(true);
    for (const text of expected) expect(err.message).toContain(text);
  });

  it("names action: page on a warning guardrail that pages", () => {
    const text = withoutPagerDuty
      .replace(
        "    severity: critical # critical alerts page PagerDuty\n    action: rollback",
        "    severity: warning\n    action: page",
      )
      .replace(/severity: critical/g, "severity: warning");
    expect(() => parseConfig(text, "x.yml", { mode: "slack" })).toThrow(
      "guardrail 'error rate (rollback)' pages on a breach (action: page), but there is no pagerduty section, so nobody would be paged: add pagerduty (routing_key_env, api_token_env, schedules) or set action: alert",
    );
  });

  it("says nothing of a shadow guardrail, which never pages", () => {
    const text = withoutPagerDuty
      .replace(/severity: critical/g, "severity: warning")
      .replace(/action: page/g, "action: alert")
      .replace(
        "    severity: warning # critical alerts page PagerDuty\n    action: rollback",
        "    severity: critical\n    action: rollback\n    shadow: true",
      );
    expect(text).toContain("shadow: true");
    const warnings: string[] = [];
    expect(() => parseConfig(text, "x.yml", { mode: "slack", onWarning: (w) => warnings.push(w) })).not.toThrow();
    expect(warnings).toEqual([]);
  });

  it("gives no warning when the pagerduty section is there", () => {
    const warnings: string[] = [];
    parseConfig(EXAMPLE_TEXT, "x.yml", { mode: "slack", onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual([]);
  });

  it("makes loadConfig refuse the file in Slack mode and load it in the console, by default", () => {
    const file = join(tmp, "no-pagerduty.yml");
    writeFileSync(file, withoutPagerDuty);
    expect(() => loadConfig(file, { mode: "slack" })).toThrow(`${file} is not a valid deploybot config`);
    expect(() => loadConfig(file)).not.toThrow();
    const warnings: string[] = [];
    loadConfig(file, { onWarning: (w) => warnings.push(w) });
    expect(warnings).toHaveLength(10);
  });

  it("is printed by check-config, which still exits 0, and refused by check-config --slack with exit 1", async () => {
    const file = join(tmp, "no-pagerduty-cli.yml");
    writeFileSync(file, withoutPagerDuty);
    const out: string[] = [];
    const err: string[] = [];
    const stdout = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
      err.push(String(chunk));
      return true;
    });
    try {
      expect(await main(["check-config", file])).toBe(0);
      const printed = out.join("");
      expect(printed.split("\n")[0]).toBe(`${file}: valid (10 warnings)`);
      expect(printed).toContain("\nWarnings:\n  - services.web.environments.production.guardrails[0] (line ");
      expect(printed).toContain("PagerDuty: none (nothing pages)");
      out.length = 0;
      expect(await main(["check-config", file, "--slack"])).toBe(1);
      expect(out).toEqual([]);
      expect(err.join("")).toContain("guardrail 'service down' pages on a breach (severity: critical)");
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
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
      /web +production +af-south-1 comply360-prod\/web \[web\] STEPS 10\/50\/90\/100% with web-green, keep 1 d · 9 guardrails \(3 roll back\)/,
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
