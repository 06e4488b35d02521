/** A value a statement binds: what both SQLite and PostgreSQL take as a parameter. */
export type SqlValue = string | number | null;

/**
 * The few things the repositories ask of a database. SQL is written once, with `?` placeholders, in the
 * subset both dialects share (ON CONFLICT, RETURNING, TEXT timestamps in ISO form, JSON in TEXT columns);
 * the PostgreSQL driver numbers the placeholders.
 */
export interface Queryable {
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** A write; returns how many rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

export interface SqlDriver extends Queryable {
  readonly dialect: "sqlite" | "postgres";
  /**
   * Runs `fn` in one write transaction: everything done through this driver inside it (in the same async
   * context) lands together or not at all. Nested calls join the outer transaction. `fn` must make no outside
   * call (ECS, Slack, PagerDuty): effects are intents, performed after the commit. On PostgreSQL `fn` runs again
   * after a serialization failure, so what it does besides the database must be safe to do twice.
   */
  tx<T>(fn: () => Promise<T>): Promise<T>;
  /** The `FOR UPDATE` suffix that locks a row read for a later write, where the dialect has one. */
  readonly forUpdate: string;
  close(): Promise<void>;
}
