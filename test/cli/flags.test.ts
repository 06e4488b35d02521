import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/bot-process.js";

const tmp = mkdtempSync(join(tmpdir(), "deploybot-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const tempPath = (name: string) => join(tmp, `${++seq}-${name}`);
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

/** `node bin/deploybot.js ...args` with no Slack variable set (unless given). */
function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["bin/deploybot.js", ...args],
      {
        cwd: ROOT,
        timeout: 30_000,
        env: { PATH: process.env.PATH, HOME: tmp, LOG_LEVEL: "warn", ...env },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

describe("deploybot's own flags", () => {
  it.each([["--help"], ["-h"], ["help"]])("prints the usage for %s and exits 0", async (flag) => {
    const run = await cli([flag]);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    expect(run.stdout).toMatch(/^deploybot: \/deploy, \/rollback and \/deploy-status for AWS ECS from Slack\n\nUsage:/);
    expect(run.stdout).toContain("deploybot console [options]");
  });

  it.each([["--version"], ["-v"]])("prints the version for %s", async (flag) => {
    expect(await cli([flag])).toEqual({ code: 0, stdout: `deploybot ${VERSION}\n`, stderr: "" });
  });

  it("prints the console's usage and its directives for console --help", async () => {
    const run = await cli(["console", "--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^deploybot console: /);
    for (const word of ["--script FILE", "--quiet", "--at ISO-TIME", ":advance DURATION", ":click LABEL"]) {
      expect(run.stdout).toContain(word);
    }
  });

  it("prints check-config's usage for check-config --help", async () => {
    const run = await cli(["check-config", "-h"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^deploybot check-config: /);
  });

  it.each<[string[], string]>([
    [["--nope"], "deploybot: Unknown option '--nope'"],
    [["console", "--db"], "deploybot: Option '--db <value>' argument missing"],
    [["console", "--json=yes"], "deploybot: Option '--json' does not take an argument"],
    [["deploy"], "deploybot: unknown command deploy (commands: console, check-config, export, import)"],
    [["check-config", "a.yml", "b.yml"], "deploybot: unexpected b.yml after check-config"],
    [["check-config", "--json"], "deploybot: --json does not apply to check-config"],
  ])("refuses %j with exit code 2 and a pointer to --help", async (args, message) => {
    const run = await cli(args);
    expect(run).toEqual({ code: 2, stdout: "", stderr: `${message}\nRun deploybot --help for the usage.\n` });
  });

  it("refuses console-only flags in Slack mode before connecting", async () => {
    const run = await cli(["--script", "x.txt"], { SLACK_BOT_TOKEN: "xoxb-1", SLACK_SIGNING_SECRET: "s" });
    expect(run).toMatchObject({
      code: 2,
      stderr: "deploybot: --script does not apply to the Slack bot\nRun deploybot --help for the usage.\n",
    });
  });
});

describe("check-config", () => {
  it("refuses a monitor.interval the scheduler cannot run, as the start would", async () => {
    const file = tempPath("seven.yml");
    writeFileSync(
      file,
      readFileSync(join(ROOT, "examples/deploybot.yml"), "utf8").replace("  interval: 60s", "  interval: 45s"),
    );
    const run = await cli(["check-config", file]);
    expect(run).toEqual({
      code: 1,
      stdout: "",
      stderr: `${file} is not a valid deploybot config:\n  - monitor.interval (line 35): an interval of 45 s cannot be scheduled: it must divide a minute or an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30 s, or 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60 min)\n`,
    });
  });
});

describe("console --quiet", () => {
  it("leaves out the AWS calls and nothing else", async () => {
    const script = tempPath("status.txt");
    writeFileSync(script, "/status web production\n");
    const args = (db: string) => [
      "console",
      "--script",
      script,
      "--db",
      tempPath(db),
      "--at",
      "2026-11-21T10:00:00+02:00",
    ];
    const loud = await cli(args("loud.db"));
    const quiet = await cli([...args("quiet.db"), "--quiet"]);
    expect(loud.stdout).toMatch(/ AWS ecs:DescribeServices /);
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toBe(
      loud.stdout
        .split("\n")
        .filter((l) => !/^\d\d:\d\d:\d\d AWS /.test(l))
        .join("\n"),
    );
  });
});
