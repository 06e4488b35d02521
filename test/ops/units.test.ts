import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { parseButtonId, parseRollbackPlan } from "../../src/commands/buttons.js";
import { loadConfig } from "../../src/config/load.js";
import { checkDatabase } from "../../src/ops/db-check.js";
import { type ReadinessChecks, readiness } from "../../src/ops/health.js";
import { isObjectBody } from "../../src/ops/http-guard.js";
import { InFlight } from "../../src/ops/inflight.js";
import { MemoryReplayGuard, REPLAY_WINDOW_MS, replayKey } from "../../src/ops/replay.js";
import { leaseTtlFromEnv, slackSettingsFromEnv } from "../../src/ops/startup.js";
import { Store } from "../../src/store/index.js";
import { ROOT } from "../helpers/bot-process.js";

const tmp = mkdtempSync(join(tmpdir(), "deploybot-ops-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const tempPath = (name: string) => join(tmp, `${++seq}-${name}`);

import { TABLES } from "../../src/store/index.js";

describe("the in-memory replay guard", () => {
  const t0 = new Date("2026-11-24T08:00:00Z");
  const at = (ms: number) => new Date(t0.getTime() + ms);

  it("says first for a new key, not first for it again within the window, and first again after it", async () => {
    const guard = new MemoryReplayGuard();
    expect(await guard.firstSeen("trigger:1", t0)).toBe(true);
    expect(await guard.firstSeen("trigger:1", at(REPLAY_WINDOW_MS - 1))).toBe(false);
    expect(await guard.firstSeen("trigger:2", at(1))).toBe(true);
    expect(await guard.firstSeen("trigger:1", at(REPLAY_WINDOW_MS))).toBe(true);
  });

  it("forgets expired keys and keeps at most maxKeys", async () => {
    const guard = new MemoryReplayGuard(1_000, 3);
    for (let i = 0; i < 5; i++) await guard.firstSeen(`k${i}`, at(i));
    expect(guard.size).toBe(3);
    await guard.firstSeen("late", at(10_000));
    expect(guard.size).toBe(1);
  });

  it("covers the 5 minutes Bolt accepts an old request plus the 5 minutes deploybot accepts a future one", () => {
    expect(REPLAY_WINDOW_MS).toBe(10 * 60_000);
  });
});

describe("replayKey", () => {
  it("uses the trigger_id of commands and clicks, the event_id of events, else a hash of the body", () => {
    expect(replayKey({ trigger_id: "123.456.abc", command: "/deploy" })).toBe("trigger:123.456.abc");
    expect(replayKey({ type: "event_callback", event_id: "Ev01" })).toBe("event:Ev01");
    const a = replayKey({ type: "view_closed", view: { id: "V1" } });
    expect(a).toMatch(/^body:[0-9a-f]{64}$/);
    expect(replayKey({ type: "view_closed", view: { id: "V1" } })).toBe(a);
    expect(replayKey({ type: "view_closed", view: { id: "V2" } })).not.toBe(a);
  });
});

describe("button values", () => {
  it.each<[unknown, number | undefined]>([
    ["1", 1],
    ["42", 42],
    ["9999999999", 9999999999],
    ["1e0", undefined],
    [" 1", undefined],
    ["1 ", undefined],
    ["01", undefined],
    ["0", undefined],
    ["-1", undefined],
    ["+1", undefined],
    ["1.0", undefined],
    ["0x1", undefined],
    ["", undefined],
    ["12345678901", undefined],
    [undefined, undefined],
    [1, undefined],
  ])("reads %j as %j", (value, id) => {
    expect(parseButtonId(value)).toBe(id);
  });

  const config = loadConfig(join(ROOT, "examples/deploybot.yml"));
  const plan = {
    service: "web",
    environment: "production",
    fromVersion: "v1.4.3",
    toVersion: "v1.4.2",
    toTaskDefinition: "arn:aws:ecs:af-south-1:123456789012:task-definition/comply360-prod-web:2",
    reason: "5xx spike",
    severity: "P1",
  };

  it("reads the rollback plan deploybot wrote", () => {
    expect(parseRollbackPlan(JSON.stringify(plan), config)).toEqual(plan);
    expect(parseRollbackPlan(JSON.stringify({ ...plan, reason: null, severity: null }), config)).toMatchObject({
      reason: null,
      severity: null,
    });
  });

  it.each<[string, unknown]>([
    ["not JSON", "{"],
    ["JSON null", "null"],
    ["an array", "[]"],
    ["an extra key", { ...plan, admin: true }],
    ["a missing key", { ...plan, toTaskDefinition: undefined }],
    ["a number for a version", { ...plan, toVersion: 142 }],
    ["a version with spaces", { ...plan, toVersion: "v1 --force" }],
    ["an unknown severity", { ...plan, severity: "P9" }],
    ["a reason over 500 characters", { ...plan, reason: "x".repeat(501) }],
    ["an unknown service", { ...plan, service: "payments" }],
    ["an inherited name as the environment", { ...plan, environment: "constructor" }],
    ["an inherited name as the service", { ...plan, service: "__proto__" }],
  ])("refuses a rollback button carrying %s", (_what, value) => {
    const raw = typeof value === "string" ? value : JSON.stringify(value);
    expect(() => parseRollbackPlan(raw, config)).toThrow(/run \/rollback again/);
  });
});

describe("checkDatabase", () => {
  it("lets a missing file, an empty file and a SQLite file without tables start fresh", () => {
    expect(checkDatabase(tempPath("missing.db"), TABLES)).toEqual({ fresh: true });
    const empty = tempPath("empty.db");
    writeFileSync(empty, "");
    expect(checkDatabase(empty, TABLES)).toEqual({ fresh: true });
    const bare = tempPath("bare.db");
    new Database(bare).close();
    expect(checkDatabase(bare, TABLES)).toEqual({ fresh: true });
  });

  it("passes deploybot's own database, also with its WAL left behind by a crash", async () => {
    const file = tempPath("own.db");
    const store = Store.sqlite(file);
    await store.kv.set("x", 1);
    expect(checkDatabase(file, TABLES)).toEqual({ fresh: false });
    await store.close();
    expect(checkDatabase(file, TABLES)).toEqual({ fresh: false });
  });

  it("names the missing tables of a database that is not deploybot's", () => {
    const file = tempPath("other.db");
    const db = new Database(file);
    db.exec("CREATE TABLE deployments (id INTEGER); CREATE TABLE notes (t TEXT)");
    db.close();
    expect(() => checkDatabase(file, TABLES)).toThrow(
      `${file} is not a deploybot database (no table ${TABLES.filter((t) => t !== "deployments").join(", ")})`,
    );
  });

  it("refuses a file that is not SQLite", () => {
    const file = tempPath("junk.db");
    writeFileSync(file, "x".repeat(5000));
    expect(() => checkDatabase(file, TABLES)).toThrow(/is not a SQLite database/);
  });
});

describe("readiness", () => {
  const now = new Date("2026-11-24T08:10:00Z");
  const base: ReadinessChecks = {
    databaseWritable: () => undefined,
    slack: () => ({ ok: true, detail: "auth.test ok" }),
    lastCycleAt: () => new Date(now.getTime() - 30_000),
    monitorIntervalMs: 60_000,
    startedAt: new Date(now.getTime() - 3_600_000),
    now: () => now,
  };

  it("is ready when every check passes", async () => {
    expect((await readiness(base)).ready).toBe(true);
  });

  it.each<[string, Partial<ReadinessChecks>, string, string]>([
    [
      "the database refuses a write",
      {
        databaseWritable: () => {
          throw new Error("attempt to write a readonly database");
        },
      },
      "database",
      "not writable: attempt to write a readonly database",
    ],
    [
      "the database check rejects",
      { databaseWritable: async () => Promise.reject(new Error("disk I/O error")) },
      "database",
      "not writable: disk I/O error",
    ],
    [
      "Slack refused the token",
      { slack: () => ({ ok: false, detail: "Slack refused the token (token_revoked)" }) },
      "slack",
      "Slack refused the token (token_revoked)",
    ],
    [
      "the last monitor cycle is older than 3 intervals",
      { lastCycleAt: () => new Date(now.getTime() - 181_000) },
      "monitor",
      "last cycle 181 s ago (limit 180 s)",
    ],
    [
      "no cycle ran in 3 intervals since the start",
      { lastCycleAt: () => null, startedAt: new Date(now.getTime() - 200_000) },
      "monitor",
      "no cycle since start 200 s ago (limit 180 s)",
    ],
    ["shutdown began", { draining: () => true }, "shutdown", "shutting down"],
  ])("is not ready when %s", async (_what, change, check, detail) => {
    const r = await readiness({ ...base, ...change });
    expect(r.ready).toBe(false);
    expect(r.checks[check as keyof typeof r.checks]).toEqual({ ok: false, detail });
  });

  it("gives a process that just started until 3 intervals for its first cycle", async () => {
    const r = await readiness({ ...base, lastCycleAt: () => null, startedAt: new Date(now.getTime() - 5_000) });
    expect(r.checks.monitor).toEqual({ ok: true, detail: "first cycle not due yet" });
  });

  it("keeps a standby ready, and does not judge its monitor: the leader runs it", async () => {
    const r = await readiness({
      ...base,
      lastCycleAt: () => null,
      leadership: () => ({ leader: false, since: base.startedAt, detail: "standby: b leads" }),
    });
    expect(r.ready).toBe(true);
    expect(r.checks.monitor).toEqual({ ok: true, detail: "standby: the leader runs the monitor" });
    expect(r.checks.leadership).toEqual({ ok: true, detail: "standby: b leads" });
  });

  it("judges a new leader's monitor from when it took over, and an old leader's from its last cycle", async () => {
    const justNow = { leader: true, since: new Date(now.getTime() - 10_000), detail: "leader (epoch 2)" };
    const fresh = await readiness({ ...base, lastCycleAt: () => null, leadership: () => justNow });
    expect(fresh.checks.monitor).toEqual({ ok: true, detail: "first cycle not due yet" });
    const stalled = await readiness({
      ...base,
      lastCycleAt: () => new Date(now.getTime() - 500_000),
      leadership: () => ({ ...justNow, since: new Date(now.getTime() - 400_000) }),
    });
    expect(stalled.checks.monitor).toEqual({ ok: false, detail: "last cycle 400 s ago (limit 180 s)" });
  });
});

describe("the leader lease period from the environment", () => {
  it.each([
    [undefined, 15_000],
    ["", 15_000],
    ["15s", 15_000],
    ["30", 30_000],
    ["2.5", 2_500],
    ["800ms", 800],
    ["1m", 60_000],
  ])("reads DEPLOYBOT_LEASE_TTL=%j as %i ms", (raw, ms) => {
    expect(leaseTtlFromEnv(raw === undefined ? {} : { DEPLOYBOT_LEASE_TTL: raw }, 15_000)).toBe(ms);
  });

  it.each(["soon", "50ms", "1h", "-5"])("refuses DEPLOYBOT_LEASE_TTL=%s and says what to set", (raw) => {
    expect(() => leaseTtlFromEnv({ DEPLOYBOT_LEASE_TTL: raw }, 15_000)).toThrow(
      `DEPLOYBOT_LEASE_TTL=${raw} is not a lease period deploybot can keep; set it to a duration from 100ms to 10m, such as 15s (the default), or unset it`,
    );
  });
});

describe("the Slack settings from the environment", () => {
  it("runs the console when no Slack variable is set (empty ones count as unset)", () => {
    expect(slackSettingsFromEnv({})).toBeNull();
    expect(slackSettingsFromEnv({ SLACK_BOT_TOKEN: "", SLACK_APP_TOKEN: " " })).toBeNull();
  });

  it("picks Socket Mode with an app token and HTTP with a signing secret", () => {
    expect(slackSettingsFromEnv({ SLACK_BOT_TOKEN: "xoxb-1", SLACK_APP_TOKEN: "xapp-1" })).toEqual({
      mode: "socket",
      botToken: "xoxb-1",
      appToken: "xapp-1",
      port: 3000,
    });
    expect(
      slackSettingsFromEnv({
        SLACK_BOT_TOKEN: "xoxb-1",
        SLACK_SIGNING_SECRET: "s",
        PORT: "8080",
        METRICS_PORT: "9090",
        HOST: "127.0.0.1",
        SLACK_API_URL: "http://127.0.0.1:5000/api",
      }),
    ).toEqual({
      mode: "http",
      botToken: "xoxb-1",
      signingSecret: "s",
      port: 8080,
      metricsPort: 9090,
      host: "127.0.0.1",
      slackApiUrl: "http://127.0.0.1:5000/api/",
    });
  });

  it.each<[Record<string, string>, string]>([
    [
      { SLACK_BOT_TOKEN: "xoxb-1" },
      "SLACK_BOT_TOKEN is set without SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET",
    ],
    [{ SLACK_APP_TOKEN: "xapp-1" }, "SLACK_APP_TOKEN is set without SLACK_BOT_TOKEN"],
    [{ SLACK_SIGNING_SECRET: "s" }, "SLACK_SIGNING_SECRET is set without SLACK_BOT_TOKEN"],
    [{ SLACK_APP_TOKEN: "xapp-1", SLACK_SIGNING_SECRET: "s" }, "SLACK_APP_TOKEN and SLACK_SIGNING_SECRET are set"],
    [{ SLACK_BOT_TOKEN: "xapp-1", SLACK_APP_TOKEN: "xapp-1" }, "SLACK_BOT_TOKEN is not a bot token"],
    [{ SLACK_BOT_TOKEN: "xoxb-1", SLACK_APP_TOKEN: "xoxb-1" }, "SLACK_APP_TOKEN is not an app-level token"],
    [{ SLACK_BOT_TOKEN: "xoxb-1", SLACK_SIGNING_SECRET: "s", PORT: "http" }, "PORT=http is not a port number"],
    [{ SLACK_BOT_TOKEN: "xoxb-1", SLACK_SIGNING_SECRET: "s", METRICS_PORT: "70000" }, "METRICS_PORT=70000"],
    [
      { SLACK_BOT_TOKEN: "xoxb-1", SLACK_SIGNING_SECRET: "s", SLACK_API_URL: "slack" },
      "SLACK_API_URL=slack is not a URL",
    ],
  ])("refuses %j", (env, message) => {
    expect(() => slackSettingsFromEnv(env)).toThrow(message);
  });
});

describe("isObjectBody (what Bolt's parser would make of a body)", () => {
  const form = "application/x-www-form-urlencoded";
  it.each<[string, string | undefined, boolean]>([
    ['{"type":"url_verification"}', "application/json", true],
    ["null", "application/json", false],
    ["[]", "application/json", false],
    ['"text"', "application/json", false],
    ["command=%2Fdeploy&text=", form, true],
    ["ssl_check=1", form, true],
    ['payload={"type":"block_actions"}', form, true],
    ["payload=null", form, false],
    ["payload=1", form, false],
    ["payload=%7B", form, false],
    // Bolt parses anything not exactly form-encoded as JSON.
    ["command=%2Fdeploy", "application/x-www-form-urlencoded; charset=utf-8", false],
  ])("%s (%s) → %s", (body, type, ok) => {
    expect(isObjectBody(Buffer.from(body), type)).toBe(ok);
  });
});

describe("InFlight", () => {
  it("waits for running work and reports a timeout as not drained", async () => {
    const work = new InFlight();
    let finish!: () => void;
    const held = work.run(() => new Promise<void>((r) => (finish = r)));
    expect(work.size).toBe(1);
    expect(await work.idle(10)).toBe(false);
    finish();
    await held;
    expect(await work.idle(10)).toBe(true);
    expect(work.size).toBe(0);
  });

  it("counts failed work as finished and passes its error on", async () => {
    const work = new InFlight();
    await expect(work.run(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await work.idle(0)).toBe(true);
  });
});

describe("metrics read from the store", () => {
  it("reports deploys, rollbacks (manual or automatic) and incidents by status from the store at each scrape", async () => {
    const { registry, registerStoreMetrics } = await import("../../src/ops/metrics.js");
    let succeeded = 3;
    registerStoreMetrics({
      deployments: async () => [
        { kind: "deploy", status: "succeeded", automatic: false, n: succeeded },
        { kind: "deploy", status: "rolled_back", automatic: false, n: 1 },
        { kind: "rollback", status: "succeeded", automatic: true, n: 1 },
      ],
      incidents: async () => [{ severity: "critical", state: "recovered", n: 2 }],
    });
    const first = await registry.metrics();
    expect(first).toContain('deploybot_deploys{status="succeeded"} 3');
    expect(first).toContain('deploybot_deploys{status="rolled_back"} 1');
    expect(first).toContain('deploybot_rollbacks{status="succeeded",trigger="automatic"} 1');
    expect(first).toContain('deploybot_incidents{severity="critical",state="recovered"} 2');
    succeeded = 4;
    expect(await registry.metrics()).toContain('deploybot_deploys{status="succeeded"} 4');
  });
});
