import { existsSync } from "node:fs";
import Database from "better-sqlite3";
import type { Clock, Timeline } from "../../clock.js";
import type { Config } from "../../config/schema.js";
import { DeploybotError, ErrorCode } from "../../errors.js";
import { freshState, type SimSlackMessage, type WorldState } from "./world-state.js";

/** How a SimWorld is opened. */
export interface SimWorldOptions {
  /** The world's own SQLite file, e.g. simFileFor(dbFile); ":memory:" (the default) keeps it in memory. */
  file?: string;
  /** What "the bot dies" means right after a `:crash-after` call returns; by default the world kills itself. */
  onCrash?: () => void;
}

const MAX_SLACK_MESSAGES = 5000;

function openWorldDb(file: string): Database.Database {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 5000");
  db.exec(`
    CREATE TABLE IF NOT EXISTS world (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS slack_messages (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      channel_id TEXT NOT NULL,
      ts TEXT NOT NULL,
      message TEXT NOT NULL,
      UNIQUE (channel_id, ts)
    );
    CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`);
  return db;
}

/**
 * The simulated world's state in its own SQLite file, under SimWorld: read again before every call when
 * another process wrote it, changed and written in one transaction, and abandoned on a (simulated) crash.
 * Slack's messages are kept in the same file, in a table of their own.
 */
export class WorldStore {
  readonly file: string;
  protected state: WorldState;
  protected readonly db: Database.Database;
  private readonly writeState: Database.Statement;
  /** PRAGMA data_version when the state was last read: it moves when another connection writes the file. */
  private seenVersion = -1;
  private readonly resumedClock: string | undefined;
  private readonly onCrash: (() => void) | undefined;
  private killed = false;

