import { Cron } from "croner";
import Holidays from "date-holidays";
import { formatLocal, formatRelative } from "../clock.js";
import type { DeployWindow, EnvironmentPolicy, Freeze } from "../config/schema.js";
import { DeploybotError, ErrorCode } from "../errors.js";

// Deploy windows and freezes, read in the environment's IANA time zone. Pure: the time is passed in.
//
// Cron expressions, window times and holiday dates are local wall-clock times. A wall time happens
// when the local clock first reaches it: in a spring-forward gap that is the moment of the jump,
// in an autumn overlap the first pass. croner is run on the wall-clock timeline (utcOffset 0) and
// the conversion to instants is done here: croner's own `timezone` mode costs ~250 µs per call
// (it formats dates with Intl on every step) and has no "previous run", so searching backwards
// with it is slow.

export type FreezeKind = "recurring" | "dated" | "holiday";

/** A freeze in effect at the moment asked about. */
export interface ActiveFreeze {
  name: string;
  kind: FreezeKind;
  startedAt: Date;
  endsAt: Date;
  /** For holiday freezes: the holidays covered, e.g. "Christmas Day, Day of Goodwill". */
  detail?: string;
}

/** The next freeze that starts after the moment asked about. */
export interface UpcomingFreeze {
  name: string;
  kind: FreezeKind;
  startsAt: Date;
  endsAt: Date;
  detail?: string;
}

/** Where a moment falls relative to the deploy windows; adjoining windows count as one. */
export interface WindowStatus {
  inside: boolean;
  current?: { name: string; startedAt: Date; endsAt: Date };
  next?: { name: string; startsAt: Date; endsAt: Date };
}

/** Something that keeps the calendar closed, and when it stops doing so (null: not within a year). */
export interface CalendarBlocker {
  kind: "freeze" | "window";
  name: string;
  endsAt: Date | null;
}

/** The calendar's answer for one environment at one moment. */
export interface CalendarVerdict {
  open: boolean;
  reasons: string[];
  blockers: CalendarBlocker[];
  nextOpen: Date | null;
}

