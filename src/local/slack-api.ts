import type { SimSlackMessage } from "../adapters/sim/world.js";
import type { Config } from "../config/schema.js";
import type { Block } from "../slack/blocks.js";
import { asBlocks, asMetadata, truthy, tsKey } from "./slack-parse.js";

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

/** A message as the server keeps it (in the world file too, given a world). */
export interface StoredMessage extends Omit<SimSlackMessage, "blocks"> {
  blocks: Block[];
}

/** What the Web API methods read and change: the Slack-like server's messages and records. */
export interface SlackStorage {
  /** The users and channels the methods answer about. */
  readonly config: Config;
  /** The messages kept, oldest first. */
  readonly messages: readonly StoredMessage[];
  channelId(nameOrId: string): string;
  userName(slackId: string): string;
  /** A new message ts, in the simulated time. */
  nextTs(): string;
  /** Keeps a new message (ephemeral for `ephemeralFor`) and returns it. */
  store(channelId: string, ts: string, args: Record<string, unknown>, ephemeralFor?: string): StoredMessage;
  /** Writes a changed message where it outlives this process. */
  persist(message: StoredMessage): void;
  /** Tells the listeners what the bot did. */
  record(r: Omit<SlackRecord, "at">): void;
}

const BOT_USER_ID = "U0DEPLOYBOT";
const BOT_ID = "B0DEPLOYBOT";

/** Answers one Web API call (auth.test, chat.*, views.publish, users.*, conversations.*, usergroups.*) as Slack would. */
export function answerWebApi(s: SlackStorage, method: string, args: Record<string, unknown>): Record<string, unknown> {
  switch (method) {
    case "auth.test":
      return { ok: true, user_id: BOT_USER_ID, bot_id: BOT_ID, team_id: "T0LOCAL", user: "deploybot" };
    case "chat.postMessage": {
      const channelId = s.channelId(String(args.channel ?? ""));
      if (!args.channel) return { ok: false, error: "channel_not_found" };
      const ts = s.nextTs();
      const message = s.store(channelId, ts, args);
      s.record({
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
      const channelId = s.channelId(String(args.channel ?? ""));
      const existing = s.messages.find((m) => m.channelId === channelId && m.ts === args.ts);
      if (!existing) return { ok: false, error: "message_not_found" };
      existing.text = String(args.text ?? existing.text);
      if (args.blocks) existing.blocks = asBlocks(args.blocks);
      const metadata = asMetadata(args.metadata);
      if (metadata) existing.metadata = metadata;
      s.persist(existing);
      s.record({
        kind: "update",
        channel: existing.channel,
        text: existing.text,
        blocks: existing.blocks,
        ts: existing.ts,
      });
      return { ok: true, channel: channelId, ts: existing.ts };
    }
    case "chat.postEphemeral": {
      const channelId = s.channelId(String(args.channel ?? ""));
      const ts = s.nextTs();
      const message = s.store(channelId, ts, args, String(args.user));
      s.record({
        kind: "ephemeral",
        channel: message.channel,
        user: s.userName(String(args.user)),
        text: message.text,
        blocks: message.blocks,
        ts,
      });
      return { ok: true, message_ts: ts };
    }
    case "views.publish":
      s.record({
        kind: "home",
        channel: "app_home",
        user: s.userName(String(args.user_id)),
        text: "",
        blocks: asBlocks((args.view as { blocks?: unknown })?.blocks ?? []),
        ts: s.nextTs(),
      });
      return { ok: true };
    case "users.lookupByEmail": {
      const entry = Object.entries(s.config.users).find(([, u]) => u.email === args.email);
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
      const entry = Object.entries(s.config.users).find(([, u]) => u.slack_id === args.user);
      return entry
        ? { ok: true, user: { id: entry[1].slack_id, name: entry[0], real_name: entry[1].name } }
        : { ok: false, error: "user_not_found" };
    }
    case "chat.getPermalink": {
      const m = s.messages.find(
        (x) => x.channelId === s.channelId(String(args.channel ?? "")) && x.ts === args.message_ts,
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
      const names = [s.config.channels.deploys, s.config.channels.incidents, "#general"];
      return {
        ok: true,
        channels: [...new Set(names)].map((n) => ({ id: s.channelId(n), name: n.replace(/^#/, "") })),
        response_metadata: { next_cursor: "" },
      };
    }
    case "conversations.history": {
      if (!args.channel) return { ok: false, error: "channel_not_found" };
      const channelId = s.channelId(String(args.channel));
      const topLevel = s.messages.filter(
        (m) => m.channelId === channelId && !m.ephemeralFor && (!m.threadTs || m.threadTs === m.ts),
      );
      return page(s, topLevel, args, "newest_first");
    }
    case "conversations.replies": {
      if (!args.channel || !args.ts) return { ok: false, error: "invalid_arguments" };
      const channelId = s.channelId(String(args.channel));
      const asked = s.messages.find((m) => m.channelId === channelId && m.ts === args.ts && !m.ephemeralFor);
      if (!asked) return { ok: false, error: "thread_not_found" };
      const root = asked.threadTs ?? asked.ts;
      const thread = s.messages.filter(
        (m) => m.channelId === channelId && !m.ephemeralFor && (m.ts === root || m.threadTs === root),
      );
      return page(s, thread, args, "oldest_first");
    }
    case "usergroups.list":
      return { ok: true, usergroups: [] };
    case "usergroups.users.list":
      return { ok: true, users: [] };
    default:
      return { ok: false, error: "unknown_method" };
  }
}

/** One page of messages as conversations.history (newest first) or conversations.replies (oldest first) answers. */
function page(
  s: SlackStorage,
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
  const replies = (ts: string) => s.messages.filter((m) => m.threadTs === ts && m.ts !== ts && !m.ephemeralFor);
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
