import Holidays from "date-holidays";
import type { Freeze } from "../config/schema.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import { DAY, localYear, parseInstant, Schedule, type Span, wallCron, wallToInstant } from "./zoned-time.js";

// When each kind of freeze is in effect, as spans of instants in the environment's time zone: recurring
// (a cron start until the first cron end after it), dated (from → to) and holiday (whole local days of
// public holidays). Pure: the time is passed in.

/** A problem in a freeze definition, for the config loader to report with its path. */
export interface FreezeProblem {
  index: number;
  field: "start" | "end" | "from" | "to" | "holidays";
  message: string;
}

type RecurringFreeze = Extract<Freeze, { start: string }>;
type DatedFreeze = Extract<Freeze, { from: string }>;
type HolidayFreeze = Extract<Freeze, { holidays: string }>;

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

/** The span of `freeze` that contains `at`, or null when it is not in effect then. */
export function activeSpan(freeze: Freeze, timeZone: string, at: number): Span | null {
  if ("start" in freeze) return recurringActive(freeze, timeZone, at);
  if ("from" in freeze) {
    const span = datedSpan(freeze, timeZone);
    return span.start <= at && at < span.end ? span : null;
  }
  const year = localYear(timeZone, at);
  return holidaySpans(freeze, timeZone, year - 1, year + 1).find((s) => s.start <= at && at < s.end) ?? null;
}

/** The first span of `freeze` that starts after `at` and by `until`, or null. */
export function nextSpan(freeze: Freeze, timeZone: string, at: number, until: number): Span | null {
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
