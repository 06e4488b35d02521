import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { SimWorld } from "../adapters/sim/world.js";
import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import { answerWebApi, type SlackRecord, type SlackStorage, type StoredMessage } from "./slack-api.js";
import { asBlocks, asMetadata, parseBody } from "./slack-parse.js";

/** A button findButton found: the message that carries it, the button element, and its block's id. */
export interface FoundButton {
  message: StoredMessage;
  button: Record<string, unknown>;
  blockId: string;
}

/** What Slack asks a rate-limited caller to wait, in seconds. */
const RETRY_AFTER_S = 30;
const MAX_MESSAGES = 5000;

/**
 * A small Slack-like Web API on 127.0.0.1 for the console and the tests: it records chat.postMessage,
 * chat.update, chat.postEphemeral and views.publish, answers conversations.history/replies (with message
 * metadata) and users.* lookups from the config, and serves response_url. The bot's WebClient is pointed
 * at it with `slackApiUrl`. Given a SimWorld, its messages live in the world file (a restarted console can
 * still update an old card) and the world's faults apply: `:throttle slack METHOD N` answers HTTP 429 with
 * Retry-After, `:down slack` HTTP 503, `:crash-after slack:METHOD` kills the bot once the answer is sent.
 */
export class SlackLikeServer {
  private server: Server | undefined;
  private port = 0;
  private seq = 0;
  private readonly messages: StoredMessage[] = [];
  private readonly listeners: Array<(r: SlackRecord) => void> = [];
  private readonly responseUrls = new Map<string, { channelId: string; userId: string; ts?: string }>();
  private killed = false;
  /** The world file's change counter when the messages were last read from it (see sync). */
  private seen = -1;
  readonly records: SlackRecord[] = [];
  /** Web API calls received, by method (for tests), refused ones included. */
  readonly calls: Array<{ method: string; args: Record<string, unknown> }> = [];
  /** What the Web API methods may read and change here. */
  private readonly storage: SlackStorage;

  constructor(
    private readonly config: Config,
    private readonly clock: Clock,
    private readonly world?: SimWorld,
  ) {
    this.storage = {
      config,
      messages: this.messages,
      channelId: (nameOrId) => this.channelId(nameOrId),
      userName: (slackId) => this.userName(slackId),
      nextTs: () => this.nextTs(),
      store: (channelId, ts, args, ephemeralFor) => this.store(channelId, ts, args, ephemeralFor),
      persist: (message) => this.persist(message),
      record: (r) => this.record(r),
    };
    this.sync();
  }

  /** Whether other processes may share the world file (then messages and ts numbers come from the file). */
  private get shared(): boolean {
    return this.world !== undefined && this.world.file !== ":memory:" && !this.world.dead;
  }

  /**
   * Reads the messages again from the world file when another process (another bot on the same world) wrote it
   * since: each bot's Slack-like server then sees the messages every other one posted, as Slack's clients all do.
   */
  private sync(): void {
    if (!this.world || this.world.dead) return;
    if (this.world.file !== ":memory:") {
      const version = this.world.changesByOthers();
      if (version === this.seen) return;
      this.seen = version;
    } else if (this.seen >= 0) return;
    else this.seen = 0;
    this.messages.length = 0;
    for (const m of this.world.slackMessages()) {
      this.messages.push({ ...m, blocks: asBlocks(m.blocks) });
      this.seq = Math.max(this.seq, Number(m.ts.split(".")[1] ?? 0));
    }
  }

  /** True once kill() ran. */
  get dead(): boolean {
    return this.killed;
  }

