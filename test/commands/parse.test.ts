import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  type DeployCommand,
  didYouMean,
  MAX_COMMAND_LENGTH,
  type Names,
  parseDeploy,
  parseRollback,
  parseStatus,
  type RollbackCommand,
  type StatusCommand,
  tokenize,
} from "../../src/commands/parse.js";
import { loadConfig } from "../../src/config/load.js";
import { CommandError, ErrorCode } from "../../src/errors.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/deploybot.yml", import.meta.url));
const config = loadConfig(EXAMPLE);

/** The names the example config defines: web and api, each in staging and production. */
const names: Names = {
  services: Object.keys(config.services),
  environments: Object.keys(config.environments),
  environmentsOf: (s) => Object.keys(config.services[s]?.environments ?? {}),
};

/** Like the example, except that web runs only in production. */
const webOnlyInProduction: Names = {
  ...names,
  environmentsOf: (s) => (s === "web" ? ["production"] : names.environmentsOf(s)),
};

/** Runs `fn` and returns the CommandError it throws; fails the test when it throws nothing or something else. */
function commandError(fn: () => unknown): CommandError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).code).toBe(ErrorCode.CommandInvalid);
    return err as CommandError;
  }
  throw new Error("expected a CommandError, but the command parsed");
}

const deploy = (over: Partial<Extract<DeployCommand, { kind: "deploy" }>>): DeployCommand => ({
  kind: "deploy",
  service: "web",
  version: "v1.4.2",
  environment: "production",
  hotfix: false,
  dryRun: false,
  reason: null,
  emergency: null,
  ...over,
});

const rollback = (over: Partial<Extract<RollbackCommand, { kind: "rollback" }>>): RollbackCommand => ({
  kind: "rollback",
  service: "web",
  environment: "production",
  version: null,
  reason: null,
  severity: null,
  ...over,
});

describe("the example config's names", () => {
  it("are web and api in staging and production", () => {
    expect(names.services).toEqual(["web", "api"]);
    expect(names.environments).toEqual(["staging", "production"]);
    expect(names.environmentsOf("web")).toEqual(["staging", "production"]);
  });
});

describe("tokenize", () => {
  it.each<[string, string[]]>([
    ["", []],
    ["   ", []],
    ["web v1.4.2 to production", ["web", "v1.4.2", "to", "production"]],
    ["  web   v1.4.2\tstaging ", ["web", "v1.4.2", "staging"]],
    ['--reason "fix login" --hotfix', ["--reason", "fix login", "--hotfix"]],
    ["--reason “fix the login page”", ["--reason", "fix the login page"]],
    ['--reason ""', ["--reason", ""]],
  ])("splits %j into %j", (text, tokens) => {
    expect(tokenize(text)).toEqual(tokens);
  });

  it.each<[string, string, string]>([
    ["an unclosed quote", '--reason "fix login', "A quote is not closed"],
    [
      "text over the limit",
      "x".repeat(MAX_COMMAND_LENGTH + 1),
      `is ${MAX_COMMAND_LENGTH + 1} characters long; the limit is 500`,
    ],
    ["a control character", "web\u0007 staging", "control or binary characters"],
    ["a NUL byte", "web\u0000", "control or binary characters"],
    ["a replacement character from binary input", "web \ufffd", "control or binary characters"],
  ])("refuses %s and says why", (_what, text, fragment) => {
    expect(commandError(() => tokenize(text)).message).toContain(fragment);
  });

  it("accepts text of exactly the limit", () => {
    expect(tokenize("x".repeat(MAX_COMMAND_LENGTH))).toHaveLength(1);
  });
});

describe("didYouMean", () => {
  it.each<[string, readonly string[], string | undefined]>([
    ["prodution", ["staging", "production"], "production"],
    ["PRODUCTON", ["staging", "production"], "production"],
    ["stagin", ["staging", "production"], "staging"],
    ["prod", ["staging", "production"], "production"],
    ["hotfx", ["hotfix", "dry-run", "reason", "emergency"], "hotfix"],
    ["wbe", ["web", "api"], "web"],
    ["apj", ["web", "api"], "api"],
    ["payments", ["web", "api"], undefined],
    ["x", ["web", "api"], undefined],
    ["anything", [], undefined],
  ])("suggests for %j among %j: %j", (word, known, expected) => {
    expect(didYouMean(word, known)).toBe(expected);
  });
});

