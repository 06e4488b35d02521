import type { App, BlockButtonAction } from "@slack/bolt";
import type { Services } from "../services/index.js";
import { ACTION } from "../slack/actions.js";
import { section } from "../slack/blocks.js";
import { parseDeploy, USAGE } from "./parse.js";
import { afterAck, replyError } from "./reply.js";
import { namesOf } from "./status.js";

/** `/deploy` and its card's Approve / Reject buttons. */
export function register(app: App, services: Services): void {
  app.command("/deploy", async ({ command, ack, respond }) => {
    await ack();
    await afterAck(async () => {
      try {
        const cmd = parseDeploy(command.text, namesOf(services));
        if (cmd.kind === "help") {
          await respond({
            response_type: "ephemeral",
            text: `Deploy\n${USAGE.deploy}`,
            blocks: [section(`*Deploy*\n${USAGE.deploy}`)],
          });
          return;
        }
        const reply = await services.deployments.request(cmd, services.people.bySlackId(command.user_id));
        if (reply) await respond({ response_type: "ephemeral", text: reply, blocks: [section(reply)] });
      } catch (err) {
        await replyError(respond, err, services.logger);
      }
    });
  });

  for (const [actionId, run] of [
    [
      ACTION.approve,
      (id: number, userId: string) => services.deployments.approve(id, services.people.bySlackId(userId)),
    ],
    [ACTION.reject, (id: number, userId: string) => services.deployments.reject(id, services.people.bySlackId(userId))],
  ] as const) {
    app.action<BlockButtonAction>(actionId, async ({ ack, action, body, respond }) => {
      await ack();
      await afterAck(async () => {
        try {
          const id = Number(action.value);
          const refusal = Number.isInteger(id) ? await run(id, body.user.id) : "That button does not name a deploy.";
          if (refusal) await respond({ response_type: "ephemeral", replace_original: false, text: refusal });
        } catch (err) {
          await replyError(respond, err, services.logger);
        }
      });
    });
  }
}