/** A problem in a freeze definition, for the config loader to report with its path. */
export interface FreezeProblem {
  index: number;
  field: "start" | "end" | "from" | "to" | "holidays";
  message: string;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** How far back a recurring freeze's start is searched (a 29 February start recurs every 4 years). */
const CRON_LOOKBACK = 5 * 366 * DAY;
const DEFAULT_HORIZON_DAYS = 366;

interface Span {
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
function wallToInstant(timeZone: string, wall: number): number {
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

interface LocalDay {
  /** Local midnight as a wall value. */
  wall: number;
  /** 0 = Sunday, as Date.getUTCDay. */
  weekday: number;
}

function localDay(timeZone: string, instant: number, plusDays = 0): LocalDay {
  const d = new Date(instant + offsetAt(timeZone, instant));
  const wall = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + plusDays);
  return { wall, weekday: new Date(wall).getUTCDay() };
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** ISO text with an offset or Z is absolute; without one it is read in the environment's zone. */
function parseInstant(text: string, timeZone: string): number {
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

// ---------------------------------------------------------------------------------------------
// Recurring freezes: cron occurrences on the wall clock, mapped to instants.

const crons = new Map<string, Cron>();

function wallCron(pattern: string): Cron {
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
class Schedule {
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

type RecurringFreeze = Extract<Freeze, { start: string }>;
type DatedFreeze = Extract<Freeze, { from: string }>;
type HolidayFreeze = Extract<Freeze, { holidays: string }>;

function freezeKind(freeze: Freeze): FreezeKind {
  if ("start" in freeze) return "recurring";
  if ("from" in freeze) return "dated";
  return "holiday";
}

function invalidFreeze(freeze: Freeze, message: string, cause?: unknown): DeploybotError {
  return new DeploybotError(ErrorCode.ConfigInvalid, `freeze '${freeze.name}': ${message}`, { cause });
}

function schedules(freeze: RecurringFreeze, timeZone: string): { start: Schedule; end: Schedule } {
  try {
    return { start: new Schedule(freeze.start, timeZone), end: new Schedule(freeze.end, timeZone) };
  } catch (err) {
    throw invalidFreeze(freeze, `not a valid cron expression (${(err as Error).message})`, err);
  }
}

function endAfter(freeze: RecurringFreeze, end: Schedule, start: number): number {
  const e = end.after(start);
  if (e === null) throw invalidFreeze(freeze, `its end '${freeze.end}' never occurs`);
  return e;
}

/** The recurring freeze's stretch containing `at`: from a start until the first end after it. */
function recurringActive(freeze: RecurringFreeze, timeZone: string, at: number): Span | null {
  const { start, end } = schedules(freeze, timeZone);
  const lastStart = start.atOrBefore(at);
  if (lastStart === null) return null;
  const endsAt = endAfter(freeze, end, lastStart);
  if (endsAt <= at) return null;
  // Several starts may precede one end (e.g. Thu and Fri 17:00 → Mon 09:00): it began at the first.
  const previousEnd = end.atOrBefore(lastStart);
  const startedAt = previousEnd === null ? lastStart : (start.atOrAfter(previousEnd) ?? lastStart);
  return { name: freeze.name, start: startedAt, end: endsAt };
}

function recurringNext(freeze: RecurringFreeze, timeZone: string, at: number): Span | null {
  const { start, end } = schedules(freeze, timeZone);
  const current = recurringActive(freeze, timeZone, at);
  const startsAt = current ? start.atOrAfter(current.end) : start.after(at);
  if (startsAt === null) return null;
  return { name: freeze.name, start: startsAt, end: endAfter(freeze, end, startsAt) };
}

function datedSpan(freeze: DatedFreeze, timeZone: string): Span {
  const start = parseInstant(freeze.from, timeZone);
  const end = parseInstant(freeze.to, timeZone);
  if (Number.isNaN(start) || Number.isNaN(end)) throw invalidFreeze(freeze, "'from' or 'to' is not an ISO date-time");
  return { name: freeze.name, start, end };
}

// ---------------------------------------------------------------------------------------------
// Holiday freezes: whole local days of public holidays, consecutive days merged.

const holidayCalendars = new Map<string, Holidays>();
let knownCountries: Record<string, string> | undefined;

function holidayCountryProblem(code: string): string | null {
  const [country = "", state] = code.split("-");
  const probe = new Holidays();
  knownCountries ??= probe.getCountries();
  if (!knownCountries[country]) return `date-holidays does not know the country '${country}'`;
  if (state && !probe.getStates(country)?.[state])
    return `date-holidays does not know the region '${state}' of ${country} (see its getStates)`;
  return null;
}

function holidayCalendar(freeze: HolidayFreeze): Holidays {
  let hd = holidayCalendars.get(freeze.holidays);
  if (!hd) {
    const problem = holidayCountryProblem(freeze.holidays);
    if (problem) throw invalidFreeze(freeze, problem);
    const [country = "", state] = freeze.holidays.split("-");
    hd = state ? new Holidays(country, state) : new Holidays(country);
    holidayCalendars.set(freeze.holidays, hd);
  }
  return hd;
}

interface HolidayDays {
  /** Wall value of the first local midnight. */
  wall: number;
  days: number;
  name: string;
}

const holidayYears = new Map<string, HolidayDays[]>();

function publicHolidays(freeze: HolidayFreeze, year: number): HolidayDays[] {
  const key = `${freeze.holidays}|${year}`;
  let list = holidayYears.get(key);
  if (!list) {
    list = holidayCalendar(freeze)
      .getHolidays(year)
      .filter((h) => h.type === "public")
      .map((h) => {
        const [y, m, d] = h.date.slice(0, 10).split("-").map(Number) as [number, number, number];
        // Some holidays last several days (e.g. Eid for 72 h); a part day still freezes the whole day.
        const days = Math.max(1, Math.round((h.end.getTime() - h.start.getTime()) / DAY));
        return { wall: Date.UTC(y, m - 1, d), days, name: h.name };
      });
    holidayYears.set(key, list);
  }
  return list;
}

const holidaySpanCache = new Map<string, Span[]>();

/** Merged holiday stretches (as instants in `timeZone`) for the local years fromYear..toYear. */
function holidaySpans(freeze: HolidayFreeze, timeZone: string, fromYear: number, toYear: number): Span[] {
  const key = `${freeze.name}|${freeze.holidays}|${timeZone}|${fromYear}|${toYear}`;
  let spans = holidaySpanCache.get(key);
  if (!spans) {
    spans = mergeHolidays(freeze, timeZone, fromYear, toYear);
    holidaySpanCache.set(key, spans);
  }
  return spans;
}

function mergeHolidays(freeze: HolidayFreeze, timeZone: string, fromYear: number, toYear: number): Span[] {
  const days: HolidayDays[] = [];
  for (let y = fromYear; y <= toYear; y++) days.push(...publicHolidays(freeze, y));
  days.sort((a, b) => a.wall - b.wall);
  const merged: Array<{ from: number; to: number; names: string[] }> = [];
  for (const h of days) {
    const to = h.wall + h.days * DAY;
    const last = merged.at(-1);
    if (last && h.wall <= last.to) {
      last.to = Math.max(last.to, to);
      if (!last.names.includes(h.name)) last.names.push(h.name);
    } else merged.push({ from: h.wall, to, names: [h.name] });
  }
  return merged.map((m) => ({
    name: freeze.name,
    start: wallToInstant(timeZone, m.from),
    end: wallToInstant(timeZone, m.to),
    detail: m.names.join(", "),
  }));
}

const localYear = (timeZone: string, instant: number) =>
  new Date(instant + offsetAt(timeZone, instant)).getUTCFullYear();

// ---------------------------------------------------------------------------------------------
// Freezes

function activeSpan(freeze: Freeze, timeZone: string, at: number): Span | null {
  if ("start" in freeze) return recurringActive(freeze, timeZone, at);
  if ("from" in freeze) {
    const span = datedSpan(freeze, timeZone);
    return span.start <= at && at < span.end ? span : null;
  }
  const year = localYear(timeZone, at);
  return holidaySpans(freeze, timeZone, year - 1, year + 1).find((s) => s.start <= at && at < s.end) ?? null;
}

function nextSpan(freeze: Freeze, timeZone: string, at: number, until: number): Span | null {
  let span: Span | null;
  if ("start" in freeze) span = recurringNext(freeze, timeZone, at);
  else if ("from" in freeze) {
    const dated = datedSpan(freeze, timeZone);
    span = dated.start > at ? dated : null;
  } else {
    span =
      holidaySpans(freeze, timeZone, localYear(timeZone, at) - 1, localYear(timeZone, until) + 1).find(
        (s) => s.start > at,
      ) ?? null;
  }
  return span && span.start <= until ? span : null;
}

/** The freezes in effect at `at` (start inclusive, end exclusive), each with when it started and ends. */
export function activeFreezes(freezes: Freeze[], timeZone: string, at: Date): ActiveFreeze[] {
  const out: ActiveFreeze[] = [];
  for (const freeze of freezes) {
    const span = activeSpan(freeze, timeZone, at.getTime());
    if (!span) continue;
    out.push({
      name: span.name,
      kind: freezeKind(freeze),
      startedAt: new Date(span.start),
      endsAt: new Date(span.end),
      ...(span.detail ? { detail: span.detail } : {}),
    });
  }
  return out;
}

/** The next freeze starting strictly after `at`, within `horizonDays`; null if none. */
export function nextFreeze(
  freezes: Freeze[],
  timeZone: string,
  at: Date,
  horizonDays = DEFAULT_HORIZON_DAYS,
): UpcomingFreeze | null {
  const until = at.getTime() + horizonDays * DAY;
  let best: UpcomingFreeze | null = null;
  for (const freeze of freezes) {
    const span = nextSpan(freeze, timeZone, at.getTime(), until);
    if (!span || (best && best.startsAt.getTime() <= span.start)) continue;
    best = {
      name: span.name,
      kind: freezeKind(freeze),
      startsAt: new Date(span.start),
      endsAt: new Date(span.end),
      ...(span.detail ? { detail: span.detail } : {}),
    };
  }
  return best;
}

/** Checks freeze definitions (cron syntax, an end that occurs, dates, holiday country) for the config loader. */
export function freezeProblems(freezes: Freeze[]): FreezeProblem[] {
  const problems: FreezeProblem[] = [];
  freezes.forEach((freeze, index) => {
    if ("start" in freeze) {
      for (const field of ["start", "end"] as const) {
        try {
          if (wallCron(freeze[field]).nextRun(new Date(0)) === null)
            problems.push({ index, field, message: `'${freeze[field]}' never occurs` });
        } catch (err) {
          problems.push({
            index,
            field,
            message: `'${freeze[field]}' is not a valid cron expression: ${(err as Error).message}`,
          });
        }
      }
    } else if ("from" in freeze) {
      for (const field of ["from", "to"] as const)
        if (Number.isNaN(parseInstant(freeze[field], "UTC")))
          problems.push({ index, field, message: `'${freeze[field]}' is not an ISO date-time` });
    } else {
      const problem = holidayCountryProblem(freeze.holidays);
      if (problem) problems.push({ index, field: "holidays", message: problem });
    }
  });
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Windows

const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;

function windowName(w: DeployWindow): string {
  if (w.name) return w.name;
  const days = w.days.map((d) => d.charAt(0).toUpperCase() + d.slice(1)).join("/");
  return `${days} ${w.start}-${w.end} window`;
}

/** Window occurrences on the local days around `at`, adjoining or overlapping ones merged into blocks. */
function windowBlocks(windows: DeployWindow[], timeZone: string, at: number): Array<Span & { parts: Span[] }> {
  const spans: Span[] = [];
  // Windows do not cross midnight (the config rejects end <= start), so a week and a day ahead suffices.
  for (let offset = -1; offset <= 8; offset++) {
    const day = localDay(timeZone, at, offset);
    for (const w of windows) {
      if (!w.days.includes(WEEKDAYS[day.weekday] as (typeof WEEKDAYS)[number])) continue;
      const start = wallToInstant(timeZone, day.wall + minutesOf(w.start) * MINUTE);
      const end = wallToInstant(timeZone, day.wall + minutesOf(w.end) * MINUTE);
      if (end > start) spans.push({ name: windowName(w), start, end });
    }
  }
  spans.sort((a, b) => a.start - b.start || a.end - b.end);
  const blocks: Array<Span & { parts: Span[] }> = [];
  for (const s of spans) {
    const last = blocks.at(-1);
    if (last && s.start <= last.end) {
      last.end = Math.max(last.end, s.end);
      last.parts.push(s);
    } else blocks.push({ ...s, parts: [s] });
  }
  return blocks;
}

/** Whether `at` is inside a deploy window (start inclusive, end exclusive); no windows means always inside. */
export function windowStatus(windows: DeployWindow[], timeZone: string, at: Date): WindowStatus {
  if (windows.length === 0) return { inside: true };
  const t = at.getTime();
  const blocks = windowBlocks(windows, timeZone, t);
  const status: WindowStatus = { inside: false };
  const current = blocks.find((b) => b.start <= t && t < b.end);
  if (current) {
    const part = current.parts.find((p) => p.start <= t && t < p.end) ?? current;
    status.inside = true;
    status.current = { name: part.name, startedAt: new Date(current.start), endsAt: new Date(current.end) };
  }
  const next = blocks.find((b) => b.start > t);
  if (next) status.next = { name: next.name, startsAt: new Date(next.start), endsAt: new Date(next.end) };
  return status;
}

// ---------------------------------------------------------------------------------------------
// The verdict

type CalendarPolicy = Pick<EnvironmentPolicy, "windows" | "freezes">;

/** The earliest instant at or after `at` inside a window and in no freeze, within `horizonDays`; null if none. */
export function nextOpenAt(
  env: CalendarPolicy,
  timeZone: string,
  at: Date,
  horizonDays = DEFAULT_HORIZON_DAYS,
): Date | null {
  const limit = at.getTime() + horizonDays * DAY;
  let t = at.getTime();
  // Every step moves t strictly forward to a freeze end or a window start; the cap guards odd configs.
  for (let step = 0; step < 2000 && t <= limit; step++) {
    const frozen = env.freezes.map((f) => activeSpan(f, timeZone, t)).filter((s): s is Span => s !== null);
    if (frozen.length > 0) {
      t = Math.max(...frozen.map((s) => s.end));
      continue;
    }
    const windows = windowStatus(env.windows, timeZone, new Date(t));
    if (windows.inside) return new Date(t);
    if (!windows.next) return null;
    t = windows.next.startsAt.getTime();
  }
  return null;
}

/** The environment's calendar at `at`: open, or what blocks it and the next moment everything is open. */
export function checkCalendar(env: CalendarPolicy, timeZone: string, at: Date, label?: string): CalendarVerdict {
  const when = (d: Date) => `${formatLocal(d, timeZone)} (in ${formatRelative(d.getTime() - at.getTime())})`;
  const freezes = activeFreezes(env.freezes, timeZone, at);
  const windows = windowStatus(env.windows, timeZone, at);
  const reasons: string[] = [];
  const blockers: CalendarBlocker[] = [];

  for (const f of freezes) {
    blockers.push({ kind: "freeze", name: f.name, endsAt: f.endsAt });
    const what = f.detail ? `${f.name} (${f.detail})` : f.name;
    reasons.push(`${label ? `${label} is frozen` : "Frozen"}: ${what} until ${when(f.endsAt)}.`);
  }
  if (!windows.inside) {
    blockers.push({
      kind: "window",
      name: windows.next?.name ?? "deploy windows",
      endsAt: windows.next?.startsAt ?? null,
    });
    const outside = label ? `${label} is outside its deploy windows` : "Outside the deploy windows";
    reasons.push(
      windows.next ? `${outside}: next is ${windows.next.name}, ${when(windows.next.startsAt)}.` : `${outside}.`,
    );
  }

  if (blockers.length === 0) {
    reasons.push(
      windows.current
        ? `Inside the ${windows.current.name} until ${when(windows.current.endsAt)}, and no freeze is in effect.`
        : "No deploy window applies and no freeze is in effect.",
    );
    return { open: true, reasons, blockers, nextOpen: at };
  }
  const nextOpen = nextOpenAt(env, timeZone, at);
  reasons.push(nextOpen ? `Next open: ${when(nextOpen)}.` : "Not open at any moment in the next year.");
  return { open: false, reasons, blockers, nextOpen };
}
