import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { exportStore, importStore } from "../../src/store/dump.js";
import { type Store, TABLES } from "../../src/store/index.js";
import { BACKENDS, deploymentIn, later, newIncident, PG_URL, T0, thrown, useStores } from "./fixtures.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A SQLite store with a row in every table, references between rows included. */
async function populated(s: Store): Promise<void> {
  const d = await deploymentIn(s, "baking");
  await s.approvals.record({
    deploymentId: d.id,
    user: "bob",
    decision: "approve",
    groupName: "lead",
    roles: ["tech_lead"],
    note: null,
    at: later(1).toISOString(),
  });
  await s.locks.acquire("web", "production", d.id, "alice", later(1));
  const r = await s.deployments.create(
    {
      kind: "rollback",
      service: "web",
      environment: "production",
      version: "v1.4.1",
      requestedBy: "deploybot",
      flags: { automatic: true },
      rollsBack: d.id,
    },
    later(5),
  );
  await s.audit.append({
    at: later(5),
    actor: "deploybot",
    action: "rollback.requested",
    deploymentId: r.id,
    service: "web",
    environment: "production",
    detail: { quote: 'it\'s "odd" ✓' },
  });
  await s.incidents.open(newIncident(d.id, { pageKey: "deploybot/web/production/deploy-1/error-rate" }));
  const first = await s.intents.add({
    key: "page:1",
    effect: { kind: "page", event: { action: "trigger", dedupKey: "k", severity: "critical", summary: "5xx" } },
    lane: "pagerduty:k",
    at: later(6),
    deploymentId: d.id,
  } as Parameters<Store["intents"]["add"]>[0]);
  await s.intents.add({
    key: "note:1",
    effect: { kind: "slack.note", on: { deploymentId: d.id }, text: "paged" },
    lane: "slack:#deploys",
    at: later(6),
    dependsOn: first.id,
  });
  await s.intents.done(first.id, later(7), { sent: true });
  await s.checks.record(d.id, "error rate", "breaching", later(6));
  await s.leases.acquireOrRenew("leader", "host:1:abc", later(6), 15_000);
  await s.requests.firstSeen("trigger-1", later(6), T0);
  await s.kv.set("baseline:1", { error_rate: 0.2 });
}

/** Every table's rows, in a fixed order, as both backends return them. */
async function contents(s: Store): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const table of TABLES) out[table] = await s.driver.all(`SELECT * FROM ${table} ORDER BY 1, 2`);
  return out;
}

async function dumpOf(s: Store): Promise<string> {
  const lines: string[] = [];
  await exportStore(s, (l) => {
    lines.push(l);
  });
  return `${lines.join("\n")}\n`;
}

describe.each(BACKENDS)("export from SQLite, import into %s", (backend) => {
  const { store, sqlite } = useStores(backend);

  it("copies every row of every table, ids and references kept, and new ids continue after the imported ones", async () => {
    const source = sqlite();
    await populated(source);
    const text = await dumpOf(source);
    const target = await store();
    const counts = await importStore(target, text);

    expect(Object.keys(counts)).toEqual([...TABLES]);
    expect(Object.values(counts).every((n) => n > 0)).toBe(true);
    expect(await contents(target)).toEqual(await contents(source));
    // The identities move on from the imported ids (PostgreSQL's sequences are set; SQLite's follow by themselves).
    const next = await target.deployments.create(
      { kind: "deploy", service: "api", environment: "production", version: "v2", requestedBy: "carol" },
      later(30),
    );
    expect(next.id).toBe(3);
    await target.audit.append({
      at: later(30),
      actor: "carol",
      action: "deploy.requested",
      deploymentId: 3,
      service: "api",
      environment: "production",
    });
    expect((await target.audit.list()).map((a) => a.id)).toEqual([1, 2]);
    expect(await target.incidents.open(newIncident(next.id))).toMatchObject({ id: 2 });
  });

  it("refuses a database that is not empty, and writes nothing", async () => {
    const source = sqlite();
    await populated(source);
    const target = await store();
    await target.kv.set("already", true);
    const err = await thrown(() => importStore(target, ""));
    expect(err.message).toMatch(/not a deploybot export/);
    const refused = await thrown(async () => importStore(target, await dumpOf(source)));
    expect(refused.message).toBe(
      "the database to import into is not empty (kv has 1 rows): import into a new database, before deploybot first starts on it",
    );
    expect((await contents(target)).deployments).toEqual([]);
  });

  it("refuses a dump cut short, or one whose end line does not match its rows, and writes nothing", async () => {
    const source = sqlite();
    await populated(source);
    const lines = (await dumpOf(source)).trimEnd().split("\n");
    const target = await store();
    expect((await thrown(() => importStore(target, lines.slice(0, -3).join("\n")))).message).toBe(
      "the export is incomplete (no end line): export it again and copy the whole file",
    );
    const missingRow = [...lines.slice(0, 2), ...lines.slice(3)].join("\n");
    expect((await thrown(() => importStore(target, missingRow))).message).toMatch(
      /^the export is damaged: its end line counts 2 rows of deployments, and it holds 1$/,
    );
    expect(Object.values(await contents(target)).flat()).toEqual([]);
  });
});

