import { AsyncLocalStorage } from "node:async_hooks";
import pg from "pg";
import { DeploybotError, ErrorCode } from "../errors.js";
import type { SqlDriver, SqlValue } from "./driver.js";
import { POSTGRES_MIGRATIONS } from "./schema-postgres.js";

export interface PostgresDriverOptions {
  /** A `postgres://user:password@host:port/database` URL (anything node-postgres accepts as a connection string). */
  url: string;
  /** The schema deploybot's tables live in, created if missing; by default the connection's own (usually public). */
  schema?: string;
  /** Connections in the pool (default 10). */
  maxConnections?: number;
  /** How many times a transaction, or a statement outside one, runs again after a serialization failure or a
   *  deadlock (default 20). */
  retries?: number;
  /** Told about a failure of an idle connection (the pool drops it and opens another when needed). */
  onError?: (err: Error) => void;
}

/** The open transaction of an async context: its connection, whether it is still open, and its first failure. */
interface OpenTx {
  client: pg.PoolClient;
  open: boolean;
  failure: unknown;
}

const INT8 = 20;
const NUMERIC = 1700;
/** Ids, counts and sums are numbers, as SQLite returns them (ids stay far below 2^53). */
const TYPES = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8 || oid === NUMERIC ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** serialization_failure and deadlock_detected: PostgreSQL rolled the transaction back, and running it again is safe. */
const RETRYABLE = new Set(["40001", "40P01"]);
const isRetryable = (err: unknown): boolean => {
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 5; e = (e as Error).cause, depth++) {
    if (RETRYABLE.has((e as { code?: string }).code ?? "")) return true;
  }
  return false;
};

/** Two-key advisory lock class for migrations ("dbot"); the second key is the schema's name hashed. */
const MIGRATION_LOCK = 0x64626f74;

/**
 * Numbers the `?` placeholders of the repositories' SQL as `$1..$n`, leaving alone any `?` inside a string literal,
 * a quoted identifier, a dollar-quoted string or a comment.
 */
