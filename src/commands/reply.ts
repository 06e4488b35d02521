import { setImmediate as nextTurn } from "node:timers/promises";
import type { RespondFn } from "@slack/bolt";
import type { Logger } from "pino";
import { DeploybotError, ErrorCode } from "../errors.js";
import { foreground } from "../foreground.js";
import { section } from "../slack/blocks.js";

/**
 * Tells the user what went wrong, ephemerally: a DeploybotError's message as it is (they are written for
 * people), anything else as a short apology with a reference. Never a stack trace in Slack.
 */
export async function replyError(respond: RespondFn, err: unknown, logger: Logger): Promise<void> {
  let text: string;
  if (err instanceof DeploybotError && err.code !== ErrorCode.Unknown) {
    text = err.message;
  } else {
    const ref = `E${Date.now().toString(36).toUpperCase()}`;
    logger.error({ err, ref }, "unexpected error while handling a Slack request");
    text = `Something went wrong on deploybot's side (reference ${ref}); nothing was changed. Try again, or ask your deploybot admin to look up ${ref} in the logs.`;
  }
  try {
    await respond({
      response_type: "ephemeral",
      replace_original: false,
      text,
      blocks: [section(`:warning: ${text}`)],
    });
  } catch (sendErr) {
    logger.error({ err: sendErr }, "could not send the error reply to Slack");
  }
}

/** How many commands and clicks run their slow part (after the ack) at once; the others wait their turn. */
const AT_ONCE = 2;
let running = 0;
const waiting: Array<() => void> = [];

/**
 * Runs the slow part of a command or click once its ack is out, a few at a time, each after a turn of the event
 * loop. Under a burst of requests the work of those already acked would otherwise crowd the event loop (dozens of
 * database reads, ECS calls and replies interleaved) and hold up the acks of those still arriving; queued, the
 * acks go out first and the replies follow, well inside Slack's 3 seconds for the ack and 30 minutes for a reply.
 */
export async function afterAck<T>(work: () => Promise<T>): Promise<T> {
  await nextTurn();
  if (running >= AT_ONCE) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    // The requests still being acked go first (a burst arrives over some milliseconds, not at once).
    await foreground.quiet();
    return await work();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}
