import type { App, BlockButtonAction } from "@slack/bolt";
import { CommandError } from "../errors.js";
import type { Services } from "../services/index.js";
import type { RollbackPlan } from "../services/rollbacks.js";
import { ACTION } from "../slack/actions.js";
import { actions, context, section } from "../slack/blocks.js";
import { parseRollback, USAGE } from "./parse.js";
import { afterAck, replyError } from "./reply.js";
import { namesOf } from "./status.js";

/** `/rollback`: authority now, a confirmation with Roll back / Cancel, authority again at the click. */
export function register(app: App, services: Services): void {
  app.command("/rollback", async ({ command, ack, respond }) => {
    await ack();
    await afterAck(async () => {
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
                plan.reason ? `Reason: “${plan.reason}”` : "No reason given",
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
  });

  app.action<BlockButtonAction>(ACTION.rollbackConfirm, async ({ ack, action, body, respond }) => {
    await ack();
    await afterAck(async () => {
      try {
        const asked = readPlan(action.value, services);
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

  app.action<BlockButtonAction>(ACTION.rollbackCancel, async ({ ack, respond }) => {
    await ack();
    await respond({ response_type: "ephemeral", replace_original: true, text: "Rollback cancelled; nothing changed." });
  });
}

/** The plan carried by the button, validated against the config (a forged value changes nothing). */
function readPlan(value: string | undefined, services: Services): RollbackPlan {
  let plan: RollbackPlan;
  try {
    plan = JSON.parse(value ?? "") as RollbackPlan;
  } catch {
    throw new CommandError("That button does not carry a rollback; run /rollback again.");
  }
  const severities = [null, "P0", "P1", "P2", "P3"];
  if (
    !services.config.services[plan.service]?.environments[plan.environment] ||
    typeof plan.toVersion !== "string" ||
    !severities.includes(plan.severity ?? null) ||
    (plan.reason !== null && (typeof plan.reason !== "string" || plan.reason.length > 500))
  ) {
    throw new CommandError(
      "That rollback names a service or environment deploybot does not know; run /rollback again.",
    );
  }
  return plan;
}