export function numberPlaceholders(sql: string): string {
  let out = "";
  let n = 0;
  let i = 0;
  const copyUntil = (end: number) => {
    const to = end < 0 ? sql.length : end;
    out += sql.slice(i, to);
    i = to;
  };
  while (i < sql.length) {
    const c = sql[i] as string;
    if (c === "?") {
      out += `$${++n}`;
      i++;
    } else if (c === "'" || c === '"') {
      // A doubled quote inside is an escaped one; an E'' string also escapes with a backslash.
      const backslash = c === "'" && /[eE]$/.test(out) && !/[\w$]$/.test(out.slice(0, -1));
      let j = i + 1;
      while (j < sql.length) {
        if (backslash && sql[j] === "\\") j += 2;
        else if (sql[j] === c && sql[j + 1] === c) j += 2;
        else if (sql[j] === c) break;
        else j++;
      }
      copyUntil(j + 1);
    } else if (c === "-" && sql[i + 1] === "-") {
      copyUntil(sql.indexOf("\n", i));
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      copyUntil(end < 0 ? -1 : end + 2);
    } else if (c === "$" && !/[\w$]$/.test(out)) {
      const tag = /^\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$/.exec(sql.slice(i))?.[0];
      if (tag) {
        const end = sql.indexOf(tag, i + tag.length);
        copyUntil(end < 0 ? -1 : end + tag.length);
      } else copyUntil(i + 1);
    } else {
      copyUntil(i + 1);
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * PostgreSQL through node-postgres: a pool of connections, and transactions that are SERIALIZABLE, as SQLite's are,
 * so a service that reads, decides and writes in one transaction never acts on a stale read, even with replicas
 * writing at once. PostgreSQL answers a conflict with a serialization failure instead of waiting; `tx` then runs the
 * function again (with backoff and jitter), which is why the function must only touch the database. Statements
 * outside a transaction are serializable too, each on its own, and retried the same way.
 *
 * A transaction holds one connection from the pool; statements made inside its function (in the same async context)
 * use that connection, and a nested `tx` joins it. A statement that fails inside a transaction fails the whole
 * transaction, even when the function catches the error (PostgreSQL cannot commit after a failed statement).
 */
export class PostgresDriver implements SqlDriver {
  readonly dialect = "postgres" as const;
  readonly forUpdate = " FOR UPDATE";
  readonly pool: pg.Pool;
  private readonly context = new AsyncLocalStorage<OpenTx>();
  private readonly numbered = new Map<string, string>();
  private readonly retries: number;
  private closed = false;

  private constructor(private readonly options: PostgresDriverOptions) {
    this.retries = options.retries ?? 20;
    const session = [
      "SET default_transaction_isolation = 'serializable'",
      ...(options.schema ? [`SET search_path = ${pg.escapeIdentifier(options.schema)}`] : []),
    ].join("; ");
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      application_name: "deploybot",
      types: TYPES,
      // Awaited by the pool before it hands the connection out.
      onConnect: (async (client: pg.ClientBase) => {
        await client.query(session);
      }) as (client: pg.ClientBase) => void,
    });
    // Without a listener, an idle connection's error (a server restart) would end the process.
    this.pool.on("error", (err) => options.onError?.(err));
  }

  /** Connects, brings the schema to the current version (or refuses a newer one), and returns the driver. */
  static async connect(options: PostgresDriverOptions): Promise<PostgresDriver> {
    const driver = new PostgresDriver(options);
    try {
      await driver.migrate();
    } catch (err) {
      await driver.close();
      throw err;
    }
    return driver;
  }

  /** The schema version this build writes. */
  static get schemaVersion(): number {
    return POSTGRES_MIGRATIONS.length;
  }

  /**
   * Applies the missing migrations in one transaction under an advisory lock, so that processes starting together
   * migrate once: the others wait, then find the schema current. READ COMMITTED, so that what the lock holder
   * committed is seen once the lock is ours.
   */
  private async migrate(): Promise<void> {
    const known = POSTGRES_MIGRATIONS.length;
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query("BEGIN ISOLATION LEVEL READ COMMITTED");
      try {
        await client.query("SELECT pg_advisory_xact_lock($1, hashtext(COALESCE($2::text, current_schema(), '')))", [
          MIGRATION_LOCK,
          this.options.schema ?? null,
        ]);
        if (this.options.schema) {
          await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(this.options.schema)}`);
        }
        await client.query(
          "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
        );
        const { rows } = await client.query<{ v: number }>(
          "SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations",
        );
        const version = rows[0]?.v ?? 0;
        if (version > known) {
          throw new DeploybotError(
            ErrorCode.ConfigInvalid,
            `the database was written by a newer deploybot (schema ${version}, this one knows ${known}); upgrade deploybot or point DEPLOYBOT_DATABASE_URL at another database`,
          );
        }
        for (let v = version; v < known; v++) {
          await client.query(POSTGRES_MIGRATIONS[v] as string);
          await client.query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", [
            v + 1,
            new Date().toISOString(),
          ]);
        }
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {
          broken = true;
        });
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }

  private sql(text: string): string {
    let out = this.numbered.get(text);
    if (out === undefined) {
      out = numberPlaceholders(text);
      // IN lists of every length make new texts; a bound keeps the cache small.
      if (this.numbered.size >= 1000) this.numbered.clear();
      this.numbered.set(text, out);
    }
    return out;
  }

  private async query<T extends pg.QueryResultRow>(
    text: string,
    params: readonly SqlValue[],
  ): Promise<pg.QueryResult<T>> {
    const sql = this.sql(text);
    const values = [...params];
    const tx = this.context.getStore();
    if (tx?.open) {
      try {
        return await tx.client.query<T>(sql, values);
      } catch (err) {
        tx.failure ??= err;
        throw err;
      }
    }
    return this.retrying(() => this.pool.query<T>(sql, values));
  }

  /** Runs `attempt` again after a serialization failure or a deadlock, waiting longer (with jitter) each time. */
  private async retrying<T>(attempt: () => Promise<T>): Promise<T> {
    for (let n = 0; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        if (n >= this.retries || !isRetryable(err)) throw err;
        await sleep(Math.random() * Math.min(250, 5 * 2 ** n));
      }
    }
  }

  async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return (await this.query<pg.QueryResultRow>(sql, params)).rows as T[];
  }

  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.query<pg.QueryResultRow>(sql, params)).rows[0] as T | undefined;
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await this.query(sql, params)).rowCount ?? 0;
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    if (this.context.getStore()?.open) return fn();
    return this.retrying(() => this.once(fn));
  }

  /** One attempt of a transaction: BEGIN, the function, COMMIT; ROLLBACK on any failure. */
  private async once<T>(fn: () => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const tx: OpenTx = { client, open: true, failure: undefined };
    let broken = false;
    try {
      await client.query("BEGIN ISOLATION LEVEL SERIALIZABLE");
      let out: T;
      try {
        out = await this.context.run(tx, fn);
      } catch (err) {
        // A function that wrapped a serialization failure still gets its transaction run again.
        throw isRetryable(tx.failure) ? tx.failure : err;
      }
      // The function caught a failed statement: PostgreSQL would turn the COMMIT into a ROLLBACK.
      if (tx.failure !== undefined) throw tx.failure;
      tx.open = false;
      await client.query("COMMIT");
      return out;
    } catch (err) {
      tx.open = false;
      await client.query("ROLLBACK").catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      tx.open = false;
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
