import { join } from "node:path";
import { LogLevel, WebClient } from "@slack/web-api";
import { afterEach, describe, expect, it } from "vitest";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { SlackChat } from "../../src/adapters/slack.js";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import { DeploybotError, ErrorCode } from "../../src/errors.js";
import { SlackLikeServer } from "../../src/local/slack-server.js";
import { EXAMPLE, START, tempDir } from "../helpers/sim-world.js";

const config = loadConfig(EXAMPLE);
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Running {
  world: SimWorld;
  server: SlackLikeServer;
  client: WebClient;
  chat: SlackChat;
  crashes: number;
}

/** A Slack-like server on a world (in `file`, else in memory), and the bot's kind of WebClient pointed at it. */
async function start(file?: string): Promise<Running> {
  const clock = new ManualClock(START);
  const running = { crashes: 0 } as Running;
  running.world = new SimWorld(config, clock, { ...(file ? { file } : {}), onCrash: () => running.crashes++ });
  running.server = new SlackLikeServer(config, clock, running.world);
  await running.server.start();
  cleanups.push(() => running.server.stop());
  running.client = new WebClient("xoxb-test", {
    slackApiUrl: running.server.apiUrl,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    logLevel: LogLevel.ERROR,
  });
  running.chat = new SlackChat();
  running.chat.bind(running.client);
  return running;
}

const card = (id: number) => ({ event_type: "deploybot_card", event_payload: { deployment: id } });

describe("the Slack-like server keeps its messages in the world file", () => {
  it("answers conversations.history with metadata after a restart, newest first and top-level only, and updates an old card", async () => {
    const tmp = tempDir("deploybot-slack-");
    cleanups.push(tmp.remove);
    const file = join(tmp.dir, "deploybot.db.sim");
    const first = await start(file);
    const one = await first.client.chat.postMessage({ channel: "#deploys", text: "Deploy #1", metadata: card(1) });
    await first.client.chat.postMessage({ channel: "#deploys", text: "thread reply", thread_ts: one.ts as string });
    const two = await first.client.chat.postMessage({ channel: "#deploys", text: "Deploy #2", metadata: card(2) });
    await first.client.chat.postEphemeral({ channel: "#deploys", user: "U0ALICE01", text: "only alice" });
    await first.client.chat.postMessage({ channel: "#incidents", text: "elsewhere" });
    await first.server.stop();
    first.world.kill();

    const second = await start(file);
    const history = await second.client.conversations.history({ channel: "CDEPLOYS", include_all_metadata: true });
    expect(history.messages?.map((m) => [m.text, m.metadata])).toEqual([
      ["Deploy #2", card(2)],
      ["Deploy #1", card(1)],
    ]);
    expect(history.messages?.[1]).toMatchObject({ ts: one.ts, reply_count: 1 });
    const bare = await second.client.conversations.history({ channel: "CDEPLOYS" });
    expect(bare.messages?.every((m) => m.metadata === undefined)).toBe(true);

    const limited = await second.client.conversations.history({ channel: "CDEPLOYS", limit: 1 });
    expect([limited.messages?.map((m) => m.ts), limited.has_more]).toEqual([[two.ts], true]);
    const older = await second.client.conversations.history({ channel: "CDEPLOYS", latest: two.ts as string });
    expect(older.messages?.map((m) => m.ts)).toEqual([one.ts]);

    const replies = await second.client.conversations.replies({
      channel: "CDEPLOYS",
      ts: one.ts as string,
      include_all_metadata: true,
    });
    expect(replies.messages?.map((m) => [m.text, m.metadata?.event_type])).toEqual([
      ["Deploy #1", "deploybot_card"],
      ["thread reply", undefined],
    ]);

    await second.chat.update("CDEPLOYS", one.ts as string, { text: "Deploy #1 (edited)" });
    expect(second.server.records.map((r) => [r.kind, r.text, r.ts])).toEqual([
      ["update", "Deploy #1 (edited)", one.ts],
    ]);
    // New messages never reuse an old ts.
    const three = await second.client.chat.postMessage({ channel: "#deploys", text: "Deploy #3" });
    expect([one.ts, two.ts]).not.toContain(three.ts);
  });

  it("lets two bots on one world file see and edit each other's messages, never giving two messages one ts", async () => {
    const tmp = tempDir("deploybot-slack-");
    cleanups.push(tmp.remove);
    const file = join(tmp.dir, "deploybot.db.sim");
    const a = await start(file);
    const b = await start(file);
    const posted = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).client.chat.postMessage({ channel: "#deploys", text: `Deploy #${i}`, metadata: card(i) }),
      ),
    );
    expect(new Set(posted.map((p) => p.ts)).size).toBe(10);

    // What a leader posted, the next one finds (the idempotent check of a Slack effect) and edits.
    const history = await b.client.conversations.history({ channel: "CDEPLOYS", include_all_metadata: true });
    expect(history.messages).toHaveLength(10);
    const fromA = posted[1] as { ts?: string };
    await b.chat.update("CDEPLOYS", fromA.ts as string, { text: "Deploy #1 (edited by b)" });
    const seen = await a.client.conversations.history({ channel: "CDEPLOYS", latest: posted[2]?.ts as string });
    expect(seen.messages?.find((m) => m.ts === fromA.ts)?.text).toBe("Deploy #1 (edited by b)");
  });

  it("answers thread_not_found for replies of a message it never posted", async () => {
    const s = await start();
    await expect(s.client.conversations.replies({ channel: "CDEPLOYS", ts: "1.000001" })).rejects.toMatchObject({
      data: { error: "thread_not_found" },
    });
  });
});

