import { AsyncLocalStorage } from "node:async_hooks";
import Database from "better-sqlite3";
import { DeploybotError, ErrorCode } from "../errors.js";
import { type Checkpointer, startCheckpointer } from "./checkpointer.js";
import type { SqlDriver, SqlValue } from "./driver.js";
import { SQLITE_MIGRATIONS } from "./schema-sqlite.js";

/**
 * SQLite through better-sqlite3: WAL, prepared statements cached by their SQL, and write transactions that
 * start with BEGIN IMMEDIATE so that two processes on one file wait for each other (busy_timeout) instead of
 * failing with SQLITE_BUSY when a deferred transaction tries to upgrade its read lock.
 *
 * One connection serves the whole process (open one SqliteDriver per file per process: two in one process would
 * wait on each other synchronously). While a transaction is open, statements from other async contexts wait for it
 * to end, so they can neither see its partial writes nor have their own writes rolled back with it. A nested `tx`
 * joins the open one (no savepoint: an inner failure the outer code catches keeps its writes).
 */
export class SqliteDriver implements SqlDriver {
  readonly dialect = "sqlite" as const;
  readonly forUpdate = "";
  readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  /** The open transaction's token; async work started inside it carries it, and counts as inside only while open. */
  private readonly context = new AsyncLocalStorage<object>();
  private open: object | null = null;
  private readonly waiting: Array<() => void> = [];

  private checkpointer: Checkpointer | undefined;

  /**
   * `checkpointEveryMs`: WAL checkpoints in a thread of their own at that interval instead of SQLite's automatic
   * ones in this thread (see checkpointer.ts); for a long-running process on a file.
   */
  constructor(file: string, options: { busyTimeoutMs?: number; checkpointEveryMs?: number } = {}) {
    this.db = new Database(file);
    try {
      this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 10_000}`);
      this.migrate();
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("foreign_keys = ON");
      this.db.pragma("synchronous = NORMAL");
    } catch (err) {
      this.db.close();
      throw err;
    }
    if (options.checkpointEveryMs && file !== ":memory:") {
      this.db.pragma("wal_autocheckpoint = 0");
      this.checkpointer = startCheckpointer(file, options.checkpointEveryMs, (message, stopped) => {
        // Without the thread, SQLite checkpoints in this one again, as it does by default.
        if (stopped && this.db.open) this.db.pragma("wal_autocheckpoint = 1000");
        if (stopped) this.checkpointer = undefined;
        process.emitWarning(`deploybot: WAL checkpoint: ${message}`);
      });
    }
  }

  private version(): number {
    return this.db.pragma("user_version", { simple: true }) as number;
  }

  private migrate(): void {
    const known = SQLITE_MIGRATIONS.length;
    const newer = (v: number) =>
      new DeploybotError(
        ErrorCode.ConfigInvalid,
        `the database was written by a newer deploybot (schema ${v}, this one knows ${known}); upgrade deploybot or use another --db file`,
      );
    if (this.version() > known) throw newer(this.version());
    for (;;) {
      // Read again under the write lock: another process starting on the same file may have migrated meanwhile.
      this.db.exec("BEGIN IMMEDIATE");
      try {
        const v = this.version();
        if (v > known) throw newer(v);
        if (v === known) {
          this.db.exec("COMMIT");
          return;
        }
        this.db.exec(SQLITE_MIGRATIONS[v] as string);
        this.db.pragma(`user_version = ${v + 1}`);
        this.db.exec("COMMIT");
      } catch (err) {
        if (this.db.inTransaction) this.db.exec("ROLLBACK");
        throw err;
      }
    }
  }

  /** The schema version this build writes. */
  static get schemaVersion(): number {
    return SQLITE_MIGRATIONS.length;
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private inTx(): boolean {
    return this.open !== null && this.context.getStore() === this.open;
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    while (this.open && !this.inTx()) await this.wait();
    return this.statement(sql).all(...params) as T[];
  }

  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    while (this.open && !this.inTx()) await this.wait();
    return this.statement(sql).get(...params) as T | undefined;
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    while (this.open && !this.inTx()) await this.wait();
    return this.statement(sql).run(...params).changes;
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTx()) return fn();
    // The check and the claim run in one synchronous step after the last await, so two waiters cannot both pass.
    while (this.open) await this.wait();
    const token = {};
    this.open = token;
    try {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        const out = await this.context.run(token, fn);
        this.db.exec("COMMIT");
        return out;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec("ROLLBACK");
        throw err;
      }
    } finally {
      this.open = null;
      for (const wake of this.waiting.splice(0)) wake();
    }
  }

  async close(): Promise<void> {
    await this.checkpointer?.stop();
    this.checkpointer = undefined;
    if (this.db.open) this.db.close();
  }
}
