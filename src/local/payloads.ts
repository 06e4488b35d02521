import type { CommandNames } from "../commands/names.js";
import type { FoundButton } from "./slack-server.js";

/** The one typing or clicking, as the payloads name them: a Slack user id and the config's user name. */
export interface PayloadUser {
  id: string;
  name: string;
}

/** The command Slack sends for what was `typed`; throws for a command deploybot does not answer. */
export function slashCommandName(typed: string, commands: CommandNames): string {
  const { deploy, rollback, status } = commands;
  // The console accepts the familiar names and the configured ones, and sends what Slack would: the configured.
  const aliases: Record<string, string> = {
    "/deploy": deploy,
    "/rollback": rollback,
    "/status": status,
    [deploy]: deploy,
    [rollback]: rollback,
    [status]: status,
  };
  const command = Object.hasOwn(aliases, typed) ? aliases[typed] : undefined;
  if (!command) {
    throw new Error(
      `unknown command ${typed}: deploybot answers /deploy, /rollback and /status${status !== "/status" ? ` (or ${status})` : ""}`,
    );
  }
  return command;
}

/** The body Slack posts for a slash command typed by `user` in `channel`. */
export function slashCommandBody(p: {
  command: string;
  text: string;
  channel: string;
  channelId: string;
  user: PayloadUser;
  responseUrl: string;
  triggerId: string;
}) {
  return {
    token: "local-console",
    team_id: "T0LOCAL",
    team_domain: "local",
    channel_id: p.channelId,
    channel_name: p.channel.replace(/^#/, ""),
    user_id: p.user.id,
    user_name: p.user.name,
    command: p.command,
    text: p.text,
    api_app_id: "A0DEPLOYBOT",
    is_enterprise_install: "false",
    response_url: p.responseUrl,
    trigger_id: p.triggerId,
  };
}

/** The block_actions body Slack posts when `user` clicks the button `found`, at `now`. */
export function blockActionsBody(p: {
  found: FoundButton;
  user: PayloadUser;
  responseUrl: string;
  triggerId: string;
  now: Date;
}) {
  const { message, button, blockId } = p.found;
  return {
    type: "block_actions",
    team: { id: "T0LOCAL", domain: "local" },
    user: { id: p.user.id, username: p.user.name, name: p.user.name, team_id: "T0LOCAL" },
    api_app_id: "A0DEPLOYBOT",
    token: "local-console",
    container: {
      type: "message",
      message_ts: message.ts,
      channel_id: message.channelId,
      is_ephemeral: Boolean(message.ephemeralFor),
    },
    trigger_id: p.triggerId,
    channel: { id: message.channelId, name: message.channel.replace(/^#/, "") },
    ...(message.ephemeralFor
      ? {}
      : { message: { type: "message", ts: message.ts, text: message.text, blocks: message.blocks } }),
    response_url: p.responseUrl,
    actions: [
      {
        type: "button",
        action_id: button.action_id,
        block_id: blockId,
        text: button.text,
        value: button.value,
        action_ts: String(p.now.getTime() / 1000),
      },
    ],
  };
}
