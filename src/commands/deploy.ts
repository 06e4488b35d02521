import type { App, BlockButtonAction } from "@slack/bolt";
import type { Services } from "../services/index.js";
import { ACTION } from "../slack/actions.js";
import { section } from "../slack/blocks.js";
import { parseButtonId } from "./buttons.js";
import { DEFAULT_COMMANDS } from "./names.js";
import { parseDeploy, USAGE } from "./parse.js";
import { afterAck, replyError } from "./reply.js";
import { answerStatus, namesOf } from "./status.js";

/**
 * `/deploy` (with `/deploy status ...` as the status command) and its card's buttons: Approve / Reject, and while it
 * shifts traffic Promote, Pause / Resume and Abort. Every button is checked with the clicker's roles at the click.
 */
export function register(app: App, services: Services, name: string = DEFAULT_COMMANDS.deploy): void {
  app.command(name, async ({ command, ack, respond }) => {
    await ack();
    await afterAck();
    const status = /^\s*status(?:\s+|$)(.*)$/is.exec(command.text);
    if (status) {
      await answerStatus(status[1] ?? "", `${name} status`, services, respond);
      return;
    }
    try {
      const cmd = parseDeploy(command.text, namesOf(services));
      if (cmd.kind === "help") {
        const usage = `${USAGE.deploy}\nWhat runs where: \`${name} status [SERVICE [ENV]]\`, \`${name} status help\`.`;
        await respond({
          response_type: "ephemeral",
          text: `Deploy\n${usage}`,
          blocks: [section(`*Deploy*\n${usage}`)],
        });
        return;
      }
      const reply = await services.deployments.request(cmd, services.people.bySlackId(command.user_id));
      if (reply) await respond({ response_type: "ephemeral", text: reply, blocks: [section(reply)] });
    } catch (err) {
      await replyError(respond, err, services.logger);
    }
  });

  for (const [actionId, run] of [
    [
      ACTION.approve,
      (id: number, userId: string) => services.deployments.approve(id, services.people.bySlackId(userId)),
    ],
    [ACTION.reject, (id: number, userId: string) => services.deployments.reject(id, services.people.bySlackId(userId))],
    [
      ACTION.stepsPromote,
      (id: number, userId: string) => services.steps.promote(id, services.people.bySlackId(userId)),
    ],
    [ACTION.stepsPause, (id: number, userId: string) => services.steps.pause(id, services.people.bySlackId(userId))],
    [ACTION.stepsResume, (id: number, userId: string) => services.steps.resume(id, services.people.bySlackId(userId))],
    [
      ACTION.stepsAbort,
      (id: number, userId: string) => services.rollbacks.abort(id, services.people.bySlackId(userId)),
    ],
  ] as const) {
    app.action<BlockButtonAction>(actionId, async ({ ack, action, body, respond }) => {
      await ack();
      try {
        const id = parseButtonId(action.value);
        const refusal = id !== undefined ? await run(id, body.user.id) : "That button does not name a deploy.";
        if (refusal) await respond({ response_type: "ephemeral", replace_original: false, text: refusal });
      } catch (err) {
        await replyError(respond, err, services.logger);
      }
    });
  }
}
