import { createHmac } from "node:crypto";
import { request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { App } from "@slack/bolt";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SimCloudWatch } from "../../src/adapters/sim/cloudwatch.js";
import { SimEcs } from "../../src/adapters/sim/ecs.js";
import { SimPagerDuty } from "../../src/adapters/sim/pagerduty.js";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { SlackChat } from "../../src/adapters/slack.js";
import { createApp } from "../../src/app.js";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import { foreground, LINGER_MS } from "../../src/foreground.js";
import type { SlackRecord } from "../../src/local/slack-api.js";
import { SlackLikeServer } from "../../src/local/slack-server.js";
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
  const store = Store.sqlite(":memory:");
  const clock = new ManualClock("2026-11-24T10:15:00+02:00");
  const world = new SimWorld(config, clock);
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
      chat: new SlackChat(),
      logger,
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
  await h.services.idle();
  await h.slack.stop();
  await h.store.close();
});

/** A slash command body as Slack sends it: form-encoded, with a response_url on the Slack-like server. */
function slashBody(command: string, text: string, trigger = `${Date.now()}.${Math.random()}`): string {
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
    trigger_id: trigger,
    api_app_id: "A0DEPLOYBOT",
  }).toString();
}

const sign = (body: string, ts: number, secret = SECRET) =>
  `v0=${createHmac("sha256", secret).update(`v0:${ts}:${body}`).digest("hex")}`;

