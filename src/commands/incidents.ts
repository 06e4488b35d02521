import type { App, BlockButtonAction } from "@slack/bolt";
import type { Services } from "../services/index.js";
import { ACTION } from "../slack/actions.js";
import { afterAck, replyError } from "./reply.js";

/** The buttons of a guardrail breach in #incidents: Roll back now, Continue anyway, Acknowledge. */
export function register(app: App, services: Services): void {
  const handlers = {
    [ACTION.incidentRollbackNow]: services.incidents.rollbackNow.bind(services.incidents),
    [ACTION.incidentContinue]: services.incidents.continueAnyway.bind(services.incidents),
    [ACTION.incidentAcknowledge]: services.incidents.acknowledge.bind(services.incidents),
  };
  for (const [actionId, run] of Object.entries(handlers)) {
    app.action<BlockButtonAction>(actionId, async ({ ack, action, body, respond }) => {
      await ack();
      await afterAck(async () => {
        try {
          const id = Number(action.value);
          // Each handler checks the clicker's roles now, not when the message was posted.
          const refusal = Number.isInteger(id)
            ? await run(id, services.people.bySlackId(body.user.id))
            : "That button does not name an incident.";
          if (refusal) await respond({ response_type: "ephemeral", replace_original: false, text: refusal });
        } catch (err) {
          await replyError(respond, err, services.logger);
        }
      });
    });
  }
}
