import type { APIParameters, APIResponse } from "@pagerduty/pdjs/build/src/api.js";
import type { EventParameters, EventPayloadV2, EventResponse } from "@pagerduty/pdjs/build/src/events.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import type { OnCallEntry, PageEvent, PagerPort } from "../ports.js";
import { lazyModule } from "./lazy.js";

/** pdjs (and the fetch polyfill it brings), loaded on the first page or on-call lookup, not at start. */
export const loadPdjs = lazyModule("@pagerduty/pdjs", () => import("@pagerduty/pdjs"), "event");

/** The Events API v2 limit on `payload.summary`. */
export const SUMMARY_MAX_CHARS = 1024;
/** Page size asked of GET /oncalls (PagerDuty's maximum for offset pagination). */
export const ONCALLS_PAGE_LIMIT = 100;
/** More pages than this means something is wrong; we fail closed rather than loop. */
const ONCALLS_MAX_PAGES = 50;
const DEFAULT_TIMEOUT_MS = 10_000;

export interface PagerDutyAdapterOptions {
  /** Events API v2 integration key of the service deploybot pages. */
  routingKey: string;
  /** REST API key, used read-only for GET /oncalls. */
  apiToken: string;
  /** REST API host, e.g. "api.eu.pagerduty.com"; events then go to "events.eu.pagerduty.com". Default api.pagerduty.com. */
  server?: string;
  /** Upper bound on one PagerDuty call, pdjs's retries on 429 included (pdjs's own requestTimeout aborts nothing). */
  timeoutMs?: number;
  /** pdjs's `event`, injectable so tests see the exact payload. */
  event?: (params: EventParameters) => Promise<EventResponse>;
  /** pdjs's `api` (only its full, non-partial form is called), injectable so tests see the exact request. */
  api?: (params: APIParameters) => Promise<APIResponse>;
}

/** The body sent to /v2/enqueue; unlike pdjs's EventPayloadV2, `payload` is absent on acknowledge and resolve. */
interface EventBody {
  routing_key: string;
  event_action: PageEvent["action"];
  dedup_key: string;
  payload?: {
    summary: string;
    source: string;
    severity: PageEvent["severity"];
    custom_details?: Record<string, unknown>;
  };
  links?: Array<{ href: string; text: string }>;
}

/** One entry of GET /oncalls as far as deploybot reads it; everything is checked, nothing trusted. */
interface RawOnCall {
  escalation_level?: unknown;
  schedule?: { id?: unknown } | null;
  user?: { name?: unknown; summary?: unknown; email?: unknown } | null;
}

/** PagerPort on @pagerduty/pdjs: Events API v2 for pages, REST API GET /oncalls for who is on call. */
export class PagerDutyAdapter implements PagerPort {
  private readonly routingKey: string;
  private readonly apiToken: string;
  private readonly apiServer: string;
  private readonly eventsServer: string;
  private readonly timeoutMs: number;
  private readonly event: (params: EventParameters) => Promise<EventResponse>;
  private readonly api: (params: APIParameters) => Promise<APIResponse>;