  /** The bot died: every later request from it fails as a dropped connection, and nothing more is recorded. */
  kill(): void {
    this.killed = true;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      if (this.killed) {
        req.socket.destroy();
        return;
      }
      this.handle(req, res).catch((err: unknown) => {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ ok: false, error: "internal_error", detail: String(err) }));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The `slackApiUrl` for the bot's WebClient. */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api/`;
  }

  onRecord(listener: (r: SlackRecord) => void): void {
    this.listeners.push(listener);
  }

  /** Makes a response_url for a slash command or a click by `userId` in `channelId`. */
  responseUrl(channelId: string, userId: string, ts?: string): string {
    const id = `r${++this.seq}`;
    this.responseUrls.set(id, { channelId, userId, ...(ts ? { ts } : {}) });
    return `http://127.0.0.1:${this.port}/response/${id}`;
  }

  channelId(nameOrId: string): string {
    if (/^[CDG][A-Z0-9]+$/.test(nameOrId)) return nameOrId;
    return `C${nameOrId
      .replace(/^#/, "")
      .toUpperCase()
      .replace(/[^A-Z0-9]/g, "")}`;
  }

  channelName(id: string): string {
    const known = [this.config.channels.deploys, this.config.channels.incidents, "#general"];
    return known.find((n) => this.channelId(n) === id) ?? `#${id.slice(1).toLowerCase()}`;
  }

  /** The newest message (ephemeral ones only for `userId`) with a button whose label or action_id is `label`. */
  findButton(label: string, userId: string): FoundButton | undefined {
    const wanted = label.trim().toLowerCase();
    this.sync();
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const m = this.messages[i] as StoredMessage;
      if (m.ephemeralFor && m.ephemeralFor !== userId) continue;
      for (const block of m.blocks) {
        if (block.type !== "actions") continue;
        for (const el of (block.elements as Array<Record<string, unknown>>) ?? []) {
          const text = ((el.text as { text?: string } | undefined)?.text ?? "").toLowerCase();
          if (el.type === "button" && (text === wanted || String(el.action_id).toLowerCase() === wanted)) {
            return { message: m, button: el, blockId: String(block.block_id ?? "") };
          }
        }
      }
    }
    return undefined;
  }

  /** Shows what a listener passed to ack() as Slack does: an ephemeral reply (or in_channel when asked). */
  async deliver(channelId: string, userId: string, response: unknown): Promise<void> {
    const body = typeof response === "string" ? { text: response } : (response as Record<string, unknown>);
    const id = this.responseUrl(channelId, userId).split("/").pop() as string;
    this.respond(id, body);
  }

  private nextTs(): string {
    const secs = Math.floor(this.clock.now().getTime() / 1000);
    // Two processes posting at once must not make the same ts: the number comes from the shared file then.
    this.seq = this.shared ? (this.world as SimWorld).nextCount("slack.ts", this.seq + 1) : this.seq + 1;
    return `${secs}.${String(this.seq).padStart(6, "0")}`;
  }

  private record(r: Omit<SlackRecord, "at">): void {
    if (this.killed) return;
    const full = { ...r, at: this.clock.now() };
    this.records.push(full);
    for (const l of this.listeners) l(full);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (this.killed) {
      req.socket.destroy();
      return;
    }
    const raw = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const args = parseBody(raw, req.headers["content-type"] ?? "");
    const reply = (body: Record<string, unknown>, afterSent?: () => void) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body), afterSent);
    };
    if (url.pathname.startsWith("/response/")) {
      reply(this.respond(url.pathname.slice("/response/".length), args));
      return;
    }
    const method = url.pathname.replace(/^\/api\//, "");
    this.calls.push({ method, args });
    // Refused calls change nothing and record nothing: the caller sees the HTTP status Slack would send.
    const refused = this.world?.refusal("slack", method);
    if (refused?.kind === "down") {
      res.writeHead(503, { "content-type": "text/plain" });
      res.end("Service Unavailable");
      return;
    }
    if (refused?.kind === "throttled") {
      res.writeHead(429, { "content-type": "application/json", "retry-after": String(RETRY_AFTER_S) });
      res.end(JSON.stringify({ ok: false, error: "ratelimited" }));
      return;
    }
    if (!/^Bearer xox[bp]-/.test(String(req.headers.authorization ?? "")) && method !== "api.test") {
      reply({ ok: false, error: "not_authed" });
      return;
    }
    this.sync();
    const result = answerWebApi(this.storage, method, args);
    // `:crash-after slack:METHOD`: the answer is written and the message kept before the bot dies.
    const crash = result.ok === true && this.world?.takeCrash("slack", method) === true;
    reply(result, crash ? () => this.world?.crash() : undefined);
  }

  private respond(id: string, args: Record<string, unknown>): Record<string, unknown> {
    const target = this.responseUrls.get(id);
    if (!target) return { ok: false, error: "expired_url" };
    this.sync();
    const inChannel = args.response_type === "in_channel";
    if (args.replace_original && target.ts) {
      const existing = this.messages.find((m) => m.ts === target.ts);
      if (existing) {
        existing.text = String(args.text ?? "");
        existing.blocks = asBlocks(args.blocks ?? []);
        this.persist(existing);
        this.record({
          kind: existing.ephemeralFor ? "ephemeral" : "update",
          channel: existing.channel,
          user: existing.ephemeralFor ? this.userName(existing.ephemeralFor) : undefined,
          text: existing.text,
          blocks: existing.blocks,
          ts: existing.ts,
        } as Omit<SlackRecord, "at">);
        return { ok: true };
      }
    }
    if (args.delete_original) return { ok: true };
    const ts = this.nextTs();
    const message = this.store(target.channelId, ts, args, inChannel ? undefined : target.userId);
    this.record({
      kind: inChannel ? "message" : "ephemeral",
      channel: message.channel,
      user: inChannel ? "deploybot" : this.userName(target.userId),
      text: message.text,
      blocks: message.blocks,
      ts,
    });
    return { ok: true };
  }

  private store(channelId: string, ts: string, args: Record<string, unknown>, ephemeralFor?: string): StoredMessage {
    const metadata = asMetadata(args.metadata);
    const message: StoredMessage = {
      channel: this.channelName(channelId),
      channelId,
      ts,
      text: String(args.text ?? ""),
      blocks: asBlocks(args.blocks ?? []),
      ...(args.thread_ts ? { threadTs: String(args.thread_ts) } : {}),
      ...(metadata ? { metadata } : {}),
      ...(ephemeralFor ? { ephemeralFor } : {}),
    };
    this.messages.push(message);
    if (this.messages.length > MAX_MESSAGES) this.messages.splice(0, 1000);
    this.persist(message);
    return message;
  }

  /** Writes a message to the world file at once, so it outlives this process. */
  private persist(message: StoredMessage): void {
    this.world?.putSlackMessage(message);
  }

  userName(slackId: string): string {
    return Object.entries(this.config.users).find(([, u]) => u.slack_id === slackId)?.[0] ?? slackId;
  }
}
