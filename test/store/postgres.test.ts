import type Database from "better-sqlite3";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { DeploybotError, ErrorCode, IllegalTransitionError } from "../../src/errors.js";
import { openStore, type Store, TABLES } from "../../src/store/index.js";
import { numberPlaceholders, PostgresDriver } from "../../src/store/postgres.js";
import { POSTGRES_MIGRATIONS } from "../../src/store/schema-postgres.js";
import { deploymentIn, later, newDeploy, PG_URL, rawDb, sleep, T0, thrown, useStores } from "./fixtures.js";

describe("numbering placeholders for PostgreSQL", () => {
  it.each([
    ["SELECT * FROM t WHERE a = ? AND b IN (?, ?)", "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)"],
    ["SELECT 1", "SELECT 1"],
    ["SELECT '?', ? FROM t", "SELECT '?', $1 FROM t"],
    ["SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"],
    [`SELECT "odd?col", ? FROM t`, `SELECT "odd?col", $1 FROM t`],
    ["SELECT E'\\' ?', ?", "SELECT E'\\' ?', $1"],
    ["SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"],
    ["SELECT /* one? */ ?", "SELECT /* one? */ $1"],
    ["SELECT $$ ? $$, $tag$ ? $tag$, ?", "SELECT $$ ? $$, $tag$ ? $tag$, $1"],
    ["SELECT 'unterminated ?", "SELECT 'unterminated ?"],
  ])("turns %j into %j", (sql, numbered) => {
    expect(numberPlaceholders(sql)).toBe(numbered);
  });
});

describe("openStore", () => {
  const { track, tempFile } = useStores();

  it.each([undefined, "", "  "])("opens the SQLite file when the database URL is %j", async (url) => {
    const s = track(await openStore({ url, file: tempFile() }));
    expect(s.driver.dialect).toBe("sqlite");
  });

  it("refuses a URL that is not PostgreSQL's, without printing its password", async () => {
    const err = await thrown(() =>
      openStore({ url: "mysql://bot:s3cret@db:3306/deploybot", file: "data/deploybot.db" }),
    );
    expect(err).toBeInstanceOf(DeploybotError);
    expect((err as DeploybotError).code).toBe(ErrorCode.ConfigInvalid);
    expect(err.message).toBe(
      'DEPLOYBOT_DATABASE_URL must be a postgres:// or postgresql:// URL (found "mysql://…@db:3306/deploybot"); unset it to use the SQLite file data/deploybot.db',
    );
  });
});

/** Runs one query on the test server outside any store. */
async function admin<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

