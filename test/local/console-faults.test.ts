import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { WebClient } from "@slack/web-api";
import { afterEach, describe, expect, it } from "vitest";
import { SimEcs } from "../../src/adapters/sim/ecs.js";
import { SimPagerDuty } from "../../src/adapters/sim/pagerduty.js";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import type { ConsoleEvent } from "../../src/local/events.js";
import type { SqliteDriver } from "../../src/store/sqlite.js";
import {
  APPROVED_PRODUCTION_DEPLOY,
  EXAMPLE_CONFIG,
  type MonitorConsole,
  openMonitorConsole,
  TUESDAY,
  tempDir,
} from "../helpers/monitor-console.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const V142 = "arn:aws:ecs:af-south-1:123456789012:task-definition/comply360-prod-web:2";
const TUESDAY_UTC = new Date(TUESDAY).toISOString();

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function open(opts: { at?: string; dbFile?: string } = { at: TUESDAY }): Promise<MonitorConsole> {
  const t = await openMonitorConsole(opts);
  cleanups.push(() => t.stop());
  return t;
}

function dbFile(): string {
  const tmp = tempDir("deploybot-faults-");
  cleanups.push(tmp.remove);
  return join(tmp.dir, "deploybot.db");
}

const aws = (events: ConsoleEvent[], op: string) => events.filter((e) => e.kind === "aws" && e.op === op);

describe("the console's fault directives", () => {
  it.each<[string, string]>([
    [":throttle ecs UpdateServise 3", ":throttle: ecs has no operation UpdateServise; use one of DescribeServices"],
    [":throttle pagerduty trigger 1", ":throttle needs API OP COUNT"],
    [":throttle ecs UpdateService many", ":throttle needs a COUNT of calls such as 6"],
    [":throttle slack chat 2", ":throttle: chat is not a slack operation such as chat.update"],
    [":down aws 5m", ":down needs SYSTEM DURATION, e.g. :down pagerduty 10m; SYSTEM is pagerduty, slack or cloudwatch"],
    [":down slack soon", ":down needs a duration such as 90s, 5m or 2h"],
    [":crash-after ecs", ":crash-after needs API:OP"],
    [":crash-after kubernetes:Apply", ":crash-after needs API:OP, e.g. :crash-after ecs:UpdateService"],
    [":lag later", ":lag needs a duration such as 0, 90s or 5m"],
  ])("answers %s with one error saying how to write it", async (line, fragment) => {
    const t = await open();
    await t.run(line);
    expect(t.errors()).toEqual([expect.stringContaining(fragment)]);
    expect(t.con.world.faults()).toEqual({ throttle: {}, down: {}, crashAfter: [], lagMs: 0 });
  });

  it("names the new directives when a directive is unknown", async () => {
    const t = await open();
    await t.run(":teleport mars");
    expect(t.errors()[0]).toContain(":lag, :throttle, :down, :crash-after or :quit");
  });

  it("sets every fault in the world, case-insensitively for known operations", async () => {
    const t = await open();
    await t.run(
      ":throttle ecs updateservice 6",
      ":throttle elbv2 ModifyRule 2",
      ":throttle slack chat.update 2",
      ":down pagerduty 10m",
      ":crash-after slack:chat.postMessage",
      ":lag 2m",
    );
    expect(t.errors()).toEqual([]);
    expect(t.con.world.faults()).toEqual({
      throttle: { "ecs:UpdateService": 6, "elbv2:ModifyRule": 2, "slack:chat.update": 2 },
      down: { pagerduty: new Date(Date.parse(TUESDAY) + 10 * 60_000).toISOString() },
      crashAfter: ["slack:chat.postMessage"],
      lagMs: 120_000,
    });
  });

  it("prints throttled calls with their error and uses up exactly COUNT of them", async () => {
    const t = await open();
    await t.run(":throttle ecs DescribeServices 2", "/status");
    const calls = aws(t.events, "DescribeServices");
    expect(calls.map((e) => e.error ?? "ok")).toEqual(["ThrottlingException", "ThrottlingException", "ok", "ok"]);
    expect(calls[0]).toEqual({
      at: TUESDAY_UTC,
      kind: "aws",
      api: "ecs",
      op: "DescribeServices",
      input: { cluster: "comply360-staging", services: ["web"] },
      error: "ThrottlingException",
    });
    expect(t.con.world.faults().throttle).toEqual({});

    const before = t.mark();
    await t.run("/status");
    expect(aws(t.since(before), "DescribeServices").every((e) => e.error === undefined)).toBe(true);
  });

  it("fails CloudWatch for the :down window of simulated time, then answers again", async () => {
    const t = await open();
    await t.run(...APPROVED_PRODUCTION_DEPLOY, ":advance 6m", ":down cloudwatch 3m", ":advance 5m");
    const reads = aws(t.events, "GetMetricData").map((e) => [e.at, e.error ?? "ok"]);
    const at = (hhmm: string) => new Date(`2026-11-24T${hhmm}:00+02:00`).toISOString();
    // Down from 10:21 (the directive) until 10:24: the cycles at 10:22 and 10:23 get 500s, 10:24 on answer again.
    expect(reads.filter(([time]) => (time as string) >= at("10:21"))).toEqual([
      [at("10:21"), "ok"],
      [at("10:22"), "InternalServiceError"],
      [at("10:23"), "InternalServiceError"],
      [at("10:24"), "ok"],
      [at("10:25"), "ok"],
      [at("10:26"), "ok"],
    ]);
  });

  it("prints no message line for a post Slack refused while down", async () => {
    const t = await open();
    await t.run(":down slack 10m", ":as alice", "/deploy web v1.4.2 to production");
    expect(t.events.filter((e) => e.kind === "message" || e.kind === "update")).toEqual([]);
    expect(t.con.world.slackMessages().filter((m) => !m.ephemeralFor)).toEqual([]);
  });

  it("prints a page PagerDuty deduplicated with deduplicated: true", async () => {
    const t = await open();
    const pager = new SimPagerDuty(t.con.world);
    const page = {
      action: "trigger",
      dedupKey: "k",
      severity: "critical",
      summary: "web is down",
      source: "deploybot",
    } as const;
    await pager.sendEvent(page);
    await pager.sendEvent(page);
    expect(t.pages().map((e) => e.deduplicated ?? false)).toEqual([false, true]);
  });

  it("puts a :metric on the canary version, so it reads diluted until the canary takes all the traffic", async () => {
    const t = await open();
    await t.run(...APPROVED_PRODUCTION_DEPLOY, ":advance 2m", ":metric web production error_rate 20");
    const now = () => t.con.clock.now();
    expect(t.con.world.metricAt("web", "production", "error_rate", now())).toBeCloseTo(2.09, 9);
    expect(t.con.world.trafficAt("comply360-prod", "web").map((s) => [s.version, s.share])).toEqual([
      ["v1.4.0", 0.9],
      ["v1.4.2", 0.1],
    ]);
    await t.run(":advance 4m");
    expect(t.con.world.metricAt("web", "production", "error_rate", now())).toBe(20);
  });
});

