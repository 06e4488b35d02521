import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { type AddressInfo, createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import { SlackLikeServer } from "../../src/local/slack-server.js";
import { Store } from "../../src/store/index.js";
import { botEnv, get, postSigned, ROOT, SIGNING_SECRET, slashBody, startBot } from "../helpers/bot-process.js";
import { FakeSocketSlack } from "../helpers/fake-socket-slack.js";

/**
 * The real `bin/deploybot.js` as a supervisor runs it: how it fails to start, and how it stops. Slack is the
 * Slack-like server on 127.0.0.1 (SLACK_API_URL); AWS is a closed port or a stub on 127.0.0.1 (AWS_ENDPOINT_URL).
 */
const tmp = mkdtempSync(join(tmpdir(), "deploybot-process-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
const tempPath = (name: string) => join(tmp, `${++seq}-${name}`);

let slack: SlackLikeServer;
beforeAll(async () => {
  slack = new SlackLikeServer(loadConfig(join(ROOT, "examples/deploybot.yml")), systemClock);
  await slack.start();
});
afterAll(async () => {
  await slack.stop();
});

const servers: Array<{ close(cb?: () => void): unknown }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

/** A port nothing listens on (taken from the OS, then released). */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** An HTTP server on 127.0.0.1 that answers every request with `handler`. */
async function serve(handler: Parameters<typeof createServer>[1]): Promise<Server> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  servers.push(s);
  return s;
}
const portOf = (s: { address(): unknown }) => (s.address() as AddressInfo).port;

const httpVars = (extra: Record<string, string> = {}) => ({
  SLACK_BOT_TOKEN: "xoxb-test",
  SLACK_SIGNING_SECRET: SIGNING_SECRET,
  SLACK_API_URL: slack.apiUrl,
  PORT: "0",
  ...extra,
});

/** A deploybot database with its tables, written by the real Store. */
function realDatabase(): string {
  const file = tempPath("real.db");
  void Store.sqlite(file).close();
  return file;
}

interface Case {
  what: string;
  setup: () => Promise<{ vars: Record<string, string>; args?: string[] }>;
  says: RegExp;
}

const cases: Case[] = [
  {
    what: "the port is in use",
    setup: async () => {
      const busy = createTcpServer();
      await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
      servers.push(busy);
      return { vars: httpVars({ PORT: String(portOf(busy)) }) };
    },
    says: /port \d+ \(PORT\) is in use; stop what listens there or set PORT to a free port/,
  },
  {
    what: "Slack cannot be reached",
    setup: async () => ({ vars: httpVars({ SLACK_API_URL: `http://127.0.0.1:${await closedPort()}/api/` }) }),
    says: /Slack could not be reached at http:\/\/127\.0\.0\.1:\d+\/api\/ \(connect ECONNREFUSED [\d.:]+\); check the network/,
  },
  {
    what: "Slack refuses the bot token",
    setup: async () => {
      const refusing = await serve((_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ ok: false, error: "invalid_auth" }));
      });
      return { vars: httpVars({ SLACK_API_URL: `http://127.0.0.1:${portOf(refusing)}/api/` }) };
    },
    says: /Slack refused SLACK_BOT_TOKEN \(invalid_auth\); copy the Bot User OAuth Token/,
  },
  {
    what: "SLACK_BOT_TOKEN is set alone",
    setup: async () => ({ vars: { SLACK_BOT_TOKEN: "xoxb-test" } }),
    says: /SLACK_BOT_TOKEN is set without SLACK_APP_TOKEN \(Socket Mode\) or SLACK_SIGNING_SECRET \(HTTP\); set one/,
  },
  {
    what: "SLACK_SIGNING_SECRET is set without the bot token",
    setup: async () => ({ vars: { SLACK_SIGNING_SECRET: SIGNING_SECRET } }),
    says: /SLACK_SIGNING_SECRET is set without SLACK_BOT_TOKEN; set SLACK_BOT_TOKEN/,
  },
  {
    what: "SLACK_APP_TOKEN is set without the bot token",
    setup: async () => ({ vars: { SLACK_APP_TOKEN: "xapp-test" } }),
    says: /SLACK_APP_TOKEN is set without SLACK_BOT_TOKEN/,
  },
  {
    what: "the database is corrupt",
    setup: async () => {
      const db = realDatabase();
      // Scribble over the kv table's root page: quick_check sees it, a plain open would not.
      const root = (
        new Database(db, { readonly: true }).prepare("SELECT rootpage FROM sqlite_master WHERE name = 'kv'").get() as {
          rootpage: number;
        }
      ).rootpage;
      const bytes = readFileSync(db);
      bytes.fill(0xee, (root - 1) * 4096 + 8, (root - 1) * 4096 + 200);
      bytes[(root - 1) * 4096] = 0x0d;
      bytes.writeUInt16BE(0xffff, (root - 1) * 4096 + 3);
      writeFileSync(db, bytes);
      return { vars: httpVars(), args: ["--db", db] };
    },
    says: /the database .*\.db is corrupt \(.*\); restore .* from a backup, or move it aside/,
  },
  {
    what: "the database belongs to another program",
    setup: async () => {
      const db = tempPath("foreign.db");
      const other = new Database(db);
      other.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
      other.close();
      return { vars: httpVars(), args: ["--db", db] };
    },
    says: /foreign\.db is not a deploybot database \(no table deployments, .*\); point --db or DEPLOYBOT_DB/,
  },
  {
    what: "the file is not a database at all",
    setup: async () => {
      const db = tempPath("text.db");
      copyFileSync(join(ROOT, "manifest.yml"), db);
      return { vars: httpVars(), args: ["--db", db] };
    },
    says: /text\.db is not a SQLite database \(file is not a database\)/,
  },
  {
    what: "monitor.interval cannot be scheduled",
    setup: async () => {
      const config = tempPath("seven.yml");
      writeFileSync(
        config,
        readFileSync(join(ROOT, "examples/deploybot.yml"), "utf8").replace("  interval: 60s", "  interval: 7s"),
      );
      return { vars: httpVars(), args: ["--config", config] };
    },
    says: /seven\.yml: monitor\.interval \(line \d+\): an interval of 7 s cannot be scheduled: it must divide a minute or an hour/,
  },
  {
    what: "Slack refuses the app token in Socket Mode",
    setup: async () => {
      const socket = new FakeSocketSlack();
      socket.openAnswer = { ok: false, error: "invalid_auth" };
      await socket.start();
      servers.push({ close: (cb?: () => void) => socket.stop().then(cb) });
      return { vars: { SLACK_BOT_TOKEN: "xoxb-test", SLACK_APP_TOKEN: "xapp-test", SLACK_API_URL: socket.apiUrl } };
    },
    says: /Slack refused SLACK_APP_TOKEN \(invalid_auth\); create an app-level token with the connections:write scope/,
  },
];

