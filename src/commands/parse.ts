import type { DeployRequest, RollbackRequest, Severity } from "../domain/requests.js";
import { CommandError } from "../errors.js";
import { escapeMrkdwn } from "../slack/blocks.js";

/**
 * A refusal of what was typed, which it quotes: escaped as Slack text, so a typed `<!channel>` or `<https://…|…>`
 * is shown as typed, never turned into a mention or a link (the messages here carry no markup of their own but
 * backticks).
 */
const parseError = (message: string): CommandError => new CommandError(escapeMrkdwn(message));

/** The names a command may refer to, from the config. */
export interface Names {
  services: string[];
  environments: string[];
  /** Environments the service is configured in. */
  environmentsOf(service: string): string[];
}

export const MAX_COMMAND_LENGTH = 500;

export const USAGE = {
  deploy: [
    '`/deploy SERVICE VERSION [to] ENV [--hotfix] [--canary] [--reason "..."] [--emergency "reason"] [--dry-run]`',
    'e.g. `/deploy web v1.4.2 to production`, `/deploy web@v1.4.2 production --hotfix --reason "fix login"`, `/deploy web web:25 staging --dry-run`',
  ].join("\n"),
  rollback: [
    '`/rollback SERVICE ENV [to VERSION] [--reason "..."] [--severity P0|P1|P2|P3]`',
    'e.g. `/rollback web production`, `/rollback web production to v1.4.0 --reason "5xx spike" --severity P1`',
  ].join("\n"),
  status: [
    "`/status` · `/status SERVICE` · `/status SERVICE ENV` · `/status history SERVICE ENV` · `/status freezes`",
  ].join("\n"),
} as const;

export type StatusCommand =
  | { kind: "help" }
  | { kind: "overview" }
  | { kind: "service"; service: string }
  | { kind: "target"; service: string; environment: string }
  | { kind: "history"; service: string; environment: string }
  | { kind: "freezes" };

export type DeployCommand = { kind: "help" } | DeployRequest;

export type RollbackCommand = { kind: "help" } | RollbackRequest;

