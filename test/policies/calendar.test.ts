import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig, parseConfig } from "../../src/config/load.js";
import type { DeployWindow, EnvironmentPolicy, Freeze } from "../../src/config/schema.js";
import { DeploybotError, ErrorCode } from "../../src/errors.js";
import { activeFreezes, checkCalendar, nextFreeze, nextOpenAt, windowStatus } from "../../src/policies/calendar.js";
import { freezeProblems } from "../../src/policies/freeze-spans.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/deploybot.yml", import.meta.url));
const config = loadConfig(EXAMPLE);
const production = config.environments.production as EnvironmentPolicy;
const staging = config.environments.staging as EnvironmentPolicy;
const JNB = "Africa/Johannesburg";
const LONDON = "Europe/London";

/** "2026-11-21 11:00" read as SAST (UTC+2 all year). */
const sast = (local: string) => new Date(`${local.replace(" ", "T")}:00+02:00`);
/** "2026-03-29 01:00" read as UTC. */
const utc = (text: string) => new Date(`${text.replace(" ", "T")}:00Z`);
const iso = (d: Date | null | undefined) => d?.toISOString() ?? null;
/** Node's ICU names the zone "GMT+2" where other builds say "SAST"; the tests read either as SAST. */
const sastNames = (texts: string[]) => texts.map((t) => t.replaceAll("GMT+2", "SAST"));

const holidayFreeze: Freeze = { name: "South African public holidays", holidays: "ZA" };

