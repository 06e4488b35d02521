import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ConsoleEvent } from "../../src/local/console.js";
import {
  APPROVED_PRODUCTION_DEPLOY,
  type MonitorConsole,
  openMonitorConsole,
  PREVIOUS_TASK_DEFINITION,
  TUESDAY,
  tempDir,
} from "../helpers/monitor-console.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A db file in a fresh temporary directory, removed after the test. */
function dbFile(): string {
  const tmp = tempDir("deploybot-restart-");
  cleanups.push(tmp.remove);
  return join(tmp.dir, "deploybot.db");
}

/** A console on `db`: at `at` for the first run, else resuming the db's simulated clock. */
async function open(db: string, at?: string): Promise<MonitorConsole> {
  const t = await openMonitorConsole({ dbFile: db, ...(at ? { at } : {}) });
  cleanups.push(() => t.stop());
  return t;
}

const at = (hhmmss: string) => new Date(`2026-11-24T${hhmmss}+02:00`).toISOString();
const rollbackUpdates = (events: ConsoleEvent[]) =>
  events.filter(
    (e) =>
      e.kind === "aws" && e.op === "UpdateService" && PREVIOUS_TASK_DEFINITION.test(String(e.input?.taskDefinition)),
  );
const pages = (events: ConsoleEvent[], action: string) =>
  events.filter((e) => e.kind === "page" && e.action === action);

/**
 * First run: web v1.4.2 approved at 10:15, baking from 10:21 (after its 10% canary), error rate 3.2% from 10:21,
 * paged at 10:26 with the automatic rollback due at 10:28; advanced to `until` (after 10:26, before 10:28), then stopped.
 */
async function firstRunPagedBeforeRollback(db: string, until = "6m"): Promise<MonitorConsole> {
  const first = await open(db, TUESDAY);
  await first.run(...APPROVED_PRODUCTION_DEPLOY, ":advance 6m", ":metric web production error_rate 3.2", ":advance 5m");
  if (until !== "5m") await first.run(`:advance ${until.replace(/^6m$/, "1m")}`);
  expect(pages(first.events, "trigger")).toHaveLength(1);
  expect(rollbackUpdates(first.events)).toEqual([]);
  const [incident] = first.con.store.incidentsOf(1);
  expect(incident?.detail.rollbackAt).toBe(at("10:28:00"));
  expect(incident?.detail.rollbackId).toBeUndefined();
  return first;
}

describe("restart safety on a db file (issue 5 §5)", () => {
  it("resumes monitoring after a restart, rolls back exactly once when the grace period ends and never pages twice", async () => {
    const db = dbFile();
    const first = await firstRunPagedBeforeRollback(db);
    await first.stop();

    const second = await open(db);
    expect(second.con.clock.now().toISOString()).toBe(at("10:27:00"));
    await second.run(":advance 3m");
    const rollbacks = rollbackUpdates([...first.events, ...second.events]);
    expect(rollbacks).toHaveLength(1);
    expect(rollbacks[0]?.at).toBe(at("10:28:00"));

    // Still breaching while the rollback rolls out: nothing is repeated.
    await second.run(":advance 2m");
    expect(rollbackUpdates(second.events)).toHaveLength(1);

    await second.run(":metric web production error_rate 0.2", ":advance 8m");
    const all = [...first.events, ...second.events];
    expect(pages(all, "trigger")).toHaveLength(1);
    const resolves = pages(all, "resolve");
    expect(resolves).toHaveLength(1);
    expect(resolves[0]?.dedupKey).toBe(pages(all, "trigger")[0]?.dedupKey);
    expect(rollbackUpdates(all)).toHaveLength(1);
    expect(second.con.store.getDeployment(2)?.status).toBe("succeeded");
    expect(second.con.store.getDeployment(1)?.status).toBe("rolled_back");
    // Every :advance ran to its end (an error in a job would have stopped the clock early).
    expect(second.errors()).toEqual([]);
    expect(second.con.clock.now().toISOString()).toBe(at("10:40:00"));
  });

  it("calls a rollback that was intended but not yet called when the process died, once, at the first cycle after the restart", async () => {
    const db = dbFile();
    const first = await firstRunPagedBeforeRollback(db, "30s");
    expect(first.con.clock.now().toISOString()).toBe(at("10:26:30"));
    // What a kill leaves after the intent was written and before RollbackService.execute ran.
    const [incident] = first.con.store.incidentsOf(1);
    first.con.store.updateIncident(incident?.id as number, {
      detail: { rollbackAt: at("10:26:00"), rollbackIntentAt: at("10:26:30") },
    });
    await first.stop();

    const second = await open(db);
    await second.run(":advance 45s");
    const rollbacks = rollbackUpdates(second.events);
    expect(rollbacks).toHaveLength(1);
    expect(rollbacks[0]?.at).toBe(at("10:27:00"));

    // The rollback is an UpdateService with web's CANARY strategy: 1 min to start, 5 min at 10%, then done.
    await second.run(":advance 6m");
    expect(rollbackUpdates([...first.events, ...second.events])).toHaveLength(1);
    expect(pages([...first.events, ...second.events], "trigger")).toHaveLength(1);
    expect(second.con.store.incidentsOf(1)[0]?.detail.rollbackId).toBe(2);
    expect(second.con.store.getDeployment(2)?.status).toBe("succeeded");
    expect(second.errors()).toEqual([]);
  });

  it("does not call a rollback again when it was called but its id not yet recorded when the process died", async () => {
    const db = dbFile();
    const first = await firstRunPagedBeforeRollback(db);
    await first.run(":advance 1m");
    expect(rollbackUpdates(first.events)).toHaveLength(1);
    const [incident] = first.con.store.incidentsOf(1);
    expect(incident?.detail.rollbackId).toBe(2);
    // What a kill leaves after RollbackService.execute returned and before the incident recorded rollback #2.
    first.con.store.db
      .prepare("UPDATE incidents SET detail = json_remove(detail, '$.rollbackId') WHERE id = ?")
      .run(incident?.id);
    expect(first.con.store.incidentsOf(1)[0]?.detail.rollbackId).toBeUndefined();
    await first.stop();

    const second = await open(db);
    await second.run(":advance 3m");
    expect(rollbackUpdates(second.events)).toEqual([]);
    expect(second.con.store.incidentsOf(1)[0]?.detail.rollbackId).toBe(2);
    expect(pages(second.events, "trigger")).toEqual([]);
  });

  it("carries on where the last run stopped: the clock, the deploy ids, the task definitions and /status's version", async () => {
    const db = dbFile();
    const first = await open(db, TUESDAY);
    await first.run(...APPROVED_PRODUCTION_DEPLOY, ":advance 40m");
    expect(first.con.store.getDeployment(1)?.status).toBe("succeeded");
    await first.stop();

    const second = await open(db);
    expect(second.con.clock.now().toISOString()).toBe(at("10:55:00"));
    await second.run(":as alice", "/status web production");
    const status = second.ephemeralsFor("alice");
    expect(status).toHaveLength(1);
    expect(status[0]).toContain("`v1.4.2`");
    expect(status[0]).toContain("#1");

    await second.run("/deploy web v1.4.3 to production", ":as bob", ":click Approve");
    expect(second.con.store.getDeployment(2)?.version).toBe("v1.4.3");
    const update = second.updateServices()[0];
    expect(update?.input?.taskDefinition).toMatch(/comply360-prod-web:3$/);
    expect(second.errors()).toEqual([]);
  });
});
