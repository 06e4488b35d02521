import type { RollbackRequest } from "../domain/requests.js";
import type { ChatMessage } from "../ports.js";
import { ACTION } from "./actions.js";
import { actions, context, escapeMrkdwn, section } from "./blocks.js";

/** What a confirmed rollback will do, as /rollback offers it (the button names it; it is derived again at the click). */
export interface RollbackOffer {
  service: string;
  environment: string;
  fromVersion: string;
  toVersion: string;
  reason: string | null;
  severity: RollbackRequest["severity"];
}

/** The ephemeral confirmation of /rollback: what would happen, why it is allowed, Roll back / Cancel. */
export function rollbackConfirmation(plan: RollbackOffer, authority: string, needsApprovals: boolean): ChatMessage {
  const question = `Roll back *${plan.service} ${plan.environment}* from \`${escapeMrkdwn(plan.fromVersion)}\` to \`${escapeMrkdwn(plan.toVersion)}\`?`;
  return {
    text: question.replace(/[*`]/g, ""),
    blocks: [
      section(question),
      context(
        [
          plan.reason ? `Reason: “${escapeMrkdwn(plan.reason)}”` : "No reason given",
          plan.severity
            ? `severity ${plan.severity}${plan.severity === "P0" || plan.severity === "P1" ? " (pages PagerDuty)" : ""}`
            : "",
          `allowed because ${escapeMrkdwn(authority)}`,
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
  };
}