describe("parseDeploy", () => {
  it.each<[string, DeployCommand]>([
    ["web v1.4.2 to production", deploy({})],
    ["web v1.4.2 production", deploy({})],
    ["WEB v1.4.2 to Production", deploy({})],
    ["web v1.4.2 prod", deploy({})],
    ["api v2.0.0 to stg", deploy({ service: "api", version: "v2.0.0", environment: "staging" })],
    ['web@v1.4.2 production --hotfix --reason "fix login"', deploy({ hotfix: true, reason: "fix login" })],
    ['web v1.4.2 production --emergency "payments down"', deploy({ emergency: "payments down" })],
    ["web web:25 staging --dry-run", deploy({ version: "web:25", environment: "staging", dryRun: true })],
    ["web v1.4.2 staging —dry-run", deploy({ environment: "staging", dryRun: true })],
    ["web v1.4.2 production --reason “fix the login page”", deploy({ reason: "fix the login page" })],
    ["web v1.4.2 production --reason=rollout", deploy({ reason: "rollout" })],
    ["--hotfix web v1.4.2 production", deploy({ hotfix: true })],
    ["web 3f2a9c1 staging", deploy({ version: "3f2a9c1", environment: "staging" })],
    ["help", { kind: "help" }],
    ["HELP", { kind: "help" }],
  ])("reads %j", (text, expected) => {
    expect(parseDeploy(text, names)).toEqual(expected);
  });

  it.each<[string, string, string[]]>([
    ["nothing", "", ["Tell me what to deploy.", "Usage: `/deploy SERVICE VERSION"]],
    [
      "an unknown service",
      "payments v1.4.2 production",
      ["Unknown service `payments`.", "Known services: `web`, `api`."],
    ],
    ["a misspelt service", "wbe v1.4.2 production", ["Unknown service `wbe`.", "Did you mean `web`?"]],
    [
      "a misspelt environment",
      "web v1.4.2 prodution",
      ["Unknown environment `prodution`.", "Did you mean `production`?", "`staging`, `production`"],
    ],
    [
      "a missing version (with to)",
      "web to production",
      ["The version is missing", "`/deploy web VERSION production`"],
    ],
    ["a missing version", "web production", ["The version is missing", "`/deploy web VERSION production`"]],
    ["only a service", "web", ["Which version of `web`?"]],
    ["a missing environment", "web v1.4.2", ["To which environment?", "`/deploy web v1.4.2 to staging`"]],
    ["a version that is not a tag", "web v1/4 production", ["`v1/4` is not a version", "`web:25`"]],
    ["a misspelt flag", "web v1.4.2 production --hotfx", ["Unknown flag `--hotfx`.", "Did you mean `--hotfix`?"]],
    ["a flag nobody would guess", "web v1.4.2 production --yolo", ["Unknown flag `--yolo`.", "Flags: `--hotfix`"]],
    ["stray text", "web v1.4.2 production fix login", ["Unexpected `fix login`", '--reason "..."']],
    ["an unclosed quote", 'web v1.4.2 production --reason "fix login', ["A quote is not closed"]],
    ["text over 500 characters", `web v1.4.2 production --reason "${"a".repeat(500)}"`, ["the limit is 500"]],
    ["control characters", "web v1.4.2\u001b[31m production", ["control or binary characters"]],
    ["a flag given twice", "web v1.4.2 production --hotfix --hotfix", ["`--hotfix` is given twice."]],
    ["a reason given twice", 'web v1.4.2 production --reason "a" --reason "b"', ["`--reason` is given twice."]],
    ["--reason without a value", "web v1.4.2 production --reason", ["`--reason` needs a value"]],
    ["--reason followed by a flag", "web v1.4.2 production --reason --hotfix", ["`--reason` needs a value"]],
    ["an empty --reason", 'web v1.4.2 production --reason ""', ["`--reason` needs a value"]],
    ["--emergency without a reason", "web v1.4.2 production --emergency", ["`--emergency` needs a value"]],
    ["a value on a switch", "web v1.4.2 production --hotfix=yes", ["`--hotfix` takes no value."]],
  ])("refuses %s: %j", (_what, text, fragments) => {
    const message = commandError(() => parseDeploy(text, names)).message;
    for (const fragment of fragments) expect(message).toContain(fragment);
  });

  it("refuses an environment the service is not configured in and lists where it runs", () => {
    const message = commandError(() => parseDeploy("web v1.4.2 staging", webOnlyInProduction)).message;
    expect(message).toBe("`web` is not configured in `staging`; it runs in `production`.");
  });
});

