import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DeploybotError, ErrorCode } from "../../src/errors.js";
import type { PageEvent } from "../../src/ports.js";
import { simHarness, tempDir } from "../helpers/sim-world.js";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const KEY = "deploybot/web/production/deploy-1/error-rate";
const event = (action: PageEvent["action"], dedupKey = KEY): PageEvent => ({
  action,
  dedupKey,
  severity: "critical",
  summary: `web production ${action}`,
  source: "deploybot",
});

describe("simulated PagerDuty honours dedup keys as PagerDuty does", () => {
  it("opens one incident for a key however often it is triggered while open, and marks the repeats deduplicated", async () => {
    const h = simHarness();
    await h.pagerduty.sendEvent(event("trigger"));
    await h.pagerduty.sendEvent(event("trigger"));
    await h.pagerduty.sendEvent(event("acknowledge"));
    await h.pagerduty.sendEvent(event("trigger"));

    expect(h.pagerduty.accepted.map((p) => [p.action, p.deduplicated, p.incident])).toEqual([
      ["trigger", false, 1],
      ["trigger", true, 1],
      ["acknowledge", false, 1],
      ["trigger", true, 1],
    ]);
    expect(h.world.alert(KEY)?.status).toBe("acknowledged");
    const printed = h.events.filter((e) => e.kind === "page");
    expect(printed.map((e) => e.kind === "page" && (e.deduplicated ?? false))).toEqual([false, true, false, true]);
  });

  it("opens a new incident for a key triggered again after it was resolved", async () => {
    const h = simHarness();
    await h.pagerduty.sendEvent(event("trigger"));
    await h.pagerduty.sendEvent(event("resolve"));
    await h.pagerduty.sendEvent(event("trigger"));
    expect(h.pagerduty.accepted.map((p) => [p.action, p.deduplicated, p.incident])).toEqual([
      ["trigger", false, 1],
      ["resolve", false, 1],
      ["trigger", false, 2],
    ]);
  });

  it("accepts acknowledge and resolve of an unknown or already resolved key as deduplicated no-ops", async () => {
    const h = simHarness();
    await h.pagerduty.sendEvent(event("acknowledge", "unknown"));
    await h.pagerduty.sendEvent(event("resolve", "unknown"));
    await h.pagerduty.sendEvent(event("trigger"));
    await h.pagerduty.sendEvent(event("resolve"));
    await h.pagerduty.sendEvent(event("resolve"));
    await h.pagerduty.sendEvent(event("acknowledge"));
    expect(h.pagerduty.accepted.map((p) => [p.action, p.dedupKey === KEY, p.deduplicated])).toEqual([
      ["acknowledge", false, true],
      ["resolve", false, true],
      ["trigger", true, false],
      ["resolve", true, false],
      ["resolve", true, true],
      ["acknowledge", true, true],
    ]);
    expect(h.world.alert("unknown")).toBeUndefined();
    expect(h.world.alert(KEY)?.status).toBe("resolved");
  });

  it("keeps the alerts in the world file, so a restarted bot's trigger of an open alert is deduplicated", async () => {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    const file = join(tmp.dir, "deploybot.db.sim");
    await simHarness({ file }).pagerduty.sendEvent(event("trigger"));
    const again = simHarness({ file });
    await again.pagerduty.sendEvent(event("trigger"));
    expect(again.pagerduty.accepted.map((p) => p.deduplicated)).toEqual([false, true]);
  });
});

describe("simulated PagerDuty outages", () => {
  it("fails events and on-call lookups with a transient network error while down, accepting nothing, then recovers", async () => {
    const h = simHarness();
    h.world.down("pagerduty", 10 * 60_000);
    const sent = await h.pagerduty.sendEvent(event("trigger")).catch((e: unknown) => e);
    expect(sent).toBeInstanceOf(DeploybotError);
    expect(sent).toMatchObject({ code: ErrorCode.PagerDutyFailed, transient: true });
    await expect(h.pagerduty.onCalls(["PSCHED1"], 1)).rejects.toMatchObject({
      code: ErrorCode.PagerDutyFailed,
      transient: true,
    });
    expect(h.pagerduty.accepted).toEqual([]);
    expect(h.events).toEqual([]);

    h.at(10);
    await h.pagerduty.sendEvent(event("trigger"));
    expect(await h.pagerduty.onCalls(["PSCHED1"], 1)).toHaveLength(1);
    expect(h.pagerduty.accepted).toHaveLength(1);
  });
});
