import type { App, BlockButtonAction } from "@slack/bolt";
import type { Services } from "../services/index.js";
import { ACTION } from "../slack/actions.js";
import { section } from "../slack/blocks.js";
import { rollbackConfirmation } from "../slack/rollback.js";
import { parseRollbackPlan } from "./buttons.js";
import { onCommand } from "./listener.js";
import { DEFAULT_COMMANDS } from "./names.js";
import { parseRollback, USAGE } from "./parse.js";
import { afterAck, replyError } from "./reply.js";
import { namesOf } from "./status.js";

/** `/rollback`: authority now, a confirmation with Roll back / Cancel, authority again at the click. */
export function register(app: App, services: Services, name: string = DEFAULT_COMMANDS.rollback): void {
  onCommand(app, services, name, async ({ text, person, respond }) => {
    const cmd = parseRollback(text, namesOf(services));
    if (cmd.kind === "help") {
      await respond({
        response_type: "ephemeral",
        text: `Rollback\n${USAGE.rollback}`,
        blocks: [section(`*Rollback*\n${USAGE.rollback}`)],
      });
      return;
    }
    const { plan, authority, needsApprovals } = await services.rollbacks.prepare(cmd, person);
    await respond({ response_type: "ephemeral", ...rollbackConfirmation(plan, authority, needsApprovals) });
  });

  app.action<BlockButtonAction>(ACTION.rollbackConfirm, async ({ action, body, respond }) => {
    await afterAck(async () => {
      try {
        const asked = parseRollbackPlan(action.value, services.config);
        const person = services.people.bySlackId(body.user.id);
        // The plan is derived again now, from the store and ECS, with authority checked again: the button
        // only says which service, environment and version were confirmed, and a forged value gains nothing.
        const { plan, authority, needsApprovals } = await services.rollbacks.prepare(
          {
            kind: "rollback",
            service: asked.service,
            environment: asked.environment,
            version: asked.toVersion,
            reason: asked.reason,
            severity: asked.severity,
          },
          person,
        );
        const r = await services.rollbacks.execute(
          plan,
          { name: person.name, slackId: person.slackId, automatic: false, authority },
          needsApprovals,
        );
        await respond({
          response_type: "ephemeral",
          replace_original: true,
          text: `Rollback #${r.id} of ${plan.service} ${plan.environment} to ${plan.toVersion}: ${r.status.replace(/_/g, " ")}. Follow it on its card in ${services.config.channels.deploys}.`,
        });
      } catch (err) {
        await replyError(respond, err, services.logger);
      }
    });
  });

  app.action<BlockButtonAction>(ACTION.rollbackCancel, async ({ respond }) => {
    await respond({ response_type: "ephemeral", replace_original: true, text: "Rollback cancelled; nothing changed." });
  });
}
