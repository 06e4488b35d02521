import { readFileSync } from "node:fs";
import { isAlias, isMap, isSeq, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { formatRelative } from "../clock.js";
import { ConfigError, DeploybotError, ErrorCode } from "../errors.js";
import { freezeProblems } from "../policies/freeze-spans.js";
import { pagesOnBreach } from "../policies/guardrails.js";
import { stepsProblems } from "../policies/steps-config.js";
import { cronEvery, SCHEDULABLE_INTERVALS } from "./schedule.js";
import { type Config, configSchema, type Guardrail, ONCALL } from "./schema.js";

/**
 * Where the config will run. Some gaps are fatal only in Slack: a critical guardrail without a pagerduty
 * section pages nobody in production, while the local console has no PagerDuty to miss.
 */
export type ConfigMode = "slack" | "console";

export interface ConfigOptions {
  /** Default "console": problems that matter only in Slack are warnings, not errors. */
  mode?: ConfigMode;
  /** Receives each warning as "path (line N): message"; without it warnings are dropped. */
  onWarning?: (warning: string) => void;
}

interface Problem {
  path: PropertyKey[];
  message: string;
  /** A problem only when the config runs in Slack; a warning elsewhere. */
  slackOnly?: boolean;
}

/** `environments.production.approvals[0].from[1]`: the path form every config message uses. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || "(top level)";
}

function describeFound(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

/** Parses and validates config text; every problem names the path, the line, what was found and what is allowed. */
export function parseConfig(text: string, file = "deploybot.yml", options: ConfigOptions = {}): Config {
  const mode = options.mode ?? "console";
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const line = e.pos ? lines.linePos(e.pos[0]).line : undefined;
        return `${line ? `line ${line}: ` : ""}${e.message.split("\n")[0]}`;
      }),
    );
  }
  const raw = doc.toJS({ maxAliasCount: 1000 }) as unknown;
  // Top-level keys starting with "x-" hold YAML anchors shared by other sections (as in docker-compose).
  if (raw && typeof raw === "object")
    for (const key of Object.keys(raw)) if (key.startsWith("x-")) delete (raw as Record<string, unknown>)[key];
  // The line of the deepest node on the path, following YAML aliases to the anchored node they share.
  const lineOf = (path: ReadonlyArray<PropertyKey>): string => {
    let node: unknown = doc.contents;
    let range: [number, number, number] | undefined;
    for (const key of path) {
      if (isAlias(node)) node = node.resolve(doc);
      if (!isMap(node) && !isSeq(node)) break;
      node = node.get(key as never, true);
      const r = (node as { range?: [number, number, number] } | undefined)?.range;
      if (r) range = r;
    }
    return range ? ` (line ${lines.linePos(range[0]).line})` : "";
  };
  if (!isMap(doc.contents))
    throw new ConfigError(file, ["the file must be a YAML mapping with users, channels, environments and services"]);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      file,
      parsed.error.issues.map((issue) => describeIssue(issue, raw, lineOf)),
    );
  }
  const found = crossCheck(parsed.data);
  const describe = (p: Problem) => `${formatPath(p.path)}${lineOf(p.path)}: ${p.message}`;
  const problems = found.filter((p) => !p.slackOnly || mode === "slack");
  if (problems.length > 0) throw new ConfigError(file, problems.map(describe));
  for (const p of found) if (p.slackOnly) options.onWarning?.(describe(p));
  return parsed.data;
}

