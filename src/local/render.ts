import type { Block } from "../slack/blocks.js";

type TextObj = { type?: string; text?: string } | undefined;

/** Slack's mrkdwn as a terminal shows it: mentions by name, links as "label (url)", entities decoded. */
export function mrkdwnToText(text: string, userName: (id: string) => string = (id) => id): string {
  return text
    .replace(/<@([A-Z0-9]+)>/g, (_m, id: string) => `@${userName(id)}`)
    .replace(/<#[A-Z0-9]+\|([^>]+)>/g, "#$1")
    .replace(/<(https?:[^|>]+)\|([^>]+)>/g, "$2 ($1)")
    .replace(/<(https?:[^>]+)>/g, "$1")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

/** The labels of every button in the blocks, in order. */
export function buttonsOf(blocks: Block[]): string[] {
  const out: string[] = [];
  for (const b of blocks) {
    if (b.type !== "actions") continue;
    for (const el of (b.elements as Array<{ type: string; text?: TextObj }>) ?? []) {
      if (el.type === "button" && el.text?.text) out.push(el.text.text);
    }
  }
  return out;
}

/** Block Kit rendered as plain text lines; buttons appear as `[Approve] [Reject]`. */
export function renderBlocks(blocks: Block[], userName?: (id: string) => string): string {
  const lines: string[] = [];
  const t = (o: TextObj) => mrkdwnToText(o?.text ?? "", userName);
  for (const b of blocks) {
    switch (b.type) {
      case "header":
        lines.push(`== ${t(b.text as TextObj)} ==`);
        break;
      case "section": {
        if (b.text) lines.push(t(b.text as TextObj));
        const fs = (b.fields as TextObj[] | undefined) ?? [];
        // Slack lays fields out as a grid, label above value; one line per block reads better in a terminal.
        if (fs.length) lines.push(fs.map((f) => t(f).replace(/\n/g, " ")).join("  |  "));
        break;
      }
      case "context":
        lines.push(((b.elements as TextObj[]) ?? []).map((e) => t(e)).join(" "));
        break;
      case "divider":
        lines.push("----");
        break;
      case "actions": {
        const labels = buttonsOf([b]);
        if (labels.length) lines.push(labels.map((l) => `[${l}]`).join(" "));
        break;
      }
      default:
        break;
    }
  }
  return lines.join("\n");
}
