/** The one seam through which deploybot reads the time: policies, the monitor and the console all take a Clock. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that only moves when told to: the console's simulated time and the tests' time. */
export class ManualClock implements Clock {
  private ms: number;
  constructor(start: Date | string | number) {
    this.ms = new Date(start).getTime();
    if (Number.isNaN(this.ms)) throw new Error(`not a time: ${String(start)}`);
  }
  now(): Date {
    return new Date(this.ms);
  }
  set(to: Date): void {
    if (to.getTime() < this.ms)
      throw new Error(`the simulated clock only moves forward (it is ${this.now().toISOString()})`);
    this.ms = to.getTime();
  }
  advance(ms: number): void {
    this.set(new Date(this.ms + ms));
  }
}

/** Where a scaled clock starts: this simulated time at this real time (ms since the epoch), `speed` times faster. */
export interface Timeline {
  simulated: string;
  real: number;
  speed: number;
}

/**
 * Simulated time that runs `speed` times faster than real time from a shared origin, so that processes sharing the
 * origin (it is kept in the simulated world's file) agree on the time: the failover tests' clock.
 */
export class ScaledClock implements Clock {
  private readonly start: number;
  constructor(
    readonly timeline: Timeline,
    private readonly realNow: () => number = Date.now,
  ) {
    this.start = Date.parse(timeline.simulated);
    if (Number.isNaN(this.start) || !(timeline.speed > 0))
      throw new Error(`not a timeline: ${JSON.stringify(timeline)}`);
  }
  now(): Date {
    return new Date(this.start + (this.realNow() - this.timeline.real) * this.timeline.speed);
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses "90s", "5m", "2h", "1d", "1h30m" into milliseconds; undefined when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim().toLowerCase();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g))
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  return total;
}

/** "2 d 14 h", "35 min", "40 s": the relative form used in every message that says when something ends. */
export function formatRelative(ms: number): string {
  const abs = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(abs / 86_400);
  const h = Math.floor((abs % 86_400) / 3600);
  const m = Math.floor((abs % 3600) / 60);
  const s = abs % 60;
  if (d > 0) return h > 0 ? `${d} d ${h} h` : `${d} d`;
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  if (m > 0) return `${m} min`;
  return `${s} s`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(locale: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${locale}|${JSON.stringify(options)}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(locale, options);
    formatters.set(key, f);
  }
  return f;
}

/** Each English locale knows the abbreviations of its own region (en-ZA: SAST, en-GB: BST, en-US: EST). */
const ZONE_LOCALES = ["en-GB", "en-US", "en-ZA", "en-AU", "en-IN", "en-NZ", "en-IE"];

/** Zone names already worked out, by zone and minute: the monitor names the same few minutes thousands of times a cycle. */
const zoneNames = new Map<string, string>();

/** The zone's usual abbreviation at that instant (SAST, BST, CET...), else "GMT+2". */
export function zoneName(at: Date, timeZone: string): string {
  // A zone changes its name only at an offset transition, and those fall on whole minutes.
  const key = `${timeZone}|${Math.floor(at.getTime() / 60_000)}`;
  let name = zoneNames.get(key);
  if (name === undefined) {
    name = lookUpZoneName(at, timeZone);
    if (zoneNames.size >= 10_000) zoneNames.clear();
    zoneNames.set(key, name);
  }
  return name;
}

function lookUpZoneName(at: Date, timeZone: string): string {
  let fallback = "";
  for (const locale of ZONE_LOCALES) {
    const name = formatter(locale, { timeZone, timeZoneName: "short" })
      .formatToParts(at)
      .find((p) => p.type === "timeZoneName")?.value;
    if (!name) continue;
    if (!/^(GMT|UTC)[+-−]/.test(name)) return name;
    fallback ||= name;
  }
  return fallback || timeZone;
}

/** Times of day already written, by zone and minute: the monitor writes the same few thousands of times a cycle. */
const clockTexts = new Map<string, string>();

/** "10:31 SAST": the time of day in an IANA zone, with the zone's name. */
export function formatClock(at: Date, timeZone: string): string {
  // Hours and minutes only, so every instant of one minute reads the same.
  const key = `${timeZone}|${Math.floor(at.getTime() / 60_000)}`;
  let text = clockTexts.get(key);
  if (text === undefined) {
    const hhmm = formatter("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(at);
    text = `${hhmm} ${zoneName(at, timeZone)}`;
    if (clockTexts.size >= 10_000) clockTexts.clear();
    clockTexts.set(key, text);
  }
  return text;
}

/** "Mon 24 Nov 09:00 SAST"-style local time in an IANA zone. */
export function formatLocal(at: Date, timeZone: string): string {
  const parts = formatter("en-GB", {
    timeZone,
    weekday: "short",
    day: "2-digit",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(at);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? "";
  return `${get("weekday")} ${get("day")} ${get("month")} ${get("hour")}:${get("minute")} ${zoneName(at, timeZone)}`;
}