  constructor(options: PagerDutyAdapterOptions) {
    this.routingKey = options.routingKey;
    this.apiToken = options.apiToken;
    this.apiServer = (options.server ?? "api.pagerduty.com").replace(/^https?:\/\//, "").replace(/\/+$/, "");
    if (!/^api\.([a-z0-9-]+\.)*pagerduty\.com$/i.test(this.apiServer))
      throw new DeploybotError(
        ErrorCode.ConfigInvalid,
        `PagerDuty server "${this.apiServer}" is not a PagerDuty API host; use api.pagerduty.com or api.eu.pagerduty.com`,
      );
    this.eventsServer = this.apiServer.replace(/^api\./i, "events.");
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.event = options.event ?? (async (params) => (await loadPdjs()).event(params));
    this.api = options.api ?? (async (params) => (await loadPdjs()).api(params));
  }

  /** Sends one Events API v2 event; throws DeploybotError(PagerDutyFailed) unless PagerDuty accepted it. */
  async sendEvent(e: PageEvent): Promise<void> {
    const what = `the ${e.action} event for ${e.dedupKey}`;
    let res: EventResponse;
    try {
      res = await this.event({
        server: this.eventsServer,
        // pdjs's type insists on `payload`, which the Events API wants only on trigger.
        data: eventBody(this.routingKey, e) as EventPayloadV2,
        ...this.requestOptions(),
      });
    } catch (err) {
      // No answer (network, timeout): PagerDuty may or may not have it; the same dedup key makes a resend safe.
      throw this.failure(`Sending ${what} to PagerDuty failed: ${this.describe(err)}`, err, true);
    }
    if (res.status >= 200 && res.status < 300) return;
    const hint =
      res.status === 400
        ? "; check the PagerDuty routing (integration) key and the event"
        : res.status === 429
          ? "; PagerDuty is rate limiting events, send it again later"
          : res.status >= 500
            ? "; PagerDuty is having trouble, send it again later"
            : "";
    throw this.failure(
      `PagerDuty refused ${what}: HTTP ${res.status}${this.detailsOf(res.data)}${hint}`,
      undefined,
      res.status === 429 || res.status >= 500,
    );
  }

  /** GET /oncalls for the schedules, all pages, keeping escalation levels <= maxLevel; throws when PagerDuty cannot be checked. */
  async onCalls(scheduleIds: string[], maxLevel: number): Promise<OnCallEntry[]> {
    if (scheduleIds.length === 0) return [];
    const wanted = new Set(scheduleIds);
    const entries: OnCallEntry[] = [];
    const seen = new Set<string>();
    let offset = 0;
    for (let page = 0; page < ONCALLS_MAX_PAGES; page++) {
      const body = await this.onCallPage(scheduleIds, offset);
      for (const raw of body.oncalls) {
        const entry = toOnCallEntry(raw);
        if (!entry || !wanted.has(entry.scheduleId) || entry.escalationLevel > maxLevel) continue;
        // The same schedule can sit in several escalation policies; one entry per person, schedule and level.
        const key = `${entry.scheduleId}\n${entry.escalationLevel}\n${entry.userEmail.toLowerCase()}`;
        if (seen.has(key)) continue;
        seen.add(key);
        entries.push(entry);
      }
      if (!body.more) return entries;
      if (body.oncalls.length === 0) throw this.failure(notChecked("GET /oncalls said there is more but sent nothing"));
      offset += body.oncalls.length;
    }
    throw this.failure(notChecked(`GET /oncalls had more than ${ONCALLS_MAX_PAGES} pages`));
  }

  private async onCallPage(scheduleIds: string[], offset: number): Promise<{ oncalls: RawOnCall[]; more: boolean }> {
    let res: APIResponse;
    try {
      res = await this.api({
        endpoint: "oncalls",
        method: "GET",
        server: this.apiServer,
        token: this.apiToken,
        tokenType: "token",
        queryParameters: {
          "schedule_ids[]": scheduleIds,
          "include[]": ["users"],
          limit: String(ONCALLS_PAGE_LIMIT),
          offset: String(offset),
        },
        ...this.requestOptions(),
      });
    } catch (err) {
      // pdjs rejects with the Response itself when the body is not JSON (a 502 page from a proxy, say).
      const status = statusOf(err);
      if (status !== undefined)
        throw this.failure(notChecked(`GET /oncalls answered HTTP ${status}${hintFor(status)}`));
      throw this.failure(notChecked(`GET /oncalls failed: ${this.describe(err)}`), err);
    }
    if (res.status < 200 || res.status >= 300)
      throw this.failure(
        notChecked(`GET /oncalls answered HTTP ${res.status}${this.detailsOf(res.data)}${hintFor(res.status)}`),
      );
    const data = res.data as { oncalls?: unknown; more?: unknown } | null | undefined;
    if (!data || !Array.isArray(data.oncalls))
      throw this.failure(notChecked("GET /oncalls answered without an oncalls list"));
    return { oncalls: data.oncalls as RawOnCall[], more: data.more === true };
  }

  /** requestTimeout 0 stops pdjs from leaving a no-op 30 s timer behind; the signal is what actually bounds the call. */
  private requestOptions(): { requestTimeout: number; signal: AbortSignal } {
    return { requestTimeout: 0, signal: AbortSignal.timeout(this.timeoutMs) };
  }

  /** PagerDuty's own words from an error body: Events API `{message, errors}` or REST API `{error: {message, errors}}`. */
  private detailsOf(data: unknown): string {
    if (!data || typeof data !== "object") return "";
    const body = data as { message?: unknown; errors?: unknown; error?: { message?: unknown; errors?: unknown } };
    const source = body.error && typeof body.error === "object" ? body.error : body;
    const parts: string[] = [];
    if (typeof source.message === "string") parts.push(source.message);
    if (Array.isArray(source.errors)) parts.push(...source.errors.filter((x): x is string => typeof x === "string"));
    return parts.length > 0 ? ` (${this.redact(parts.join("; "))})` : "";
  }

  private describe(err: unknown): string {
    if (err instanceof Error && err.name === "TimeoutError") return `no answer within ${this.timeoutMs} ms`;
    if (err instanceof Error && err.name === "AbortError") return `no answer within ${this.timeoutMs} ms`;
    return this.redact(err instanceof Error ? err.message : String(err));
  }

  /** A PagerDutyFailed error whose message and cause carry neither the routing key nor the API token. */
  private failure(message: string, cause?: unknown, transient = false): DeploybotError {
    const safeMessage = this.redact(message);
    if (!(cause instanceof Error)) return new DeploybotError(ErrorCode.PagerDutyFailed, safeMessage, { transient });
    const leaks = this.redact(`${cause.message}\n${cause.stack ?? ""}`) !== `${cause.message}\n${cause.stack ?? ""}`;
    const safeCause = leaks ? new Error(this.redact(cause.message)) : cause;
    return new DeploybotError(ErrorCode.PagerDutyFailed, safeMessage, { cause: safeCause, transient });
  }

  private redact(text: string): string {
    let out = text;
    for (const secret of [this.routingKey, this.apiToken]) if (secret) out = out.split(secret).join("[redacted]");
    return out;
  }
}

/** The Events API v2 body: payload and links only on trigger, the summary cut to PagerDuty's limit. */
function eventBody(routingKey: string, e: PageEvent): EventBody {
  const body: EventBody = { routing_key: routingKey, event_action: e.action, dedup_key: e.dedupKey };
  if (e.action !== "trigger") return body;
  body.payload = { summary: truncate(e.summary, SUMMARY_MAX_CHARS), source: e.source, severity: e.severity };
  if (e.customDetails) body.payload.custom_details = e.customDetails;
  if (e.links && e.links.length > 0) body.links = e.links;
  return body;
}

/** Cuts to `max` characters (code points, so no emoji is split), ending in "…" when cut. */
function truncate(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join("")}…`;
}

function toOnCallEntry(raw: RawOnCall): OnCallEntry | undefined {
  const level = raw.escalation_level;
  const scheduleId = raw.schedule?.id;
  const email = raw.user?.email;
  if (typeof level !== "number" || typeof scheduleId !== "string" || typeof email !== "string" || email === "")
    return undefined;
  const name = raw.user?.name ?? raw.user?.summary;
  return { scheduleId, escalationLevel: level, userName: typeof name === "string" ? name : email, userEmail: email };
}

function notChecked(why: string): string {
  return `PagerDuty could not be checked: ${why}`;
}

function hintFor(status: number): string {
  if (status === 401) return "; the PagerDuty API token was refused, set a valid REST API key";
  if (status === 403) return "; the PagerDuty API token may not read on-call schedules";
  if (status === 429) return "; PagerDuty is rate limiting, try again in a minute";
  if (status >= 500) return "; PagerDuty is having trouble, try again later";
  return "";
}

function statusOf(err: unknown): number | undefined {
  if (err instanceof Error || !err || typeof err !== "object") return undefined;
  const status = (err as { status?: unknown }).status;
  return typeof status === "number" ? status : undefined;
}
