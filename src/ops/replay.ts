import { createHash } from "node:crypto";
import type { AnyMiddlewareArgs, Middleware } from "@slack/bolt";
import type { Logger } from "pino";
import { foreground } from "../foreground.js";
import { slackRequests } from "./metrics.js";

/**
 * Remembers which Slack requests have been seen, so a replay acts once. The default lives in memory; with several
 * replicas it must be shared (a database table keyed by `key`, with an expiry), so a replay sent to another replica
 * is recognised too.
 */
export interface ReplayGuard {
  /** True the first time `key` is offered within the replay window, false for every later offer. */
  firstSeen(key: string, at: Date): Promise<boolean>;
}

/**
 * How long a request is remembered. Bolt accepts a signed request whose timestamp is up to 5 minutes old, and
 * deploybot one stamped up to 5 minutes ahead (clock skew): a captured request is replayable for 10 minutes at most.
 */
export const REPLAY_WINDOW_MS = 10 * 60_000;

/** The in-memory ReplayGuard: keys expire after the window; the oldest go first when `maxKeys` is reached. */
export class MemoryReplayGuard implements ReplayGuard {
  /** Key → when it may be forgotten; a Map keeps insertion order, which is expiry order. */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowMs = REPLAY_WINDOW_MS,
    private readonly maxKeys = 100_000,
  ) {}

  async firstSeen(key: string, at: Date): Promise<boolean> {
    const now = at.getTime();
    for (const [k, expires] of this.seen) {
      if (expires > now && this.seen.size < this.maxKeys) break;
      this.seen.delete(k);
    }
    const expires = this.seen.get(key);
    if (expires !== undefined && expires > now) return false;
    this.seen.set(key, now + this.windowMs);
    return true;
  }

  /** Keys currently remembered (for tests and metrics). */
  get size(): number {
    return this.seen.size;
  }
}

/** The shared ReplayGuard: the store's seen_requests table, so a replay sent to another replica is caught too. */
export class StoreReplayGuard implements ReplayGuard {
  constructor(
    private readonly requests: { firstSeen(key: string, at: Date, forgetBefore: Date): Promise<boolean> },
    private readonly windowMs = REPLAY_WINDOW_MS,
  ) {}

  firstSeen(key: string, at: Date): Promise<boolean> {
    return this.requests.firstSeen(key, at, new Date(at.getTime() - this.windowMs));
  }
}

/**
 * What identifies one Slack request: its trigger_id (slash commands and clicks carry a fresh one each time), else
 * the Events API event_id (the same on Slack's own retries), else a hash of the whole signed body.
 */
export function replayKey(body: unknown): string {
  const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof b.trigger_id === "string" && b.trigger_id) return `trigger:${b.trigger_id}`;
  if (typeof b.event_id === "string" && b.event_id) return `event:${b.event_id}`;
  return `body:${createHash("sha256").update(JSON.stringify(body)).digest("hex")}`;
}

/** "command", "action", "event", or Slack's own type of the payload. */
function typeOf(args: AnyMiddlewareArgs): string {
  const body = args.body as { type?: unknown; command?: unknown };
  if (typeof body.command === "string") return "command";
  if (body.type === "block_actions" || body.type === "interactive_message") return "action";
  if (body.type === "event_callback") return "event";
  return typeof body.type === "string" ? body.type.slice(0, 32) : "other";
}

/**
 * Bolt global middleware: a request already seen within the replay window goes no further (it was acked on
 * arrival, before this runs, so Slack does not retry it). It runs after Bolt verified the signature, so a forged
 * request never takes a key.
 * When the guard itself fails (its database is down), the request is refused rather than risk acting twice.
 */
export function ignoreReplays(
  guard: ReplayGuard,
  logger: Logger,
  now: () => Date = () => new Date(),
): Middleware<AnyMiddlewareArgs> {
  return async (args) => {
    const type = typeOf(args);
    const key = replayKey(args.body);
    // Acked already (ackOnArrival): the database write waits until the rest of a burst is acked too.
    await foreground.quiet();
    let first: boolean;
    try {
      first = await guard.firstSeen(key, now());
    } catch (err) {
      slackRequests.inc({ type, outcome: "refused" });
      logger.error({ err, key }, "could not check a Slack request for replay; refused it");
      if ("respond" in args && args.respond) {
        await args
          .respond({
            response_type: "ephemeral",
            replace_original: false,
            text: "deploybot could not record this request, so it did nothing. Try again in a minute.",
          })
          .catch(() => undefined);
      }
      return;
    }
    if (!first) {
      slackRequests.inc({ type, outcome: "replayed" });
      logger.warn({ key, type }, "ignored a replayed Slack request");
      return;
    }
    slackRequests.inc({ type, outcome: "handled" });
    await args.next();
  };
}
