import type { AnyMiddlewareArgs, App, BlockButtonAction, Middleware, RespondFn, SlashCommand } from "@slack/bolt";
import { foreground } from "../foreground.js";
import type { Services } from "../services/index.js";
import type { Person } from "../services/people.js";
import { parseButtonId } from "./buttons.js";
import { afterAck, replyError } from "./reply.js";

/** What a slash command's handler gets: the text typed, who typed it, and how to answer them. */
export interface CommandContext {
  text: string;
  person: Person;
  command: SlashCommand;
  respond: RespondFn;
}

/**
 * Bolt global middleware, registered before the replay guard: acks every request that takes an ack as soon as Bolt
 * has verified it, before anything else runs (Slack allows 3 seconds). deploybot's acks carry nothing (its answers
 * go to response_url), so nothing needs to run first; listeners do not ack again. A replay is acked too, as Slack
 * expects, and then goes no further.
 */
export const ackOnArrival: Middleware<AnyMiddlewareArgs> = async (args) => {
  if ("ack" in args && typeof args.ack === "function") {
    // Open until acked, so background work waits for a burst in Socket Mode too (over HTTP the receiver marks each
    // request from its arrival already; see src/foreground.ts).
    const answered = foreground.enter();
    try {
      await args.ack();
    } finally {
      answered();
    }
  }
  await args.next();
};

/**
 * The one shape of every slash command listener: acked on arrival (ackOnArrival), it runs the handler
 * with the person who typed it, after the ack and a few at a time (so a burst is acked first); anything thrown
 * becomes an ephemeral reply, never a stack.
 */
export function onCommand(
  app: App,
  services: Services,
  name: string,
  handle: (c: CommandContext) => Promise<void>,
): void {
  app.command(name, async ({ command, respond }) => {
    await afterAck(async () => {
      try {
        await handle({ text: command.text, person: services.people.bySlackId(command.user_id), command, respond });
      } catch (err) {
        await replyError(respond, err, services.logger);
      }
    });
  });
}

/**
 * The one shape of every button that names a deployment or an incident by id (acked on arrival): parse the value strictly,
 * run with the clicker (whose roles the handler checks now, at the click); a refusal or an error is an ephemeral
 * reply to the clicker only.
 */
export function onButton(
  app: App,
  services: Services,
  actionId: string,
  names: string,
  run: (id: number, person: Person) => Promise<string | null>,
): void {
  app.action<BlockButtonAction>(actionId, async ({ action, body, respond }) => {
    await afterAck(async () => {
      try {
        const id = parseButtonId(action.value);
        const refusal =
          id !== undefined
            ? await run(id, services.people.bySlackId(body.user.id))
            : `That button does not name ${names}.`;
        if (refusal) await respond({ response_type: "ephemeral", replace_original: false, text: refusal });
      } catch (err) {
        await replyError(respond, err, services.logger);
      }
    });
  });
}
