/**
 * The benchmark's Slack: a child process that sends waves of concurrent signed slash-command requests and
 * reports, per request, the time from sending it to the end of the HTTP response (the ack). It runs in its
 * own process so that sending and timing requests adds nothing to the event loop being measured.
 */
import { createHmac } from "node:crypto";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

export interface WaveRequest {
  kind: "wave";
  url: string;
  signingSecret: string;
  /** Form-encoded bodies, one per concurrent request. */
  bodies: string[];
}

export interface WaveResult {
  kind: "wave";
  latenciesMs: number[];
  statuses: number[];
}

export interface SinkRequest {
  kind: "sink";
}

export interface SinkResult {
  kind: "sink";
  /** The response_url base the bot replies to: this process plays Slack's side of it. */
  url: string;
  /** Replies received so far. */
  received: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

// Slack's end of response_url lives here, not in the measured process: in production Slack answers it.
let received = 0;
const sink = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    received++;
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"ok":true}');
  });
});
const sinkReady = new Promise<string>((resolve) =>
  sink.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(sink.address() as AddressInfo).port}/response/`)),
);

function send(url: string, secret: string, body: string): Promise<{ ms: number; status: number }> {
  return new Promise((resolve, reject) => {
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = `v0=${createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
    const started = performance.now();
    const req = request(
      url,
      {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "content-length": Buffer.byteLength(body),
          "x-slack-request-timestamp": String(timestamp),
          "x-slack-signature": signature,
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ ms: performance.now() - started, status: res.statusCode ?? 0 }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

process.on("message", async (msg: WaveRequest | SinkRequest) => {
  if (msg.kind === "sink") {
    process.send?.({ kind: "sink", url: await sinkReady, received } satisfies SinkResult);
    return;
  }
  if (msg.kind !== "wave") return;
  const results = await Promise.all(msg.bodies.map((b) => send(msg.url, msg.signingSecret, b)));
  const out: WaveResult = {
    kind: "wave",
    latenciesMs: results.map((r) => r.ms),
    statuses: results.map((r) => r.status),
  };
  process.send?.(out);
});
