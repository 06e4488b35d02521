import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { SimSlackMessage, SimWorld } from "../adapters/sim/world.js";
import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import type { Block } from "../slack/blocks.js";

/** What the bot did in Slack, as the Slack-like server saw it. */
export interface SlackRecord {
  kind: "message" | "update" | "ephemeral" | "home";
  channel: string;
  /** For ephemerals: who sees it; for messages: the bot. */
  user?: string;
  text: string;
  blocks: Block[];
  ts: string;
  threadTs?: string;
  at: Date;
}

interface StoredMessage extends Omit<SimSlackMessage, "blocks"> {
  blocks: Block[];
}

const BOT_USER_ID = "U0DEPLOYBOT";
const BOT_ID = "B0DEPLOYBOT";
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

  constructor(
    private readonly config: Config,
    private readonly clock: Clock,
    private readonly world?: SimWorld,
  ) {
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
  findButton(
    label: string,
    userId: string,
  ): { message: StoredMessage; button: Record<string, unknown>; blockId: string } | undefined {
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
    const result = this.api(method, args);
    // `:crash-after slack:METHOD`: the answer is written and the message kept before the bot dies.
    const crash = result.ok === true && this.world?.takeCrash("slack", method) === true;
    reply(result, crash ? () => this.world?.crash() : undefined);
  }

  private api(method: string, args: Record<string, unknown>): Record<string, unknown> {
    this.sync();
    switch (method) {
      case "auth.test":
        return { ok: true, user_id: BOT_USER_ID, bot_id: "B0DEPLOYBOT", team_id: "T0LOCAL", user: "deploybot" };
      case "chat.postMessage": {
        const channelId = this.channelId(String(args.channel ?? ""));
        if (!args.channel) return { ok: false, error: "channel_not_found" };
        const ts = this.nextTs();
        const message = this.store(channelId, ts, args);
        this.record({
          kind: "message",
          channel: message.channel,
          user: "deploybot",
          text: message.text,
          blocks: message.blocks,
          ts,
          ...(message.threadTs ? { threadTs: message.threadTs } : {}),
        });
        return { ok: true, channel: channelId, ts, message: { text: message.text, ts } };
      }
      case "chat.update": {
        const channelId = this.channelId(String(args.channel ?? ""));
        const existing = this.messages.find((m) => m.channelId === channelId && m.ts === args.ts);
        if (!existing) return { ok: false, error: "message_not_found" };
        existing.text = String(args.text ?? existing.text);
        if (args.blocks) existing.blocks = asBlocks(args.blocks);
        const metadata = asMetadata(args.metadata);
        if (metadata) existing.metadata = metadata;
        this.persist(existing);
        this.record({
          kind: "update",
          channel: existing.channel,
          text: existing.text,
          blocks: existing.blocks,
          ts: existing.ts,
        });
        return { ok: true, channel: channelId, ts: existing.ts };
      }
      case "chat.postEphemeral": {
        const channelId = this.channelId(String(args.channel ?? ""));
        const ts = this.nextTs();
        const message = this.store(channelId, ts, args, String(args.user));
        this.record({
          kind: "ephemeral",
          channel: message.channel,
          user: this.userName(String(args.user)),
          text: message.text,
          blocks: message.blocks,
          ts,
        });
        return { ok: true, message_ts: ts };
      }
      case "views.publish":
        this.record({
          kind: "home",
          channel: "app_home",
          user: this.userName(String(args.user_id)),
          text: "",
          blocks: asBlocks((args.view as { blocks?: unknown })?.blocks ?? []),
          ts: this.nextTs(),
        });
        return { ok: true };
      case "users.lookupByEmail": {
        const entry = Object.entries(this.config.users).find(([, u]) => u.email === args.email);
        return entry
          ? {
              ok: true,
              user: {
                id: entry[1].slack_id,
                name: entry[0],
                real_name: entry[1].name,
                profile: { email: entry[1].email },
              },
            }
          : { ok: false, error: "users_not_found" };
      }
      case "users.info": {
        const entry = Object.entries(this.config.users).find(([, u]) => u.slack_id === args.user);
        return entry
          ? { ok: true, user: { id: entry[1].slack_id, name: entry[0], real_name: entry[1].name } }
          : { ok: false, error: "user_not_found" };
      }
      case "chat.getPermalink": {
        const m = this.messages.find(
          (x) => x.channelId === this.channelId(String(args.channel ?? "")) && x.ts === args.message_ts,
        );
        return m
          ? {
              ok: true,
              channel: m.channelId,
              permalink: `https://local.slack.test/archives/${m.channelId}/p${m.ts.replace(".", "")}`,
            }
          : { ok: false, error: "message_not_found" };
      }
      case "conversations.list": {
        const names = [this.config.channels.deploys, this.config.channels.incidents, "#general"];
        return {
          ok: true,
          channels: [...new Set(names)].map((n) => ({ id: this.channelId(n), name: n.replace(/^#/, "") })),
          response_metadata: { next_cursor: "" },
        };
      }
      case "conversations.history": {
        if (!args.channel) return { ok: false, error: "channel_not_found" };
        const channelId = this.channelId(String(args.channel));
        const topLevel = this.messages.filter(
          (m) => m.channelId === channelId && !m.ephemeralFor && (!m.threadTs || m.threadTs === m.ts),
        );
        return this.page(topLevel, args, "newest_first");
      }
      case "conversations.replies": {
        if (!args.channel || !args.ts) return { ok: false, error: "invalid_arguments" };
        const channelId = this.channelId(String(args.channel));
        const asked = this.messages.find((m) => m.channelId === channelId && m.ts === args.ts && !m.ephemeralFor);
        if (!asked) return { ok: false, error: "thread_not_found" };
        const root = asked.threadTs ?? asked.ts;
        const thread = this.messages.filter(
          (m) => m.channelId === channelId && !m.ephemeralFor && (m.ts === root || m.threadTs === root),
        );
        return this.page(thread, args, "oldest_first");
      }
      case "usergroups.list":
        return { ok: true, usergroups: [] };
      case "usergroups.users.list":
        return { ok: true, users: [] };
      default:
        return { ok: false, error: "unknown_method" };
    }
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

  /** One page of messages as conversations.history (newest first) or conversations.replies (oldest first) answers. */
  private page(
    list: StoredMessage[],
    args: Record<string, unknown>,
    order: "newest_first" | "oldest_first",
  ): Record<string, unknown> {
    const inclusive = truthy(args.inclusive);
    const oldest = args.oldest !== undefined && args.oldest !== "" ? tsKey(String(args.oldest)) : undefined;
    const latest = args.latest !== undefined && args.latest !== "" ? tsKey(String(args.latest)) : undefined;
    const limit = Math.min(999, Math.max(1, Number(args.limit) || 100));
    const withMetadata = truthy(args.include_all_metadata);
    const inRange = (m: StoredMessage) => {
      const k = tsKey(m.ts);
      if (oldest !== undefined && (inclusive ? k < oldest : k <= oldest)) return false;
      if (latest !== undefined && (inclusive ? k > latest : k >= latest)) return false;
      return true;
    };
    const sorted = list.filter(inRange).sort((a, b) => (tsKey(a.ts) < tsKey(b.ts) ? -1 : 1));
    // conversations.history pages from `latest` back; replies from `oldest` forward.
    const picked = order === "newest_first" ? sorted.reverse().slice(0, limit) : sorted.slice(0, limit);
    const replies = (ts: string) => this.messages.filter((m) => m.threadTs === ts && m.ts !== ts && !m.ephemeralFor);
    return {
      ok: true,
      messages: picked.map((m) => {
        const count = m.threadTs && m.threadTs !== m.ts ? 0 : replies(m.ts).length;
        return {
          type: "message",
          user: BOT_USER_ID,
          bot_id: BOT_ID,
          app_id: "A0DEPLOYBOT",
          text: m.text,
          ts: m.ts,
          ...(m.blocks.length ? { blocks: m.blocks } : {}),
          ...(m.threadTs ? { thread_ts: m.threadTs } : count > 0 ? { thread_ts: m.ts } : {}),
          ...(count > 0 ? { reply_count: count } : {}),
          ...(withMetadata && m.metadata ? { metadata: m.metadata } : {}),
        };
      }),
      has_more: sorted.length > limit,
      ...(order === "newest_first" ? { pin_count: 0 } : {}),
    };
  }

  userName(slackId: string): string {
    return Object.entries(this.config.users).find(([, u]) => u.slack_id === slackId)?.[0] ?? slackId;
  }
}

function asBlocks(value: unknown): Block[] {
  if (typeof value === "string") {
    try {
      return JSON.parse(value) as Block[];
    } catch {
      return [];
    }
  }
  return Array.isArray(value) ? (value as Block[]) : [];
}

/** Slack's message metadata, sent as an object (JSON body) or as a JSON string (form body). */
function asMetadata(value: unknown): StoredMessage["metadata"] | undefined {
  let v = value;
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      return undefined;
    }
  }
  if (typeof v !== "object" || v === null) return undefined;
  const { event_type, event_payload } = v as { event_type?: unknown; event_payload?: unknown };
  if (typeof event_type !== "string") return undefined;
  return {
    event_type,
    event_payload:
      typeof event_payload === "object" && event_payload !== null ? (event_payload as Record<string, unknown>) : {},
  };
}

function truthy(value: unknown): boolean {
  return value === true || value === "true" || value === "1" || value === 1;
}

/** A message ts as a string that sorts in time order ("1764000000.000123" → "001764000000.000123"). */
function tsKey(ts: string): string {
  const [secs = "0", frac = ""] = ts.split(".");
  return `${secs.padStart(12, "0")}.${frac.padEnd(6, "0").slice(0, 6)}`;
}

function parseBody(raw: string, contentType: string): Record<string, unknown> {
  if (!raw) return {};
  if (contentType.includes("application/json")) return JSON.parse(raw) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) out[k] = v;
  return out;
}