/** Splits command text into words, keeping "quoted text" (straight or curly quotes) as one word. */
export function tokenize(text: string): string[] {
  checkText(text);
  const tokens: string[] = [];
  const quotes = (text.match(/"/g) ?? []).length;
  if (quotes % 2 === 1) throw parseError('A quote is not closed: put the reason in "double quotes".');
  // Slack clients may send curly quotes; both kinds group words.
  for (const m of text.matchAll(/"([^"]*)"|“([^”]*)”|(\S+)/g)) tokens.push(m[1] ?? m[2] ?? (m[3] as string));
  return tokens;
}

function checkText(text: string): void {
  if (text.length > MAX_COMMAND_LENGTH) {
    throw parseError(`That command is ${text.length} characters long; the limit is ${MAX_COMMAND_LENGTH}.`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\ufffd]/.test(text)) {
    throw parseError("That command contains control or binary characters; type it as plain text.");
  }
}

/** Edit distance counting an adjacent swap as one edit (optimal string alignment), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => (d[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The closest known name, when it is close enough to be a typo. */
export function didYouMean(word: string, known: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = name.startsWith(lower) && lower.length >= 2 ? 0.5 : distance(lower, name);
    if (!best || d < best.d) best = { name, d };
  }
  return best && best.d <= Math.max(1, Math.floor(best.name.length / 3)) ? best.name : undefined;
}

function unknown(what: string, word: string, known: readonly string[], usage: string): CommandError {
  const guess = didYouMean(word, known);
  const hint = guess ? ` Did you mean \`${guess}\`?` : "";
  return parseError(
    `Unknown ${what} \`${word}\`.${hint} Known ${what}s: ${known.map((k) => `\`${k}\``).join(", ")}.\nUsage: ${usage}`,
  );
}

function resolveService(word: string, names: Names, usage: string): string {
  const lower = word.toLowerCase();
  if (names.services.includes(lower)) return lower;
  throw unknown("service", word, names.services, usage);
}

function resolveEnvironment(word: string, service: string | null, names: Names, usage: string): string {
  const lower = word.toLowerCase();
  const aliases: Record<string, string> = { prod: "production", stage: "staging", stg: "staging", prd: "production" };
  const env = names.environments.includes(lower) ? lower : aliases[lower];
  if (!env || !names.environments.includes(env)) throw unknown("environment", word, names.environments, usage);
  if (service && !names.environmentsOf(service).includes(env)) {
    throw parseError(
      `\`${service}\` is not configured in \`${env}\`; it runs in ${names
        .environmentsOf(service)
        .map((e) => `\`${e}\``)
        .join(", ")}.`,
    );
  }
  return env;
}

interface FlagSpec {
  [flag: string]: "bool" | "value";
}

/** Separates --flags (with their values) from positional words; unknown flags are errors. */
function splitFlags(
  tokens: string[],
  spec: FlagSpec,
  usage: string,
): { positional: string[]; flags: Map<string, string | true> } {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] as string;
    if (!tok.startsWith("--") && !tok.startsWith("—")) {
      positional.push(tok);
      continue;
    }
    // Slack turns "--" into an em dash on some clients.
    const [rawName, inline] = tok.replace(/^—/, "--").split(/=(.*)/s, 2) as [string, string | undefined];
    const name = rawName.toLowerCase();
    const kind = spec[name];
    if (!kind) {
      const guess = didYouMean(
        name.slice(2),
        Object.keys(spec).map((f) => f.slice(2)),
      );
      throw parseError(
        `Unknown flag \`${rawName}\`.${guess ? ` Did you mean \`--${guess}\`?` : ""} Flags: ${Object.keys(spec)
          .map((f) => `\`${f}\``)
          .join(", ")}.\nUsage: ${usage}`,
      );
    }
    if (flags.has(name)) throw parseError(`\`${name}\` is given twice.`);
    if (kind === "bool") {
      if (inline !== undefined) throw parseError(`\`${name}\` takes no value.`);
      flags.set(name, true);
      continue;
    }
    const value = inline ?? tokens[i + 1];
    if (value === undefined || value.startsWith("--") || value.trim() === "") {
      throw parseError(`\`${name}\` needs a value, e.g. ${name} "what and why".\nUsage: ${usage}`);
    }
    if (inline === undefined) i++;
    flags.set(name, value.trim());
  }
  return { positional, flags };
}

const VERSION_RE = /^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,127}|[A-Za-z0-9_-]+:\d+)$/;

function checkVersion(version: string, usage: string): string {
  if (!VERSION_RE.test(version)) {
    throw parseError(
      `\`${version}\` is not a version: give an image tag (\`v1.4.2\`, a git sha) or a task definition revision (\`web:25\`).\nUsage: ${usage}`,
    );
  }
  return version;
}

/** `/status ...` */
export function parseStatus(text: string, names: Names): StatusCommand {
  const usage = USAGE.status;
  const words = tokenize(text);
  const [first, second, third, ...rest] = words;
  if (first === undefined) return { kind: "overview" };
  const head = first.toLowerCase();
  if (head === "help") return { kind: "help" };
  if (head === "freezes" || head === "freeze") {
    if (second !== undefined) throw parseError(`\`/status freezes\` takes nothing after it.\nUsage: ${usage}`);
    return { kind: "freezes" };
  }
  if (head === "history") {
    if (second === undefined || third === undefined) {
      throw parseError(`\`/status history\` needs a service and an environment.\nUsage: ${usage}`);
    }
    if (rest.length > 0) throw parseError(`Unexpected \`${rest.join(" ")}\`.\nUsage: ${usage}`);
    const service = resolveService(second, names, usage);
    return { kind: "history", service, environment: resolveEnvironment(third, service, names, usage) };
  }
  if (third !== undefined) throw parseError(`Unexpected \`${[third, ...rest].join(" ")}\`.\nUsage: ${usage}`);
  const service = resolveService(first, names, usage);
  if (second === undefined) return { kind: "service", service };
  return { kind: "target", service, environment: resolveEnvironment(second, service, names, usage) };
}