describe("a console started again on the same db", () => {
  it("resumes the same world: the old card can still be approved and updated, and ECS, metrics and on-call are as left", async () => {
    const db = dbFile();
    const first = await open({ at: TUESDAY, dbFile: db });
    await first.run(
      ":oncall carol",
      ":metric web production error_rate 0.3",
      ":as alice",
      "/deploy web v1.4.2 to production",
    );
    const card = first.events.find((e) => e.kind === "message" && e.text?.includes("Deploy #1"));
    expect(card?.buttons).toContain("Approve");
    await first.stop();

    const second = await open({ dbFile: db });
    await second.run(":as bob", ":click Approve");
    expect(second.errors()).toEqual([]);
    expect(second.events.filter((e) => e.kind === "update" && e.ts === card?.ts)).not.toEqual([]);
    expect(aws(second.events, "UpdateService")).toHaveLength(1);
    expect(second.con.world.read().onCall).toBe("carol");
    // The 0.3% was set on v1.4.0 before the deploy: it stays with v1.4.0, which still takes all the traffic.
    expect(second.con.world.metricAt("web", "production", "error_rate", second.con.clock.now())).toBe(0.3);
    const history = second.con.world.slackMessages().filter((m) => m.channel === "#deploys" && !m.ephemeralFor);
    expect(history.map((m) => m.ts)).toContain(card?.ts);
  });
});

