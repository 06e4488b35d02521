import { setImmediate as nextTurn } from "node:timers/promises";
import type { RespondFn } from "@slack/bolt";
import type { Logger } from "pino";
import { DeploybotError, ErrorCode } from "../errors.js";
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

/**
 * Lets the event loop send this ack (and read other waiting requests) before the slow part of a command
 * runs: under a burst of commands every ack goes out first, well inside Slack's 3 seconds.
 */
export async function afterAck(): Promise<void> {
  await nextTurn();
}