describe("a start that cannot succeed (the real process)", () => {
  it.each(cases)("exits 1 within 10 s with one line naming the cause and the fix when $what", async (c) => {
    const { vars, args = [] } = await c.setup();
    const db = args.includes("--db") ? [] : ["--db", tempPath("fresh.db")];
    // Killed at 10 s: a start that hangs ends with a signal, not with exit code 1.
    const bot = startBot([...args, ...db], botEnv(vars), 10_000);
    expect(await bot.exited).toBe(1);
    expect(bot.stdout()).toBe("");
    // Library log lines (JSON) may come before or after it; the one line for a person is the only plain one.
    const plain = bot
      .stderr()
      .split("\n")
      .filter((l) => l && !l.startsWith("{"));
    expect(plain).toHaveLength(1);
    expect(plain[0]).toMatch(/^deploybot could not start: /);
    expect(plain[0]).toMatch(c.says);
  });

  it("exits 1 naming the config file, the path in it and the problem when the config is invalid", async () => {
    const config = tempPath("broken.yml");
    writeFileSync(
      config,
      readFileSync(join(ROOT, "examples/deploybot.yml"), "utf8").replace("  interval: 60s", "  interval: soon"),
    );
    const bot = startBot(["--config", config, "--db", tempPath("c.db")], botEnv(httpVars()), 10_000);
    expect(await bot.exited).toBe(1);
    // One line, as a supervisor's log shows it: the file, then each problem with its path and line.
    expect(bot.stderr()).toMatch(
      new RegExp(`^deploybot could not start: ${config}: monitor.interval \\(line \\d+\\): found "soon"`),
    );
    expect(bot.stderr().trim().split("\n")).toHaveLength(1);
  });

  it("leaves a database it refused as it found it", async () => {
    const db = tempPath("foreign.db");
    const other = new Database(db);
    other.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY)");
    other.close();
    const before = readFileSync(db);
    const bot = startBot(["--db", db], botEnv(httpVars()), 10_000);
    expect(await bot.exited).toBe(1);
    expect(readFileSync(db).equals(before)).toBe(true);
  });
});

