import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import { SlackLikeServer } from "../../src/local/slack-server.js";
import {
  type BotProcess,
  botEnv,
  get,
  postSigned,
  ROOT,
  SIGNING_SECRET,
  slashBody,
  startBot,
} from "../helpers/bot-process.js";

/**
 * Two real `bin/deploybot.js` processes in Slack mode (HTTP) on one SQLite file: one leads, the other is a standby
 * that serves Slack requests and takes over when the leader dies or stops.
 */
const tmp = mkdtempSync(join(tmpdir(), "deploybot-standby-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const TTL_MS = 2_000;

let slack: SlackLikeServer;
beforeAll(async () => {
  slack = new SlackLikeServer(loadConfig(join(ROOT, "examples/deploybot.yml")), systemClock);
  await slack.start();
});
afterAll(async () => {
  await slack.stop();
});
const bots: BotProcess[] = [];
afterEach(async () => {
  for (const b of bots.splice(0)) if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill("SIGKILL");
});

async function start(db: string): Promise<{ bot: BotProcess; port: number; leader: boolean }> {
  const bot = startBot(
    ["--db", db],
    botEnv({
      SLACK_BOT_TOKEN: "xoxb-test",
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: slack.apiUrl,
      PORT: "0",
      DEPLOYBOT_LEASE_TTL: `${TTL_MS}ms`,
    }),
    60_000,
  );
  bots.push(bot);
  const listening = await bot.logLine(/listening for Slack/);
  return { bot, port: Number(listening.port), leader: listening.leader === true };
}

/** Polls /leaderz until it answers 200; resolves how long that took. */
async function untilLeads(port: number, limitMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    const r = await get(port, "/leaderz");
    if (typeof r !== "string" && r.status === 200) return Date.now() - t0;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no leadership within ${limitMs} ms`);
}

describe("two processes on one SQLite file", () => {
  it("elect one leader; the standby is ready, serves Slack, and takes over within two lease periods of a kill -9", async () => {
    const db = join(tmp, "two.db");
    const a = await start(db);
    const b = await start(db);
    expect([a.leader, b.leader]).toEqual([true, false]);
    expect(await get(a.port, "/leaderz")).toEqual({ status: 200, body: '{"leader":true}' });
    expect(await get(b.port, "/leaderz")).toEqual({ status: 503, body: '{"leader":false}' });
    const ready = (await get(b.port, "/readyz")) as { status: number; body: string };
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body).checks).toMatchObject({
      monitor: { ok: true, detail: "standby: the leader runs the monitor" },
      leadership: { ok: true, detail: expect.stringMatching(/^standby: \S+ leads \(lease until /) },
    });

    // The standby answers Slack.
    const body = slashBody({
      command: "/deploy-status",
      text: "freezes",
      response_url: slack.responseUrl("CDEPLOYS", "U0ALICE01"),
      trigger_id: "1.standby",
    });
    const before = slack.records.length;
    expect(await postSigned(b.port, body)).toBe(200);
    for (let i = 0; i < 200 && slack.records.length === before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(slack.records.slice(before).map((r) => r.text)).toEqual([
      expect.stringContaining("Freezes and deploy windows"),
    ]);

    a.bot.child.kill("SIGKILL");
    const took = await untilLeads(b.port, 2 * TTL_MS);
    console.log(`standby took over ${took} ms after the leader's kill -9 (lease period ${TTL_MS} ms)`);
    expect(await b.bot.logLine(/this process leads now/)).toMatchObject({ epoch: 2 });
  });

  it("hands over at once when the leader stops cleanly: it gives the lease up", async () => {
    const db = join(tmp, "handover.db");
    const a = await start(db);
    const b = await start(db);
    expect([a.leader, b.leader]).toEqual([true, false]);
    const stopped = Date.now();
    a.bot.child.kill("SIGTERM");
    expect(await a.bot.exited).toBe(0);
    // Within one renewal interval (a third of the period), not at the lease's expiry.
    const took = await untilLeads(b.port, TTL_MS);
    console.log(`standby took over ${Date.now() - stopped} ms after SIGTERM (${took} ms after the leader exited)`);
  });
});
