import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DeploybotError, ErrorCode } from "../errors.js";
import { checkDatabase } from "../ops/db-check.js";
import { exportStore, importStore } from "../store/dump.js";
import { openStore, TABLES } from "../store/index.js";

/**
 * `deploybot export` writes every table of the database to stdout as JSON lines; `deploybot import` reads such a
 * dump from stdin into an empty database. Either side is a SQLite file (--db) or PostgreSQL (--database-url): this is
 * how a SQLite deployment moves to PostgreSQL. What was copied is said on stderr.
 */
export async function dump(sub: "export" | "import", url: string | undefined, file: string): Promise<void> {
  const where = url ? url.replace(/:\/\/[^@/]*@/, "://…@") : file;
  if (!url) {
    if (sub === "export" && (file === ":memory:" || !existsSync(file)))
      throw new DeploybotError(ErrorCode.NotFound, `there is no database at ${file} to export (--db FILE)`);
    if (sub === "import" && file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
    try {
      checkDatabase(file, TABLES);
    } catch (err) {
      throw new DeploybotError(ErrorCode.ConfigInvalid, (err as Error).message, { cause: err });
    }
  }
  const store = await openStore({ url, file }).catch((err: unknown) => {
    if (err instanceof DeploybotError) throw err;
    throw new DeploybotError(ErrorCode.ConfigInvalid, `${where} cannot be opened (${(err as Error).message})`, {
      cause: err,
    });
  });
  try {
    const counts =
      sub === "export"
        ? await exportStore(store, (line) => writeLine(process.stdout, line))
        : await importStore(store, await readAll(process.stdin));
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const detail = Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([t, n]) => `${t} ${n}`)
      .join(", ");
    process.stderr.write(
      `deploybot ${sub}: ${total} rows ${sub === "export" ? "from" : "into"} ${where}${detail ? ` (${detail})` : ""}\n`,
    );
  } finally {
    await store.close();
  }
}

/** Writes one line, waiting for the stream to drain when its buffer is full (a pipe to a slow reader). */
function writeLine(out: NodeJS.WritableStream, line: string): Promise<void> | undefined {
  if (out.write(`${line}\n`)) return undefined;
  return new Promise((resolve) => out.once("drain", () => resolve()));
}

async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  let text = "";
  for await (const chunk of input) text += chunk.toString();
  return text;
}