  constructor(
    readonly config: Config,
    readonly clock: Clock,
    options: SimWorldOptions = {},
  ) {
    this.file = options.file ?? ":memory:";
    this.onCrash = options.onCrash;
    this.db = openWorldDb(this.file);
    this.writeState = this.db.prepare(
      "INSERT INTO world (key, value) VALUES ('state', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
    const saved = this.load();
    this.resumedClock = saved?.clock;
    this.state = saved ?? freshState(config, clock.now());
    this.save();
  }

  /** The simulated time a world file was last written at; undefined when there is no such file (or no world in it). */
  static savedClock(file: string): string | undefined {
    if (file === ":memory:" || !existsSync(file)) return undefined;
    // Read-write, not readonly: after a kill -9 the file may still have a WAL that only a writer may recover.
    const db = new Database(file, { fileMustExist: true });
    try {
      const row = db.prepare("SELECT value FROM world WHERE key = 'state'").get() as { value: string } | undefined;
      return row ? (JSON.parse(row.value) as WorldState).clock : undefined;
    } catch {
      return undefined;
    } finally {
      db.close();
    }
  }

  /**
   * The scaled clock's origin kept in a world file (see ScaledClock), so that every process on the world agrees on
   * the simulated time; undefined when there is no such file or none was written.
   */
  static timeline(file: string): Timeline | undefined {
    if (file === ":memory:" || !existsSync(file)) return undefined;
    const db = new Database(file, { fileMustExist: true });
    try {
      db.pragma("busy_timeout = 5000");
      const row = db.prepare("SELECT value FROM world WHERE key = 'timeline'").get() as { value: string } | undefined;
      return row ? (JSON.parse(row.value) as Timeline) : undefined;
    } catch {
      return undefined;
    } finally {
      db.close();
    }
  }

  /** Keeps the scaled clock's origin in the world file, for the other processes that open it. */
  setTimeline(timeline: Timeline): void {
    this.assertAlive("the simulated world");
    this.db
      .prepare(
        "INSERT INTO world (key, value) VALUES ('timeline', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      )
      .run(JSON.stringify(timeline));
  }

  /**
   * Moves whenever another connection (another process on the same file) committed a change since this one last
   * asked; the Slack-like server reads its messages again then.
   */
  changesByOthers(): number {
    this.assertAlive("the simulated world");
    return this.db.pragma("data_version", { simple: true }) as number;
  }

  /** The next value of a counter kept in the file, at least `atLeast`: unique across the processes sharing it. */
  nextCount(name: string, atLeast = 1): number {
    this.assertAlive("the simulated world");
    const row = this.db
      .prepare(
        `INSERT INTO counters (name, value) VALUES (?, ?)
         ON CONFLICT(name) DO UPDATE SET value = MAX(counters.value + 1, excluded.value) RETURNING value`,
      )
      .get(name, atLeast) as { value: number };
    return row.value;
  }

  /** The simulated time the world was last saved at, when it was resumed from a file. */
  get savedClock(): Date | undefined {
    return this.resumedClock ? new Date(this.resumedClock) : undefined;
  }

  private load(): WorldState | undefined {
    this.seenVersion = this.db.pragma("data_version", { simple: true }) as number;
    const row = this.db.prepare("SELECT value FROM world WHERE key = 'state'").get() as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as WorldState) : undefined;
  }

  /**
   * Re-reads the state when another connection (a second console on the same file) wrote it since, so that
   * every call acts on the world as it is, not as this process last saw it.
   */
  protected refresh(): void {
    if (this.killed || this.file === ":memory:") return;
    if ((this.db.pragma("data_version", { simple: true }) as number) === this.seenVersion) return;
    this.state = this.load() ?? this.state;
  }

  /** True once kill() ran: every call is refused and nothing is written any more. */
  get dead(): boolean {
    return this.killed;
  }

  /**
   * Abandons this handle on the world, as a killed process does: every later call through it fails and
   * nothing more is written. The file keeps everything written so far, for the next console to open.
   */
  kill(): void {
    if (this.killed) return;
    this.killed = true;
    try {
      this.db.close();
    } catch {
      // Already closed: nothing more to abandon.
    }
  }

  /** The bot dies: the console's handler (a SIGKILL in the CLI), else this world stops answering. */
  crash(): void {
    if (this.onCrash) this.onCrash();
    else this.kill();
  }

  protected assertAlive(what: string): void {
    if (this.killed) {
      throw new DeploybotError(ErrorCode.Unknown, `${what}: this process was killed (simulated crash)`);
    }
  }

  /**
   * Reads the latest state, mutates it and writes it in one transaction; a mutation that throws leaves the
   * world as it was.
   */
  update<T>(fn: (s: WorldState) => T): T {
    this.assertAlive("the simulated world");
    return this.db
      .transaction(() => {
        this.refresh();
        let out: T;
        try {
          out = fn(this.state);
        } catch (err) {
          this.state = this.load() ?? this.state;
          throw err;
        }
        this.write();
        return out;
      })
      .immediate();
  }

  read(): Readonly<WorldState> {
    this.refresh();
    return this.state;
  }

  /** Writes the simulated time (with the rest of the state); a dead world writes nothing. */
  save(): void {
    if (this.killed) return;
    // IMMEDIATE, as update(): a deferred transaction that reads and then writes fails at once with "database is
    // locked" (no busy wait) when another process on the world file wrote in between.
    this.db
      .transaction(() => {
        this.refresh();
        this.write();
      })
      .immediate();
  }

  protected write(): void {
    this.state.clock = this.clock.now().toISOString();
    this.writeState.run(JSON.stringify(this.state));
    // Our own write does not move data_version for this connection: nothing to re-read.
  }

  nextId(): number {
    return this.update((s) => s.nextId++);
  }

  /** Every message the Slack-like server holds, oldest first. */
  slackMessages(): SimSlackMessage[] {
    this.assertAlive("Slack");
    return (this.db.prepare("SELECT message FROM slack_messages ORDER BY seq").all() as Array<{ message: string }>).map(
      (r) => JSON.parse(r.message) as SimSlackMessage,
    );
  }

  /** Writes a new or edited Slack message at once; the oldest go beyond 5000. */
  putSlackMessage(m: SimSlackMessage): void {
    this.assertAlive("Slack");
    this.db
      .prepare(
        `INSERT INTO slack_messages (channel_id, ts, message) VALUES (?, ?, ?)
         ON CONFLICT(channel_id, ts) DO UPDATE SET message = excluded.message`,
      )
      .run(m.channelId, m.ts, JSON.stringify(m));
    this.db
      .prepare("DELETE FROM slack_messages WHERE seq <= (SELECT MAX(seq) FROM slack_messages) - ?")
      .run(MAX_SLACK_MESSAGES);
  }
}
