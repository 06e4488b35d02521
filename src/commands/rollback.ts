import type { App, BlockButtonAction } from "@slack/bolt";
import type { Services } from "../services/index.js";
import { ACTION } from "../slack/actions.js";
import { actions, context, escapeMrkdwn, section } from "../slack/blocks.js";
import { parseRollbackPlan } from "./buttons.js";
import { DEFAULT_COMMANDS } from "./names.js";
import { parseRollback, USAGE } from "./parse.js";
import { afterAck, replyError } from "./reply.js";
import { namesOf } from "./status.js";

/** `/rollback`: authority now, a confirmation with Roll back / Cancel, authority again at the click. */
export function register(app: App, services: Services, name: string = DEFAULT_COMMANDS.rollback): void {
  app.command(name, async ({ command, ack, respond }) => {
    await ack();
    await afterAck();
    try {
      const cmd = parseRollback(command.text, namesOf(services));
      if (cmd.kind === "help") {
        await respond({
          response_type: "ephemeral",
          text: `Rollback\n${USAGE.rollback}`,
          blocks: [section(`*Rollback*\n${USAGE.rollback}`)],
        });
        return;
      }
      const { plan, authority, needsApprovals } = await services.rollbacks.prepare(
        cmd,
        services.people.bySlackId(command.user_id),
      );
      const question = `Roll back *${plan.service} ${plan.environment}* from \`${plan.fromVersion}\` to \`${plan.toVersion}\`?`;
      await respond({
        response_type: "ephemeral",
        text: question.replace(/[*`]/g, ""),
        blocks: [
          section(question),
          context(
            [
              plan.reason ? `Reason: “${escapeMrkdwn(plan.reason)}”` : "No reason given",
              plan.severity
                ? `severity ${plan.severity}${plan.severity === "P0" || plan.severity === "P1" ? " (pages PagerDuty)" : ""}`
                : "",
              `allowed because ${authority}`,
              needsApprovals ? "it will also need the rollback approvals" : "",
            ]
              .filter(Boolean)
              .join(" · "),
          ),
          actions("rollback_confirm", [
            { label: "Roll back", actionId: ACTION.rollbackConfirm, value: JSON.stringify(plan), style: "danger" },
            { label: "Cancel", actionId: ACTION.rollbackCancel, value: "cancel" },
          ]),
        ],
      });
    } catch (err) {
      await replyError(respond, err, services.logger);
    }
  });

  app.action<BlockButtonAction>(ACTION.rollbackConfirm, async ({ ack, action, body, respond }) => {
    await ack();
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

  app.action<BlockButtonAction>(ACTION.rollbackCancel, async ({ ack, respond }) => {
    await ack();
    await respond({ response_type: "ephemeral", replace_original: true, text: "Rollback cancelled; nothing changed." });
  });
}