// Skipped, and listed as skipped, when no server is given: `npm run test:pg` starts one and always runs these.
describe.skipIf(!PG_URL)("PostgreSQL", () => {
  const { postgres, schema, sqlite, track } = useStores("postgres");
  const tables = async (name: string) =>
    (
      await admin<{ t: string }>("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1", [
        name,
      ])
    )
      .map((r) => r.t)
      .sort();

  describe("opening a store", () => {
    it("migrates a new schema to the current version with every table, the migrations table and the audit triggers", async () => {
      const name = schema();
      await postgres(name);
      expect(PostgresDriver.schemaVersion).toBe(POSTGRES_MIGRATIONS.length);
      const versions = await admin<{ version: number }>(
        `SELECT version FROM ${pg.escapeIdentifier(name)}.schema_migrations ORDER BY version`,
      );
      expect(versions.map((v) => v.version)).toEqual(POSTGRES_MIGRATIONS.map((_, i) => i + 1));
      expect(await tables(name)).toEqual([...TABLES, "schema_migrations"].sort());
      const triggers = await admin<{ name: string; on: string }>(
        `SELECT t.tgname AS name, c.relname AS on FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND NOT t.tgisinternal ORDER BY t.tgname`,
        [name],
      );
      expect(triggers).toEqual([
        { name: "audit_no_delete", on: "audit" },
        { name: "audit_no_truncate", on: "audit" },
        { name: "audit_no_update", on: "audit" },
      ]);
    });

    it("reopens a schema without migrating again and keeps its rows; ids go on", async () => {
      const name = schema();
      const first = await postgres(name);
      const d = await newDeploy(first);
      await first.deployments.apply(d.id, "allow", later(1));
      await first.kv.set("sim.world", { clock: "2026-11-24T08:16:00.000Z" });
      await first.close();

      const again = await postgres(name);
      expect(await again.deployments.get(d.id)).toMatchObject({ status: "approved", version: "v1.4.2" });
      expect(await again.kv.get("sim.world")).toEqual({ clock: "2026-11-24T08:16:00.000Z" });
      expect((await newDeploy(again)).id).toBe(d.id + 1);
      expect(await admin(`SELECT * FROM ${pg.escapeIdentifier(name)}.schema_migrations`)).toHaveLength(
        POSTGRES_MIGRATIONS.length,
      );
    });

    it("migrates once when several processes start together on a new schema", async () => {
      const name = schema();
      const stores = await Promise.all([1, 2, 3, 4].map(() => postgres(name)));
      const versions = await admin<{ version: number }>(
        `SELECT version FROM ${pg.escapeIdentifier(name)}.schema_migrations ORDER BY version`,
      );
      expect(versions.map((v) => v.version)).toEqual(POSTGRES_MIGRATIONS.map((_, i) => i + 1));
      for (const s of stores) expect(await s.deployments.get(1)).toBeUndefined();
    });

    it("refuses a database written by a newer deploybot, says what to do and leaves it as it was", async () => {
      const name = schema();
      const newer = PostgresDriver.schemaVersion + 1;
      const q = pg.escapeIdentifier(name);
      await admin(`CREATE SCHEMA ${q}`);
      await admin(`CREATE TABLE ${q}.schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`);
      await admin(`INSERT INTO ${q}.schema_migrations VALUES (${newer}, '2027-01-01T00:00:00.000Z')`);
      await admin(`CREATE TABLE ${q}.future (x TEXT); INSERT INTO ${q}.future VALUES ('kept')`);

      const err = await thrown(() => postgres(name));

      expect(err).toBeInstanceOf(DeploybotError);
      expect((err as DeploybotError).code).toBe(ErrorCode.ConfigInvalid);
      expect(err.message).toBe(
        `the database was written by a newer deploybot (schema ${newer}, this one knows ${PostgresDriver.schemaVersion}); upgrade deploybot or point DEPLOYBOT_DATABASE_URL at another database`,
      );
      expect(await tables(name)).toEqual(["future", "schema_migrations"]);
      expect(await admin(`SELECT x FROM ${q}.future`)).toEqual([{ x: "kept" }]);
      expect(await admin(`SELECT version FROM ${q}.schema_migrations`)).toEqual([{ version: newer }]);
    });

    it("opens PostgreSQL through openStore for a postgres:// URL, in the schema the URL names", async () => {
      const name = schema();
      await admin(`CREATE SCHEMA ${pg.escapeIdentifier(name)}`);
      const url = new URL(PG_URL as string);
      url.searchParams.set("options", `-c search_path=${name}`);
      const s = track(await openStore({ url: url.toString(), file: "unused.db" }));
      expect(s.driver.dialect).toBe("postgres");
      await newDeploy(s);
      expect(await admin(`SELECT id FROM ${pg.escapeIdentifier(name)}.deployments`)).toEqual([{ id: "1" }]);
    });
  });

  it("has the columns, keys, uniqueness, foreign keys and indexes of the SQLite schema", async () => {
    const name = schema();
    await postgres(name);
    const lite = rawDb(sqlite());
    for (const table of TABLES) {
      expect({ table, ...(await postgresShape(name, table)) }).toEqual({ table, ...sqliteShape(lite, table) });
    }
  });

  it("refuses TRUNCATE of the audit log as well as UPDATE and DELETE", async () => {
    const s = await postgres();
    await s.audit.append({
      at: T0,
      actor: "bob",
      action: "approve",
      deploymentId: null,
      service: null,
      environment: null,
    });
    await expect(s.driver.run("TRUNCATE audit")).rejects.toThrow("the audit log is append-only");
    expect(await s.audit.list()).toHaveLength(1);
  });

  it("reads ids, counts and sums back as numbers", async () => {
    const s = await postgres();
    await newDeploy(s);
    await newDeploy(s);
    expect(
      await s.driver.get("SELECT COUNT(*) AS n, SUM(id) AS total, MAX(id) AS top, AVG(id) AS mean FROM deployments"),
    ).toEqual({
      n: 2,
      total: 3,
      top: 2,
      mean: 1.5,
    });
  });

  it("binds parameters around a ? inside a string literal", async () => {
    const s = await postgres();
    expect(await s.driver.get("SELECT '?' AS q, ? AS p, 'it''s?' AS r", ["bound"])).toEqual({
      q: "?",
      p: "bound",
      r: "it's?",
    });
  });

  it("fails a transaction whose function caught a failed statement, and writes nothing of it", async () => {
    const s = await postgres();
    const err = await thrown(() =>
      s.tx(async () => {
        await s.kv.set("before", 1);
        await s.driver.run("INSERT INTO no_such_table VALUES (1)").catch(() => undefined);
        return "the function carried on";
      }),
    );
    expect(err.message).toBe('relation "no_such_table" does not exist');
    expect(await s.kv.get("before")).toBeUndefined();
    // The connection went back to the pool in a usable state.
    await s.tx(() => s.kv.set("after", 2));
    expect(await s.kv.get("after")).toBe(2);
  });

  describe("two clients on one database", () => {
    /** Two stores on one new schema: two pools, as two bot processes would have. */
    const pair = async (): Promise<[Store, Store]> => {
      const name = schema();
      const a = await postgres(name);
      return [a, await postgres(name)];
    };

    it("lose no update when both read, wait and write one row at once, and neither sees a failure", async () => {
      const [a, b] = await pair();
      await a.kv.set("counter", 0);
      const PER_CLIENT = 60;
      const failures: string[] = [];
      const inFlight = { a: 0, b: 0 };
      /** Transactions (attempts included) that began while the other client had one open. */
      let overlapping = 0;
      const client = (s: Store, name: "a" | "b") =>
        Promise.all(
          Array.from({ length: 3 }, async (_, chain) => {
            for (let i = chain; i < PER_CLIENT; i += 3) {
              await s
                .tx(async () => {
                  inFlight[name]++;
                  try {
                    if (inFlight[name === "a" ? "b" : "a"] > 0) overlapping++;
                    const n = (await s.kv.get<number>("counter")) as number;
                    await sleep(1);
                    await s.kv.set("counter", n + 1);
                  } finally {
                    inFlight[name]--;
                  }
                })
                .catch((err: unknown) => failures.push(String((err as { code?: string }).code ?? err)));
            }
          }),
        );

      await Promise.all([client(a, "a"), client(b, "b")]);

      console.log(
        `two PostgreSQL clients: ${2 * PER_CLIENT} increments, ${failures.length} failed, ${overlapping} overlapping`,
      );
      expect(failures).toEqual([]);
      expect(await b.kv.get("counter")).toBe(2 * PER_CLIENT);
      // They really wrote at the same time, not one after the other.
      expect(overlapping).toBeGreaterThan(20);
    });

    it("give a target's lock to exactly one of two deployments that ask for it at once", async () => {
      const [a, b] = await pair();
      for (let round = 0; round < 10; round++) {
        const service = `svc-${round}`;
        const first = await newDeploy(a, { service });
        const second = await newDeploy(a, { service });
        const [x, y] = await Promise.all([
          a.locks.acquire(service, "production", first.id, "alice", T0),
          b.locks.acquire(service, "production", second.id, "bob", T0),
        ]);
        const holder = (await a.locks.get(service, "production"))?.deploymentId;
        expect([x, y].filter((r) => r === null)).toHaveLength(1);
        expect(holder).toBe(x === null ? first.id : second.id);
        expect((x ?? y)?.deploymentId).toBe(holder);
      }
    });

    it("move a deployment once when both approve it at once: the other is refused", async () => {
      const [a, b] = await pair();
      for (let round = 0; round < 5; round++) {
        const d = await deploymentIn(a, "awaiting_approval");
        const results = await Promise.allSettled([
          a.deployments.apply(d.id, "approve", later(10)),
          b.deployments.apply(d.id, "approve", later(10)),
        ]);
        expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
        const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
        expect(refused.reason).toBeInstanceOf(IllegalTransitionError);
        expect((await a.deployments.must(d.id)).status).toBe("approved");
      }
    });

    it("number approvals given at once in one order, each person once", async () => {
      const [a, b] = await pair();
      const d = await deploymentIn(a, "awaiting_approval");
      const approve = (s: Store, user: string) =>
        s.approvals.record({
          deploymentId: d.id,
          user,
          decision: "approve",
          groupName: null,
          roles: [],
          note: null,
          at: later(5).toISOString(),
        });
      const users = Array.from({ length: 30 }, (_, i) => `user-${String(i).padStart(2, "0")}`);
      const recorded = await Promise.all(users.flatMap((user) => [approve(a, user), approve(b, user)]));
      expect(recorded.filter(Boolean)).toHaveLength(users.length);
      const seqs = (await a.driver.all<{ seq: number }>("SELECT seq FROM approvals ORDER BY seq")).map((r) => r.seq);
      expect(seqs).toEqual(users.map((_, i) => i + 1));
      expect((await b.approvals.of(d.id)).map((x) => x.user).sort()).toEqual(users);
    });
  });
});

