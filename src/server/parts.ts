import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DeploybotError, ErrorCode } from "../errors.js";
import { checkDatabase } from "../ops/db-check.js";
import { StartupError } from "../ops/startup.js";
import type { PagerPort } from "../ports.js";
import { openStore, type Store } from "../store/index.js";

/** PagerDuty when its keys are not set: nothing can be paged and nobody is on call (fail closed). */
export const noPagerDuty = (why: string): PagerPort => ({
  sendEvent: async () => {
    throw new DeploybotError(ErrorCode.PagerDutyFailed, `PagerDuty is not configured: ${why}`);
  },
  onCalls: async () => {
    throw new DeploybotError(ErrorCode.PagerDutyFailed, `PagerDuty could not be checked: ${why}`);
  },
});

/** How often the SQLite file's WAL is checkpointed (by a thread of its own) in Slack mode. */
export const CHECKPOINT_EVERY_MS = 5_000;

/**
 * Opens the bot's database: PostgreSQL for a URL, else the SQLite file, checked first (corrupt, or someone else's).
 * Every failure is a StartupError that says what to change, or the store's own DeploybotError (a newer schema).
 */
export async function openBotStore(
  dbFile: string,
  databaseUrl: string | undefined,
  tables: readonly string[],
): Promise<Store> {
  // A SQLite file is checked before it is opened (corrupt, or someone else's); PostgreSQL checks itself.
  if (!databaseUrl) checkDatabase(dbFile, tables);
  try {
    if (!databaseUrl && dbFile !== ":memory:") mkdirSync(dirname(dbFile), { recursive: true });
    // WAL checkpoints in a thread of their own: in this one they held the event loop for about 100 ms at a time.
    return await openStore({ url: databaseUrl, file: dbFile, checkpointEveryMs: CHECKPOINT_EVERY_MS });
  } catch (err) {
    // A newer schema explains itself; a permission or disk problem is the operator's to fix, not a bug.
    if (err instanceof DeploybotError) throw err;
    throw new StartupError(
      databaseUrl
        ? `the PostgreSQL database cannot be opened (${(err as Error).message})`
        : `the database ${dbFile} cannot be opened for writing (${(err as Error).message})`,
      databaseUrl
        ? "check DEPLOYBOT_DATABASE_URL (host, port, user, password, database) and that the server accepts connections"
        : "check the path (--db, DEPLOYBOT_DB), its permissions and the volume it is on",
      { cause: err },
    );
  }
}

/** Maps a listen() failure to the variable the operator should change. */
export function listenError(err: unknown, variable: string, port: number): unknown {
  const code = (err as { code?: string }).code;
  if (code === "EADDRINUSE") {
    return new StartupError(
      `port ${port} (${variable}) is in use`,
      `stop what listens there or set ${variable} to a free port`,
    );
  }
  if (code === "EACCES") {
    return new StartupError(`port ${port} (${variable}) needs privileges`, `set ${variable} to a port above 1023`);
  }
  if (code === "EADDRNOTAVAIL") {
    return new StartupError(`HOST is not an address of this machine`, "unset HOST or set it to one of its addresses");
  }
  return err;
}

/** Why Socket Mode did not connect, as the operator should read it. */
export function socketError(err: unknown): unknown {
  if (err instanceof StartupError) return err;
  const e = err as { code?: string; data?: { error?: string }; message?: string };
  const code = e.data?.error;
  if (
    code === "invalid_auth" ||
    code === "not_authed" ||
    code === "token_revoked" ||
    code === "not_allowed_token_type"
  ) {
    return new StartupError(
      `Slack refused SLACK_APP_TOKEN (${code})`,
      "create an app-level token with the connections:write scope under the app's Basic Information, and check Socket Mode is on",
    );
  }
  return new StartupError(
    `Slack's Socket Mode could not be reached (${code ?? e.message ?? String(err)})`,
    "check the network, proxy and firewall between deploybot and wss-primary.slack.com (and SLACK_API_URL if set)",
  );
}
