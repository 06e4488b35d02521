import { readFileSync } from "node:fs";
import { isMap, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError, DeploybotError, ErrorCode } from "../errors.js";
import { freezeProblems } from "../policies/calendar.js";
import { type Config, configSchema, ONCALL } from "./schema.js";

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
export function parseConfig(text: string, file = "deploybot.yml"): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${pos ? `line ${pos.line}: ` : ""}${e.message.split("\n")[0]}`;
      }),
    );
  }
  const raw = doc.toJS({ maxAliasCount: 1000 }) as unknown;
  // Top-level keys starting with "x-" hold YAML anchors shared by other sections (as in docker-compose).
  if (raw && typeof raw === "object")
    for (const key of Object.keys(raw)) if (key.startsWith("x-")) delete (raw as Record<string, unknown>)[key];
  const lineOf = (path: ReadonlyArray<PropertyKey>): string => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === "object" && node.range) return ` (line ${lines.linePos(node.range[0]).line})`;
    }
    return "";
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
  const problems = crossCheck(parsed.data);
  if (problems.length > 0) {
    throw new ConfigError(
      file,
      problems.map((p) => `${formatPath(p.path)}${lineOf(p.path)}: ${p.message}`),
    );
  }
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

/** Checks that references between sections resolve: role users, approval roles, service environments. */
function crossCheck(config: Config): Array<{ path: PropertyKey[]; message: string }> {
  const problems: Array<{ path: PropertyKey[]; message: string }> = [];
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
    env.windows.forEach((w, i) => {
      if (w.start >= w.end)
        problems.push({
          path: [...base, "windows", i],
          message: `window ends (${w.end}) before it starts (${w.start})`,
        });
    });
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
    for (const envName of Object.keys(svc.environments)) {
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

/** Reads, parses and validates the config file once, at start. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new DeploybotError(ErrorCode.ConfigUnreadable, `cannot read config file ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseConfig(text, file);
}
