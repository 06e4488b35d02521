import { formatLocal, formatRelative } from "../clock.js";
import type { DeployWindow, EnvironmentPolicy, Freeze } from "../config/schema.js";
import { activeSpan, nextSpan } from "./freeze-spans.js";
import { DAY, localDay, MINUTE, minutesOf, type Span, wallToInstant } from "./zoned-time.js";

// Deploy windows and freezes, read in the environment's IANA time zone. Pure: the time is passed in.
// The wall-clock and cron arithmetic lives in zoned-time.ts; when each kind of freeze is in effect, in
// freeze-spans.ts.

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

const DEFAULT_HORIZON_DAYS = 366;

// ---------------------------------------------------------------------------------------------
// Freezes

function freezeKind(freeze: Freeze): FreezeKind {
  if ("start" in freeze) return "recurring";
  if ("from" in freeze) return "dated";
  return "holiday";
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