/** Runs `node bin/deploybot.js ...args` to its end, with `input` on stdin. */
function cli(args: string[], input = "", env: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, ["bin/deploybot.js", ...args], {
    cwd: ROOT,
    input,
    encoding: "utf8",
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    timeout: 60_000,
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe("deploybot export and import (the CLI)", () => {
  const { sqlite, tempFile } = useStores();

  it("moves a SQLite database to another SQLite file: export --db A > dump, import --db B < dump", async () => {
    const a = tempFile();
    const source = sqlite(a);
    await populated(source);
    const b = tempFile();

    const exported = cli(["export", "--db", a]);
    expect(exported.stderr).toMatch(/^deploybot export: \d+ rows from .*\(deployments 2, approvals 1, .*kv 1\)\n$/);
    expect(exported.code).toBe(0);
    const imported = cli(["import", "--db", b], exported.stdout);
    expect(imported.stderr).toMatch(/^deploybot import: \d+ rows into .*\(deployments 2, approvals 1, .*kv 1\)\n$/);
    expect(imported.code).toBe(0);
    expect(await contents(sqlite(b))).toEqual(await contents(source));

    // Twice into the same file: refused, exit 1, nothing more written.
    const again = cli(["import", "--db", b], exported.stdout);
    expect(again).toMatchObject({ code: 1, stdout: "" });
    expect(again.stderr).toMatch(/^the database to import into is not empty/);
  });

  it("says there is nothing to export rather than creating an empty database", () => {
    const missing = tempFile();
    expect(cli(["export", "--db", missing])).toEqual({
      code: 1,
      stdout: "",
      stderr: `there is no database at ${missing} to export (--db FILE)\n`,
    });
  });

  it.skipIf(!PG_URL)("moves a SQLite database to PostgreSQL: import --database-url URL < dump", async () => {
    const a = tempFile();
    const source = sqlite(a);
    await populated(source);
    const name = `deploybot_import_${randomBytes(3).toString("hex")}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(PG_URL as string);
    url.pathname = `/${name}`;
    try {
      const exported = cli(["export", "--db", a]);
      expect(exported.code).toBe(0);
      const imported = cli(["import", "--database-url", url.href], exported.stdout);
      expect(imported.stderr).toMatch(
        /^deploybot import: \d+ rows into postgres:\/\/…@127\.0\.0\.1:\d+\/deploybot_import_/,
      );
      expect(imported.code).toBe(0);
      // And back out of PostgreSQL, through DEPLOYBOT_DATABASE_URL: the same rows.
      const back = cli(["export"], "", { DEPLOYBOT_DATABASE_URL: url.href });
      expect(back.code).toBe(0);
      const copy = sqlite(tempFile());
      await importStore(copy, back.stdout);
      expect(await contents(copy)).toEqual(await contents(source));
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});