/** `/deploy ...` */
export function parseDeploy(text: string, names: Names): DeployCommand {
  const usage = USAGE.deploy;
  const tokens = tokenize(text);
  if (tokens.length === 0) throw parseError(`Tell me what to deploy.\nUsage: ${usage}`);
  if (tokens.length === 1 && tokens[0]?.toLowerCase() === "help") return { kind: "help" };
  const { positional, flags } = splitFlags(
    tokens,
    { "--hotfix": "bool", "--canary": "bool", "--dry-run": "bool", "--reason": "value", "--emergency": "value" },
    usage,
  );
  let words = positional;
  const at = words[0]?.indexOf("@") ?? -1;
  if (words[0] && at > 0) words = [words[0].slice(0, at), words[0].slice(at + 1), ...words.slice(1)];
  if (words.length >= 3 && words[2]?.toLowerCase() === "to")
    words = [words[0], words[1], ...words.slice(3)] as string[];
  const [serviceWord, versionWord, envWord, ...extra] = words;
  if (!serviceWord) throw parseError(`Tell me which service to deploy.\nUsage: ${usage}`);
  const service = resolveService(serviceWord, names, usage);
  if (!versionWord)
    throw parseError(`Which version of \`${service}\`? Give an image tag or a revision.\nUsage: ${usage}`);
  if (versionWord.toLowerCase() === "to" || names.environments.includes(versionWord.toLowerCase())) {
    throw parseError(
      `The version is missing: \`/deploy ${service} VERSION ${envWord ?? versionWord}\`.\nUsage: ${usage}`,
    );
  }
  const version = checkVersion(versionWord, usage);
  if (!envWord)
    throw parseError(`To which environment? e.g. \`/deploy ${service} ${version} to staging\`.\nUsage: ${usage}`);
  const environment = resolveEnvironment(envWord, service, names, usage);
  if (extra.length > 0) {
    throw parseError(`Unexpected \`${extra.join(" ")}\`; put a reason in --reason "...".\nUsage: ${usage}`);
  }
  const emergency = flags.get("--emergency");
  const reason = flags.get("--reason");
  return {
    kind: "deploy",
    service,
    version,
    environment,
    hotfix: flags.has("--hotfix"),
    dryRun: flags.has("--dry-run"),
    reason: typeof reason === "string" ? reason : null,
    emergency: typeof emergency === "string" ? emergency : null,
    ...(flags.has("--canary") ? { canary: true as const } : {}),
  };
}

/** `/rollback ...` */
export function parseRollback(text: string, names: Names): RollbackCommand {
  const usage = USAGE.rollback;
  const tokens = tokenize(text);
  if (tokens.length === 0) throw parseError(`Tell me what to roll back.\nUsage: ${usage}`);
  if (tokens.length === 1 && tokens[0]?.toLowerCase() === "help") return { kind: "help" };
  const { positional, flags } = splitFlags(tokens, { "--reason": "value", "--severity": "value" }, usage);
  const [serviceWord, envWord, toWord, versionWord, ...extra] = positional;
  if (!serviceWord) throw parseError(`Tell me which service to roll back.\nUsage: ${usage}`);
  const service = resolveService(serviceWord, names, usage);
  if (!envWord) throw parseError(`In which environment? e.g. \`/rollback ${service} production\`.\nUsage: ${usage}`);
  const environment = resolveEnvironment(envWord, service, names, usage);
  let version: string | null = null;
  if (toWord !== undefined) {
    if (toWord.toLowerCase() !== "to" || versionWord === undefined) {
      throw parseError(
        `To name a version, write \`to VERSION\`, e.g. \`/rollback ${service} ${environment} to v1.4.0\`.\nUsage: ${usage}`,
      );
    }
    version = checkVersion(versionWord, usage);
  }
  if (extra.length > 0) throw parseError(`Unexpected \`${extra.join(" ")}\`.\nUsage: ${usage}`);
  const sev = flags.get("--severity");
  let severity: Severity | null = null;
  if (typeof sev === "string") {
    const upper = sev.toUpperCase();
    if (upper !== "P0" && upper !== "P1" && upper !== "P2" && upper !== "P3") {
      throw parseError(`Severity \`${sev}\` is not one of P0, P1, P2, P3.\nUsage: ${usage}`);
    }
    severity = upper;
  }
  const reason = flags.get("--reason");
  return {
    kind: "rollback",
    service,
    environment,
    version,
    reason: typeof reason === "string" ? reason : null,
    severity,
  };
}
