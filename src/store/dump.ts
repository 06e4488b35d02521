import { DeploybotError, ErrorCode } from "../errors.js";
import type { SqlValue } from "./driver.js";
import { type Store, TABLES } from "./index.js";

/** The first line of a dump names its format and version; a reader refuses any other. */
export const DUMP_FORMAT = "deploybot-dump";
export const DUMP_VERSION = 1;

type Table = (typeof TABLES)[number];

/**
 * The order rows are written and read back in: by id where a table has one, so that a row only ever refers to one
 * written before it (a rollback to its deploy, an intent to the one it depends on).
 */
const ORDER: Record<Table, string> = {
  deployments: "id",
  approvals: 'deployment_id, "user"',
  locks: "service, environment",
  audit: "id",
  incidents: "id",
  intents: "id",
  guardrail_checks: "deployment_id, guardrail",
  leases: "name",
  seen_requests: "key",
  kv: "key",
};

/** Tables whose ids PostgreSQL hands out from a sequence, moved past the imported ids afterwards. */
const IDENTITIES: Table[] = ["deployments", "audit", "incidents", "intents"];

interface Header {
  format: string;
  version: number;
  from: string;
  at: string;
  tables: string[];
}

type Line = Header | { table: string; row: Record<string, SqlValue> } | { end: true; rows: Record<string, number> };

const refuse = (message: string) => new DeploybotError(ErrorCode.ConfigInvalid, message);

/**
 * Writes every row of every table as JSON lines: a header, one line per row (`{"table", "row"}`), and an end line
 * with the count per table, so that a dump cut short is noticed. Read in one transaction: a consistent copy even while
 * deploybot runs (on SQLite it holds writers off until it is done). Returns the count per table.
 */
export async function exportStore(
  store: Store,
  write: (line: string) => void | Promise<void>,
  at: Date = new Date(),
): Promise<Record<string, number>> {
  return store.tx(async () => {
    const header: Header = {
      format: DUMP_FORMAT,
      version: DUMP_VERSION,
      from: store.driver.dialect,
      at: at.toISOString(),
      tables: [...TABLES],
    };
    await write(JSON.stringify(header));
    const rows: Record<string, number> = {};
    for (const table of TABLES) {
      const all = await store.driver.all<Record<string, SqlValue>>(`SELECT * FROM ${table} ORDER BY ${ORDER[table]}`);
      for (const row of all) await write(JSON.stringify({ table, row }));
      rows[table] = all.length;
    }
    await write(JSON.stringify({ end: true, rows }));
    return rows;
  });
}

/** Parses a dump's lines, checking its header, its tables and its end line before anything is written. */
function parseDump(text: string): {
  rows: Array<{ table: Table; row: Record<string, SqlValue> }>;
  counts: Record<string, number>;
} {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const parsed: Line[] = lines.map((l, i) => {
    try {
      return JSON.parse(l) as Line;
    } catch {
      throw refuse(
        `line ${i + 1} of the dump is not JSON: it is not a deploybot export (deploybot export > dump.jsonl)`,
      );
    }
  });
  const header = parsed[0] as Partial<Header> | undefined;
  if (!header || header.format !== DUMP_FORMAT) {
    throw refuse("this is not a deploybot export: its first line does not say deploybot-dump");
  }
  if (header.version !== DUMP_VERSION) {
    throw refuse(
      `this export is version ${header.version} and this deploybot reads version ${DUMP_VERSION}: import it with the deploybot that wrote it`,
    );
  }
  const end = parsed.at(-1) as { end?: boolean; rows?: Record<string, number> };
  if (parsed.length < 2 || end.end !== true || !end.rows) {
    throw refuse("the export is incomplete (no end line): export it again and copy the whole file");
  }
  const known = new Set<string>(TABLES);
  const rows = parsed.slice(1, -1).map((l, i) => {
    const r = l as { table?: string; row?: Record<string, SqlValue> };
    if (!r.table || !known.has(r.table) || typeof r.row !== "object" || r.row === null) {
      throw refuse(`line ${i + 2} of the export is not a row of a deploybot table (${JSON.stringify(r.table)})`);
    }
    return { table: r.table as Table, row: r.row };
  });
  const counted: Record<string, number> = {};
  for (const { table } of rows) counted[table] = (counted[table] ?? 0) + 1;
  for (const [table, n] of Object.entries(end.rows)) {
    if ((counted[table] ?? 0) !== n) {
      throw refuse(
        `the export is damaged: its end line counts ${n} rows of ${table}, and it holds ${counted[table] ?? 0}`,
      );
    }
  }
  return { rows, counts: end.rows };
}

/**
 * Loads a dump into an empty store (SQLite or PostgreSQL), all of it in one transaction, ids kept; PostgreSQL's id
 * sequences then continue after the highest imported id. Refuses a store that holds anything, and a dump that is
 * not whole. Returns the count per table.
 */
export async function importStore(store: Store, text: string): Promise<Record<string, number>> {
  const { rows, counts } = parseDump(text);
  const db = store.driver;
  await store.tx(async () => {
    for (const table of TABLES) {
      const n = (await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`))?.n ?? 0;
      if (Number(n) > 0) {
        throw refuse(
          `the database to import into is not empty (${table} has ${n} rows): import into a new database, before deploybot first starts on it`,
        );
      }
    }
    for (const [i, { table, row }] of rows.entries()) {
      const columns = Object.keys(row);
      const sql = `INSERT INTO ${table} (${columns.map((c) => `"${c.replaceAll('"', '""')}"`).join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`;
      try {
        await db.run(
          sql,
          columns.map((c) => row[c] as SqlValue),
        );
      } catch (err) {
        throw new DeploybotError(
          ErrorCode.ConfigInvalid,
          `row ${i + 1} of the export (${table}) could not be written: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
    if (db.dialect === "postgres") {
      for (const table of IDENTITIES) {
        await db.get(
          `SELECT setval(pg_get_serial_sequence('${table}', 'id'), COALESCE((SELECT MAX(id) FROM ${table}), 0) + 1, false)`,
        );
      }
    }
  });
  return counts;
}
