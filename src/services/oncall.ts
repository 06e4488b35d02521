import type { Clock } from "../clock.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import type { OnCallEntry, PagerPort } from "../ports.js";

/** Longest allowed cache: beyond a minute someone could keep the on-call right well after handing over. */
export const MAX_CACHE_MS = 60_000;
/**
 * A failed check is remembered at most this long (or cacheMs if shorter): long enough that a burst of clicks
 * during an outage asks PagerDuty once, short enough that rights come back within seconds of recovery.
 */
export const FAILURE_CACHE_MS = 5_000;

/** A Slack user on call right now in one of the configured PagerDuty schedules. */
export interface OnCallUser {
  slackId: string;
  scheduleId: string;
  level: number;
  name: string;
}

export type OnCallNow = { ok: true; users: OnCallUser[] } | { ok: false; error: string };

export interface OnCallDirectoryOptions {
  pager: PagerPort;
  scheduleIds: string[];
  /** Escalation levels 1..maxLevel count as on call. */
  maxLevel: number;
  /** How long a successful answer is reused; at most MAX_CACHE_MS. */
  cacheMs: number;
  clock: Clock;
  /** PagerDuty email (verbatim) to Slack user id; undefined when nobody in Slack has it, a throw when it cannot tell. */
  resolveEmail: (email: string) => Promise<string | undefined>;
}

/**
 * Who holds the on-call right now, by Slack user id. Fails closed: when PagerDuty cannot be checked (or its people
 * cannot be matched to Slack), the answer is `ok: false` and nobody is on call.
 */
export class OnCallDirectory {
  private readonly pager: PagerPort;
  private readonly scheduleIds: string[];
  private readonly maxLevel: number;
  private readonly cacheMs: number;
  private readonly clock: Clock;
  private readonly resolveEmail: (email: string) => Promise<string | undefined>;
  private cached?: { at: number; ttlMs: number; result: OnCallNow };
  private inFlight?: Promise<OnCallNow>;

  constructor(options: OnCallDirectoryOptions) {
    if (!(options.cacheMs >= 0 && options.cacheMs <= MAX_CACHE_MS))
      throw new DeploybotError(
        ErrorCode.ConfigInvalid,
        `the on-call cache must be between 0 and ${MAX_CACHE_MS / 1000} s (got ${options.cacheMs} ms), ` +
          "so that a handover takes effect within a minute",
      );
    this.pager = options.pager;
    this.scheduleIds = [...options.scheduleIds];
    this.maxLevel = options.maxLevel;
    this.cacheMs = options.cacheMs;
    this.clock = options.clock;
    this.resolveEmail = options.resolveEmail;
  }

  /** Who is on call now, from the cache while it is fresh; concurrent callers share one PagerDuty call. */
  current(): Promise<OnCallNow> {
    const now = this.clock.now().getTime();
    const c = this.cached;
    if (c && now >= c.at && now - c.at < c.ttlMs) return Promise.resolve(c.result);
    if (!this.inFlight)
      this.inFlight = this.refresh().finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }

  /** Whether this Slack user is on call, with a reason fit to show in a decision. */
  async isOnCall(slackId: string): Promise<{ onCall: boolean; reason: string }> {
    if (this.scheduleIds.length === 0)
      return { onCall: false, reason: "not on call: no PagerDuty schedules are configured" };
    const now = await this.current();
    if (!now.ok) return { onCall: false, reason: now.error };
    const best = now.users.filter((u) => u.slackId === slackId).sort((a, b) => a.level - b.level)[0];
    if (!best) {
      const schedules = `${this.scheduleIds.length === 1 ? "schedule" : "schedules"} ${this.scheduleIds.join(", ")}`;
      const levels = this.maxLevel === 1 ? "level 1" : `levels 1-${this.maxLevel}`;
      return { onCall: false, reason: `not on call (${schedules}, ${levels})` };
    }
    return { onCall: true, reason: `on call in schedule ${best.scheduleId}, level ${best.level}` };
  }

  private async refresh(): Promise<OnCallNow> {
    const at = this.clock.now().getTime();
    const result = await this.lookUp();
    const ttlMs = result.ok ? this.cacheMs : Math.min(this.cacheMs, FAILURE_CACHE_MS);
    this.cached = { at, ttlMs, result };
    return result;
  }

  private async lookUp(): Promise<OnCallNow> {
    if (this.scheduleIds.length === 0) return { ok: true, users: [] };
    let entries: OnCallEntry[];
    try {
      entries = await this.pager.onCalls(this.scheduleIds, this.maxLevel);
    } catch (err) {
      return { ok: false, error: notChecked(err) };
    }
    // The port filters levels already; filtering again costs nothing and a sloppy port must not grant rights.
    const inScope = entries.filter((e) => e.escalationLevel <= this.maxLevel);
    let slackIds: Map<string, string | undefined>;
    try {
      const emails = [...new Set(inScope.map((e) => e.userEmail))];
      slackIds = new Map(
        await Promise.all(emails.map(async (email) => [email, await this.resolveEmail(email)] as const)),
      );
    } catch (err) {
      return { ok: false, error: `the people on call could not be matched to Slack users: ${messageOf(err)}` };
    }
    const users: OnCallUser[] = [];
    const seen = new Set<string>();
    for (const e of inScope) {
      const slackId = slackIds.get(e.userEmail);
      if (!slackId) continue;
      const key = `${slackId}\n${e.scheduleId}\n${e.escalationLevel}`;
      if (seen.has(key)) continue;
      seen.add(key);
      users.push({ slackId, scheduleId: e.scheduleId, level: e.escalationLevel, name: e.userName });
    }
    return { ok: true, users };
  }
}

/** The adapter's PagerDutyFailed messages already say "PagerDuty could not be checked"; anything else gets it added. */
function notChecked(err: unknown): string {
  const message = messageOf(err);
  return message.startsWith("PagerDuty could not be checked") ? message : `PagerDuty could not be checked: ${message}`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
