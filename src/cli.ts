import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { EXIT, installCrashHandlers, untilSignal } from "./cli/process.js";
import { formatRelative } from "./clock.js";
import { commandNamesFromEnv, DEFAULT_COMMANDS } from "./commands/names.js";
import { loadConfig } from "./config/load.js";
import { type Config, ONCALL, type StepsStrategy } from "./config/schema.js";
import { ConfigError, DeploybotError } from "./errors.js";
import { createLogger } from "./logger.js";
import { StartupError, slackSettingsFromEnv } from "./ops/startup.js";

export { EXIT, installCrashHandlers };

const DEFAULT_CONFIG = "examples/deploybot.yml";
const DEFAULT_DB = "data/deploybot.db";

const HELP = `deploybot: ${DEFAULT_COMMANDS.deploy}, ${DEFAULT_COMMANDS.rollback} and ${DEFAULT_COMMANDS.status} for AWS ECS from Slack

Usage:
  deploybot [--config FILE] [--db FILE]   run the bot: in Slack when SLACK_* is set, else the local console
  deploybot console [options]             the local console (deploybot console --help)
  deploybot check-config [FILE] [--slack] validate a config and print a summary and its warnings
  deploybot export [--db FILE | --database-url URL] > dump.jsonl    every table, as JSON lines
  deploybot import [--db FILE | --database-url URL] < dump.jsonl    into an empty database (SQLite → PostgreSQL)
  deploybot --help | --version

Options:
  --config FILE   the config (default: DEPLOYBOT_CONFIG, else ${DEFAULT_CONFIG})
  --db FILE       the SQLite database (default: DEPLOYBOT_DB, else ${DEFAULT_DB})
  --database-url URL   export from / import into PostgreSQL (default: DEPLOYBOT_DATABASE_URL unless --db is given)
  -h, --help      this help
  -v, --version   the version

Slack: SLACK_BOT_TOKEN with SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP on PORT, default 3000).
Health, readiness and metrics: /healthz, /readyz, /metrics (on METRICS_PORT too). See README.md and .env.example.`;

const CONSOLE_HELP = `deploybot console: the bot in a terminal, against simulated ECS, CloudWatch and PagerDuty

Usage:
  deploybot console [--config FILE] [--db FILE] [--script FILE] [--json] [--quiet] [--at ISO-TIME]

Options:
  --config FILE     the config (default: DEPLOYBOT_CONFIG, else ${DEFAULT_CONFIG})
  --db FILE         the SQLite database (default: DEPLOYBOT_DB, else ${DEFAULT_DB}); the simulated world lives in it too
  --script FILE     run the lines of FILE, then stop; the first line that fails stops it with exit code 1
  --json            one JSON object per line for everything the bot does
  --quiet           leave out the AWS calls
  --at ISO-TIME     start the simulated clock here (default: where the database left off, else now)
  -h, --help        this help

Lines (typed at the prompt or in a script):
  /deploy ... | /rollback ... | /status ...   a slash command (${DEFAULT_COMMANDS.status} works too)
  :as NAME                  become a user named in the config (default: the first)
  :in #CHANNEL              type in another channel (default #deploys)
  :click LABEL              press the button with that label on the newest message that has it
  :advance DURATION         move the simulated clock (90s, 5m, 2h, 1d), running every job that falls due
  :time ISO-TIME            set the simulated clock (forward only)
  :metric SERVICE ENV NAME VALUE   from now on the simulated metric reads VALUE
  :oncall NAME              the simulated PagerDuty schedule now has NAME on call
  :fail SERVICE ENV         the next simulated ECS deployment of that service fails to stabilise
  :lag DURATION             simulated CloudWatch publishes each datapoint DURATION after its period ends
  :throttle API OP COUNT    the next COUNT calls of that operation fail as throttled (ecs, cloudwatch, slack)
  :down SYSTEM DURATION     pagerduty, slack or cloudwatch fails every call for DURATION of simulated time
  :crash-after API:OP       the bot dies right after that call returns, as with kill -9 (exit status 137)
  :quit`;

const CHECK_HELP = `deploybot check-config: validate a config and print a summary

Usage:
  deploybot check-config [FILE] [--slack]
    FILE      the config (default: --config, DEPLOYBOT_CONFIG, else ${DEFAULT_CONFIG})
    --slack   load it as Slack mode does: a guardrail that pages with no pagerduty section is an error`;

/** A mistake on the command line: printed with a pointer to --help, exit code 2. */
class UsageError extends Error {}