describe("the Comply360 production calendar (examples/deploybot.yml)", () => {
  it("reads every window and freeze in Africa/Johannesburg", () => {
    expect(config.timezone).toBe(JNB);
  });

  it.each([
    { when: "Friday 16:59, a minute before the weekend freeze", at: "2026-11-20 16:59", frozen: [] },
    {
      when: "Friday 17:00, when the weekend freeze starts",
      at: "2026-11-20 17:00",
      frozen: [["Weekend freeze", "recurring", "2026-11-20 17:00", "2026-11-23 09:00"]],
    },
    {
      when: "Saturday, until Monday 09:00",
      at: "2026-11-21 11:00",
      frozen: [["Weekend freeze", "recurring", "2026-11-20 17:00", "2026-11-23 09:00"]],
    },
    {
      when: "Monday 08:59, still in the weekend freeze",
      at: "2026-11-23 08:59",
      frozen: [["Weekend freeze", "recurring", "2026-11-20 17:00", "2026-11-23 09:00"]],
    },
    { when: "Monday 09:00, when the weekend freeze has ended", at: "2026-11-23 09:00", frozen: [] },
    { when: "the evening before the last day of March", at: "2026-03-30 23:59", frozen: [] },
    {
      when: "the last day of March (a Tuesday), until 1 April 09:00",
      at: "2026-03-31 10:30",
      frozen: [["Month-end freeze", "recurring", "2026-03-31 00:00", "2026-04-01 09:00"]],
    },
    {
      when: "1 April 08:59, the month-end freeze's last minute",
      at: "2026-04-01 08:59",
      frozen: [["Month-end freeze", "recurring", "2026-03-31 00:00", "2026-04-01 09:00"]],
    },
    { when: "1 April 09:00", at: "2026-04-01 09:00", frozen: [] },
    {
      when: "30 April, the last day of a 30-day month",
      at: "2026-04-30 12:00",
      frozen: [["Month-end freeze", "recurring", "2026-04-30 00:00", "2026-05-01 09:00"]],
    },
    { when: "28 February of a leap year", at: "2028-02-28 12:00", frozen: [] },
    {
      when: "29 February of a leap year",
      at: "2028-02-29 12:00",
      frozen: [["Month-end freeze", "recurring", "2028-02-29 00:00", "2028-03-01 09:00"]],
    },
    {
      when: "Monday 30 November, in both the weekend and the month-end freeze",
      at: "2026-11-30 08:00",
      frozen: [
        ["Weekend freeze", "recurring", "2026-11-27 17:00", "2026-11-30 09:00"],
        ["Month-end freeze", "recurring", "2026-11-30 00:00", "2026-12-01 09:00"],
      ],
    },
    { when: "the last minute before the Day of Reconciliation", at: "2026-12-15 23:59", frozen: [] },
    {
      when: "the Day of Reconciliation (Wednesday 16 December), until local midnight",
      at: "2026-12-16 00:00",
      frozen: [["South African public holidays", "holiday", "2026-12-16 00:00", "2026-12-17 00:00"]],
    },
    {
      when: "the Day of Reconciliation's last minute",
      at: "2026-12-16 23:59",
      frozen: [["South African public holidays", "holiday", "2026-12-16 00:00", "2026-12-17 00:00"]],
    },
    { when: "the day after the Day of Reconciliation", at: "2026-12-17 00:00", frozen: [] },
    {
      when: "Christmas Day, merged with the Day of Goodwill into one holiday freeze",
      at: "2026-12-25 12:00",
      frozen: [["South African public holidays", "holiday", "2026-12-25 00:00", "2026-12-27 00:00"]],
    },
    {
      when: "Monday 10 August, the substitute for Women's Day, merged with the Sunday",
      at: "2026-08-10 12:00",
      frozen: [["South African public holidays", "holiday", "2026-08-09 00:00", "2026-08-11 00:00"]],
    },
    { when: "the evening before the tax-season freeze", at: "2027-10-18 23:59", frozen: [] },
    {
      when: "the tax-season freeze (a dated freeze)",
      at: "2027-10-19 00:00",
      frozen: [["Tax season filing peak", "dated", "2027-10-19 00:00", "2027-10-24 00:00"]],
    },
    {
      when: "the tax-season freeze's last minute, on a weekend",
      at: "2027-10-23 23:59",
      frozen: [
        ["Weekend freeze", "recurring", "2027-10-22 17:00", "2027-10-25 09:00"],
        ["Tax season filing peak", "dated", "2027-10-19 00:00", "2027-10-24 00:00"],
      ],
    },
    {
      when: "the moment the tax-season freeze ends",
      at: "2027-10-24 00:00",
      frozen: [["Weekend freeze", "recurring", "2027-10-22 17:00", "2027-10-25 09:00"]],
    },
  ])("finds the freezes in effect at $when ($at SAST)", ({ at, frozen }) => {
    const active = activeFreezes(production.freezes, JNB, sast(at));
    expect(active.map((f) => [f.name, f.kind, iso(f.startedAt), iso(f.endsAt)])).toEqual(
      frozen.map(([name, kind, from, to]) => [name, kind, iso(sast(from as string)), iso(sast(to as string))]),
    );
  });

  it.each([
    { at: "2026-12-16 10:30", detail: "Day of Reconciliation" },
    { at: "2026-12-26 10:30", detail: "Christmas Day, Day of Goodwill" },
    { at: "2026-08-09 10:30", detail: "National Women's Day, Public Holiday" },
  ])("names the holidays a holiday freeze covers on $at: $detail", ({ at, detail }) => {
    const [freeze] = activeFreezes([holidayFreeze], JNB, sast(at));
    expect(freeze?.detail).toBe(detail);
  });

  it("does not freeze observances, only public holidays (Nelson Mandela Day, 18 July)", () => {
    expect(activeFreezes([holidayFreeze], JNB, sast("2026-07-18 12:00"))).toEqual([]);
  });

  it.each([
    { when: "Tuesday 09:59", at: "2026-11-24 09:59", inside: false, endsAt: null, next: "2026-11-24 10:00" },
    {
      when: "Tuesday 10:00",
      at: "2026-11-24 10:00",
      inside: true,
      endsAt: "2026-11-24 12:00",
      next: "2026-11-25 10:00",
    },
    {
      when: "Tuesday 11:59",
      at: "2026-11-24 11:59",
      inside: true,
      endsAt: "2026-11-24 12:00",
      next: "2026-11-25 10:00",
    },
    { when: "Tuesday 12:00", at: "2026-11-24 12:00", inside: false, endsAt: null, next: "2026-11-25 10:00" },
    { when: "Wednesday 12:00", at: "2026-11-25 12:00", inside: false, endsAt: null, next: "2026-12-01 10:00" },
    { when: "Thursday", at: "2026-11-19 10:30", inside: false, endsAt: null, next: "2026-11-24 10:00" },
  ])("on $when ($at) inside the window is $inside and the next window starts $next", ({ at, inside, endsAt, next }) => {
    const status = windowStatus(production.windows, JNB, sast(at));
    expect(status.inside).toBe(inside);
    expect(iso(status.current?.endsAt)).toBe(endsAt && iso(sast(endsAt)));
    expect(status.next?.name).toBe("Tue/Wed morning window");
    expect(iso(status.next?.startsAt)).toBe(iso(sast(next)));
  });

  it.each([
    {
      when: "Saturday: frozen and outside the window, open again Tuesday 10:00",
      at: "2026-11-21 11:00",
      blockers: [
        ["freeze", "Weekend freeze", "2026-11-23 09:00"],
        ["window", "Tue/Wed morning window", "2026-11-24 10:00"],
      ],
      nextOpen: "2026-11-24 10:00",
    },
    { when: "Tuesday 10:00: open", at: "2026-11-24 10:00", blockers: [], nextOpen: "2026-11-24 10:00" },
    { when: "Tuesday 11:59: open", at: "2026-11-24 11:59", blockers: [], nextOpen: "2026-11-24 11:59" },
    {
      when: "Tuesday 12:00: the window has closed, open again Wednesday 10:00",
      at: "2026-11-24 12:00",
      blockers: [["window", "Tue/Wed morning window", "2026-11-25 10:00"]],
      nextOpen: "2026-11-25 10:00",
    },
    {
      when: "Thursday: outside the window, open again Tuesday",
      at: "2026-11-19 10:30",
      blockers: [["window", "Tue/Wed morning window", "2026-11-24 10:00"]],
      nextOpen: "2026-11-24 10:00",
    },
    {
      when: "the Day of Reconciliation, a Wednesday inside the window: frozen, open again the next Tuesday",
      at: "2026-12-16 10:30",
      blockers: [["freeze", "South African public holidays", "2026-12-17 00:00"]],
      nextOpen: "2026-12-22 10:00",
    },
    {
      when: "the last day of March, a Tuesday inside the window: frozen, open again Wednesday 10:00",
      at: "2026-03-31 10:30",
      blockers: [["freeze", "Month-end freeze", "2026-04-01 09:00"]],
      nextOpen: "2026-04-01 10:00",
    },
    {
      when: "the Saturday before Freedom Day (a Tuesday): next open is Wednesday",
      at: "2027-04-24 11:00",
      blockers: [
        ["freeze", "Weekend freeze", "2027-04-26 09:00"],
        ["window", "Tue/Wed morning window", "2027-04-27 10:00"],
      ],
      nextOpen: "2027-04-28 10:00",
    },
    {
      when: "the tax-season Tuesday: frozen for the week, open again the Tuesday after",
      at: "2027-10-19 10:30",
      blockers: [["freeze", "Tax season filing peak", "2027-10-24 00:00"]],
      nextOpen: "2027-10-26 10:00",
    },
    {
      when: "Boxing Day weekend: weekend, holiday and window all block",
      at: "2026-12-26 11:00",
      blockers: [
        ["freeze", "Weekend freeze", "2026-12-28 09:00"],
        ["freeze", "South African public holidays", "2026-12-27 00:00"],
        ["window", "Tue/Wed morning window", "2026-12-29 10:00"],
      ],
      nextOpen: "2026-12-29 10:00",
    },
  ])("at $when", ({ at, blockers, nextOpen }) => {
    const verdict = checkCalendar(production, JNB, sast(at));
    expect(verdict.open).toBe(blockers.length === 0);
    expect(verdict.blockers.map((b) => [b.kind, b.name, iso(b.endsAt)])).toEqual(
      blockers.map(([kind, name, endsAt]) => [kind, name, iso(sast(endsAt as string))]),
    );
    expect(iso(verdict.nextOpen)).toBe(iso(sast(nextOpen)));
  });

  it("explains a Saturday denial with the freeze, the next window and the next open moment", () => {
    const verdict = checkCalendar(production, JNB, sast("2026-11-21 11:00"), "Production");
    expect(sastNames(verdict.reasons)).toEqual([
      "Production is frozen: Weekend freeze until Mon 23 Nov 09:00 SAST (in 1 d 22 h).",
      "Production is outside its deploy windows: next is Tue/Wed morning window, Tue 24 Nov 10:00 SAST (in 2 d 23 h).",
      "Next open: Tue 24 Nov 10:00 SAST (in 2 d 23 h).",
    ]);
  });

  it("names the holidays in a holiday freeze's reason, without a label", () => {
    const verdict = checkCalendar(production, JNB, sast("2026-12-25 12:00"));
    expect(sastNames(verdict.reasons)[0]).toBe(
      "Frozen: South African public holidays (Christmas Day, Day of Goodwill) until Sun 27 Dec 00:00 SAST (in 1 d 12 h).",
    );
  });

  it("says which window it is in and until when when open", () => {
    const verdict = checkCalendar(production, JNB, sast("2026-11-24 10:30"), "Production");
    expect(verdict.open).toBe(true);
    expect(sastNames(verdict.reasons)).toEqual([
      "Inside the Tue/Wed morning window until Tue 24 Nov 12:00 SAST (in 1 h 30 min), and no freeze is in effect.",
    ]);
  });

  it("leaves staging (no windows, no freezes) open at any time, even on a Saturday night", () => {
    const at = sast("2026-11-21 23:00");
    expect(checkCalendar(staging, JNB, at)).toEqual({
      open: true,
      reasons: ["No deploy window applies and no freeze is in effect."],
      blockers: [],
      nextOpen: at,
    });
  });

  it.each([
    {
      when: "a Tuesday morning",
      at: "2026-11-24 10:30",
      name: "Weekend freeze",
      from: "2026-11-27 17:00",
      to: "2026-11-30 09:00",
    },
    {
      when: "inside a weekend freeze (the next one, not the current)",
      at: "2026-11-21 11:00",
      name: "Weekend freeze",
      from: "2026-11-27 17:00",
      to: "2026-11-30 09:00",
    },
    {
      when: "the Monday before the Day of Reconciliation",
      at: "2026-12-14 10:00",
      name: "South African public holidays",
      from: "2026-12-16 00:00",
      to: "2026-12-17 00:00",
    },
    {
      when: "the Monday before tax season",
      at: "2027-10-18 10:00",
      name: "Tax season filing peak",
      from: "2027-10-19 00:00",
      to: "2027-10-24 00:00",
    },
  ])("from $when the next freeze is $name from $from", ({ at, name, from, to }) => {
    const next = nextFreeze(production.freezes, JNB, sast(at));
    expect([next?.name, iso(next?.startsAt), iso(next?.endsAt)]).toEqual([name, iso(sast(from)), iso(sast(to))]);
  });

  it("looks for the next freeze only as far as the horizon", () => {
    const taxSeason = production.freezes.filter((f) => "from" in f);
    expect(nextFreeze(taxSeason, JNB, sast("2026-01-01 00:00"))).toBeNull();
    expect(nextFreeze(taxSeason, JNB, sast("2026-01-01 00:00"), 700)?.name).toBe("Tax season filing peak");
  });
});