function describeIssue(
  issue: z.core.$ZodIssue,
  raw: unknown,
  lineOf: (p: ReadonlyArray<PropertyKey>) => string,
): string {
  const where = `${formatPath(issue.path)}${lineOf(issue.path)}`;
  if (issue.code === "unrecognized_keys") {
    return `${where}: unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}`;
  }
  const found = describeFound(valueAt(raw, issue.path));
  let allowed = issue.message;
  if (issue.code === "invalid_value") allowed = `one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  else if (issue.code === "invalid_type")
    allowed = found === "nothing" ? `required (${issue.expected})` : `a ${issue.expected}`;
  return `${where}: found ${found}, expected ${allowed}`;
}

/**
 * Checks what the schema alone cannot: references between sections (role users, approval roles, service
 * environments), intervals a scheduler can keep, and guardrails that could never do what they say.
 */
function crossCheck(config: Config): Problem[] {
  const problems: Problem[] = [];
  if (cronEvery(config.monitor.interval) === undefined) {
    problems.push({
      path: ["monitor", "interval"],
      message: `an interval of ${config.monitor.interval / 1000} s cannot be scheduled: it must divide a minute or an hour (${SCHEDULABLE_INTERVALS})`,
    });
  }
  const roleNames = new Set(Object.keys(config.roles));
  const knownRole = (r: string) => r === ONCALL || roleNames.has(r);
  const roleList = [...roleNames, ONCALL].join(", ");
  for (const [roleName, role] of Object.entries(config.roles)) {
    role.users.forEach((u, i) => {
      if (!config.users[u])
        problems.push({
          path: ["roles", roleName, "users", i],
          message: `unknown user '${u}'; users are ${Object.keys(config.users).join(", ")}`,
        });
    });
  }
  const checkRoles = (list: string[], path: PropertyKey[]) => {
    list.forEach((r, i) => {
      if (!knownRole(r)) problems.push({ path: [...path, i], message: `unknown role '${r}'; roles are ${roleList}` });
    });
  };
  for (const [envName, env] of Object.entries(config.environments)) {
    const base = ["environments", envName];
    const rules: Array<[string, Config["environments"][string]["approvals"] | undefined, PropertyKey[]]> = [
      ["approvals", env.approvals, [...base, "approvals"]],
      ["hotfix_approvals", env.hotfix_approvals, [...base, "hotfix_approvals"]],
      ["emergency", env.emergency?.approvals, [...base, "emergency", "approvals"]],
      ["rollback", env.rollback?.approvals, [...base, "rollback", "approvals"]],
    ];
    for (const [, rule, path] of rules)
      rule?.forEach((g, i) => {
        checkRoles(g.from, [...path, i, "from"]);
      });
    if (env.rollback) checkRoles(env.rollback.allowed, [...base, "rollback", "allowed"]);
    checkRoles(env.override, [...base, "override"]);
    env.watch?.forEach((p, i) => {
      if (p.every < config.monitor.interval) {
        problems.push({
          path: [...base, "watch", i, "every"],
          message: `checks cannot come more often than monitor.interval (${config.monitor.interval / 1000} s)`,
        });
      }
      if (p.for < p.every)
        problems.push({ path: [...base, "watch", i, "for"], message: "a phase must last at least one 'every'" });
    });
    env.windows.forEach((w, i) => {
      if (w.start >= w.end)
        problems.push({
          path: [...base, "windows", i],
          message: `window ends (${w.end}) before it starts (${w.start})`,
        });
    });
    const rs = env.rollback_strategy;
    if (rs.type === "ROLLING" && rs.maximum_percent <= rs.minimum_healthy_percent) {
      problems.push({
        path: [...base, "rollback_strategy", "maximum_percent"],
        message: `maximum_percent (${rs.maximum_percent}) must be above minimum_healthy_percent (${rs.minimum_healthy_percent}), or ECS can neither start a task of the previous version nor stop one of the new`,
      });
    }
    for (const p of freezeProblems(env.freezes))
      problems.push({ path: [...base, "freezes", p.index, p.field], message: p.message });
    env.freezes.forEach((f, i) => {
      if ("from" in f && Date.parse(f.to) <= Date.parse(f.from))
        problems.push({
          path: [...base, "freezes", i, "to"],
          message: `'to' (${f.to}) is not after 'from' (${f.from})`,
        });
    });
  }
  for (const [svcName, svc] of Object.entries(config.services)) {
    for (const [envName, se] of Object.entries(svc.environments)) {
      const names = new Set<string>();
      se.guardrails.forEach((g, i) => {
        const path = ["services", svcName, "environments", envName, "guardrails", i];
        if (names.has(g.name))
          problems.push({
            path: [...path, "name"],
            message: `guardrail name '${g.name}' is used twice; names identify breaches and pages`,
          });
        names.add(g.name);
        for (const message of guardrailProblems(g))
          problems.push({ path: [...path, message.field], message: message.text });
        if (pagesOnBreach(g) && !g.shadow && !config.pagerduty) {
          const why = g.severity === "critical" ? "severity: critical" : "action: page";
          const instead = g.severity === "critical" ? "severity: warning" : "action: alert";
          problems.push({
            path,
            message: `guardrail '${g.name}' pages on a breach (${why}), but there is no pagerduty section, so nobody would be paged: add pagerduty (routing_key_env, api_token_env, schedules) or set ${instead}`,
            slackOnly: true,
          });
        }
        if (g.compare_with === "stable" && se.strategy.type !== "STEPS" && !se.canary) {
          problems.push({
            path: [...path, "compare_with"],
            message: `compare_with: stable compares the two sides of traffic steps, and services.${svcName}.environments.${envName} has no STEPS strategy or canary: leave it out (pre_deploy)`,
          });
        }
        if (typeof g.metric === "string" && g.metric !== "cpu" && g.metric !== "memory" && !se.load_balancer) {
          problems.push({
            path: [...path, "metric"],
            message: `${g.metric} reads the ALB's metrics: add load_balancer (name and target_group) to services.${svcName}.environments.${envName}`,
          });
        }
      });
      problems.push(...stepsProblems(se, ["services", svcName, "environments", envName]));
      if (!config.environments[envName]) {
        problems.push({
          path: ["services", svcName, "environments", envName],
          message: `unknown environment '${envName}'; environments are ${Object.keys(config.environments).join(", ")}`,
        });
      }
    }
  }
  const simOncall = config.simulation.oncall;
  if (simOncall && !config.users[simOncall]) {
    problems.push({
      path: ["simulation", "oncall"],
      message: `unknown user '${simOncall}'; users are ${Object.keys(config.users).join(", ")}`,
    });
  }
  return problems;
}

