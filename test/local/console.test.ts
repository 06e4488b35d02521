import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { LocalConsole } from "../../src/local/console.js";
import type { ConsoleEvent } from "../../src/local/events.js";
import { ecsCanaryExample } from "../helpers/ecs-canary-example.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** The example with web production on ECS's own CANARY: these suites check the console's workings, not traffic steps. */
const EXAMPLE = ecsCanaryExample();
const SATURDAY = "2026-11-21T10:00:00+02:00";
const SATURDAY_UTC = "2026-11-21T08:00:00.000Z";
const TARGETS = ["web", "api"].flatMap((s) => ["staging", "production"].map((e) => `*${s}* · *${e}*  \`v1.4.0\``));

const tmp = mkdtempSync(join(tmpdir(), "deploybot-console-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let fileSeq = 0;
const tempPath = (name: string) => join(tmp, `${++fileSeq}-${name}`);

interface Running {
  con: LocalConsole;
  events: ConsoleEvent[];
  run(...lines: string[]): Promise<ConsoleEvent[]>;
}

let running: Running | undefined;
afterEach(async () => {
  await running?.con.stop();
  running = undefined;
});

/** A started console on the example config; `run` returns only the events its lines caused. */
async function startConsole(dbFile = ":memory:", at = SATURDAY): Promise<Running> {
  const events: ConsoleEvent[] = [];
  const con = new LocalConsole({
    configFile: EXAMPLE,
    dbFile,
    at,
    logger: pino({ level: "silent" }),
    emit: (e) => events.push(e),
  });
  await con.start();
  running = {
    con,
    events,
    async run(...lines) {
      const from = events.length;
      for (const line of lines) await con.run(line);
      return events.slice(from);
    },
  };
  return running;
}

describe("the local console (DESIGN §6)", () => {
  it("answers /status with one ephemeral for alice listing every service × environment at v1.4.0, after the DescribeServices calls", async () => {
    const c = await startConsole();
    const out = await c.run("/status");

    const replies = out.filter((e) => e.kind !== "aws");
    expect(replies).toHaveLength(1);
    const reply = replies[0] as ConsoleEvent;
    expect(reply).toMatchObject({ at: SATURDAY_UTC, kind: "ephemeral", channel: "#deploys", user: "alice" });
    for (const target of TARGETS) expect(reply.text).toContain(target);
    expect(out.at(-1)).toBe(reply);

    const aws = out.slice(0, -1);
    expect(aws.every((e) => e.kind === "aws" && e.api === "ecs")).toBe(true);
    expect(aws.slice(0, 4).map((e) => [e.op, e.input?.cluster, e.input?.services])).toEqual([
      ["DescribeServices", "comply360-staging", ["web"]],
      ["DescribeServices", "comply360-prod", ["web"]],
      ["DescribeServices", "comply360-staging", ["api"]],
      ["DescribeServices", "comply360-prod", ["api"]],
    ]);
  });

  it("says production is in the weekend freeze until Monday 09:00 and names when it next opens once", async () => {
    const c = await startConsole();
    const [reply] = (await c.run("/status web production")).filter((e) => e.kind === "ephemeral");
    expect(reply?.text).toContain("Weekend freeze until Mon 23 Nov 09:00");
    expect(reply?.text?.match(/Next open:/g)).toHaveLength(1);
  });

  it("answers as frank after :as frank", async () => {
    const c = await startConsole();
    expect(await c.run(":as frank")).toEqual([]);
    const replies = (await c.run("/status")).filter((e) => e.kind !== "aws");
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ kind: "ephemeral", user: "frank" });
    expect(c.con.prompt).toBe("frank in #deploys> ");
  });

  it("answers :as nobody with one error naming the users, and nothing else", async () => {
    const c = await startConsole();
    const out = await c.run(":as nobody");
    expect(out).toEqual([
      {
        at: SATURDAY_UTC,
        kind: "error",
        text: ":as nobody: no such user; users are alice, bob, carol, dave, erin, frank",
      },
    ]);
    expect(c.con.prompt).toBe("alice in #deploys> ");
  });

  it.each<[string, string, string]>([
    ["an unknown directive", ":teleport mars", "unknown directive :teleport: use :as, :in, :click"],
    ["a metric that is not a number", ":metric web production error_rate abc", ":metric needs SERVICE ENV NAME VALUE"],
    ["a metric of an unknown target", ":metric web prod-eu error_rate 3", "web prod-eu is not configured"],
    ["the clock set backwards", ":time 2026-11-20T10:00:00+02:00", "the simulated clock only moves forward"],
    ["a time that is not one", ":time next tuesday", ":time needs an ISO time"],
    ["an advance that is not a duration", ":advance 5x", ":advance needs a duration such as 90s, 5m, 2h or 1d"],
    ["a click on no button", ":click Approve", 'no message has a button "Approve"'],
    ["a channel without #", ":in deploys", ":in needs a channel such as #deploys"],
    ["an unknown slash command", "/deploybot status", "unknown command /deploybot"],
    ["plain text", "deploy web please", "is neither a slash command"],
  ])("answers %s with an error event and keeps going", async (_what, line, fragment) => {
    const c = await startConsole();
    const out = await c.run(line);
    expect(out).toHaveLength(1);
    expect(out[0]?.kind).toBe("error");
    expect(out[0]?.text).toContain(fragment);
    expect(out[0]?.text).not.toContain("    at ");
    expect(c.con.clock.now().toISOString()).toBe(SATURDAY_UTC);

    const later = (await c.run("/status")).filter((e) => e.kind === "ephemeral");
    expect(later).toHaveLength(1);
    expect(later[0]?.text).toContain("`v1.4.0`");
  });

  it("moves the clock with :advance and :time, forward only", async () => {
    const c = await startConsole();
    await c.run(":advance 90m");
    expect(c.con.clock.now().toISOString()).toBe("2026-11-21T09:30:00.000Z");
    await c.run(":time 2026-11-23T09:00:00+02:00");
    expect(c.con.clock.now().toISOString()).toBe("2026-11-23T07:00:00.000Z");
  });

  it("lists the weekend freeze and its end, Mon 23 Nov 09:00, for /status freezes", async () => {
    const c = await startConsole();
    const replies = (await c.run("/status freezes")).filter((e) => e.kind === "ephemeral");
    expect(replies).toHaveLength(1);
    const text = replies[0]?.text ?? "";
    expect(text).toContain("Weekend freeze");
    expect(text).toContain("Mon 23 Nov 09:00");
    expect(text).toContain("*staging*");
    expect(text).toContain("*production*");
  });

  it.each<[string, string, string]>([
    ["text over 500 characters", `/status ${"web ".repeat(150)}`, "characters long; the limit is 500"],
    ["binary text", "/status w\u0000e\u0001b", "control or binary characters; type it as plain text"],
    ["text with a replacement character", "/status web \ufffd\ufffd", "control or binary characters"],
  ])("answers %s with a clear ephemeral and no AWS call", async (_what, line, fragment) => {
    const c = await startConsole();
    const out = await c.run(line);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ kind: "ephemeral", user: "alice" });
    expect(out[0]?.text).toContain(fragment);
  });

  it("stops at :quit", async () => {
    const c = await startConsole();
    expect(c.con.done).toBe(false);
    expect(await c.run(":quit")).toEqual([]);
    expect(c.con.done).toBe(true);
  });

  it("ignores blank lines and # comments", async () => {
    const c = await startConsole();
    expect(await c.run("", "   ", "# a comment")).toEqual([]);
  });

  it("resumes from a db file's saved clock, and refuses an --at earlier than it", async () => {
    const db = tempPath("resume.db");
    const first = await startConsole(db);
    await first.run(":advance 2h");
    await first.con.stop();
    running = undefined;

    const resumed = await startConsole(db, "2026-11-21T12:30:00+02:00");
    expect(resumed.con.clock.now().toISOString()).toBe("2026-11-21T10:30:00.000Z");
    await resumed.con.stop();
    running = undefined;

    expect(
      () =>
        new LocalConsole({
          configFile: EXAMPLE,
          dbFile: db,
          at: SATURDAY,
          logger: pino({ level: "silent" }),
          emit: () => {},
        }),
    ).toThrow("is before this db's simulated time (2026-11-21T10:30:00.000Z)");
  });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/deploybot.js ...args` in the repo; bounded by a timeout. */
function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["bin/deploybot.js", ...args],
      {
        cwd: ROOT,
        timeout: 30_000,
        env: { ...process.env, LOG_LEVEL: "warn", SLACK_BOT_TOKEN: "", SLACK_APP_TOKEN: "", SLACK_SIGNING_SECRET: "" },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("deploybot console --json (the CLI end to end)", () => {
  const KINDS = ["message", "update", "ephemeral", "page", "aws", "error"];

  it("prints one JSON event per line, in order, and stops at :quit", async () => {
    const script = tempPath("script.txt");
    writeFileSync(
      script,
      ["# who sees what", "/status", ":as bob", "/status web production", ":quit", "/status"].join("\n"),
    );
    const db = tempPath("cli.db");
    const run = await cli("console", "--json", "--config", EXAMPLE, "--script", script, "--db", db, "--at", SATURDAY);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);

    const events = run.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as ConsoleEvent);
    for (const e of events) {
      expect(e.at).toBe(SATURDAY_UTC);
      expect(KINDS).toContain(e.kind);
    }
    // aws… ephemeral(alice), aws… ephemeral(bob); nothing after :quit.
    const shape = events.map((e) => (e.kind === "aws" ? "aws" : `${e.kind}:${e.user ?? ""}`));
    const squeezed = shape.filter((k, i) => k !== "aws" || shape[i - 1] !== "aws");
    expect(squeezed).toEqual(["aws", "ephemeral:alice", "aws", "ephemeral:bob"]);

    const replies = events.filter((e) => e.kind === "ephemeral");
    expect(replies[0]).toMatchObject({ channel: "#deploys", user: "alice" });
    for (const target of TARGETS) expect(replies[0]?.text).toContain(target);
    expect(replies[1]).toMatchObject({ channel: "#deploys", user: "bob" });
    expect(replies[1]?.text).toContain("Weekend freeze until Mon 23 Nov 09:00");
    for (const e of events.filter((x) => x.kind === "aws")) {
      expect(e).toMatchObject({ api: "ecs" });
      expect(typeof e.op).toBe("string");
      expect(e.input).toBeTypeOf("object");
    }
  });

  it("stops a script at its first failing line, names the file and line on stderr, and exits 1", async () => {
    const script = tempPath("failing.txt");
    writeFileSync(script, ["# a comment", "/status web", ":nope", "/status"].join("\n"));
    const run = await cli(
      "console",
      "--json",
      "--quiet",
      "--script",
      script,
      "--db",
      tempPath("fail.db"),
      "--at",
      SATURDAY,
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `${script}:3: unknown directive :nope: use :as, :in, :click, :advance, :time, :metric, :oncall, :fail, :lag, :throttle, :down, :crash-after or :quit\n`,
    );
    const kinds = run.stdout
      .trim()
      .split("\n")
      .map((line) => (JSON.parse(line) as ConsoleEvent).kind);
    // --quiet: no aws lines; the /status after the failing line never ran.
    expect(kinds).toEqual(["ephemeral", "error"]);
  });

  it("exits 1 naming the line of a :time in the past", async () => {
    const script = tempPath("past.txt");
    writeFileSync(script, ":advance 1h\n:time 2026-11-20T10:00:00+02:00\n");
    const run = await cli("console", "--script", script, "--db", tempPath("past.db"), "--at", SATURDAY);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/past\.txt:2: :time 2026-11-20T10:00:00\+02:00 is in the past/);
  });

  it("says a missing --script file does not exist, without a raw ENOENT, and exits 2", async () => {
    const missing = tempPath("nowhere.txt");
    const run = await cli("console", "--script", missing);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(
      `deploybot: cannot read the script ${missing}: no such file\nRun deploybot --help for the usage.\n`,
    );
  });

  it("refuses --at earlier than the db's saved clock with a clear message and exit code 1", async () => {
    const script = tempPath("advance.txt");
    writeFileSync(script, ":advance 1h\n");
    const db = tempPath("rerun.db");
    expect((await cli("console", "--json", "--script", script, "--db", db, "--at", SATURDAY)).code).toBe(0);

    const again = await cli("console", "--json", "--script", script, "--db", db, "--at", "2026-11-21T09:00:00+02:00");
    expect(again.stdout).toBe("");
    expect(again.stderr).toContain("--at 2026-11-21T09:00:00+02:00 is before this db's simulated time");
    expect(again.stderr).toContain("the simulated clock only moves forward");
    expect(again.stderr).not.toContain("    at ");
    expect(again.code).toBe(1);
  });
});

describe("deploybot check-config", () => {
  it("exits 0 with a summary for the example", async () => {
    const run = await cli("check-config", "examples/deploybot.yml");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("examples/deploybot.yml: valid");
    expect(run.stdout).toContain("Services × environments");
    expect(run.stdout).toMatch(/web +production +af-south-1 comply360-prod\/web/);
  });

  it("exits 1 for a broken file, printing its path and the problem without a stack trace", async () => {
    const file = tempPath("broken.yml");
    writeFileSync(
      file,
      "timezone: UTC\nusers: {}\nchannels: { deploys: '#d', incidents: '#i' }\nenvironments: {}\nservices:\n  web:\n    environments:\n      prod: { ecs: { cluster: c, service: s, container: c, region: af-south-1 } }\n",
    );
    const run = await cli("check-config", file);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(`${file} is not a valid deploybot config`);
    expect(run.stderr).toContain("services.web.environments.prod (line 8): unknown environment 'prod'");
    expect(run.stderr).not.toContain("    at ");
  });

  it("exits 1 for a file that does not exist, saying it cannot read it", async () => {
    const file = tempPath("missing.yml");
    const run = await cli("check-config", file);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`cannot read config file ${file}`);
    expect(run.stderr).not.toContain("    at ");
  });
});
