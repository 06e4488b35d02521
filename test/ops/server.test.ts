import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import { SlackLikeServer } from "../../src/local/slack-server.js";
import { recordSlackError } from "../../src/ops/metrics.js";
import { StartupError } from "../../src/ops/startup.js";
import type { EcsPort, MetricsPort, PagerPort } from "../../src/ports.js";
import { type RunningBot, startSlack } from "../../src/server.js";
import { get, postSigned, ROOT, SIGNING_SECRET, slashBody } from "../helpers/bot-process.js";

const EXAMPLE = join(ROOT, "examples/deploybot.yml");
const tmp = mkdtempSync(join(tmpdir(), "deploybot-server-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;

/** A port whose every method throws: these tests never reach AWS or PagerDuty. */
function unreachable<T extends object>(what: string): T {
  return new Proxy({} as T, {
    get: () => async () => {
      throw new Error(`${what} is not reachable in this test`);
    },
  });
}
const adapters = {
  ecs: unreachable<EcsPort>("ECS"),
  metrics: unreachable<MetricsPort>("CloudWatch"),
  pager: unreachable<PagerPort>("PagerDuty"),
};

let slack: SlackLikeServer;
let bot: RunningBot | undefined;
let db: string;

beforeEach(async () => {
  slack = new SlackLikeServer(loadConfig(EXAMPLE), systemClock);
  await slack.start();
  db = join(tmp, `${++seq}.db`);
});
afterEach(async () => {
  await bot?.stop("test");
  bot = undefined;
  await slack.stop();
});

async function start(extra: Partial<Parameters<typeof startSlack>[0]> = {}): Promise<RunningBot> {
  bot = await startSlack({
    configFile: EXAMPLE,
    dbFile: db,
    logger: pino({ level: "silent" }),
    settings: {
      mode: "http",
      botToken: "xoxb-test",
      signingSecret: SIGNING_SECRET,
      port: 0,
      host: "127.0.0.1",
      slackApiUrl: slack.apiUrl,
    },
    env: {},
    adapters,
    ...extra,
  });
  return bot;
}

/** Waits until the Slack-like server holds `n` records; bounded, and it says what it saw. */
async function records(n: number) {
  for (let i = 0; i < 400 && slack.records.length < n; i++) await new Promise((r) => setTimeout(r, 10));
  expect(slack.records.map((r) => r.kind)).toHaveLength(n);
  return slack.records;
}

describe("Slack over HTTP, started as in production (startSlack)", () => {
  it("calls auth.test once at start and never again for 5 signed slash commands", async () => {
    const running = await start();
    expect(slack.calls.filter((c) => c.method === "auth.test")).toHaveLength(1);

    for (let i = 0; i < 5; i++) {
      const body = slashBody({
        command: "/deploy-status",
        text: "freezes",
        response_url: slack.responseUrl("CDEPLOYS", "U0ALICE01"),
        trigger_id: `${i}.auth-test`,
      });
      expect(await postSigned(running.port as number, body)).toBe(200);
    }
    const answers = await records(5);
    expect(answers.every((r) => r.kind === "ephemeral" && r.text.includes("Freezes and deploy windows"))).toBe(true);
    expect(slack.calls.filter((c) => c.method === "auth.test")).toHaveLength(1);
  });

  it("answers /deploy status as the status command, with usage that names /deploy status", async () => {
    const running = await start();
    const body = slashBody({
      command: "/deploy",
      text: "status help",
      response_url: slack.responseUrl("CDEPLOYS", "U0ALICE01"),
      trigger_id: "1.subcommand",
    });
    expect(await postSigned(running.port as number, body)).toBe(200);
    const [answer] = await records(1);
    expect(answer?.text).toContain("/deploy status history SERVICE ENV");
    expect(answer?.text.replaceAll("/deploy status", "")).not.toContain("/status");
  });

  it("answers GET and HEAD /healthz, /readyz with each check, and /leaderz", async () => {
    const running = await start();
    const port = running.port as number;
    expect(await get(port, "/healthz")).toEqual({ status: 200, body: '{"ok":true}' });
    expect(await get(port, "/healthz", "HEAD")).toEqual({ status: 200, body: "" });
    const ready = (await get(port, "/readyz")) as { status: number; body: string };
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({
      ready: true,
      checks: {
        database: { ok: true, detail: "writable" },
        slack: { ok: true, detail: "auth.test ok: bot U0DEPLOYBOT" },
        monitor: { ok: true, detail: "first cycle not due yet" },
        shutdown: { ok: true, detail: "running" },
        leadership: { ok: true, detail: expect.stringMatching(/^leader since \S+ \(epoch 1\)$/) },
      },
    });
    expect(await get(port, "/readyz", "HEAD")).toEqual({ status: 200, body: "" });
    // Alone on its database, it leads.
    expect(await get(port, "/leaderz")).toEqual({ status: 200, body: '{"leader":true}' });
  });

  it("turns /readyz to 503 once Slack refuses the token, and says so", async () => {
    const running = await start();
    recordSlackError("chat.postMessage", "token_revoked", false);
    const ready = (await get(running.port as number, "/readyz")) as { status: number; body: string };
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body).checks.slack).toEqual({
      ok: false,
      detail: "Slack refused the token (token_revoked) in chat.postMessage",
    });
  });

  it("serves Prometheus metrics: deploybot's own and Node's", async () => {
    const running = await start();
    const metrics = (await get(running.port as number, "/metrics")) as { status: number; body: string };
    expect(metrics.status).toBe(200);
    for (const name of [
      "deploybot_deploys",
      "deploybot_rollbacks",
      "deploybot_incidents",
      "deploybot_pages_total",
      "deploybot_leader",
      "deploybot_monitor_cycle_duration_seconds",
      "deploybot_monitor_cycle_lag_seconds",
      "deploybot_cloudwatch_get_metric_data_calls_total",
      "deploybot_cloudwatch_metric_data_queries_total",
      "deploybot_slack_api_errors_total",
      "deploybot_slack_api_rate_limited_total",
      "deploybot_aws_errors_total",
      "deploybot_nodejs_eventloop_lag_seconds",
      "deploybot_process_resident_memory_bytes",
    ]) {
      expect(metrics.body).toContain(`# TYPE ${name} `);
    }
  });

  it("serves /metrics only on METRICS_PORT when one is set, not on the port Slack reaches", async () => {
    const running = await start({
      settings: {
        mode: "http",
        botToken: "xoxb-test",
        signingSecret: SIGNING_SECRET,
        port: 0,
        host: "127.0.0.1",
        metricsPort: 0,
        slackApiUrl: slack.apiUrl,
      },
    });
    expect(((await get(running.port as number, "/metrics")) as { status: number }).status).toBe(404);
    expect(((await get(running.metricsPort as number, "/metrics")) as { status: number }).status).toBe(200);
    expect(((await get(running.metricsPort as number, "/readyz")) as { status: number }).status).toBe(200);
  });

  it("closes the database on stop, checkpointing the WAL, and says it drained", async () => {
    const running = await start();
    expect(existsSync(`${db}-wal`)).toBe(true);
    const report = await running.stop("SIGTERM");
    bot = undefined;
    expect(report).toMatchObject({ reason: "SIGTERM", drained: true });
    expect(existsSync(`${db}-wal`)).toBe(false);
  });

  it("gives up within the start timeout when Slack accepts the connection and never answers", async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/api/`;
    const started = Date.now();
    const failure = await start({
      startTimeoutMs: 300,
      settings: { mode: "http", botToken: "xoxb-test", signingSecret: SIGNING_SECRET, port: 0, slackApiUrl: url },
    }).catch((e: unknown) => e);
    silent.closeAllConnections();
    silent.close();
    expect(failure).toBeInstanceOf(StartupError);
    expect((failure as Error).message).toMatch(
      /^Slack did not answer auth\.test at http:\/\/127\.0\.0\.1:\d+\/api\/ in time \(waited 0\.\d s\); check the network/,
    );
    // Bounded by the timeout, not by the HTTP client's own (much longer) one.
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
