import type { Block } from "../ports.js";

export type { Block };

/** Small Block Kit builders: every message deploybot posts is made of these. */
export const header = (text: string): Block => ({
  type: "header",
  text: { type: "plain_text", text: text.slice(0, 150) },
});
export const section = (markdown: string): Block => ({
  type: "section",
  text: { type: "mrkdwn", text: markdown.slice(0, 3000) },
});
export const fields = (items: string[]): Block => ({
  type: "section",
  fields: items.slice(0, 10).map((text) => ({ type: "mrkdwn", text: text.slice(0, 2000) })),
});
export const context = (markdown: string): Block => ({
  type: "context",
  elements: [{ type: "mrkdwn", text: markdown.slice(0, 3000) }],
});
export const divider = (): Block => ({ type: "divider" });

export interface Button {
  label: string;
  actionId: string;
  value: string;
  style?: "primary" | "danger";
  confirm?: { title: string; text: string; confirm: string; deny: string };
}

export const actions = (blockId: string, buttons: Button[]): Block => ({
  type: "actions",
  block_id: blockId,
  elements: buttons.map((b) => ({
    type: "button",
    action_id: b.actionId,
    text: { type: "plain_text", text: b.label },
    value: b.value,
    ...(b.style ? { style: b.style } : {}),
    ...(b.confirm
      ? {
          confirm: {
            title: { type: "plain_text", text: b.confirm.title },
            text: { type: "mrkdwn", text: b.confirm.text },
            confirm: { type: "plain_text", text: b.confirm.confirm },
            deny: { type: "plain_text", text: b.confirm.deny },
          },
        }
      : {}),
  })),
});

/** Slack's escaping for text inside mrkdwn: &, < and > only. */
export const escapeMrkdwn = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** `<@U123>`: a mention Slack renders as the user's name. */
export const mention = (slackId: string): string => `<@${slackId}>`;