describe("parseRollback", () => {
  it.each<[string, RollbackCommand]>([
    ["web production", rollback({})],
    ["web prod", rollback({})],
    ["api staging", rollback({ service: "api", environment: "staging" })],
    ["web production to v1.4.0", rollback({ version: "v1.4.0" })],
    ["web production TO web:24", rollback({ version: "web:24" })],
    [
      'web production to v1.4.0 --reason "5xx spike" --severity p1',
      rollback({ version: "v1.4.0", reason: "5xx spike", severity: "P1" }),
    ],
    ["web production --severity P0", rollback({ severity: "P0" })],
    ["web production --reason=spike --severity=p3", rollback({ reason: "spike", severity: "P3" })],
    ["help", { kind: "help" }],
  ])("reads %j", (text, expected) => {
    expect(parseRollback(text, names)).toEqual(expected);
  });

  it.each<[string, string, string[]]>([
    ["nothing", "", ["Tell me what to roll back.", "Usage: `/rollback SERVICE ENV"]],
    ["a misspelt service", "wbe production", ["Unknown service `wbe`.", "Did you mean `web`?"]],
    ["a missing environment", "web", ["In which environment?", "`/rollback web production`"]],
    ["a misspelt environment", "web prodution", ["Unknown environment `prodution`.", "Did you mean `production`?"]],
    ["a version without 'to'", "web production v1.4.0", ["write `to VERSION`", "`/rollback web production to v1.4.0`"]],
    ["'to' without a version", "web production to", ["write `to VERSION`"]],
    ["a version that is not a tag", "web production to ../etc", ["`../etc` is not a version"]],
    ["stray text", "web production to v1.4.0 please", ["Unexpected `please`."]],
    ["a bad severity", "web production --severity p5", ["Severity `p5` is not one of P0, P1, P2, P3."]],
    ["a word as severity", "web production --severity high", ["Severity `high` is not one of P0, P1, P2, P3."]],
    ["--severity without a value", "web production --severity", ["`--severity` needs a value"]],
    ["a deploy flag", "web production --hotfix", ["Unknown flag `--hotfix`.", "Flags: `--reason`, `--severity`."]],
    ["a misspelt flag", "web production --reasn x", ["Did you mean `--reason`?"]],
    ["a flag given twice", "web production --severity p1 --severity p2", ["`--severity` is given twice."]],
  ])("refuses %s: %j", (_what, text, fragments) => {
    const message = commandError(() => parseRollback(text, names)).message;
    for (const fragment of fragments) expect(message).toContain(fragment);
  });
});

describe("parseStatus", () => {
  it.each<[string, StatusCommand]>([
    ["", { kind: "overview" }],
    ["   ", { kind: "overview" }],
    ["help", { kind: "help" }],
    ["web", { kind: "service", service: "web" }],
    ["API", { kind: "service", service: "api" }],
    ["web production", { kind: "target", service: "web", environment: "production" }],
    ["web prod", { kind: "target", service: "web", environment: "production" }],
    ["api stage", { kind: "target", service: "api", environment: "staging" }],
    ["history web production", { kind: "history", service: "web", environment: "production" }],
    ["HISTORY api stg", { kind: "history", service: "api", environment: "staging" }],
    ["freezes", { kind: "freezes" }],
    ["freeze", { kind: "freezes" }],
  ])("reads %j", (text, expected) => {
    expect(parseStatus(text, names)).toEqual(expected);
  });

  it.each<[string, string, string[]]>([
    ["a misspelt service", "wbe", ["Unknown service `wbe`.", "Did you mean `web`?"]],
    ["an unknown service", "payments", ["Unknown service `payments`.", "Known services: `web`, `api`."]],
    ["a misspelt environment", "web prodution", ["Unknown environment `prodution`.", "Did you mean `production`?"]],
    ["words after freezes", "freezes next week", ["`/status freezes` takes nothing after it."]],
    ["history without an environment", "history web", ["`/status history` needs a service and an environment."]],
    ["history with stray words", "history web production please", ["Unexpected `please`."]],
    ["stray words after a target", "web production now please", ["Unexpected `now please`.", "Usage: `/status`"]],
    ["an unclosed quote", 'web "production', ["A quote is not closed"]],
    ["binary text", "web\u0001production", ["control or binary characters"]],
  ])("refuses %s: %j", (_what, text, fragments) => {
    const message = commandError(() => parseStatus(text, names)).message;
    for (const fragment of fragments) expect(message).toContain(fragment);
  });
});