const OPTIONS = {
  config: { type: "string" },
  db: { type: "string" },
  script: { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean" },
  at: { type: "string" },
  slack: { type: "boolean" },
  world: { type: "string" },
  "database-url": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const;

type Parsed = ReturnType<typeof parse>;

function parse(args: string[]) {
  try {
    return parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    // parseArgs explains the mistake itself ("Unknown option '--nope'"); keep its first sentence.
    throw new UsageError((err as Error).message.split(". To specify")[0] as string);
  }
}

function only(parsed: Parsed, command: string, allowed: Array<keyof typeof OPTIONS>, positionals = 0): void {
  for (const key of Object.keys(parsed.values) as Array<keyof typeof OPTIONS>) {
    if (!allowed.includes(key)) throw new UsageError(`--${key} does not apply to ${command}`);
  }
  if (parsed.positionals.length > positionals) {
    throw new UsageError(`unexpected ${parsed.positionals.slice(positionals).join(" ")} after ${command}`);
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** The first words that name a subcommand; anything else runs the bot (sim-replica is for the failover tests). */
const SUBCOMMANDS = ["console", "check-config", "start", "help", "export", "import", "sim-replica"] as const;

/** The CLI entry point; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [first] = argv;
  const sub = SUBCOMMANDS.find((c) => c === first) ?? "start";
  const args = sub === first ? argv.slice(1) : argv;
  let starting = false;
  try {
    const parsed = parse(args);
    if (sub === "help" || (sub !== "console" && sub !== "check-config" && parsed.values.help)) {
      process.stdout.write(`${HELP}\n`);
      return EXIT.ok;
    }
    if (parsed.values.version) {
      process.stdout.write(`deploybot ${version()}\n`);
      return EXIT.ok;
    }
    const config = parsed.values.config ?? process.env.DEPLOYBOT_CONFIG ?? DEFAULT_CONFIG;
    const db = parsed.values.db ?? process.env.DEPLOYBOT_DB ?? DEFAULT_DB;
    switch (sub) {
      case "check-config": {
        if (parsed.values.help) {
          process.stdout.write(`${CHECK_HELP}\n`);
          return EXIT.ok;
        }
        only(parsed, "check-config", ["config", "slack"], 1);
        const file = parsed.positionals[0] ?? config;
        const warnings: string[] = [];
        // Warnings never fail the check; --slack loads it as Slack mode does, where they become errors.
        const loaded = loadConfig(file, {
          mode: parsed.values.slack ? "slack" : "console",
          onWarning: (w) => warnings.push(w),
        });
        process.stdout.write(`${summarize(loaded, file, warnings)}\n`);
        return EXIT.ok;
      }
      case "console":
        if (parsed.values.help) {
          process.stdout.write(`${CONSOLE_HELP}\n`);
          return EXIT.ok;
        }
        only(parsed, "console", ["config", "db", "script", "json", "quiet", "at"]);
        return await consoleMode(parsed, config, db);
      case "export":
      case "import": {
        only(parsed, sub, ["db", "database-url"]);
        if (parsed.values.db !== undefined && parsed.values["database-url"] !== undefined)
          throw new UsageError(`${sub} takes --db or --database-url, not both`);
        const url =
          parsed.values["database-url"] ??
          (parsed.values.db === undefined ? process.env.DEPLOYBOT_DATABASE_URL : undefined);
        const { dump } = await import("./cli/dump.js");
        await dump(sub, url?.trim() || undefined, db);
        return EXIT.ok;
      }
      case "sim-replica": {
        // Not in the help: the failover tests' bot process (see src/local/replica.ts).
        only(parsed, "sim-replica", ["config", "db", "world"]);
        starting = true;
        const { simReplica } = await import("./cli/sim-replica.js");
        return await simReplica(config, db, parsed.values.world ?? `${db}.sim`, () => {
          starting = false;
        });
      }
      default: {
        if (parsed.positionals.length > 0) {
          throw new UsageError(
            `unknown command ${parsed.positionals[0]} (commands: console, check-config, export, import)`,
          );
        }
        const settings = slackSettingsFromEnv(process.env);
        if (!settings) {
          only(parsed, "the console", ["config", "db", "script", "json", "quiet", "at"]);
          return await consoleMode(parsed, config, db);
        }
        only(parsed, "the Slack bot", ["config", "db"]);
        const logger = createLogger();
        installCrashHandlers(logger);
        starting = true;
        // Each mode loads only its own modules: Slack mode never the console's simulated world, the console
        // never the AWS and PagerDuty clients.
        const { startSlack } = await import("./server.js");
        const running = await startSlack({ configFile: config, dbFile: db, logger, settings });
        starting = false;
        return await untilSignal(logger, (signal) => running.stop(signal));
      }
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`deploybot: ${err.message}\nRun deploybot --help for the usage.\n`);
      return EXIT.usage;
    }
    // A config or schema error explains itself; in Slack mode, say first that the bot did not start.
    if (err instanceof StartupError || (starting && err instanceof DeploybotError)) {
      // One line a supervisor's log shows whole: a config's problems joined rather than listed.
      const message = err instanceof ConfigError ? `${err.file}: ${err.problems.join("; ")}` : err.message;
      process.stderr.write(`deploybot could not start: ${message}\n`);
      return EXIT.failed;
    }
    // Config errors are written for people: print them without a stack trace.
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof DeploybotError ? EXIT.failed : EXIT.bug;
  }
}

async function consoleMode(parsed: Parsed, configFile: string, dbFile: string): Promise<number> {
  const { script: scriptFile, json, quiet, at } = parsed.values;
  let script: string | undefined;
  if (scriptFile !== undefined) {
    try {
      script = readFileSync(scriptFile, "utf8");
    } catch (err) {
      const code = (err as { code?: string }).code;
      const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : (err as Error).message;
      throw new UsageError(`cannot read the script ${scriptFile}: ${why}`);
    }
  }
  const logger = createLogger(process.env.LOG_LEVEL ?? "warn");
  installCrashHandlers(logger);
  const { runConsole } = await import("./local/run.js");
  const result = await runConsole({
    configFile,
    dbFile,
    ...(at ? { at } : {}),
    logger,
    commands: commandNamesFromEnv(process.env),
    json: json ?? false,
    quiet: quiet ?? false,
    interactive: script === undefined && process.stdin.isTTY === true,
    ...(script !== undefined ? { script, scriptName: scriptFile } : {}),
  });
  if (result.failedLine !== undefined) {
    process.stderr.write(`${scriptFile}:${result.failedLine.number}: ${result.failedLine.message}\n`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

/** One screen: services × environments, who holds which role, freezes, guardrails, and the config's warnings. */
export function summarize(config: Config, file: string, warnings: string[] = []): string {
  const lines: string[] = [
    `${file}: valid${warnings.length ? ` (${warnings.length} warning${warnings.length === 1 ? "" : "s"})` : ""}`,
    "",
  ];
  const envs = Object.keys(config.environments);
  lines.push("Services × environments (ECS cluster/service, strategy, guardrails):");
  for (const [name, svc] of Object.entries(config.services)) {
    for (const env of envs) {
      const se = svc.environments[env];
      if (!se) continue;
      const g = se.guardrails;
      const acts = g.length
        ? ` · ${g.length} guardrails (${g.filter((x) => x.action === "rollback").length} roll back)`
        : "";
      const steps = (s: StepsStrategy) =>
        `${s.steps.map((x) => x.weight).join("/")}% with ${s.green.cluster ? `${s.green.cluster}/` : ""}${s.green.service}, keep ${formatRelative(s.keep_previous)}`;
      const strategy = se.strategy.type === "STEPS" ? `STEPS ${steps(se.strategy)}` : se.strategy.type;
      const canary = se.canary ? `; --canary STEPS ${steps(se.canary)}` : "";
      lines.push(
        `  ${name.padEnd(10)} ${env.padEnd(12)} ${se.ecs.region} ${se.ecs.cluster}/${se.ecs.service} [${se.ecs.container}] ${strategy}${canary}${acts}`,
      );
    }
  }
  lines.push("", "Roles:");
  for (const [role, r] of Object.entries(config.roles)) {
    lines.push(`  ${role.padEnd(12)} ${[...r.users, ...r.usergroups].join(", ") || "(nobody)"}`);
  }
  if (config.pagerduty)
    lines.push(
      `  ${ONCALL.padEnd(12)} whoever PagerDuty schedule ${config.pagerduty.schedules.join(", ")} has on call (level <= ${config.pagerduty.max_escalation_level})`,
    );
  lines.push("", "Environments:");
  const rule = (r: Config["environments"][string]["approvals"] | undefined) =>
    r?.length ? r.map((g) => `${g.count} of ${g.from.join("/")}`).join(" AND ") : "none";
  for (const [env, p] of Object.entries(config.environments)) {
    lines.push(
      `  ${env} (${p.timezone ?? config.timezone}): approvals ${rule(p.approvals)}; hotfix ${rule(p.hotfix_approvals ?? p.approvals)}; emergency ${rule(p.emergency?.approvals)}; approvals expire after ${formatRelative(p.approval_ttl)}`,
    );
    const rs = p.rollback_strategy;
    const restore =
      rs.type === "ROLLING"
        ? `ROLLING (maximum ${rs.maximum_percent}%, minimum healthy ${rs.minimum_healthy_percent}%)`
        : "BLUE_GREEN (one switch)";
    lines.push(
      `    rollback: ${p.rollback ? `${p.rollback.allowed.join(" or ")}${p.rollback.approvals.length ? ` + approvals ${rule(p.rollback.approvals)}` : ""}` : "deploy approvers"}; override: ${p.override.join(", ") || "nobody"}; bake ${formatRelative(p.bake)}; auto-rollback grace ${formatRelative(p.rollback_grace)}; restores traffic ${restore}`,
    );
    lines.push(
      `    windows: ${p.windows.map((w) => `${w.days.join("/")} ${w.start}-${w.end}`).join(", ") || "any time"}`,
    );
    for (const f of p.freezes) {
      const what =
        "holidays" in f
          ? `public holidays of ${f.holidays}`
          : "from" in f
            ? `${f.from} → ${f.to}`
            : `cron ${f.start} → ${f.end}`;
      lines.push(`    freeze: ${f.name}: ${what}`);
    }
  }
  lines.push(
    "",
    `Monitor: every ${formatRelative(config.monitor.interval)}; PagerDuty: ${config.pagerduty ? "configured" : "none (nothing pages)"}`,
  );
  if (warnings.length) lines.push("", "Warnings:", ...warnings.map((w) => `  - ${w}`));
  return lines.join("\n");
}
