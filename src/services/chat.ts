import type { WebClient } from "@slack/web-api";
import { DeploybotError, ErrorCode } from "../errors.js";
import type { Block } from "../local/slack-server.js";

export interface ChatMessage {
  text: string;
  blocks?: Block[];
}

/** The Slack calls services make (cards, thread replies, incident posts), behind one narrow port. */
export interface ChatPort {
  post(channel: string, message: ChatMessage, threadTs?: string): Promise<{ channel: string; ts: string }>;
  update(channel: string, ts: string, message: ChatMessage): Promise<void>;
  ephemeral(channel: string, user: string, message: ChatMessage): Promise<void>;
}

/** ChatPort on Slack's Web API: bound to the Bolt app's own client when the app is built. */
export class SlackChat implements ChatPort {
  private webClient: WebClient | undefined;

  bind(client: WebClient): void {
    this.webClient = client;
  }

  private get client(): WebClient {
    if (!this.webClient) throw new DeploybotError(ErrorCode.SlackFailed, "Slack is not connected yet");
    return this.webClient;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { data?: { error?: string } }).data?.error ?? (err as Error).message;
      throw new DeploybotError(
        ErrorCode.SlackFailed,
        `Slack refused ${what}: ${code}. Check the bot's scopes and that it can post in the channel.`,
        { cause: err },
      );
    }
  }

  async post(channel: string, message: ChatMessage, threadTs?: string) {
    const res = await this.call("chat.postMessage", () =>
      this.client.chat.postMessage({
        channel,
        text: message.text,
        ...(message.blocks ? { blocks: message.blocks as never } : {}),
        ...(threadTs ? { thread_ts: threadTs } : {}),
      }),
    );
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

  async ephemeral(channel: string, user: string, message: ChatMessage) {
    await this.call("chat.postEphemeral", () =>
      this.client.chat.postEphemeral({
        channel,
        user,
        text: message.text,
        ...(message.blocks ? { blocks: message.blocks as never } : {}),
      }),
    );
  }
}