describe("freezes and windows around midnight", () => {
  const nightly: Freeze = { name: "Nightly batch", start: "0 22 * * *", end: "0 2 * * *" };

  it.each([
    { at: "2026-11-24 21:59", moment: "a minute before it starts", frozen: null },
    { at: "2026-11-24 22:00", moment: "as it starts", frozen: ["2026-11-24 22:00", "2026-11-25 02:00"] },
    { at: "2026-11-24 23:30", moment: "before midnight", frozen: ["2026-11-24 22:00", "2026-11-25 02:00"] },
    { at: "2026-11-25 01:59", moment: "after midnight", frozen: ["2026-11-24 22:00", "2026-11-25 02:00"] },
    { at: "2026-11-25 02:00", moment: "once it has ended at 02:00", frozen: null },
  ])("checks a freeze from 22:00 to 02:00 the next day $moment ($at)", ({ at, frozen }) => {
    const [active] = activeFreezes([nightly], JNB, sast(at));
    expect(active ? [iso(active.startedAt), iso(active.endsAt)] : null).toEqual(
      frozen && [iso(sast(frozen[0] as string)), iso(sast(frozen[1] as string))],
    );
  });

  it("rejects a window that crosses midnight when the config is loaded", () => {
    const text = readFileSync(EXAMPLE, "utf8").replace('start: "10:00", end: "12:00"', 'start: "22:00", end: "02:00"');
    expect(() => parseConfig(text, "deploybot.yml")).toThrow(/window ends \(02:00\) before it starts \(22:00\)/);
  });

  it("dates a freeze from its first start when several starts precede one end (Thu and Fri 17:00 to Mon 09:00)", () => {
    const longWeekend: Freeze = { name: "Long weekend", start: "0 17 * * 4,5", end: "0 9 * * 1" };
    const [active] = activeFreezes([longWeekend], JNB, sast("2026-11-21 11:00"));
    expect([iso(active?.startedAt), iso(active?.endsAt)]).toEqual([
      iso(sast("2026-11-19 17:00")),
      iso(sast("2026-11-23 09:00")),
    ]);
  });

  it("finds the latest start of a cron that fires every minute of an hour (Mon 09:xx to 12:00)", () => {
    const standup: Freeze = { name: "Stand-up", start: "* 9 * * 1", end: "0 12 * * 1" };
    const [active] = activeFreezes([standup], JNB, sast("2026-11-23 11:00"));
    expect([iso(active?.startedAt), iso(active?.endsAt)]).toEqual([
      iso(sast("2026-11-23 09:00")),
      iso(sast("2026-11-23 12:00")),
    ]);
    expect(activeFreezes([standup], JNB, sast("2026-11-23 12:00"))).toEqual([]);
  });

  it.each([
    { text: "2026-12-24T00:00", read: "in SAST", at: "2026-12-23T21:59:00Z", frozen: false },
    { text: "2026-12-24T00:00", read: "in SAST", at: "2026-12-23T22:00:00Z", frozen: true },
    { text: "2026-12-24T00:00:00Z", read: "as UTC", at: "2026-12-23T23:00:00Z", frozen: false },
    { text: "2026-12-24T00:00:00Z", read: "as UTC", at: "2026-12-24T00:00:00Z", frozen: true },
  ])("reads a dated freeze from $text $read: at $at frozen is $frozen", ({ text, at, frozen }) => {
    const dated: Freeze = { name: "Christmas", from: text, to: "2027-01-04T00:00" };
    expect(activeFreezes([dated], JNB, new Date(at)).length > 0).toBe(frozen);
  });

  it("finds no open moment within a year when a freeze never lifts", () => {
    const always: Freeze = { name: "Always", start: "0 0 * * *", end: "0 0 * * *" };
    const verdict = checkCalendar({ windows: [], freezes: [always] }, JNB, sast("2026-11-24 10:00"));
    expect([verdict.open, verdict.nextOpen, verdict.reasons.at(-1)]).toEqual([
      false,
      null,
      "Not open at any moment in the next year.",
    ]);
  });
});

