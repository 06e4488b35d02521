import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { Store } from "../../src/store/index.js";
import { PG_URL } from "../store/fixtures.js";
import { clicksReport, runClickRounds } from "./clicks.js";
import { report, runFailoverTrials } from "./harness.js";

const tmp = mkdtempSync(join(tmpdir(), "deploybot-failover-pg-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs one statement on the test server's maintenance database. */
async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

// Skipped, and listed as skipped, without a server: `npm run test:pg` starts one and always runs this.
describe.skipIf(!PG_URL)("failover on PostgreSQL", () => {
  it("ends each of 20 trials, with the leader of three processes killed at a random moment after the breach (and the next leader too in every other trial), with one rollback, one page and one resolve", async () => {
    const name = `deploybot_failover_${randomBytes(3).toString("hex")}`;
    await admin(`CREATE DATABASE ${name}`);
    const url = new URL(PG_URL as string);
    url.pathname = `/${name}`;
    const store = await Store.postgres(url.href, { maxConnections: 2 });
    try {
      const results = await runFailoverTrials({
        name: "three processes on PostgreSQL",
        dir: tmp,
        store,
        database: { url: url.href },
        processes: 3,
        trials: Number(process.env.FAILOVER_TRIALS ?? 20),
        speed: 600,
        leaseTtlMs: 500,
        killWindowMs: 500,
        // Every other trial kills the leader that took over, too.
        killsIn: (trial) => (trial % 2 === 0 ? 2 : 1),
      });
      console.log(report("three processes on PostgreSQL", results));
      expect(results.filter((r) => !r.held)).toEqual([]);
    } finally {
      await store.close();
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  }, 180_000);

  it("counts each approver once and calls UpdateService once when the same card is clicked on different processes of three at once, and ends a Reject racing the deciding Approve one way", async () => {
    const name = `deploybot_clicks_${randomBytes(3).toString("hex")}`;
    await admin(`CREATE DATABASE ${name}`);
    const url = new URL(PG_URL as string);
    url.pathname = `/${name}`;
    const store = await Store.postgres(url.href, { maxConnections: 2 });
    try {
      const rounds = Number(process.env.CLICK_ROUNDS ?? 10);
      const results = await runClickRounds({
        name: "three processes on PostgreSQL",
        dir: tmp,
        store,
        database: { url: url.href },
        processes: 3,
        approveRounds: rounds,
        rejectRounds: rounds,
        speed: 20,
        leaseTtlMs: 1_000,
      });
      console.log(clicksReport("clicks on three processes on PostgreSQL", results));
      expect(results.filter((r) => r.problems.length > 0)).toEqual([]);
    } finally {
      await store.close();
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  }, 120_000);
});