const RATE_PRESETS = new Set(["error_rate", "cpu", "memory"]);
/** A guardrail reading data older than this is no longer watching the deploy. */
const MAX_LAG_LIMIT_MS = 60 * 60_000;
const LATENCY_PRESETS = new Set(["p95_latency", "p99_latency"]);

/** Nonsense a guardrail can say that the schema alone cannot see: units that do not fit the metric, impossible windows. */
function guardrailProblems(g: Guardrail): Array<{ field: string; text: string }> {
  const out: Array<{ field: string; text: string }> = [];
  const m = /^(>=?|<=?)\s*(\d+(?:\.\d+)?)\s*(%|ms|s|x baseline)?$/.exec(g.threshold.trim());
  const value = Number(m?.[2]);
  const unit = m?.[3];
  if (unit === "%" && value > 100)
    out.push({ field: "threshold", text: `'${g.threshold}' can never be reached: a percentage is at most 100%` });
  if (typeof g.metric === "string" && unit !== "x baseline") {
    if (RATE_PRESETS.has(g.metric) && unit !== "%")
      out.push({ field: "threshold", text: `${g.metric} is a percentage: write the threshold with %, e.g. '> 1%'` });
    if (LATENCY_PRESETS.has(g.metric) && unit !== "s" && unit !== "ms")
      out.push({
        field: "threshold",
        text: `${g.metric} is a time: write the threshold in s or ms, e.g. '> 2s' or '> 500ms'`,
      });
    if (g.metric === "healthy_hosts" && unit !== undefined)
      out.push({ field: "threshold", text: "healthy_hosts is a count of hosts: write a plain number, e.g. '< 2'" });
  }
  if (unit === "x baseline" && value <= 0)
    out.push({ field: "threshold", text: "a relative threshold needs a factor above 0, e.g. '> 10x baseline'" });
  if (g.datapoints === undefined && g.for < g.period) {
    out.push({
      field: "for",
      text: `'for' (${g.for / 1000} s) is shorter than the period (${g.period / 1000} s): it must cover at least one period`,
    });
  }
  if (g.period % 60_000 !== 0 && ![1000, 5000, 10_000, 30_000].includes(g.period)) {
    out.push({ field: "period", text: "CloudWatch periods are 1, 5, 10, 30 s or a multiple of 60 s" });
  }
  if (g.datapoints) {
    const [mm, nn] = g.datapoints.split(" of ").map(Number) as [number, number];
    if (mm < 1 || mm > nn) out.push({ field: "datapoints", text: `'${g.datapoints}' must have 1 <= M <= N` });
  }
  if (g.max_lag > MAX_LAG_LIMIT_MS)
    out.push({
      field: "max_lag",
      text: `max_lag ${formatRelative(g.max_lag)} would judge data that old: at most ${formatRelative(MAX_LAG_LIMIT_MS)} (ALB and ECS metrics arrive within 3 min)`,
    });
  if (g.min_requests !== undefined && g.metric !== "error_rate")
    out.push({ field: "min_requests", text: "min_requests applies to error_rate (the ALB request count) only" });
  return out;
}

/** Reads, parses and validates the config file once, at start; `mode: "slack"` turns Slack-only warnings into errors. */
export function loadConfig(file: string, options: ConfigOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new DeploybotError(ErrorCode.ConfigUnreadable, `cannot read config file ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseConfig(text, file, options);
}