describe("windows: merging and naming", () => {
  const windows: DeployWindow[] = [
    { name: "Morning", days: ["mon"], start: "10:00", end: "12:00" },
    { name: "Midday", days: ["mon"], start: "12:00", end: "13:00" },
    { days: ["tue", "wed"], start: "10:00", end: "11:00" },
  ];

  it.each([
    { at: "2026-11-23 11:00", current: "Morning", endsAt: "2026-11-23 13:00" },
    { at: "2026-11-23 12:00", current: "Midday", endsAt: "2026-11-23 13:00" },
  ])("treats adjoining windows as one: at $at in $current until 13:00", ({ at, current, endsAt }) => {
    const status = windowStatus(windows, JNB, sast(at));
    expect([status.current?.name, iso(status.current?.endsAt)]).toEqual([current, iso(sast(endsAt))]);
  });

  it("names an unnamed window by its days and hours", () => {
    expect(windowStatus(windows, JNB, sast("2026-11-23 13:00")).next?.name).toBe("Tue/Wed 10:00-11:00 window");
  });

  it("is always inside when no window is configured", () => {
    expect(windowStatus([], JNB, sast("2026-11-21 03:00"))).toEqual({ inside: true });
  });
});

describe("Europe/London around the daylight-saving switches", () => {
  const weekend: Freeze = { name: "Weekend freeze", start: "0 17 * * 5", end: "0 9 * * 1" };
  // 01:30 does not exist on 29 March 2026 and happens twice on 25 October 2026.
  const nightly: Freeze = { name: "Nightly", start: "30 1 * * *", end: "0 4 * * *" };
  const lateNightly: Freeze = { name: "Late nightly", start: "45 1 * * *", end: "0 3 * * *" };
  const windows: DeployWindow[] = [
    { name: "Tuesday morning", days: ["tue"], start: "10:00", end: "12:00" },
    { name: "Small hours", days: ["sun"], start: "00:30", end: "03:00" },
  ];

  it.each([
    {
      when: "Friday 17:00 GMT before the spring switch",
      freeze: weekend,
      at: "2026-03-27 17:00",
      span: ["2026-03-27 17:00", "2026-03-30 08:00"],
    },
    {
      when: "Monday 08:59 BST",
      freeze: weekend,
      at: "2026-03-30 07:59",
      span: ["2026-03-27 17:00", "2026-03-30 08:00"],
    },
    { when: "Monday 09:00 BST (08:00 UTC)", freeze: weekend, at: "2026-03-30 08:00", span: null },
    { when: "Friday 16:59 BST before the autumn switch", freeze: weekend, at: "2026-10-23 15:59", span: null },
    {
      when: "Friday 17:00 BST (16:00 UTC)",
      freeze: weekend,
      at: "2026-10-23 16:00",
      span: ["2026-10-23 16:00", "2026-10-26 09:00"],
    },
    {
      when: "Monday 08:30 GMT",
      freeze: weekend,
      at: "2026-10-26 08:30",
      span: ["2026-10-23 16:00", "2026-10-26 09:00"],
    },
    {
      when: "Saturday 01:30 GMT, the day before the spring switch",
      freeze: nightly,
      at: "2026-03-28 01:30",
      span: ["2026-03-28 01:30", "2026-03-28 04:00"],
    },
    { when: "00:59 GMT on the spring switch", freeze: nightly, at: "2026-03-29 00:59", span: null },
    {
      when: "the jump to 02:00 BST, which skips 01:30",
      freeze: nightly,
      at: "2026-03-29 01:00",
      span: ["2026-03-29 01:00", "2026-03-29 03:00"],
    },
    { when: "00:29 UTC on the autumn switch (01:29 BST)", freeze: nightly, at: "2026-10-25 00:29", span: null },
    {
      when: "the first 01:30 (BST) on the autumn switch",
      freeze: nightly,
      at: "2026-10-25 00:30",
      span: ["2026-10-25 00:30", "2026-10-25 04:00"],
    },
    {
      when: "the second 01:30 (GMT), still the same freeze",
      freeze: nightly,
      at: "2026-10-25 01:30",
      span: ["2026-10-25 00:30", "2026-10-25 04:00"],
    },
    { when: "04:00 GMT on the autumn switch", freeze: nightly, at: "2026-10-25 04:00", span: null },
    {
      when: "01:10 GMT, after the clocks went back past a 01:45 BST start",
      freeze: lateNightly,
      at: "2026-10-25 01:10",
      span: ["2026-10-25 00:45", "2026-10-25 03:00"],
    },
  ])("dates the $freeze.name freeze at $when ($at UTC) in local time", ({ freeze, at, span }) => {
    const [active] = activeFreezes([freeze], LONDON, utc(at));
    expect(active ? [iso(active.startedAt), iso(active.endsAt)] : null).toEqual(
      span && [iso(utc(span[0] as string)), iso(utc(span[1] as string))],
    );
  });

  it.each([
    { when: "Tuesday 10:00 GMT", at: "2026-03-24 10:00", inside: true },
    { when: "Tuesday 11:59 GMT", at: "2026-03-24 11:59", inside: true },
    { when: "Tuesday 09:59 BST (08:59 UTC)", at: "2026-03-31 08:59", inside: false },
    { when: "Tuesday 10:00 BST (09:00 UTC)", at: "2026-03-31 09:00", inside: true },
    { when: "Tuesday 11:59 BST (10:59 UTC)", at: "2026-03-31 10:59", inside: true },
    { when: "Tuesday 12:00 BST (11:00 UTC)", at: "2026-03-31 11:00", inside: false },
    { when: "00:59 GMT on the spring switch", at: "2026-03-29 00:59", inside: true },
    { when: "02:00 BST, just after the jump", at: "2026-03-29 01:00", inside: true },
    { when: "02:59 BST", at: "2026-03-29 01:59", inside: true },
    { when: "03:00 BST (02:00 UTC), the small-hours window's end", at: "2026-03-29 02:00", inside: false },
    { when: "00:30 BST on the autumn switch (23:30 UTC the day before)", at: "2026-10-24 23:30", inside: true },
    { when: "02:59 GMT, after the clocks went back", at: "2026-10-25 02:59", inside: true },
    { when: "03:00 GMT", at: "2026-10-25 03:00", inside: false },
  ])("a London window at $when ($at UTC) has inside $inside", ({ at, inside }) => {
    expect(windowStatus(windows, LONDON, utc(at)).inside).toBe(inside);
  });

  it.each([
    { when: "Christmas weekend", at: "2026-12-26 12:00", detail: "Christmas Day, Boxing Day" },
    { when: "the Sunday between Boxing Day and its substitute", at: "2026-12-27 12:00", detail: null },
    { when: "the Boxing Day substitute", at: "2026-12-28 00:00", detail: "Boxing Day (substitute day)" },
    { when: "Easter Monday 00:00 BST (23:00 UTC on Sunday)", at: "2026-04-05 23:00", detail: "Easter Monday" },
    { when: "Easter Sunday 23:59 BST", at: "2026-04-05 22:59", detail: null },
  ])("GB-ENG public holidays on $when freeze $detail", ({ at, detail }) => {
    const [active] = activeFreezes([{ name: "Bank holidays", holidays: "GB-ENG" }], LONDON, utc(at));
    expect(active?.detail ?? null).toBe(detail);
  });

  it("finds the next open moment in local time across the spring switch", () => {
    const env = { windows, freezes: [weekend] };
    expect(iso(nextOpenAt(env, LONDON, utc("2026-03-27 18:00")))).toBe(iso(utc("2026-03-31 09:00")));
  });
});

