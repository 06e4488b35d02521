import { readFileSync } from "node:fs";
import { formatRelative } from "./clock.js";
import { loadConfig } from "./config/load.js";
import { type Config, ONCALL } from "./config/schema.js";
import { DeploybotError, ErrorCode } from "./errors.js";
import { createLogger } from "./logger.js";

const DEFAULT_CONFIG = "examples/deploybot.yml";
const DEFAULT_DB = "data/deploybot.db";

const HELP = `deploybot: /deploy, /rollback and /status for AWS ECS from Slack

  deploybot [--config FILE] [--db FILE]      run the bot: Slack when tokens are set, else the local console
  deploybot console [--config FILE] [--db FILE] [--script FILE] [--json] [--at ISO-TIME]
  deploybot check-config [FILE] [--slack]    validate a config and print a summary and its warnings
                                             (--slack: as Slack mode loads it, where warnings about paging are errors)

Slack: SLACK_BOT_TOKEN with SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP, PORT default 3000).
Config: --config or DEPLOYBOT_CONFIG (default ${DEFAULT_CONFIG}); db: --db or DEPLOYBOT_DB (default ${DEFAULT_DB}).`;

interface Flags {
  config: string;
  db: string;
  script?: string;
  json: boolean;
  at?: string;
  positional: string[];
}

function parseFlags(args: string[]): Flags {
  const flags: Flags = {
    config: process.env.DEPLOYBOT_CONFIG ?? DEFAULT_CONFIG,
    db: process.env.DEPLOYBOT_DB ?? DEFAULT_DB,
    json: false,
    positional: [],
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const value = () => {
      const v = args[++i];
      if (v === undefined || v.startsWith("--"))
        throw new DeploybotError(ErrorCode.CommandInvalid, `${a} needs a value`);
      return v;
    };
    if (a === "--config") flags.config = value();
    else if (a === "--db") flags.db = value();
    else if (a === "--script") flags.script = value();
    else if (a === "--at") flags.at = value();
    else if (a === "--json") flags.json = true;
    else if (a.startsWith("--")) throw new DeploybotError(ErrorCode.CommandInvalid, `unknown option ${a}\n\n${HELP}`);
    else flags.positional.push(a);
  }
  return flags;
}

/** The CLI entry point; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  const sub = first && !first.startsWith("--") ? first : "start";
  const args = sub === "start" && first !== "start" ? argv : rest;
  try {
    switch (sub) {
      case "help":
      case "--help":
        process.stdout.write(`${HELP}\n`);
        return 0;
      case "check-config": {
        const slack = args.includes("--slack");
        const flags = parseFlags(args.filter((a) => a !== "--slack"));
        const file = flags.positional[0] ?? flags.config;
        const warnings: string[] = [];
        const config = loadConfig(file, { mode: slack ? "slack" : "console", onWarning: (w) => warnings.push(w) });
        // Warnings never fail the check: only errors (thrown above) exit non-zero.
        process.stdout.write(`${summarize(config, file, warnings)}\n`);
        return 0;
      }
      case "console":
        return await consoleMode(parseFlags(args));
      case "start": {
        const flags = parseFlags(args);
        const { SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_SIGNING_SECRET } = process.env;
        if (SLACK_BOT_TOKEN && (SLACK_APP_TOKEN || SLACK_SIGNING_SECRET)) {
          // Each mode loads only its own modules: Slack mode never the console's simulated world, the console
          // never the AWS and PagerDuty clients.
          const { startSlack } = await import("./server.js");
          await startSlack({ configFile: flags.config, dbFile: flags.db, logger: createLogger() });
          return await new Promise<number>(() => {});
        }
        return await consoleMode(flags);
      }
      default:
        process.stderr.write(`unknown command ${sub}\n\n${HELP}\n`);
        return 2;
    }
  } catch (err) {
    // Config and usage errors are written for people: print them without a stack trace.
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof DeploybotError ? 1 : 70;
  }
}

async function consoleMode(flags: Flags): Promise<number> {
  const script = flags.script !== undefined ? readFileSync(flags.script, "utf8") : undefined;
  const { runConsole } = await import("./local/console.js");
  await runConsole({
    configFile: flags.config,
    dbFile: flags.db,
    ...(flags.at ? { at: flags.at } : {}),
    logger: createLogger(process.env.LOG_LEVEL ?? "warn"),
    json: flags.json,
    interactive: script === undefined && process.stdin.isTTY === true,
    ...(script !== undefined ? { script } : {}),
  });
  return 0;
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
      lines.push(
        `  ${name.padEnd(10)} ${env.padEnd(12)} ${se.ecs.region} ${se.ecs.cluster}/${se.ecs.service} [${se.ecs.container}] ${se.strategy.type}${acts}`,
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
