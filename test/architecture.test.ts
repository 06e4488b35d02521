import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

/**
 * The layers of src/, lowest first: a file may import from its own layer or a lower one, never from a higher
 * one or from another layer of the same rank (services never import adapters; slack markup never reads the store).
 */
const RANK: Record<string, number> = {
  clock: 0,
  errors: 0,
  logger: 0,
  foreground: 0,
  "config/schema": 1,
  "config/schedule": 1,
  "ops/metrics": 1,
  ports: 2,
  domain: 3,
  policies: 3,
  "config/load": 4,
  slack: 4,
  store: 4,
  adapters: 5,
  services: 5,
  commands: 6,
  ops: 6,
  app: 7,
  server: 8,
  local: 8,
  cli: 9,
};

function layerOf(file: string): string {
  const p = relative(SRC, file).replace(/\.ts$/, "");
  if (p.startsWith("config/") || p === "ops/metrics") return p;
  return p.split("/")[0] as string;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith(".ts") ? [path] : [];
  });
}

const files = sources(SRC);
const imports = files.flatMap((file) =>
  [...readFileSync(file, "utf8").matchAll(/from\s+"(\.{1,2}\/[^"]+)"/g)].map((m) => ({
    from: file,
    to: resolve(dirname(file), (m[1] as string).replace(/\.js$/, ".ts")),
  })),
);

describe("the layering of src/", () => {
  it("places every source file in a known layer", () => {
    const unknown = files.map(layerOf).filter((l) => RANK[l] === undefined);
    expect(unknown).toEqual([]);
  });

  it("imports only downward (or within the same layer)", () => {
    const upward = imports
      .map(({ from, to }) => ({ a: layerOf(from), b: layerOf(to), from: relative(SRC, from), to: relative(SRC, to) }))
      .filter(({ a, b }) => a !== b && (RANK[b] as number) >= (RANK[a] as number))
      .map(({ from, to }) => `${from} -> ${to}`);
    expect(upward).toEqual([]);
  });
});

/** The most lines a source file may have: about 350, with room for a few lines of slack. */
const MAX_LINES = 360;

/** Lines as `wc -l` counts them, and a last line without its newline too. */
function lineCount(text: string): number {
  const lines = text.split("\n").length;
  return text.endsWith("\n") ? lines - 1 : lines;
}

describe("the size of src/ files", () => {
  it("keeps every source file at about 350 lines or fewer, so each stays one job", () => {
    const long = files
      .map((file) => ({ file: relative(SRC, file), lines: lineCount(readFileSync(file, "utf8")) }))
      .filter(({ lines }) => lines > MAX_LINES)
      .map(({ file, lines }) => `${file}: ${lines} lines`);
    expect(long).toEqual([]);
  });
});