describe("freeze definitions that cannot work", () => {
  it.each([
    {
      problem: "a cron hour of 25",
      freeze: { name: "x", start: "0 25 * * *", end: "0 9 * * 1" },
      field: "start",
      message: /not a valid cron expression/,
    },
    {
      problem: "an end on 30 February",
      freeze: { name: "x", start: "0 17 * * 5", end: "0 0 30 2 *" },
      field: "end",
      message: /never occurs/,
    },
    {
      problem: "a date that is not a date",
      freeze: { name: "x", from: "soon", to: "2027-01-01" },
      field: "from",
      message: /ISO/,
    },
    {
      problem: "an unknown country",
      freeze: { name: "x", holidays: "XX" },
      field: "holidays",
      message: /country 'XX'/,
    },
    {
      problem: "an unknown region",
      freeze: { name: "x", holidays: "GB-XYZ" },
      field: "holidays",
      message: /region 'XYZ'/,
    },
  ])("reports $problem against the right field", ({ freeze, field, message }) => {
    const problems = freezeProblems([freeze as Freeze]);
    expect(problems).toEqual([{ index: 0, field, message: expect.stringMatching(message) }]);
  });

  it("finds nothing wrong with the example's production freezes", () => {
    expect(freezeProblems(production.freezes)).toEqual([]);
  });

  it("refuses to evaluate a holiday freeze for an unknown country rather than freeze nothing", () => {
    const check = () => activeFreezes([{ name: "Typo", holidays: "XX" }], JNB, sast("2026-12-25 12:00"));
    expect(check).toThrow(DeploybotError);
    expect(check).toThrow(
      expect.objectContaining({ code: ErrorCode.ConfigInvalid, message: expect.stringMatching(/freeze 'Typo'/) }),
    );
  });
});
