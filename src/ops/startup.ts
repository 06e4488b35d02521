import { parseDuration } from "../clock.js";

/**
 * Why deploybot could not start, and what the operator should change. The CLI prints it as one line on stderr
 * and exits non-zero, so a supervisor (systemd, ECS, Kubernetes) sees the failure and its reason at once.
 */
export class StartupError extends Error {
  constructor(
    readonly problem: string,
    readonly fix: string,
    options?: { cause?: unknown },
  ) {
    super(`${problem}; ${fix}`, options);
    this.name = "StartupError";
  }
}

/** How deploybot talks to Slack, read from the environment in one place. */
export interface SlackSettings {
  mode: "socket" | "http";
  botToken: string;
  /** Socket Mode: the app-level token (xapp-...). */
  appToken?: string;
  /** HTTP mode: the signing secret every request is checked against. */
  signingSecret?: string;
  /** HTTP mode: where Slack's requests arrive (PORT, default 3000). */
  port: number;
  /** The interface to listen on (HOST); every interface when unset. */
  host?: string;
  /** /healthz, /readyz and /metrics on a port of their own (METRICS_PORT); Socket Mode has no other HTTP server. */
  metricsPort?: number;
  /** The Web API base URL (SLACK_API_URL), for a Slack-compatible server or a proxy. */
  slackApiUrl?: string;
}

const set = (v: string | undefined): string | undefined => (v?.trim() ? v.trim() : undefined);

function port(env: NodeJS.ProcessEnv, name: string, fallback?: number): number | undefined {
  const raw = set(env[name]);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > 65_535) {
    throw new StartupError(`${name}=${raw} is not a port number`, `set ${name} to a number from 0 to 65535`);
  }
  return n;
}

/**
 * The Slack settings from the environment, or null when no Slack variable is set (the local console runs then).
 * A partial set is an error: a bot token alone would otherwise run the console and exit 0, and a supervisor
 * would take that for a clean stop.
 */
export function slackSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): SlackSettings | null {
  const botToken = set(env.SLACK_BOT_TOKEN);
  const appToken = set(env.SLACK_APP_TOKEN);
  const signingSecret = set(env.SLACK_SIGNING_SECRET);
  if (!botToken && !appToken && !signingSecret) return null;
  if (!botToken) {
    const given = [appToken && "SLACK_APP_TOKEN", signingSecret && "SLACK_SIGNING_SECRET"]
      .filter(Boolean)
      .join(" and ");
    throw new StartupError(
      `${given} ${given.includes(" and ") ? "are" : "is"} set without SLACK_BOT_TOKEN`,
      "set SLACK_BOT_TOKEN (xoxb-...) too, or unset them all to run the local console",
    );
  }
  if (!appToken && !signingSecret) {
    throw new StartupError(
      "SLACK_BOT_TOKEN is set without SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)",
      "set one of them, or unset SLACK_BOT_TOKEN to run the local console",
    );
  }
  if (!botToken.startsWith("xoxb-")) {
    throw new StartupError(
      "SLACK_BOT_TOKEN is not a bot token (it should start with xoxb-)",
      "use the Bot User OAuth Token from the app's OAuth & Permissions page",
    );
  }
  if (appToken && !appToken.startsWith("xapp-")) {
    throw new StartupError(
      "SLACK_APP_TOKEN is not an app-level token (it should start with xapp-)",
      "create one with the connections:write scope under the app's Basic Information",
    );
  }
  let slackApiUrl = set(env.SLACK_API_URL);
  if (slackApiUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(slackApiUrl);
    } catch {
      throw new StartupError(`SLACK_API_URL=${slackApiUrl} is not a URL`, "set it to e.g. https://slack.com/api/");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new StartupError(
        `SLACK_API_URL=${slackApiUrl} is not an http(s) URL`,
        "set it to e.g. https://slack.com/api/",
      );
    }
    slackApiUrl = url.href.endsWith("/") ? url.href : `${url.href}/`;
  }
  const host = set(env.HOST);
  const metricsPort = port(env, "METRICS_PORT");
  return {
    mode: appToken ? "socket" : "http",
    botToken,
    ...(appToken ? { appToken } : { signingSecret: signingSecret as string }),
    port: port(env, "PORT", 3000) as number,
    ...(host ? { host } : {}),
    ...(metricsPort !== undefined ? { metricsPort } : {}),
    ...(slackApiUrl ? { slackApiUrl } : {}),
  };
}

/** The shortest and longest leader lease DEPLOYBOT_LEASE_TTL may ask for. */
const LEASE_TTL_RANGE_MS = [100, 10 * 60_000] as const;

/**
 * How long the leader lease lasts unless renewed (DEPLOYBOT_LEASE_TTL: a duration such as 15s or 500ms, or a number
 * of seconds), or `fallback` when unset. A standby takes over within one and a third of it after the leader dies.
 */
export function leaseTtlFromEnv(env: NodeJS.ProcessEnv, fallback: number): number {
  const raw = set(env.DEPLOYBOT_LEASE_TTL);
  if (raw === undefined) return fallback;
  const ms = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) * 1000 : parseDuration(raw);
  const [min, max] = LEASE_TTL_RANGE_MS;
  if (ms === undefined || ms < min || ms > max) {
    throw new StartupError(
      `DEPLOYBOT_LEASE_TTL=${raw} is not a lease period deploybot can keep`,
      "set it to a duration from 100ms to 10m, such as 15s (the default), or unset it",
    );
  }
  return ms;
}
