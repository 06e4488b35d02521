import { LogLevel, type Logger as SlackLogger, WebClient } from "@slack/web-api";
import { StartupError } from "./startup.js";

/** Who the bot is in Slack, from the one auth.test at start: Bolt needs these to skip auth.test per request. */
export interface SlackIdentity {
  botId: string;
  botUserId: string;
  teamId?: string;
}

const noop = () => {};
const quiet: SlackLogger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  setLevel: noop,
  getLevel: () => LogLevel.ERROR,
  setName: noop,
};

/** The innermost reason a request failed: ECONNREFUSED, ENOTFOUND, a TLS error... rather than "fetch failed". */
export function networkCause(err: unknown): string {
  let e: unknown = (err as { original?: unknown }).original ?? err;
  let last = err instanceof Error ? err.message : String(err);
  for (let depth = 0; e && depth < 5; depth++) {
    const x = e as { code?: string; message?: string; cause?: unknown };
    if (x.code && x.code !== "slack_webapi_request_error") {
      return x.message?.includes(x.code) ? x.message : x.message ? `${x.code}: ${x.message}` : x.code;
    }
    if (x.message) last = x.message;
    e = x.cause;
  }
  return last;
}

/** Slack error codes that mean the token itself is wrong. */
const BAD_TOKEN = new Set(["invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"]);

/**
 * Calls auth.test once, bounded by `timeoutMs`, and returns the bot's ids. A refused token or an unreachable Slack
 * becomes a StartupError naming the cause and the fix.
 */
export async function verifyBotToken(opts: {
  token: string;
  slackApiUrl?: string;
  timeoutMs: number;
}): Promise<SlackIdentity> {
  const where = opts.slackApiUrl ?? "https://slack.com/api/";
  const client = new WebClient(opts.token, {
    ...(opts.slackApiUrl ? { slackApiUrl: opts.slackApiUrl } : {}),
    retryConfig: { retries: 0 },
    timeout: opts.timeoutMs,
    rejectRateLimitedCalls: true,
    // The failure becomes one StartupError line; the client's own console warnings would add noise before it.
    logger: quiet,
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new StartupError(
            `Slack did not answer auth.test at ${where} in time (waited ${(opts.timeoutMs / 1000).toFixed(1)} s)`,
            "check the network, proxy and firewall between deploybot and Slack (and SLACK_API_URL if set)",
          ),
        ),
      opts.timeoutMs,
    );
  });
  try {
    const res = await Promise.race([client.auth.test(), timeout]);
    if (!res.bot_id || !res.user_id) {
      throw new StartupError(
        "SLACK_BOT_TOKEN is not a bot token (auth.test returned no bot id)",
        "use the Bot User OAuth Token (xoxb-...) from the app's OAuth & Permissions page",
      );
    }
    return { botId: res.bot_id, botUserId: res.user_id, ...(res.team_id ? { teamId: res.team_id } : {}) };
  } catch (err) {
    if (err instanceof StartupError) throw err;
    const e = err as { code?: string; statusCode?: number; data?: { error?: string }; original?: Error };
    const code = e.data?.error;
    if (code && BAD_TOKEN.has(code)) {
      throw new StartupError(
        `Slack refused SLACK_BOT_TOKEN (${code})`,
        "copy the Bot User OAuth Token (xoxb-...) from the app's OAuth & Permissions page, and reinstall the app if it was revoked",
      );
    }
    if (e.code === "slack_webapi_request_error" || e.code === "slack_webapi_http_error") {
      const why = e.statusCode ? `HTTP ${e.statusCode}` : networkCause(err);
      throw new StartupError(
        `Slack could not be reached at ${where} (${why})`,
        "check the network, proxy and firewall between deploybot and Slack (and SLACK_API_URL if set)",
      );
    }
    throw new StartupError(
      `Slack's auth.test failed (${code ?? (err as Error).message})`,
      "check SLACK_BOT_TOKEN and that the app is installed in the workspace",
    );
  } finally {
    clearTimeout(timer);
  }
}
