import type { App } from "@slack/bolt";
import type { Services } from "../services/index.js";
import { ACTION } from "../slack/actions.js";
import { section } from "../slack/blocks.js";
import { onButton, onCommand } from "./listener.js";
import { DEFAULT_COMMANDS } from "./names.js";
import { parseDeploy, USAGE } from "./parse.js";
import { answerStatus, namesOf } from "./status.js";

/**
 * `/deploy` (with `/deploy status ...` as the status command) and its card's buttons: Approve / Reject, and while it
 * shifts traffic Promote, Pause / Resume and Abort. Every button is checked with the clicker's roles at the click.
 */
export function register(app: App, services: Services, name: string = DEFAULT_COMMANDS.deploy): void {
  onCommand(app, services, name, async ({ text, person, respond }) => {
    const status = /^\s*status(?:\s+|$)(.*)$/is.exec(text);
    if (status) {
      await answerStatus(status[1] ?? "", `${name} status`, services, respond);
      return;
    }
    const cmd = parseDeploy(text, namesOf(services));
    if (cmd.kind === "help") {
      const usage = `${USAGE.deploy}\nWhat runs where: \`${name} status [SERVICE [ENV]]\`, \`${name} status help\`.`;
      await respond({ response_type: "ephemeral", text: `Deploy\n${usage}`, blocks: [section(`*Deploy*\n${usage}`)] });
      return;
    }
    const reply = await services.deployments.request(cmd, person);
    if (reply) await respond({ response_type: "ephemeral", text: reply, blocks: [section(reply)] });
  });
  onButton(app, services, ACTION.approve, "a deploy", (id, person) => services.deployments.approve(id, person));
  onButton(app, services, ACTION.reject, "a deploy", (id, person) => services.deployments.reject(id, person));
  onButton(app, services, ACTION.stepsPromote, "a deploy", (id, person) => services.steps.promote(id, person));
  onButton(app, services, ACTION.stepsPause, "a deploy", (id, person) => services.steps.pause(id, person));
  onButton(app, services, ACTION.stepsResume, "a deploy", (id, person) => services.steps.resume(id, person));
  onButton(app, services, ACTION.stepsAbort, "a deploy", (id, person) => services.rollbacks.abort(id, person));
}
