import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { DeploybotError, ErrorCode } from "../../src/errors.js";
import type { OnCallEntry, PageEvent, PagerPort } from "../../src/ports.js";
import { OnCallDirectory, type OnCallDirectoryOptions } from "../../src/services/oncall.js";

/** A PagerPort that answers onCalls with whatever the test put in `answer` and records every question. */
class FakePager implements PagerPort {
  answer: OnCallEntry[] | Error = [];
  /** When set, onCalls waits for it, so tests can have several callers waiting at once. */
  gate?: Promise<void>;
  readonly asked: Array<{ scheduleIds: string[]; maxLevel: number }> = [];

  async sendEvent(_event: PageEvent): Promise<void> {
    throw new Error("the directory never pages");
  }

  async onCalls(scheduleIds: string[], maxLevel: number): Promise<OnCallEntry[]> {
    this.asked.push({ scheduleIds, maxLevel });
    await this.gate;
    if (this.answer instanceof Error) throw this.answer;
    return this.answer;
  }
}

const SLACK_IDS: Record<string, string> = {
  "thandi@comply360.example": "U01THANDI",
  "pieter@comply360.example": "U02PIETER",
  "lerato@comply360.example": "U03LERATO",
};

function entry(scheduleId: string, escalationLevel: number, userName: string, userEmail: string): OnCallEntry {
  return { scheduleId, escalationLevel, userName, userEmail };
}

const thandi = entry("PC360OPS", 1, "Thandi Nkosi", "thandi@comply360.example");
const pieter = entry("PC360OPS", 2, "Pieter Botha", "pieter@comply360.example");

function setUp(overrides: Partial<OnCallDirectoryOptions> = {}) {
  const pager = new FakePager();
  const clock = new ManualClock("2025-11-25T08:00:00Z");
  const resolved: string[] = [];
  const directory = new OnCallDirectory({
    pager,
    scheduleIds: ["PC360OPS"],
    maxLevel: 2,
    cacheMs: 60_000,
    clock,
    resolveEmail: async (email) => {
      resolved.push(email);
      return SLACK_IDS[email];
    },
    ...overrides,
  });
  return { pager, clock, directory, resolved };
}

