import type { App, RespondFn } from "@slack/bolt";
import { CommandError } from "../errors.js";
import type { Services } from "../services/index.js";
import { type Block, header, section } from "../slack/blocks.js";
import { calendarBlocks, footer, historyBlocks, overviewBlocks, plainSummary, targetBlocks } from "../slack/status.js";
import { onCommand } from "./listener.js";
import { DEFAULT_COMMANDS } from "./names.js";
import { type Names, parseStatus, USAGE } from "./parse.js";
import { replyError } from "./reply.js";

/**
 * The status command (Slack reserves `/status`, so its name is configurable, `/deploy-status` by default): what
 * runs where, what is in flight, and what the calendar allows.
 */
export function register(app: App, services: Services, name: string = DEFAULT_COMMANDS.status): void {
  onCommand(app, services, name, ({ text, respond }) => answerStatus(text, name, services, respond));
  registerHome(app, services, name);
}

/** Answers a status request typed as `invokedAs` (`/deploy-status`, `/deploy status`) with an ephemeral reply. */
export async function answerStatus(
  text: string,
  invokedAs: string,
  services: Services,
  respond: RespondFn,
): Promise<void> {
  // The parser and its usage text say `/status`; users see the name they can actually type.
  const named = (s: string) => s.replaceAll("`/status", `\`${invokedAs}`);
  try {
    const parsed = parseStatus(text, namesOf(services));
    const blocks = await render(parsed, services, invokedAs);
    await respond({ response_type: "ephemeral", text: plainSummary(blocks), blocks });
  } catch (err) {
    await replyError(
      respond,
      err instanceof CommandError ? new CommandError(named(err.message)) : err,
      services.logger,
    );
  }
}

/** App Home: the same overview as `/status`, refreshed whenever someone opens the tab. */
function registerHome(app: App, services: Services, name: string): void {
  app.event("app_home_opened", async ({ event, client }) => {
    if (event.tab !== "home") return;
    try {
      const now = services.clock.now();
      const slackIdOf = (n: string) => services.people.slackIdOf(n);
      const blocks = [
        header("deploybot"),
        ...overviewBlocks(await services.status.overview(), now, slackIdOf, name),
        ...footer(now, name),
      ];
      await client.views.publish({ user_id: event.user, view: { type: "home", blocks: blocks as never } });
    } catch (err) {
      services.logger.error({ err }, "could not publish App Home");
    }
  });
}

export function namesOf(services: Services): Names {
  const { config } = services;
  return {
    services: Object.keys(config.services),
    environments: Object.keys(config.environments),
    environmentsOf: (s) => Object.keys(config.services[s]?.environments ?? {}),
  };
}

async function render(cmd: ReturnType<typeof parseStatus>, services: Services, invokedAs: string): Promise<Block[]> {
  const now = services.clock.now();
  const slackIdOf = (n: string) => services.people.slackIdOf(n);
  switch (cmd.kind) {
    case "help":
      return [section(`*Status*\n${USAGE.status.replaceAll("`/status", `\`${invokedAs}`)}`)];
    case "overview":
      return [
        header("deploybot status"),
        ...overviewBlocks(await services.status.overview(), now, slackIdOf, invokedAs),
        ...footer(now, invokedAs),
      ];
    case "service":
      return [
        header(`${cmd.service}`),
        ...(await services.status.service(cmd.service)).flatMap((s) => targetBlocks(s, now, slackIdOf)),
        ...footer(now, invokedAs),
      ];
    case "target": {
      const s = await services.status.one(cmd.service, cmd.environment);
      const recent = await services.status.history(cmd.service, cmd.environment, 5);
      return [
        header(`${cmd.service} · ${cmd.environment}`),
        ...targetBlocks(s, now, slackIdOf),
        ...historyBlocks(recent, s.timeZone, now, slackIdOf),
      ];
    }
    case "history": {
      const list = await services.status.history(cmd.service, cmd.environment, 15);
      const tz = services.config.environments[cmd.environment]?.timezone ?? services.config.timezone;
      return [
        header(`History · ${cmd.service} · ${cmd.environment}`),
        ...historyBlocks(list, tz, now, slackIdOf, true),
      ];
    }
    case "freezes":
      return [
        header("Freezes and deploy windows"),
        ...services.status.freezes().flatMap((c) => calendarBlocks(c, now)),
      ];
  }
}
