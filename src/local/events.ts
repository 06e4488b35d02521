import type { SimEvent } from "../adapters/sim/world.js";
import { buttonsOf, mrkdwnToText, renderBlocks } from "./render.js";
import type { SlackRecord } from "./slack-api.js";

/** One line of `--json` output: everything the bot does, in order. */
export interface ConsoleEvent {
  at: string;
  kind: "message" | "update" | "ephemeral" | "page" | "aws" | "error";
  channel?: string;
  user?: string;
  text?: string;
  buttons?: string[];
  ts?: string;
  thread_ts?: string;
  action?: string;
  dedupKey?: string;
  severity?: string;
  summary?: string;
  api?: string;
  op?: string;
  input?: Record<string, unknown>;
  /** The code a simulated system refused the call with (ThrottlingException, InternalServiceError...). */
  error?: string;
  /** On `page` lines: PagerDuty accepted the event but deduplicated it. */
  deduplicated?: boolean;
}

/** The console event for what the bot did in Slack; `name` turns a Slack user id into a user's name. */
export function eventFromSlack(r: SlackRecord, name: (id: string) => string): ConsoleEvent {
  const text = r.blocks.length ? renderBlocks(r.blocks, name) : mrkdwnToText(r.text, name);
  const buttons = buttonsOf(r.blocks);
  return {
    at: r.at.toISOString(),
    kind: r.kind === "home" ? "update" : r.kind,
    channel: r.channel,
    ...(r.user ? { user: r.user } : {}),
    text,
    ...(buttons.length ? { buttons } : {}),
    ts: r.ts,
    ...(r.threadTs ? { thread_ts: r.threadTs } : {}),
  };
}

/** The console event for a call the simulated AWS or PagerDuty received, at `now`. */
export function eventFromSim(e: SimEvent, now: Date): ConsoleEvent {
  const at = now.toISOString();
  if (e.kind === "aws")
    return { at, kind: "aws", api: e.api, op: e.op, input: e.input, ...(e.error ? { error: e.error } : {}) };
  return {
    at,
    kind: "page",
    action: e.action,
    dedupKey: e.dedupKey,
    severity: e.severity,
    summary: e.summary,
    ...(e.deduplicated ? { deduplicated: true } : {}),
  };
}