describe("stopping on a signal (the real process)", () => {
  it("on SIGTERM stops taking requests, finishes the command in flight, closes the database and exits 0", async () => {
    // An ECS that holds DescribeServices until the test lets it answer: the command is in flight at the signal.
    let arrived!: () => void;
    const describeArrived = new Promise<void>((r) => {
      arrived = r;
    });
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const ecs = await serve((req, res) => {
      req.resume();
      arrived();
      void released.then(() => {
        res.writeHead(400, { "content-type": "application/x-amz-json-1.1" });
        res.end(JSON.stringify({ __type: "ClientException", message: "held for the test" }));
      });
    });
    const db = tempPath("term.db");
    const bot = startBot(["--db", db], botEnv(httpVars(), `http://127.0.0.1:${portOf(ecs)}`));
    const listening = await bot.logLine(/listening for Slack/);
    const port = Number(listening.port);

    // A signed body that is JSON null is answered, and the process lives on.
    expect(await postSigned(port, "null", "application/json")).toBe(400);
    expect(await postSigned(port, "payload=null")).toBe(400);
    expect(await get(port, "/healthz")).toEqual({ status: 200, body: '{"ok":true}' });

    const before = slack.records.length;
    const status = slashBody({
      command: "/deploy-status",
      text: "web production",
      response_url: slack.responseUrl("CDEPLOYS", "U0ALICE01"),
      trigger_id: "1.sigterm.test",
    });
    expect(await postSigned(port, status)).toBe(200);
    await describeArrived;

    bot.child.kill("SIGTERM");
    // It stops taking requests (the port closes) while the command is still waiting on ECS.
    for (let i = 0; i < 200 && (await get(port, "/healthz")) !== "ECONNREFUSED"; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(await get(port, "/healthz")).toBe("ECONNREFUSED");
    expect(slack.records.length).toBe(before);
    release();

    expect(await bot.exited).toBe(0);
    // The command finished before the exit: its answer reached Slack.
    const answer = slack.records.slice(before).find((r) => r.kind === "ephemeral");
    expect(answer?.text).toContain("ECS unavailable");
    const last = JSON.parse(bot.stderr().trimEnd().split("\n").at(-1) as string) as Record<string, unknown>;
    expect(last).toMatchObject({ reason: "SIGTERM", drained: true });
    expect(last.msg).toBe("deploybot stopped on SIGTERM: finished its work and closed the database");
    // Closing the last connection checkpointed the WAL into the database file.
    expect(existsSync(`${db}-wal`)).toBe(false);
  });

  it("on SIGINT in Socket Mode stops, closes the database and exits 0; METRICS_PORT served health, readiness and metrics", async () => {
    const socket = new FakeSocketSlack();
    await socket.start();
    servers.push({ close: (cb?: () => void) => socket.stop().then(cb) });
    const db = tempPath("socket.db");
    const bot = startBot(
      ["--db", db],
      botEnv({
        SLACK_BOT_TOKEN: "xoxb-test",
        SLACK_APP_TOKEN: "xapp-test",
        SLACK_API_URL: socket.apiUrl,
        METRICS_PORT: "0",
      }),
    );
    const connected = await bot.logLine(/connected to Slack \(Socket Mode\)/);
    const metricsPort = Number(connected.metricsPort);
    expect(socket.calls.filter((c) => c === "auth.test")).toHaveLength(1);

    expect(await get(metricsPort, "/healthz")).toEqual({ status: 200, body: '{"ok":true}' });
    expect(await get(metricsPort, "/healthz", "HEAD")).toEqual({ status: 200, body: "" });
    const ready = (await get(metricsPort, "/readyz")) as { status: number; body: string };
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({
      ready: true,
      checks: { database: { ok: true }, slack: { ok: true, detail: "Socket Mode connected" }, monitor: { ok: true } },
    });
    const metrics = (await get(metricsPort, "/metrics")) as { status: number; body: string };
    expect(metrics.status).toBe(200);
    for (const name of ["deploybot_monitor_cycle_duration_seconds", "deploybot_process_cpu_seconds_total"]) {
      expect(metrics.body).toContain(name);
    }

    bot.child.kill("SIGINT");
    expect(await bot.exited).toBe(0);
    expect(JSON.parse(bot.stderr().trimEnd().split("\n").at(-1) as string)).toMatchObject({
      reason: "SIGINT",
      msg: "deploybot stopped on SIGINT: finished its work and closed the database",
    });
    expect(existsSync(`${db}-wal`)).toBe(false);
    expect(bot.stderr()).not.toContain("without METRICS_PORT");
  });

  it("warns at start in Socket Mode without METRICS_PORT that nothing can probe it", async () => {
    const socket = new FakeSocketSlack();
    await socket.start();
    servers.push({ close: (cb?: () => void) => socket.stop().then(cb) });
    const bot = startBot(
      ["--db", tempPath("socket-bare.db")],
      botEnv({ SLACK_BOT_TOKEN: "xoxb-test", SLACK_APP_TOKEN: "xapp-test", SLACK_API_URL: socket.apiUrl }),
    );
    const warning = await bot.logLine(/Socket Mode without METRICS_PORT/);
    expect(warning).toMatchObject({ level: 40 });
    await bot.logLine(/connected to Slack \(Socket Mode\)/);
    bot.child.kill("SIGTERM");
    expect(await bot.exited).toBe(0);
  });
});
