import type { WebClient } from "@slack/web-api";
import { DeploybotError, ErrorCode } from "../errors.js";
import { recordSlackError } from "../ops/metrics.js";
import type { ChatMessage, SlackPort } from "../ports.js";

/** ChatPort on Slack's Web API: bound to the Bolt app's own client when the app is built. */
export class SlackChat implements SlackPort {
  private webClient: WebClient | undefined;
  /** Channel ids by "#name", learned from Slack's answers. */
  private readonly channelIds = new Map<string, string>();

  bind(client: unknown): void {
    this.webClient = client as WebClient;
  }

  private get client(): WebClient {
    if (!this.webClient) throw new DeploybotError(ErrorCode.SlackFailed, "Slack is not connected yet");
    return this.webClient;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw slackError(what, err);
    }
  }

  async lookupByEmail(email: string): Promise<string | undefined> {
    try {
      const res = await this.client.users.lookupByEmail({ email });
      return res.user?.id;
    } catch (err) {
      if ((err as { data?: { error?: string } }).data?.error === "users_not_found") return undefined;
      recordSlackError("users.lookupByEmail", errorCodeOf(err), false);
      throw new DeploybotError(
        ErrorCode.SlackFailed,
        `Slack could not look up a user by email: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  async usergroupMembers(handle: string): Promise<string[]> {
    const name = handle.replace(/^@/, "");
    const groups = await this.call("usergroups.list", () => this.client.usergroups.list({}));
    const group = (groups.usergroups ?? []).find((g) => g.handle === name);
    if (!group?.id) return [];
    const members = await this.call("usergroups.users.list", () =>
      this.client.usergroups.users.list({ usergroup: group.id as string }),
    );
    return members.users ?? [];
  }

  async post(channel: string, message: ChatMessage, threadTs?: string) {
    const res = await this.call("chat.postMessage", () =>
      this.client.chat.postMessage({
        channel,
        text: message.text,
        ...(message.blocks ? { blocks: message.blocks as never } : {}),
        ...(threadTs ? { thread_ts: threadTs } : {}),
        ...(message.key ? { metadata: { event_type: METADATA_TYPE, event_payload: { key: message.key } } } : {}),
      }),
    );
    if (channel.startsWith("#") && res.channel) this.channelIds.set(channel, res.channel);
    return { channel: res.channel as string, ts: res.ts as string };
  }

  async update(channel: string, ts: string, message: ChatMessage) {
    await this.call("chat.update", () =>
      this.client.chat.update({
        channel,
        ts,
        text: message.text,
        ...(message.blocks ? { blocks: message.blocks as never } : {}),
      }),
    );
  }

  /** A channel's id: conversations.history wants one, while the config may name "#deploys". */
  private async channelId(channel: string): Promise<string> {
    if (!channel.startsWith("#")) return channel;
    const known = this.channelIds.get(channel);
    if (known) return known;
    let cursor: string | undefined;
    do {
      const page = await this.call("conversations.list", () =>
        this.client.conversations.list({
          types: "public_channel,private_channel",
          exclude_archived: true,
          limit: 1000,
          ...(cursor ? { cursor } : {}),
        }),
      );
      for (const c of page.channels ?? []) if (c.name && c.id) this.channelIds.set(`#${c.name}`, c.id);
      cursor = page.response_metadata?.next_cursor || undefined;
    } while (cursor && !this.channelIds.has(channel));
    const id = this.channelIds.get(channel);
    if (!id)
      throw new DeploybotError(
        ErrorCode.SlackFailed,
        `Slack has no channel ${channel} the bot can see: invite it or fix the config`,
      );
    return id;
  }

  async find(channel: string, key: string, since: Date, threadTs?: string): Promise<string | undefined> {
    const oldest = String(Math.floor(since.getTime() / 1000) - 1);
    const id = await this.channelId(channel);
    const res = await this.call(threadTs ? "conversations.replies" : "conversations.history", () =>
      threadTs
        ? this.client.conversations.replies({
            channel: id,
            ts: threadTs,
            oldest,
            include_all_metadata: true,
            limit: 200,
          })
        : this.client.conversations.history({ channel: id, oldest, include_all_metadata: true, limit: 200 }),
    );
    const found = (res.messages ?? []).find(
      (m) =>
        (m as { metadata?: { event_type?: string; event_payload?: { key?: unknown } } }).metadata?.event_payload
          ?.key === key,
    );
    return found?.ts;
  }

  async permalink(channel: string, ts: string): Promise<string> {
    const res = await this.call("chat.getPermalink", () => this.client.chat.getPermalink({ channel, message_ts: ts }));
    return res.permalink as string;
  }
}

/** The metadata event type of deploybot's own posts (with the intent's key as payload). */
const METADATA_TYPE = "deploybot_intent";

/** Platform errors Slack answers when it is the one in trouble: asking again later may work. */
const TRANSIENT_PLATFORM_ERRORS = new Set(["internal_error", "fatal_error", "service_unavailable", "request_timeout"]);

/**
 * A Web API failure as a DeploybotError: rate limits (with Slack's Retry-After), HTTP 5xx, network errors and
 * Slack's own outages are transient; everything else (channel_not_found, not_in_channel...) needs a person.
 */
export function slackError(what: string, err: unknown): DeploybotError {
  const e = err as { code?: string; retryAfter?: number; statusCode?: number; data?: { error?: string } };
  recordSlackError(what, errorCodeOf(err), e.code === "slack_webapi_rate_limited_error" || e.statusCode === 429);
  if (e.code === "slack_webapi_rate_limited_error") {
    const retryAfterMs = (e.retryAfter ?? 30) * 1000;
    return new DeploybotError(
      ErrorCode.SlackFailed,
      `Slack rate-limited ${what}; retrying after ${retryAfterMs / 1000} s`,
      {
        cause: err,
        transient: true,
        retryAfterMs,
      },
    );
  }
  if (e.code === "slack_webapi_http_error" || e.code === "slack_webapi_request_error") {
    const status = e.statusCode ?? 0;
    return new DeploybotError(
      ErrorCode.SlackFailed,
      `Slack could not be reached for ${what} (${status ? `HTTP ${status}` : (err as Error).message})`,
      { cause: err, transient: status === 0 || status === 429 || status >= 500 },
    );
  }
  const code = e.data?.error ?? (err as Error).message;
  return new DeploybotError(
    ErrorCode.SlackFailed,
    `Slack refused ${what}: ${code}. Check the bot's scopes and that it can post in the channel.`,
    { cause: err, transient: TRANSIENT_PLATFORM_ERRORS.has(code) },
  );
}

/** A short code for a failed Web API call, for metrics: Slack's error, `ratelimited`, `http_503`, or `request_error`. */
function errorCodeOf(err: unknown): string {
  const e = err as { code?: string; statusCode?: number; data?: { error?: string } };
  if (e.code === "slack_webapi_rate_limited_error") return "ratelimited";
  if (e.code === "slack_webapi_http_error") return `http_${e.statusCode ?? 0}`;
  if (e.code === "slack_webapi_request_error") return "request_error";
  return e.data?.error ?? "unknown";
}
