import type { WebClient } from "@slack/web-api";
import { DeploybotError, ErrorCode } from "../errors.js";
import type { ChatMessage, ChatPort, DirectoryPort } from "../ports.js";

/** ChatPort on Slack's Web API: bound to the Bolt app's own client when the app is built. */
export class SlackChat implements ChatPort, DirectoryPort {
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

  async lookupByEmail(email: string): Promise<string | undefined> {
    try {
      const res = await this.client.users.lookupByEmail({ email });
      return res.user?.id;
    } catch (err) {
      if ((err as { data?: { error?: string } }).data?.error === "users_not_found") return undefined;
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

  async permalink(channel: string, ts: string): Promise<string> {
    const res = await this.call("chat.getPermalink", () => this.client.chat.getPermalink({ channel, message_ts: ts }));
    return res.permalink as string;
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