interface Shape {
  columns: Array<[string, "required" | "nullable"]>;
  unique: string[];
  foreignKeys: string[];
  indexes: string[];
}

/** A SQLite table's columns, primary and unique keys, foreign keys and named indexes. */
function sqliteShape(db: Database.Database, table: string): Shape {
  const info = db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string; notnull: number; pk: number }>;
  const cols = (index: string) =>
    (db.prepare(`PRAGMA index_info(${index})`).all() as Array<{ name: string }>).map((c) => c.name).join(",");
  const list = db.prepare(`PRAGMA index_list(${table})`).all() as Array<{ name: string; origin: string }>;
  const pk = info
    .filter((c) => c.pk > 0)
    .sort((x, y) => x.pk - y.pk)
    .map((c) => c.name)
    .join(",");
  return {
    columns: info.map((c) => [c.name, c.notnull || c.pk ? "required" : "nullable"]),
    unique: [pk, ...list.filter((i) => i.origin === "u").map((i) => cols(i.name))].sort(),
    foreignKeys: (db.prepare(`PRAGMA foreign_key_list(${table})`).all() as Array<{ from: string; table: string }>)
      .map((f) => `${f.from}->${f.table}`)
      .sort(),
    indexes: list
      .filter((i) => i.origin === "c")
      .map((i) => `${i.name}(${cols(i.name)})`)
      .sort(),
  };
}

