import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { DeploybotError, ErrorCode } from "../../src/errors.js";
import { type Incident, TABLES } from "../../src/store/index.js";
import { SQLITE_MIGRATIONS } from "../../src/store/schema-sqlite.js";
import { SqliteDriver } from "../../src/store/sqlite.js";
import { later, newDeploy, rawDb, T0, thrown, useStores } from "./fixtures.js";

const { sqlite: store, tempFile } = useStores();

const tableNames = (db: Database.Database) =>
  (
    db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      .all() as Array<{ name: string }>
  ).map((t) => t.name);

describe("opening a store", () => {
  it("migrates an empty db to the current schema version with every table and the audit triggers", () => {
    const s = store();
    expect(SqliteDriver.schemaVersion).toBe(SQLITE_MIGRATIONS.length);
    expect(rawDb(s).pragma("user_version", { simple: true })).toBe(SqliteDriver.schemaVersion);
    expect(tableNames(rawDb(s))).toEqual([...TABLES].sort());
    const triggers = rawDb(s)
      .prepare("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
      .all();
    expect(triggers).toEqual([
      { name: "audit_no_delete", tbl_name: "audit" },
      { name: "audit_no_update", tbl_name: "audit" },
    ]);
  });

  it("keeps a file in WAL mode", () => {
    const s = store(tempFile());
    expect(rawDb(s).pragma("journal_mode", { simple: true })).toBe("wal");
  });

  it("reopens a file without migrating again and keeps its deployments and kv", async () => {
    const file = tempFile();
    const first = store(file);
    const d = await newDeploy(first);
    await first.deployments.apply(d.id, "allow", later(1));
    await first.kv.set("sim.world", { clock: "2026-11-24T08:16:00.000Z" });
    await first.close();

    // Running the first migration again would fail on CREATE TABLE: opening must simply work.
    const again = store(file);
    expect(rawDb(again).pragma("user_version", { simple: true })).toBe(SqliteDriver.schemaVersion);
    expect(await again.deployments.get(d.id)).toMatchObject({
      status: "approved",
      version: "v1.4.2",
      reason: "fix login",
    });
    expect(await again.kv.get("sim.world")).toEqual({ clock: "2026-11-24T08:16:00.000Z" });
    expect((await newDeploy(again)).id).toBe(d.id + 1);
  });

  it("refuses a db written by a newer deploybot, says what to do and leaves it as it was", async () => {
    const file = tempFile();
    const newer = SqliteDriver.schemaVersion + 1;
    const raw = new Database(file);
    raw.exec("CREATE TABLE future (x TEXT); INSERT INTO future VALUES ('kept')");
    raw.pragma(`user_version = ${newer}`);
    raw.close();

    const err = await thrown(async () => store(file));

    expect(err).toBeInstanceOf(DeploybotError);
    expect((err as DeploybotError).code).toBe(ErrorCode.ConfigInvalid);
    expect(err.message).toBe(
      `the database was written by a newer deploybot (schema ${newer}, this one knows ${SqliteDriver.schemaVersion}); upgrade deploybot or use another --db file`,
    );
    const check = new Database(file, { readonly: true });
    expect(tableNames(check)).toEqual(["future"]);
    expect(check.prepare("SELECT x FROM future").all()).toEqual([{ x: "kept" }]);
    expect(check.pragma("user_version", { simple: true })).toBe(newer);
    check.close();
  });
});

describe("upgrading a version-2 database", () => {
  const at = (minutes: number) => later(minutes).toISOString();

  /** A file as deploybot wrote it at schema 2: incident flags in the detail JSON, pages in their own table. */
  function versionTwoFile(): string {
    const file = tempFile();
    const db = new Database(file);
    db.exec(SQLITE_MIGRATIONS[0] as string);
    db.exec(SQLITE_MIGRATIONS[1] as string);
    db.pragma("user_version = 2");

    const deployment = db.prepare(
      `INSERT INTO deployments (id, kind, service, environment, version, requested_by, flags, status, created_at, updated_at, started_at)
       VALUES (?, ?, 'web', 'production', ?, 'alice', ?, ?, ?, ?, ?)`,
    );
    deployment.run(1, "deploy", "v2.0.0", "{}", "rolled_back", at(0), at(20), at(2));
    deployment.run(
      2,
      "rollback",
      "v1.9.0",
      JSON.stringify({ automatic: true, rollsBack: 1 }),
      "succeeded",
      at(10),
      at(20),
      at(11),
    );
    deployment.run(3, "deploy", "v2.1.0", "{}", "rolling_back", at(30), at(40), at(31));
    deployment.run(4, "rollback", "v1.9.0", JSON.stringify({ rollsBack: 3 }), "deploying", at(40), at(40), at(41));
    deployment.run(5, "deploy", "v2.2.0", JSON.stringify({ hotfix: true }), "baking", at(50), at(51), at(51));

    const evaluation = {
      reason: "5xx rate 3.1% is above 2%",
      observed: 3.1,
      values: [1.2, 3.1],
      unit: "percent",
      threshold: "> 2%",
    };
    const incident = db.prepare(
      `INSERT INTO incidents (id, deployment_id, guardrail, severity, status, first_seen, last_seen, resolved_at, channel, ts, detail)
       VALUES (?, ?, ?, 'critical', ?, ?, ?, ?, ?, ?, ?)`,
    );
    const detail = (flags: Record<string, unknown>) => JSON.stringify({ ...evaluation, ...flags });
    incident.run(
      1,
      1,
      "errors",
      "open",
      at(3),
      at(9),
      null,
      "C-INC",
      "1795248000.000001",
      detail({
        action: "rollback",
        shadow: false,
        rollbackAt: at(8),
        rollbackId: 2,
        pageKey: "web-production-1-errors",
        acknowledgedBy: "dave",
      }),
    );
    incident.run(
      2,
      3,
      "errors",
      "open",
      at(32),
      at(39),
      null,
      null,
      null,
      detail({
        action: "rollback",
        shadow: false,
        rollbackAt: at(38),
        rollbackId: 4,
      }),
    );
    incident.run(
      3,
      5,
      "latency",
      "recovered",
      at(52),
      at(55),
      at(56),
      null,
      null,
      detail({ action: "page", shadow: false }),
    );
    incident.run(
      4,
      5,
      "errors",
      "open",
      at(52),
      at(53),
      null,
      null,
      null,
      detail({
        action: "rollback",
        shadow: false,
        rollbackAt: at(57),
        overriddenBy: "carol",
      }),
    );
    incident.run(
      5,
      5,
      "saturation",
      "open",
      at(52),
      at(53),
      null,
      null,
      null,
      detail({
        action: "rollback",
        shadow: false,
        rollbackAt: at(57),
      }),
    );
    incident.run(
      6,
      5,
      "queue-depth",
      "open",
      at(52),
      at(53),
      null,
      null,
      null,
      detail({
        action: "rollback",
        shadow: false,
        rollbackAt: at(57),
        rollbackSkipped: "no previous version is known for this deploy",
      }),
    );
    incident.run(7, 5, "cpu", "open", at(52), at(53), null, null, null, detail({ action: "page", shadow: true }));
    // A row older than the action flag: it was a warning.
    incident.run(
      8,
      5,
      "memory",
      "open",
      at(52),
      at(53),
      null,
      null,
      null,
      JSON.stringify({ reason: "high", observed: 91, values: [91], threshold: "> 90" }),
    );

    const page = db.prepare(
      "INSERT INTO pages (dedup_key, action, severity, summary, status, at) VALUES (?, ?, ?, ?, ?, ?)",
    );
    page.run("web-production-5-latency", "trigger", "critical", "web latency p99 above 800 ms", "intended", at(52));
    page.run("web-production-1-errors", "trigger", "critical", "web 5xx above 2%", "sent", at(3));
    page.run("web-production-5-cpu", "trigger", null, null, "failed", at(53));

    // Two approvals clicked in the same millisecond: the order given must survive the upgrade.
    const approval = db.prepare(
      `INSERT INTO approvals (deployment_id, user, decision, group_name, roles, note, at) VALUES (5, ?, 'approve', 'lead', '[]', NULL, ?)`,
    );
    approval.run("zoe", at(50));
    approval.run("bob", at(50));
    db.close();
    return file;
  }

  const states = (incidents: Incident[]) => Object.fromEntries(incidents.map((i) => [i.guardrail, i.state]));

  it("gives every old incident its state from the old status and flags", async () => {
    const s = store(versionTwoFile());
    expect(rawDb(s).pragma("user_version", { simple: true })).toBe(SqliteDriver.schemaVersion);
    expect(states(await s.incidents.of(1))).toEqual({ errors: "rolled_back" });
    expect(states(await s.incidents.of(3))).toEqual({ errors: "rolling_back" });
    expect(states(await s.incidents.of(5))).toEqual({
      latency: "recovered",
      errors: "overridden",
      saturation: "rollback_pending",
      "queue-depth": "open",
      cpu: "open",
      memory: "open",
    });
  });

  it("moves the old detail flags into the incident's columns and keeps the evaluation in detail", async () => {
    const s = store(versionTwoFile());
    expect(await s.incidents.byId(1)).toEqual({
      id: 1,
      deploymentId: 1,
      guardrail: "errors",
      severity: "critical",
      action: "rollback",
      shadow: false,
      state: "rolled_back",
      episode: 1,
      firstSeen: at(3),
      lastSeen: at(9),
      resolvedAt: null,
      rollbackAt: at(8),
      rollbackId: 2,
      overriddenBy: null,
      acknowledgedBy: "dave",
      pageKey: "web-production-1-errors",
      note: null,
      channel: "C-INC",
      ts: "1795248000.000001",
      detail: {
        reason: "5xx rate 3.1% is above 2%",
        observed: 3.1,
        values: [1.2, 3.1],
        unit: "percent",
        threshold: "> 2%",
      },
    });
    expect(await s.incidents.byId(2)).toMatchObject({ state: "rolling_back", rollbackId: 4, rollbackAt: at(38) });
    expect(await s.incidents.byId(3)).toMatchObject({ state: "recovered", action: "page", resolvedAt: at(56) });
    expect(await s.incidents.byId(4)).toMatchObject({ state: "overridden", overriddenBy: "carol", rollbackAt: at(57) });
    expect(await s.incidents.byId(5)).toMatchObject({ state: "rollback_pending", rollbackAt: at(57), note: null });
    expect(await s.incidents.byId(6)).toMatchObject({
      state: "open",
      rollbackAt: at(57),
      note: "no previous version is known for this deploy",
    });
    expect(await s.incidents.byId(7)).toMatchObject({ state: "open", action: "page", shadow: true });
    expect(await s.incidents.byId(8)).toMatchObject({
      action: "alert",
      shadow: false,
      detail: { reason: "high", observed: 91, values: [91], unit: "count", threshold: "> 90" },
    });
  });

  it("moves rollsBack from a rollback's flags to its column", async () => {
    const s = store(versionTwoFile());
    expect(await s.deployments.get(2)).toMatchObject({ kind: "rollback", rollsBack: 1, flags: { automatic: true } });
    expect((await s.deployments.get(2))?.flags).not.toHaveProperty("rollsBack");
    expect((await s.deployments.rollbacksOf(3)).map((d) => d.id)).toEqual([4]);
    expect(await s.deployments.get(5)).toMatchObject({ rollsBack: null, flags: { hotfix: true } });
  });

  it("turns every page not seen sent into an open page intent, and a sent one into none", async () => {
    const s = store(versionTwoFile());
    const open = await s.intents.open();
    expect(open.map((i) => i.key)).toEqual([
      "migrated:web-production-5-latency:trigger",
      "migrated:web-production-5-cpu:trigger",
    ]);
    expect(open[0]).toEqual({
      id: open[0]?.id,
      key: "migrated:web-production-5-latency:trigger",
      effect: {
        kind: "page",
        event: {
          action: "trigger",
          dedupKey: "web-production-5-latency",
          severity: "critical",
          summary: "web latency p99 above 800 ms",
          source: "deploybot",
        },
      },
      lane: "pagerduty:web-production-5-latency",
      status: "open",
      attempts: 0,
      nextAt: at(52),
      lastError: null,
      dependsOn: null,
      deploymentId: null,
      incidentId: null,
      createdAt: at(52),
      doneAt: null,
      result: null,
    });
    expect(open[1]?.effect).toEqual({
      kind: "page",
      event: {
        action: "trigger",
        dedupKey: "web-production-5-cpu",
        severity: "error",
        summary: "",
        source: "deploybot",
      },
    });
    expect(await s.intents.byKey("migrated:web-production-1-errors:trigger")).toBeUndefined();
    expect((await s.intents.due(T0)).length).toBe(0);
    expect((await s.intents.due(later(60))).map((i) => i.key)).toEqual(open.map((i) => i.key));
  });

  it("ends with exactly the current tables: pages is gone", async () => {
    const s = store(versionTwoFile());
    expect(tableNames(rawDb(s))).toEqual([...TABLES].sort());
  });

  it("keeps two approvals given in the same millisecond in the order they were given", async () => {
    const s = store(versionTwoFile());
    expect((await s.approvals.of(5)).map((a) => a.user)).toEqual(["zoe", "bob"]);
    await s.approvals.record({
      deploymentId: 5,
      user: "amy",
      decision: "approve",
      groupName: "lead",
      roles: [],
      note: null,
      at: at(50),
    });
    expect((await s.approvals.of(5)).map((a) => a.user)).toEqual(["zoe", "bob", "amy"]);
  });
});
