import { existsSync, statSync } from "node:fs";
import Database from "better-sqlite3";
import { StartupError } from "./startup.js";

/** What the check found: a database to open, or nothing yet (the store creates it). */
export interface DatabaseCheck {
  /** True when there is no database yet: a missing or empty file, or a SQLite file without tables. */
  fresh: boolean;
}

/**
 * Checks a SQLite file before deploybot opens it for writing: it is a SQLite database, `PRAGMA quick_check` finds
 * no corruption, and it has every table in `tables` (a file with other tables and not ours is someone else's
 * database). Opens the file read-only and closes it again; throws a StartupError naming the problem and the fix.
 */
export function checkDatabase(file: string, tables: readonly string[]): DatabaseCheck {
  if (file === ":memory:" || !existsSync(file) || statSync(file).size === 0) return { fresh: true };
  const fix = `restore ${file} from a backup, or move it aside (deploybot then starts with an empty database)`;
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const rows = db.pragma("quick_check") as Array<{ quick_check: string }>;
    const problems = rows
      .map((r) =>
        r.quick_check
          .replace(/\*\*\* in database \w+ \*\*\*/, "")
          .replace(/\s+/g, " ")
          .trim(),
      )
      .filter((r) => r !== "ok");
    if (problems.length > 0) {
      throw new StartupError(
        `the database ${file} is corrupt (quick_check: ${problems.slice(0, 3).join("; ")}${problems.length > 3 ? "; ..." : ""})`,
        fix,
      );
    }
    const present = new Set(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map(
        (r) => r.name,
      ),
    );
    if (present.size === 0) return { fresh: true };
    const missing = tables.filter((t) => !present.has(t));
    if (missing.length > 0) {
      throw new StartupError(
        `${file} is not a deploybot database (no table ${missing.join(", ")})`,
        "point --db or DEPLOYBOT_DB at deploybot's own database file",
      );
    }
    return { fresh: false };
  } catch (err) {
    if (err instanceof StartupError) throw err;
    const code = (err as { code?: string }).code ?? "";
    const message = (err as Error).message;
    if (code === "SQLITE_NOTADB" || /not a database/i.test(message)) {
      throw new StartupError(`${file} is not a SQLite database (${message})`, fix, { cause: err });
    }
    if (code.startsWith("SQLITE_CORRUPT") || /malformed/i.test(message)) {
      throw new StartupError(`the database ${file} is corrupt (${message})`, fix, { cause: err });
    }
    throw new StartupError(
      `the database ${file} cannot be opened (${message})`,
      "check the file's permissions and the volume it is on",
      { cause: err },
    );
  } finally {
    db?.close();
  }
}