describe(":crash-after in process", () => {
  it("kills the console right after UpdateService, and a second console on the db finds ECS already on v1.4.2", async () => {
    const db = dbFile();
    const first = await open({ at: TUESDAY, dbFile: db });
    await first.run(":crash-after ecs:UpdateService", ...APPROVED_PRODUCTION_DEPLOY);

    expect(first.con.dead).toBe(true);
    expect(first.events.at(-1)).toMatchObject({ kind: "aws", op: "UpdateService", input: { taskDefinition: V142 } });
    expect((first.con.store.driver as SqliteDriver).db.open).toBe(false);
    const after = first.mark();
    await first.run(":advance 5m", "/status");
    expect(first.since(after)).toEqual([]);

    const second = await open({ dbFile: db });
    expect(second.con.clock.now().toISOString()).toBe(TUESDAY_UTC);
    const service = second.con.world.read().services["comply360-prod/web"];
    expect(service?.taskDefinitionArn).toBe(V142);
    expect(service?.deployments.map((d) => [d.status, d.targetTaskDefinitionArn])).toEqual([["IN_PROGRESS", V142]]);
    expect(second.con.world.faults().crashAfter).toEqual([]);
  });

  it("refuses every simulated call from the dead console, so code still in flight cannot touch the world", async () => {
    const t = await open({ at: TUESDAY, dbFile: dbFile() });
    t.con.kill();
    const web = { region: "af-south-1", cluster: "comply360-prod", service: "web", container: "web" };
    await expect(new SimEcs(t.con.world).describeService(web)).rejects.toThrow("killed");
    await expect(
      new SimPagerDuty(t.con.world).sendEvent({
        action: "trigger",
        dedupKey: "k",
        severity: "critical",
        summary: "late",
        source: "deploybot",
      }),
    ).rejects.toThrow("killed");
    const slack = new WebClient("xoxb-test", { slackApiUrl: t.con.slack.apiUrl, retryConfig: { retries: 0 } });
    await expect(slack.chat.postMessage({ channel: "#deploys", text: "late" })).rejects.toThrow();
    await t.run("/status");
    expect(t.events).toEqual([]);
    expect(t.con.dead).toBe(true);
  });

  it("kills the console once Slack has answered chat.postMessage, with the card kept in the world", async () => {
    const db = dbFile();
    const first = await open({ at: TUESDAY, dbFile: db });
    await first.run(":crash-after slack:chat.postMessage", ":as alice", "/deploy web v1.4.2 to production");
    expect(first.con.dead).toBe(true);
    const cards = first.events.filter((e) => e.kind === "message");
    expect(cards).toHaveLength(1);
    expect(cards[0]?.text).toContain("Deploy #1");

    const world = new SimWorld(first.con.config, new ManualClock(TUESDAY), { file: `${db}.sim` });
    cleanups.push(() => world.kill());
    expect(world.slackMessages().map((m) => m.ts)).toContain(cards[0]?.ts);
  });
});

describe(":crash-after in the CLI", () => {
  it("exits by SIGKILL right after UpdateService returns, with the deployment already in the world file", async () => {
    const db = dbFile();
    const script = join(db, "..", "crash.txt");
    writeFileSync(script, [":crash-after ecs:UpdateService", ...APPROVED_PRODUCTION_DEPLOY, ":advance 5m"].join("\n"));
    const run = await new Promise<{ signal: string | null; code: number | null; stdout: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          "bin/deploybot.js",
          "console",
          "--config",
          EXAMPLE_CONFIG,
          "--db",
          db,
          "--script",
          script,
          "--json",
          "--at",
          TUESDAY,
        ],
        { cwd: ROOT, timeout: 30_000, env: { ...process.env, SLACK_BOT_TOKEN: "", LOG_LEVEL: "silent" } },
        (err, stdout) =>
          resolve({
            signal: err?.signal ?? null,
            code: typeof err?.code === "number" ? err.code : err ? null : 0,
            stdout,
          }),
      );
    });
    expect(run.signal).toBe("SIGKILL");
    const lines = run.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as ConsoleEvent);
    expect(lines.at(-1)).toMatchObject({ kind: "aws", op: "UpdateService", input: { taskDefinition: V142 } });

    expect(existsSync(`${db}.sim`)).toBe(true);
    const world = new SimWorld(loadConfig(EXAMPLE_CONFIG), new ManualClock(TUESDAY), { file: `${db}.sim` });
    cleanups.push(() => world.kill());
    expect(world.read().services["comply360-prod/web"]?.taskDefinitionArn).toBe(V142);
    expect(world.read().services["comply360-prod/web"]?.deployments).toHaveLength(1);
  });
});
