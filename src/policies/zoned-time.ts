import { Cron } from "croner";

// Local wall-clock time and cron schedules in an IANA time zone. Pure: the time is passed in.
//
// Cron expressions, window times and holiday dates are local wall-clock times. A wall time happens
// when the local clock first reaches it: in a spring-forward gap that is the moment of the jump,
// in an autumn overlap the first pass. croner is run on the wall-clock timeline (utcOffset 0) and
// the conversion to instants is done here: croner's own `timezone` mode costs ~250 µs per call
// (it formats dates with Intl on every step) and has no "previous run", so searching backwards
// with it is slow.

const SECOND = 1000;
export const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
/** How far back a recurring freeze's start is searched (a 29 February start recurs every 4 years). */
const CRON_LOOKBACK = 5 * 366 * DAY;

/** A named stretch of time, as instants in ms: start inclusive, end exclusive. */
export interface Span {
  name: string;
  start: number;
  end: number;
  detail?: string;
}

// ---------------------------------------------------------------------------------------------
// Local wall-clock time. A "wall" value is the local date-time read as if it were UTC, in ms.

const partsFormatters = new Map<string, Intl.DateTimeFormat>();

function partsFormatter(timeZone: string): Intl.DateTimeFormat {
  let f = partsFormatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    partsFormatters.set(timeZone, f);
  }
  return f;
}

const floorSecond = (ms: number) => Math.floor(ms / SECOND) * SECOND;

/** The zone's offset from UTC at an instant, in ms (wall = instant + offset). */
function offsetAt(timeZone: string, instant: number): number {
  const fields: Record<string, number> = {};
  for (const p of partsFormatter(timeZone).formatToParts(new Date(instant)))
    if (p.type !== "literal") fields[p.type] = Number(p.value);
  const wall = Date.UTC(
    fields.year as number,
    (fields.month as number) - 1,
    fields.day as number,
    fields.hour as number,
    fields.minute as number,
    fields.second as number,
  );
  return wall - floorSecond(instant);
}

/** The first whole second in (lo, hi] whose offset differs from `offsetLo` (the offset at lo). */
function transitionBetween(timeZone: string, lo: number, hi: number, offsetLo: number): number {
  let a = floorSecond(lo);
  let b = floorSecond(hi) + SECOND;
  while (b - a > SECOND) {
    const mid = floorSecond((a + b) / 2);
    if (offsetAt(timeZone, mid) === offsetLo) a = mid;
    else b = mid;
  }
  return b;
}

/** The instant when the local clock first reads `wall` (assumes at most one offset change within a day). */
export function wallToInstant(timeZone: string, wall: number): number {
  const before = offsetAt(timeZone, wall - DAY);
  const after = offsetAt(timeZone, wall + DAY);
  if (before === after) return wall - before;
  const change = transitionBetween(timeZone, wall - DAY, wall + DAY, before);
  if (wall < change + before) return wall - before;
  if (wall >= change + after) return wall - after;
  return change; // skipped by a spring-forward jump: reached at the jump
}

/** The latest wall time the local clock has shown by `instant` (in an autumn overlap, the first pass's). */
function wallReached(timeZone: string, instant: number): number {
  const now = offsetAt(timeZone, instant);
  const dayAgo = offsetAt(timeZone, instant - DAY);
  if (dayAgo <= now) return instant + now;
  const change = transitionBetween(timeZone, instant - DAY, instant, dayAgo);
  return Math.max(instant + now, change + dayAgo - 1);
}

export interface LocalDay {
  /** Local midnight as a wall value. */
  wall: number;
  /** 0 = Sunday, as Date.getUTCDay. */
  weekday: number;
}

/** The local day `plusDays` after the one that contains `instant`. */
export function localDay(timeZone: string, instant: number, plusDays = 0): LocalDay {
  const d = new Date(instant + offsetAt(timeZone, instant));
  const wall = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + plusDays);
  return { wall, weekday: new Date(wall).getUTCDay() };
}

/** Minutes since midnight of an "HH:MM" time. */
export const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** ISO text with an offset or Z is absolute; without one it is read in the environment's zone. */
export function parseInstant(text: string, timeZone: string): number {
  const local = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?)?$/.exec(text.trim());
  if (!local) return Date.parse(text);
  const [, y, mo, d, h = "0", mi = "0", s = "0", ms = "0"] = local;
  const wall = Date.UTC(
    Number(y),
    Number(mo) - 1,
    Number(d),
    Number(h),
    Number(mi),
    Number(s),
    Number(ms.padEnd(3, "0")),
  );
  return wallToInstant(timeZone, wall);
}

/** The local calendar year at an instant. */
export const localYear = (timeZone: string, instant: number) =>
  new Date(instant + offsetAt(timeZone, instant)).getUTCFullYear();

// ---------------------------------------------------------------------------------------------
// Cron schedules: occurrences on the wall clock, mapped to instants.

const crons = new Map<string, Cron>();

/** A croner job on the wall-clock timeline, one per pattern. */
export function wallCron(pattern: string): Cron {
  let cron = crons.get(pattern);
  if (!cron) {
    cron = new Cron(pattern, { utcOffset: 0, legacyMode: true });
    crons.set(pattern, cron);
  }
  return cron;
}

function wallRunAfter(cron: Cron, wall: number): number | null {
  return cron.nextRun(new Date(wall))?.getTime() ?? null;
}

/** The latest wall-clock run at or before `limit`, searching back at most CRON_LOOKBACK. */
function latestWallRun(cron: Cron, limit: number): number | null {
  let span = HOUR;
  let bad = limit; // invariant: no run in (bad, limit]
  let found: number | null = null;
  for (;;) {
    const lo = limit - span;
    const run = wallRunAfter(cron, lo);
    if (run !== null && run <= limit) {
      found = run;
      break;
    }
    if (span >= CRON_LOOKBACK) return null;
    bad = lo;
    span = Math.min(span * 2, CRON_LOOKBACK);
  }
  // Walk forward; where runs are dense (every minute of a day), halve the gap to `bad` instead.
  let good = found;
  for (let step = 0; ; step++) {
    if (step >= 8 && bad - good > 2 * SECOND) {
      const mid = floorSecond((good + bad) / 2);
      const run = wallRunAfter(cron, mid);
      if (run !== null && run <= limit) good = run;
      else bad = mid;
      continue;
    }
    const run = wallRunAfter(cron, good);
    if (run === null || run > limit) return good;
    good = run;
  }
}

/** A five-field cron expression in a time zone, answering "next after" and "latest at or before". */
export class Schedule {
  private readonly cron: Cron;
  constructor(
    readonly pattern: string,
    private readonly timeZone: string,
  ) {
    this.cron = wallCron(pattern);
  }
  /** The first occurrence strictly after `instant`. */
  after(instant: number): number | null {
    const wall = wallRunAfter(this.cron, wallReached(this.timeZone, instant));
    return wall === null ? null : wallToInstant(this.timeZone, wall);
  }
  /** The first occurrence at or after `instant`. */
  atOrAfter(instant: number): number | null {
    return this.after(instant - 1);
  }
  /** The latest occurrence at or before `instant`, or null if none in the last five years. */
  atOrBefore(instant: number): number | null {
    const wall = latestWallRun(this.cron, wallReached(this.timeZone, instant));
    return wall === null ? null : wallToInstant(this.timeZone, wall);
  }
}
