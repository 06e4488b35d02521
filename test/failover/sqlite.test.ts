import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Store } from "../../src/store/index.js";
import { clicksReport, runClickRounds } from "./clicks.js";
import { report, runFailoverTrials } from "./harness.js";

const tmp = mkdtempSync(join(tmpdir(), "deploybot-failover-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("failover on one SQLite file", () => {
  it("ends each of 20 trials, with the leader killed at a random moment after the breach, with one rollback, one page and one resolve", async () => {
    const file = join(tmp, "deploybot.db");
    const store = Store.sqlite(file);
    try {
      const results = await runFailoverTrials({
        name: "two processes on one SQLite file",
        dir: tmp,
        store,
        database: { file },
        processes: 2,
        trials: Number(process.env.FAILOVER_TRIALS ?? 20),
        speed: 600,
        leaseTtlMs: 500,
        killWindowMs: 500,
      });
      console.log(report("two processes on one SQLite file", results));
      expect(results.filter((r) => !r.held)).toEqual([]);
    } finally {
      await store.close();
    }
  }, 180_000);

  it("counts each approver once and calls UpdateService once when the same card is clicked on both processes at once, and ends a Reject racing the deciding Approve one way", async () => {
    const file = join(tmp, "clicks.db");
    const store = Store.sqlite(file);
    try {
      const rounds = Number(process.env.CLICK_ROUNDS ?? 10);
      const results = await runClickRounds({
        name: "two processes on one SQLite file",
        dir: tmp,
        store,
        database: { file },
        processes: 2,
        approveRounds: rounds,
        rejectRounds: rounds,
        speed: 20,
        leaseTtlMs: 1_000,
      });
      console.log(clicksReport("clicks on two processes on one SQLite file", results));
      expect(results.filter((r) => r.problems.length > 0)).toEqual([]);
    } finally {
      await store.close();
    }
  }, 90_000);
});