/** The same for a PostgreSQL table. */
async function postgresShape(schema: string, table: string): Promise<Shape> {
  const columns = await admin<{ name: string; nullable: string }>(
    `SELECT column_name AS name, is_nullable AS nullable FROM information_schema.columns
     WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
    [schema, table],
  );
  const indexes = await admin<{ name: string; cols: string; kind: string | null }>(
    `SELECT i.relname AS name, c.contype AS kind,
       string_agg(a.attname, ',' ORDER BY k.n) AS cols
     FROM pg_index x
     JOIN pg_class i ON i.oid = x.indexrelid
     JOIN pg_class t ON t.oid = x.indrelid
     JOIN pg_namespace s ON s.oid = t.relnamespace
     CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)
     JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
     LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype IN ('p', 'u')
     WHERE s.nspname = $1 AND t.relname = $2
     GROUP BY i.relname, c.contype`,
    [schema, table],
  );
  const foreignKeys = await admin<{ fk: string }>(
    `SELECT a.attname || '->' || r.relname AS fk
     FROM pg_constraint c
     JOIN pg_class t ON t.oid = c.conrelid
     JOIN pg_namespace s ON s.oid = t.relnamespace
     JOIN pg_class r ON r.oid = c.confrelid
     JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (c.conkey)
     WHERE c.contype = 'f' AND s.nspname = $1 AND t.relname = $2`,
    [schema, table],
  );
  return {
    columns: columns.map((c) => [c.name, c.nullable === "NO" ? "required" : "nullable"]),
    unique: indexes
      .filter((i) => i.kind !== null)
      .map((i) => i.cols)
      .sort(),
    foreignKeys: foreignKeys.map((f) => f.fk).sort(),
    indexes: indexes
      .filter((i) => i.kind === null)
      .map((i) => `${i.name}(${i.cols})`)
      .sort(),
  };
}
