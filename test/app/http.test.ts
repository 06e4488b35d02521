import { createHmac } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import type { App } from "@slack/bolt";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SimCloudWatch } from "../../src/adapters/sim/cloudwatch.js";
import { SimEcs } from "../../src/adapters/sim/ecs.js";
import { SimPagerDuty } from "../../src/adapters/sim/pagerduty.js";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { createApp } from "../../src/app.js";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import { SlackLikeServer, type SlackRecord } from "../../src/local/slack-server.js";
import { Background } from "../../src/services/background.js";
import { buildServices, type Services } from "../../src/services/index.js";
import { Store } from "../../src/store/index.js";

const EXAMPLE = fileURLToPath(new URL("../../examples/deploybot.yml", import.meta.url));
const SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const ALICE = "U0ALICE01";
const DEPLOYS = "CDEPLOYS";

interface Harness {
  app: App;
  slack: SlackLikeServer;
  store: Store;
  services: Services;
  /** http://127.0.0.1:PORT of the Bolt app. */
  base: string;
}

let h: Harness;

beforeEach(async () => {
  const logger = pino({ level: "silent" });
  const config = loadConfig(EXAMPLE);
  const store = new Store(":memory:");
  const clock = new ManualClock("2026-11-24T10:15:00+02:00");
  const world = new SimWorld(config, clock, store);
  const slack = new SlackLikeServer(config, clock);
  await slack.start();
  const services = buildServices(
    {
      config,
      store,
      clock,
      ecs: new SimEcs(world),
      metrics: new SimCloudWatch(world),
      pager: new SimPagerDuty(world),
      logger,
      background: new Background(logger),
    },
    { oncallCacheMs: 0 },
  );
  const app = createApp(services, {
    botToken: "xoxb-test",
    transport: { kind: "http", signingSecret: SECRET, port: 0 },
    slackApiUrl: slack.apiUrl,
  });
  // Bolt's HTTPReceiver passes listen options through; bind to loopback only.
  const server = (await app.start({ port: 0, host: "127.0.0.1" })) as Server;
  const { port } = server.address() as AddressInfo;
  h = { app, slack, store, services, base: `http://127.0.0.1:${port}` };
});

afterEach(async () => {
  await h.app.stop();
  await h.services.background.idle();
  await h.slack.stop();
  h.store.close();
});

/** A slash command body as Slack sends it: form-encoded, with a response_url on the Slack-like server. */
function slashBody(command: string, text: string): string {
  return new URLSearchParams({
    token: "verification-token-unused",
    team_id: "T0LOCAL",
    team_domain: "local",
    channel_id: DEPLOYS,
    channel_name: "deploys",
    user_id: ALICE,
    user_name: "alice",
    command,
    text,
    response_url: h.slack.responseUrl(DEPLOYS, ALICE),
    trigger_id: "13345224609.738474920.8088930838d88f008e0",
    api_app_id: "A0DEPLOYBOT",
  }).toString();
}

const sign = (body: string, ts: number, secret = SECRET) =>
  `v0=${createHmac("sha256", secret).update(`v0:${ts}:${body}`).digest("hex")}`;

/** POSTs to /slack/events with Slack's signature headers; `ts` and `signature` may be overridden to forge. */
async function post(body: string, opts: { ts?: number; signature?: string } = {}): Promise<Response> {
  const ts = opts.ts ?? Math.floor(Date.now() / 1000);
  return fetch(`${h.base}/slack/events`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-slack-request-timestamp": String(ts),
      "x-slack-signature": opts.signature ?? sign(body, ts),
    },
    body,
  });
}

/** Waits until the Slack-like server has `count` records; bounded, and it says what it saw when it gives up. */
async function records(count: number, timeoutMs = 5_000): Promise<SlackRecord[]> {
  const until = Date.now() + timeoutMs;
  while (h.slack.records.length < count) {
    if (Date.now() > until) {
      throw new Error(`expected ${count} Slack record(s), got ${JSON.stringify(h.slack.records.map((r) => r.text))}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return h.slack.records;
}

describe("the Bolt app over HTTP, as Slack calls it", () => {
  it("acks a signed /status with 200 and answers alice on the response_url with every service in production", async () => {
    const res = await post(slashBody("/deploy-status", ""));
    expect(res.status).toBe(200);

    const [reply, ...more] = await records(1);
    expect(more).toEqual([]);
    expect(reply).toMatchObject({ kind: "ephemeral", channel: "#deploys", user: "alice" });
    for (const word of ["web", "api", "production", "staging", "v1.4.0"]) expect(reply?.text).toContain(word);
    expect(reply?.blocks.length).toBeGreaterThan(0);
  });

  it("answers /status wbe with the parse error and says Did you mean `web`", async () => {
    const res = await post(slashBody("/deploy-status", "wbe"));
    expect(res.status).toBe(200);

    const [reply] = await records(1);
    expect(reply).toMatchObject({ kind: "ephemeral", user: "alice" });
    expect(reply?.text).toContain("Unknown service `wbe`.");
    expect(reply?.text).toContain("Did you mean `web`?");
    expect(reply?.text).not.toContain("    at ");
  });

  it("rejects a request signed with another secret with 401, and nothing reaches Slack", async () => {
    const forged = slashBody("/deploy-status", "");
    const ts = Math.floor(Date.now() / 1000);
    const res = await post(forged, { ts, signature: sign(forged, ts, "not-the-secret") });
    expect(res.status).toBe(401);

    // A good request afterwards is answered; only its reply is recorded.
    expect((await post(slashBody("/deploy-status", "web"))).status).toBe(200);
    const all = await records(1);
    await h.services.background.idle();
    expect(all).toHaveLength(1);
    expect(all[0]?.text).not.toContain("api");
  });

  it("rejects a body changed after signing with 401", async () => {
    const ts = Math.floor(Date.now() / 1000);
    const signed = slashBody("/deploy-status", "");
    const res = await post(signed.replace("text=", "text=web"), { ts, signature: sign(signed, ts) });
    expect(res.status).toBe(401);
    expect(h.slack.records).toEqual([]);
  });

  it("rejects a correctly signed request whose timestamp is 10 minutes old with 401", async () => {
    const res = await post(slashBody("/deploy-status", ""), { ts: Math.floor(Date.now() / 1000) - 600 });
    expect(res.status).toBe(401);

    expect((await post(slashBody("/deploy-status", "api"))).status).toBe(200);
    const all = await records(1);
    expect(all).toHaveLength(1);
    expect(all[0]?.text).toContain("api");
  });

  it("rejects a correctly signed request stamped 10 minutes in the future with 401 (Bolt alone would accept it)", async () => {
    const res = await post(slashBody("/deploy-status", ""), { ts: Math.floor(Date.now() / 1000) + 600 });
    expect(res.status).toBe(401);

    expect((await post(slashBody("/deploy-status", "web"), { ts: Math.floor(Date.now() / 1000) + 60 })).status).toBe(
      200,
    );
    const all = await records(1);
    expect(all).toHaveLength(1);
  });

  it("rejects a request without signature headers with 401", async () => {
    const res = await fetch(`${h.base}/slack/events`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: slashBody("/deploy-status", ""),
    });
    expect(res.status).toBe(401);
    expect(h.slack.records).toEqual([]);
  });

  it("answers GET /healthz with 200 and ok", async () => {
    const res = await fetch(`${h.base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });
});
