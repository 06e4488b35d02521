import { DeploybotError, ErrorCode } from "../errors.js";

/** The Slack-facing names of deploybot's three slash commands, as registered in the app's manifest. */
export interface CommandNames {
  deploy: string;
  rollback: string;
  status: string;
}

/**
 * The names manifest.yml registers. The status command is not `/status`: Slack reserves that name, and a
 * manifest that registers a reserved name is rejected whole ("invalid name").
 */
export const DEFAULT_COMMANDS: Readonly<CommandNames> = {
  deploy: "/deploy",
  rollback: "/rollback",
  status: "/deploy-status",
};

/**
 * Slack's built-in commands (Slack help centre, "Use built-in slash commands", and names other apps saw refused).
 * An app cannot register them; the list errs on the side of refusing a name.
 */
export const SLACK_RESERVED_COMMANDS: ReadonlySet<string> = new Set([
  "/active",
  "/apps",
  "/archive",
  "/away",
  "/call",
  "/clear",
  "/close",
  "/collapse",
  "/dm",
  "/dnd",
  "/expand",
  "/feed",
  "/feedback",
  "/help",
  "/invite",
  "/invite_people",
  "/join",
  "/keys",
  "/kick",
  "/leave",
  "/me",
  "/mentions",
  "/msg",
  "/mute",
  "/open",
  "/part",
  "/prefs",
  "/pro",
  "/remind",
  "/remove",
  "/rename",
  "/saved",
  "/search",
  "/shortcuts",
  "/shrug",
  "/star",
  "/stars",
  "/status",
  "/topic",
  "/unmute",
  "/who",
  "/whois",
]);

/** Where each name can be changed: one environment variable per command (the manifest must say the same). */
export const COMMAND_ENV: Readonly<Record<keyof CommandNames, string>> = {
  deploy: "DEPLOYBOT_DEPLOY_COMMAND",
  rollback: "DEPLOYBOT_ROLLBACK_COMMAND",
  status: "DEPLOYBOT_STATUS_COMMAND",
};

/** Slack's rule for a command name: a slash, then up to 32 lower-case letters, digits, - or _. */
const NAME = /^\/[a-z0-9][a-z0-9_-]{0,31}$/;

/** Why `name` cannot be a Slack command name, or undefined when it can. */
export function commandNameProblem(name: string): string | undefined {
  if (!NAME.test(name)) return "a slash and up to 32 lower-case letters, digits, - or _ (e.g. /deploy-status)";
  if (SLACK_RESERVED_COMMANDS.has(name)) return "Slack reserves that name for its own command";
  return undefined;
}

/** The command names from the environment (defaults where unset); a name Slack would refuse stops the start. */
export function commandNamesFromEnv(env: NodeJS.ProcessEnv = process.env): CommandNames {
  const names = { ...DEFAULT_COMMANDS };
  for (const key of Object.keys(COMMAND_ENV) as Array<keyof CommandNames>) {
    const value = env[COMMAND_ENV[key]]?.trim();
    if (!value) continue;
    const problem = commandNameProblem(value);
    if (problem) {
      throw new DeploybotError(
        ErrorCode.ConfigInvalid,
        `${COMMAND_ENV[key]}=${value} cannot be a Slack command name: it must be ${problem}`,
      );
    }
    names[key] = value;
  }
  const used = Object.values(names);
  if (new Set(used).size !== used.length) {
    throw new DeploybotError(
      ErrorCode.ConfigInvalid,
      `the command names ${used.join(", ")} must differ: set ${Object.values(COMMAND_ENV).join(", ")} to three names`,
    );
  }
  return names;
}