describe("Slack-like faults", () => {
  it("answers a throttled method with HTTP 429 and Retry-After: 30, records nothing, and takes the next call", async () => {
    const s = await start();
    const posted = await s.chat.post("#deploys", { text: "card" });
    s.world.throttle("slack", "chat.update", 1);

    const err = await s.chat.update(posted.channel, posted.ts, { text: "edited" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeploybotError);
    expect(err).toMatchObject({ code: ErrorCode.SlackFailed, transient: true, retryAfterMs: 30_000 });
    expect(s.server.records.map((r) => r.kind)).toEqual(["message"]);

    await s.chat.update(posted.channel, posted.ts, { text: "edited" });
    expect(s.server.records.map((r) => [r.kind, r.text])).toEqual([
      ["message", "card"],
      ["update", "edited"],
    ]);
  });

  it("answers every Web API call with HTTP 503 while Slack is down, keeping nothing it was sent", async () => {
    const s = await start();
    s.world.down("slack", 5 * 60_000);
    const err = await s.chat.post("#deploys", { text: "lost" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.SlackFailed, transient: true });
    expect((err as Error).message).toContain("HTTP 503");
    expect(s.server.records).toEqual([]);
    expect(s.world.slackMessages()).toEqual([]);
  });

  it("kills the bot once a :crash-after call's answer is written and its message kept", async () => {
    const s = await start();
    s.world.crashAfter("slack", "chat.postMessage");
    const posted = await s.chat.post("#deploys", { text: "the last words" });
    await new Promise((r) => setTimeout(r, 20));
    expect(s.crashes).toBe(1);
    expect(s.world.slackMessages().map((m) => [m.ts, m.text])).toEqual([[posted.ts, "the last words"]]);
    await s.chat.post("#deploys", { text: "no crash the second time" });
    await new Promise((r) => setTimeout(r, 20));
    expect(s.crashes).toBe(1);
  });

  it("drops every request once killed", async () => {
    const s = await start();
    s.server.kill();
    await expect(s.chat.post("#deploys", { text: "from a dead bot" })).rejects.toMatchObject({ transient: true });
    expect(s.server.records).toEqual([]);
  });
});
