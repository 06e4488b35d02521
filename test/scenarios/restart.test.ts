import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ConsoleEvent } from "../../src/local/events.js";
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
  const [incident] = await first.con.store.incidents.of(1);
  expect(incident?.rollbackAt).toBe(at("10:28:00"));
  expect(incident?.rollbackId).toBeNull();
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
    expect((await second.con.store.deployments.get(2))?.status).toBe("baking");
    expect((await second.con.store.deployments.get(1))?.status).toBe("rolled_back");
    // Every :advance ran to its end (an error in a job would have stopped the clock early).
    expect(second.errors()).toEqual([]);
    expect(second.con.clock.now().toISOString()).toBe(at("10:40:00"));
  });

  it("performs a rollback recorded but not yet sent to ECS when the process died, once, right after the restart", async () => {
    const db = dbFile();
    const first = await firstRunPagedBeforeRollback(db, "30s");
    // The state a kill leaves between recording the automatic rollback and the reconciler's UpdateService:
    // the rollback, its incident link and its ECS intent are written, nothing was sent.
    first.con.services.outbox.onCommit = () => {};
    await first.run(":advance 1m30s");
    const [intent] = (await first.con.store.intents.open()).filter((i) => i.effect.kind === "ecs.rollout");
    expect(intent?.attempts).toBe(0);
    expect(rollbackUpdates(first.events)).toEqual([]);
    expect((await first.con.store.incidents.of(1))[0]).toMatchObject({ state: "rolling_back", rollbackId: 2 });
    await first.stop();

    const second = await open(db);
    await second.run(":advance 5s");
    expect(rollbackUpdates(second.events)).toHaveLength(1);
    await second.run(":advance 5m");
    const all = [...first.events, ...second.events];
    expect(rollbackUpdates(all)).toHaveLength(1);
    expect(pages(all, "trigger")).toHaveLength(1);
    expect((await second.con.store.incidents.of(1))[0]?.rollbackId).toBe(2);
    expect((await second.con.store.deployments.get(2))?.status).toBe("baking");
    expect(second.errors()).toEqual([]);
  });

  it("does not call UpdateService again when it was called but not recorded when the process died", async () => {
    const db = dbFile();
    const first = await firstRunPagedBeforeRollback(db);
    await first.run(":advance 1m");
    expect(rollbackUpdates(first.events)).toHaveLength(1);
    // What a kill right after UpdateService returned leaves: the intent open after one attempt, nothing recorded.
    const driver = first.con.store.driver;
    await driver.run("UPDATE intents SET status = 'open', done_at = NULL, result = NULL WHERE key = 'ecs.rollout:2'");
    await driver.run("UPDATE deployments SET started_at = NULL, ecs_deployment_arn = NULL WHERE id = 2");
    await first.stop();

    const second = await open(db);
    await second.run(":advance 3m");
    expect(rollbackUpdates(second.events)).toEqual([]);
    expect(await second.con.store.intents.byKey("ecs.rollout:2")).toMatchObject({ status: "done", attempts: 2 });
    expect((await second.con.store.deployments.get(2))?.startedAt).not.toBeNull();
    expect((await second.con.store.incidents.of(1))[0]?.rollbackId).toBe(2);
    expect(pages(second.events, "trigger")).toEqual([]);
  });

  it("carries on where the last run stopped: the clock, the deploy ids, the task definitions and /status's version", async () => {
    const db = dbFile();
    const first = await open(db, TUESDAY);
    await first.run(...APPROVED_PRODUCTION_DEPLOY, ":advance 40m");
    expect((await first.con.store.deployments.get(1))?.status).toBe("succeeded");
    await first.stop();

    const second = await open(db);
    expect(second.con.clock.now().toISOString()).toBe(at("10:55:00"));
    await second.run(":as alice", "/status web production");
    const status = second.ephemeralsFor("alice");
    expect(status).toHaveLength(1);
    expect(status[0]).toContain("`v1.4.2`");
    expect(status[0]).toContain("#1");

    await second.run("/deploy web v1.4.3 to production", ":as bob", ":click Approve");
    expect((await second.con.store.deployments.get(2))?.version).toBe("v1.4.3");
    const update = second.updateServices()[0];
    expect(update?.input?.taskDefinition).toMatch(/comply360-prod-web:3$/);
    expect(second.errors()).toEqual([]);
  });
});
