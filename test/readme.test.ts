import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "./helpers/bot-process.js";

/**
 * README.md's console transcripts are real output. Each block of the form
 *
 *     $ cat FILE
 *     ...the script...
 *     $ npx deploybot console ARGS --script FILE
 *     ...what it prints...
 *
 * is run as it stands, and its output compared character for character. Only the --db path changes (to a fresh
 * temporary file): nothing in the output depends on it. A block without output must run without an error.
 */
const readme = readFileSync(join(ROOT, "README.md"), "utf8");
const tmp = mkdtempSync(join(tmpdir(), "deploybot-readme-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Transcript {
  file: string;
  script: string;
  args: string[];
  output: string;
}

function transcripts(): Transcript[] {
  const found: Transcript[] = [];
  for (const block of readme.matchAll(/^```\n([\s\S]*?)^```$/gm)) {
    const lines = (block[1] as string).split("\n");
    const cat = /^\$ cat (\S+)$/.exec(lines[0] ?? "");
    const run = lines.findIndex((l) => l.startsWith("$ npx deploybot console "));
    if (!cat || run < 0) continue;
    found.push({
      file: cat[1] as string,
      script: `${lines.slice(1, run).join("\n")}\n`,
      args: (lines[run] as string).slice("$ npx deploybot console ".length).split(" "),
      output: lines.slice(run + 1).join("\n"),
    });
  }
  return found;
}

function console_(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["bin/deploybot.js", "console", ...args],
      { cwd: ROOT, timeout: 60_000, env: { PATH: process.env.PATH, HOME: tmp, LOG_LEVEL: "warn" } },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

describe("README.md", () => {
  const all = transcripts();

  it("has the transcripts this test keeps true", () => {
    expect(all.map((t) => t.file)).toEqual(["deploy.txt", "saturday.txt", "breach.txt"]);
  });

  it.each(all)("shows the real output of $file", async (t) => {
    const script = join(tmp, t.file);
    writeFileSync(script, t.script);
    const args = t.args.map((a, i) =>
      t.args[i - 1] === "--db" ? join(tmp, `${t.file}.db`) : t.args[i - 1] === "--script" && a === t.file ? script : a,
    );
    expect(args).toContain(script);
    const run = await console_(args);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    if (t.output.trim()) expect(run.stdout).toBe(t.output);
    else expect(run.stdout).not.toMatch(/^\d\d:\d\d:\d\d error: /m);
  });

  it("quotes times in the zone's own abbreviation, as the bot prints them (SAST, not GMT+2)", () => {
    expect(readme).not.toMatch(/GMT[+-]\d/);
  });
});