/** POSTs to /slack/events with Slack's signature headers; `ts` and `signature` may be overridden to forge. */
async function post(
  body: string,
  opts: { ts?: number; signature?: string; contentType?: string } = {},
): Promise<Response> {
  const ts = opts.ts ?? Math.floor(Date.now() / 1000);
  return fetch(`${h.base}/slack/events`, {
    method: "POST",
    headers: {
      "content-type": opts.contentType ?? "application/x-www-form-urlencoded",
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
    await h.services.idle();
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

  it("answers HEAD /healthz with 200 and no body", async () => {
    const res = await fetch(`${h.base}/healthz`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });

  it("holds background work from a Slack request's arrival until it is answered", async () => {
    const body = slashBody("/deploy-status", "web production");
    const ts = Math.floor(Date.now() / 1000);
    const { port } = new URL(h.base);
    // Headers and half the body now, the rest later: the request is open (being read) in between.
    const req = request({
      host: "127.0.0.1",
      port: Number(port),
      path: "/slack/events",
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "content-length": Buffer.byteLength(body),
        "x-slack-request-timestamp": String(ts),
        "x-slack-signature": sign(body, ts),
      },
    });
    const answered = new Promise<number>((resolve, reject) => {
      req.on("response", (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
    });
    req.write(body.slice(0, 20));
    const until = Date.now() + 2000;
    while (!foreground.busy && Date.now() < until) await sleep(2);
    expect(foreground.busy).toBe(true);
    req.end(body.slice(20));
    expect(await answered).toBe(200);
    await sleep(LINGER_MS + 5);
    expect(foreground.busy).toBe(false);
    await records(1);
  });
});

/** A click on a button, as Slack posts it: form-encoded `payload` JSON. */
function clickBody(
  userId: string,
  actionId: string,
  value: string,
  trigger = `${Date.now()}.${Math.random()}`,
): string {
  return new URLSearchParams({
    payload: JSON.stringify({
      type: "block_actions",
      team: { id: "T0LOCAL", domain: "local" },
      user: { id: userId, username: "bob", team_id: "T0LOCAL" },
      api_app_id: "A0DEPLOYBOT",
      token: "unused",
      trigger_id: trigger,
      container: { type: "message", message_ts: "1.000001", channel_id: DEPLOYS },
      channel: { id: DEPLOYS, name: "deploys" },
      response_url: h.slack.responseUrl(DEPLOYS, userId),
      actions: [{ type: "button", action_id: actionId, block_id: "b", value, action_ts: "1" }],
    }),
  }).toString();
}

const BOB = "U0BOB0001";

async function settle(): Promise<void> {
  // Listeners run after the ack; the in-memory store shows their effect once the Slack traffic has stopped.
  let seen = -1;
  while (seen !== h.slack.records.length) {
    seen = h.slack.records.length;
    await new Promise((r) => setTimeout(r, 50));
    await h.services.idle();
  }
}

describe("replays and button values", () => {
  it("creates one deployment when the same signed /deploy is sent three times, and acks every send", async () => {
    const body = slashBody("/deploy", "web v1.4.2 to production", "1.same-trigger");
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(body)).status);
    await settle();
    expect(statuses).toEqual([200, 200, 200]);
    expect(await h.store.deployments.history("web", "production", 10)).toHaveLength(1);
  });

  it("acts once on a replayed click", async () => {
    expect((await post(slashBody("/deploy", "web v1.4.2 to production"))).status).toBe(200);
    await settle();
    const click = clickBody(BOB, "deploy_reject", "1", "2.same-click");
    for (let i = 0; i < 2; i++) expect((await post(click)).status).toBe(200);
    await settle();
    const refusals = h.slack.records.filter((r) => r.kind === "ephemeral" && r.user === "bob");
    expect(refusals).toEqual([]);
    expect((await h.store.deployments.get(1))?.status).toBe("rejected");
    expect((await h.store.audit.list({ deploymentId: 1 })).filter((a) => a.action.includes("reject"))).toHaveLength(1);
  });

  it.each(["1e0", " 1", "01", "1.0", "+1", "0x1", "", "1 ", "99999999999"])(
    "refuses the button value %j and approves nothing",
    async (value) => {
      expect((await post(slashBody("/deploy", "web v1.4.2 to production"))).status).toBe(200);
      await settle();
      expect((await post(clickBody(BOB, "deploy_approve", value))).status).toBe(200);
      await settle();
      expect((await h.store.deployments.get(1))?.status).toBe("awaiting_approval");
      const reply = h.slack.records.filter((r) => r.kind === "ephemeral" && r.user === "bob");
      expect(reply.map((r) => r.text)).toEqual(["That button does not name a deploy."]);
    },
  );

  it("approves with the value deploybot wrote", async () => {
    expect((await post(slashBody("/deploy", "web v1.4.2 to production"))).status).toBe(200);
    await settle();
    expect((await post(clickBody(BOB, "deploy_approve", "1"))).status).toBe(200);
    await settle();
    expect((await h.store.deployments.get(1))?.status).not.toBe("awaiting_approval");
  });
});

describe("the ack comes first", () => {
  /** A second app on the same services, with a replay guard that `firstSeen` stands for. */
  async function appWithGuard(firstSeen: () => Promise<boolean>): Promise<{ app: App; base: string }> {
    const app = createApp(h.services, {
      botToken: "xoxb-test",
      transport: { kind: "http", signingSecret: SECRET, port: 0 },
      slackApiUrl: h.slack.apiUrl,
      replayGuard: { firstSeen },
    });
    const server = (await app.start({ port: 0, host: "127.0.0.1" })) as Server;
    return { app, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }
  const postTo = (base: string, body: string) => {
    const ts = Math.floor(Date.now() / 1000);
    return fetch(`${base}/slack/events`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": String(ts),
        "x-slack-signature": sign(body, ts),
      },
      body,
    });
  };

  it("acks before the replay check answers: a guard that never answers still gets Slack its 200, and nothing acts", async () => {
    const { app, base } = await appWithGuard(() => new Promise<boolean>(() => {}));
    try {
      const res = await postTo(base, slashBody("/deploy", "web v1.4.2 to production"));
      expect(res.status).toBe(200);
      await sleep(100);
      expect(await h.store.deployments.history("web", "production", 10)).toHaveLength(0);
      expect(h.slack.records).toHaveLength(0);
    } finally {
      await app.stop();
    }
  });

  it("acks, then refuses with a reply when the replay check fails, changing nothing", async () => {
    const { app, base } = await appWithGuard(async () => {
      throw new Error("database is locked");
    });
    try {
      const res = await postTo(base, slashBody("/deploy", "web v1.4.2 to production"));
      expect(res.status).toBe(200);
      const [reply] = await records(1);
      expect(reply?.text).toMatch(/could not record this request, so it did nothing/);
      expect(await h.store.deployments.history("web", "production", 10)).toHaveLength(0);
    } finally {
      await app.stop();
    }
  });
});

describe("bodies Bolt would crash on", () => {
  it.each<[string, string, string]>([
    ["a JSON null", "null", "application/json"],
    ["a JSON array", "[]", "application/json"],
    ["a JSON number", "1", "application/json"],
    ["payload=null", "payload=null", "application/x-www-form-urlencoded"],
    ["payload=[]", "payload=%5B%5D", "application/x-www-form-urlencoded"],
    ["a payload that is not JSON", "payload=%7Bnope", "application/x-www-form-urlencoded"],
  ])("answers a signed body that is %s with 400 and keeps serving", async (_what, body, contentType) => {
    const res = await post(body, { contentType });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ ok: false, error: "malformed_body" });
    expect((await post(slashBody("/deploy-status", "freezes"))).status).toBe(200);
    expect((await records(1))[0]?.text).toContain("Freezes");
  });
});