describe("OnCallDirectory", () => {
  it("asks PagerDuty once within the cache window and answers later checks from the cache", async () => {
    const { pager, clock, directory } = setUp();
    pager.answer = [thandi];

    await directory.current();
    clock.advance(59_999);
    pager.answer = [pieter];
    const later = await directory.current();

    expect(pager.asked).toHaveLength(1);
    expect(later).toEqual({
      ok: true,
      users: [{ slackId: "U01THANDI", scheduleId: "PC360OPS", level: 1, name: "Thandi Nkosi" }],
    });
  });

  it("asks PagerDuty again once the cache window has passed and sees the handover", async () => {
    const { pager, clock, directory } = setUp();
    pager.answer = [thandi];
    expect((await directory.isOnCall("U01THANDI")).onCall).toBe(true);

    clock.advance(60_000);
    pager.answer = [pieter];

    expect(await directory.isOnCall("U01THANDI")).toEqual({
      onCall: false,
      reason: "not on call (schedule PC360OPS, levels 1-2)",
    });
    expect(await directory.isOnCall("U02PIETER")).toEqual({
      onCall: true,
      reason: "on call in schedule PC360OPS, level 2",
    });
    expect(pager.asked).toHaveLength(2);
  });

  it("fails closed: when PagerDuty cannot be reached nobody is on call and the reason says why", async () => {
    const { pager, directory } = setUp();
    pager.answer = new DeploybotError(
      ErrorCode.PagerDutyFailed,
      "PagerDuty could not be checked: GET /oncalls answered HTTP 503; PagerDuty is having trouble, try again later",
    );

    expect(await directory.current()).toEqual({
      ok: false,
      error:
        "PagerDuty could not be checked: GET /oncalls answered HTTP 503; PagerDuty is having trouble, try again later",
    });
    expect(await directory.isOnCall("U01THANDI")).toEqual({
      onCall: false,
      reason:
        "PagerDuty could not be checked: GET /oncalls answered HTTP 503; PagerDuty is having trouble, try again later",
    });
  });

  it("says PagerDuty could not be checked when the port throws a plain error", async () => {
    const { pager, directory } = setUp();
    pager.answer = new Error("socket hang up");

    expect(await directory.isOnCall("U01THANDI")).toEqual({
      onCall: false,
      reason: "PagerDuty could not be checked: socket hang up",
    });
  });

  it("remembers a failure for 5 s only, then asks again and lets the on-call engineer back in", async () => {
    const { pager, clock, directory } = setUp();
    pager.answer = new Error("ETIMEDOUT");
    await directory.current();

    clock.advance(4_999);
    pager.answer = [thandi];
    expect((await directory.isOnCall("U01THANDI")).onCall).toBe(false);
    expect(pager.asked).toHaveLength(1);

    clock.advance(1);
    expect((await directory.isOnCall("U01THANDI")).onCall).toBe(true);
    expect(pager.asked).toHaveLength(2);
  });

  it("does not keep a failure longer than a cache window shorter than 5 s", async () => {
    const { pager, clock, directory } = setUp({ cacheMs: 2_000 });
    pager.answer = new Error("ETIMEDOUT");
    await directory.current();

    clock.advance(2_000);
    await directory.current();

    expect(pager.asked).toHaveLength(2);
  });

  it("matches the people on call to Slack users by email and skips emails with no Slack user", async () => {
    const { pager, directory, resolved } = setUp();
    pager.answer = [thandi, entry("PC360OPS", 1, "Contractor", "contractor@agency.example"), pieter];

    const now = await directory.current();

    expect(resolved).toEqual(["thandi@comply360.example", "contractor@agency.example", "pieter@comply360.example"]);
    expect(now).toEqual({
      ok: true,
      users: [
        { slackId: "U01THANDI", scheduleId: "PC360OPS", level: 1, name: "Thandi Nkosi" },
        { slackId: "U02PIETER", scheduleId: "PC360OPS", level: 2, name: "Pieter Botha" },
      ],
    });
    expect(await directory.isOnCall("U0CONTRACTOR")).toMatchObject({ onCall: false });
  });

  it("looks each email up once even when the person is on call in several schedules", async () => {
    const { pager, directory, resolved } = setUp({ scheduleIds: ["PC360OPS", "PC360DB"] });
    pager.answer = [thandi, entry("PC360DB", 2, "Thandi Nkosi", "thandi@comply360.example")];

    await directory.current();

    expect(resolved).toEqual(["thandi@comply360.example"]);
  });

  it("fails closed when Slack cannot say who an email belongs to", async () => {
    const { pager, directory } = setUp({
      resolveEmail: async () => {
        throw new Error("ratelimited");
      },
    });
    pager.answer = [thandi];

    expect(await directory.isOnCall("U01THANDI")).toEqual({
      onCall: false,
      reason: "the people on call could not be matched to Slack users: ratelimited",
    });
  });

  it("asks the port for the configured schedules and leaves the level filtering to it", async () => {
    const { pager, directory } = setUp({ scheduleIds: ["PC360OPS", "PC360DB"], maxLevel: 1 });

    await directory.current();

    expect(pager.asked).toEqual([{ scheduleIds: ["PC360OPS", "PC360DB"], maxLevel: 1 }]);
  });

  it("still grants nothing above maxLevel when a port returns higher levels", async () => {
    const { pager, directory } = setUp({ maxLevel: 1 });
    pager.answer = [thandi, pieter];

    expect(await directory.isOnCall("U02PIETER")).toEqual({
      onCall: false,
      reason: "not on call (schedule PC360OPS, level 1)",
    });
  });

  it("gives the lowest level as the reason when someone is on call in two schedules", async () => {
    const { pager, directory } = setUp({ scheduleIds: ["PC360DB", "PC360OPS"] });
    pager.answer = [entry("PC360DB", 2, "Thandi Nkosi", "thandi@comply360.example"), thandi];

    expect(await directory.isOnCall("U01THANDI")).toEqual({
      onCall: true,
      reason: "on call in schedule PC360OPS, level 1",
    });
  });

  it("makes one PagerDuty call for checks that arrive while one is already under way", async () => {
    const { pager, directory } = setUp();
    let open = () => {};
    pager.gate = new Promise((resolve) => {
      open = resolve;
    });
    pager.answer = [thandi, pieter];

    const checks = Promise.all([directory.isOnCall("U01THANDI"), directory.isOnCall("U02PIETER")]);
    open();

    expect((await checks).map((c) => c.onCall)).toEqual([true, true]);
    expect(pager.asked).toHaveLength(1);
  });

  it("says nobody is on call, without asking PagerDuty, when no schedules are configured", async () => {
    const { pager, directory } = setUp({ scheduleIds: [] });

    expect(await directory.isOnCall("U01THANDI")).toEqual({
      onCall: false,
      reason: "not on call: no PagerDuty schedules are configured",
    });
    expect(await directory.current()).toEqual({ ok: true, users: [] });
    expect(pager.asked).toEqual([]);
  });

  it.each([60_001, -1, Number.NaN])("refuses a cache of %s ms", (cacheMs) => {
    expect(() => setUp({ cacheMs })).toThrow(
      expect.objectContaining({
        code: ErrorCode.ConfigInvalid,
        message: expect.stringContaining("between 0 and 60 s"),
      }),
    );
  });
});
