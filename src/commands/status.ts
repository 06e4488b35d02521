import type { App, RespondFn } from "@slack/bolt";
import { formatLocal, formatRelative } from "../clock.js";
import type { Deployment } from "../domain/deployment.js";
import { CommandError } from "../errors.js";
import type { Services } from "../services/index.js";
import type { EnvironmentCalendar, TargetStatus } from "../services/status.js";
import { type Block, context, divider, escapeMrkdwn, header, mention, section } from "../slack/blocks.js";
import { DEFAULT_COMMANDS } from "./names.js";
import { type Names, parseStatus, USAGE } from "./parse.js";
import { afterAck, replyError } from "./reply.js";

/**
 * The status command (Slack reserves `/status`, so its name is configurable, `/deploy-status` by default): what
 * runs where, what is in flight, and what the calendar allows.
 */
export function register(app: App, services: Services, name: string = DEFAULT_COMMANDS.status): void {
  app.command(name, async ({ command, ack, respond }) => {
    await ack();
    await afterAck();
    await answerStatus(command.text, name, services, respond);
  });
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
      const blocks = [
        header("deploybot"),
        ...(await services.status.overview()).flatMap((s) => targetBlocks(s, now, services)),
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
  switch (cmd.kind) {
    case "help":
      return [section(`*Status*\n${USAGE.status.replaceAll("`/status", `\`${invokedAs}`)}`)];
    case "overview":
      return [
        header("deploybot status"),
        ...(await services.status.overview()).flatMap((s) => targetBlocks(s, now, services)),
        ...footer(now, invokedAs),
      ];
    case "service":
      return [
        header(`${cmd.service}`),
        ...(await services.status.service(cmd.service)).flatMap((s) => targetBlocks(s, now, services)),
        ...footer(now, invokedAs),
      ];
    case "target": {
      const s = await services.status.one(cmd.service, cmd.environment);
      const recent = await services.status.history(cmd.service, cmd.environment, 5);
      return [
        header(`${cmd.service} · ${cmd.environment}`),
        ...targetBlocks(s, now, services),
        ...historyBlocks(recent, s.timeZone, now, services),
      ];
    }
    case "history": {
      const list = await services.status.history(cmd.service, cmd.environment, 15);
      const tz = services.config.environments[cmd.environment]?.timezone ?? services.config.timezone;
      return [header(`History · ${cmd.service} · ${cmd.environment}`), ...historyBlocks(list, tz, now, services, true)];
    }
    case "freezes":
      return [
        header("Freezes and deploy windows"),
        ...services.status.freezes().flatMap((c) => calendarBlocks(c, now)),
      ];
  }
}

const when = (at: Date, tz: string, now: Date): string => {
  const delta = at.getTime() - now.getTime();
  return `${formatLocal(at, tz)} (${delta >= 0 ? `in ${formatRelative(delta)}` : `${formatRelative(-delta)} ago`})`;
};

/** A mention Slack resolves: the config name's Slack id (a name not in the config is already a Slack id). */
const who = (name: string, services: Services): string => mention(services.people.slackIdOf(name));

function targetBlocks(s: TargetStatus, now: Date, services: Services): Block[] {
  const version = s.version ? `\`${s.version}\`` : "_unknown_";
  const tasks = s.running !== null ? `tasks ${s.running}/${s.desired}` : `ECS unavailable: ${s.ecsError}`;
  const flight = s.inFlight
    ? `#${s.inFlight.id} ${s.inFlight.kind} \`${s.inFlight.version}\` *${s.inFlight.status.replace(/_/g, " ")}*${progressText(s.inFlight)} by ${who(s.inFlight.requestedBy, services)}`
    : "nothing in flight";
  const lock = s.lock
    ? `:lock: locked by #${s.lock.deploymentId} (${who(s.lock.holder, services)}) since ${when(new Date(s.lock.since), s.timeZone, now)}`
    : ":unlock: unlocked";
  const cal = s.calendar.open ? ":large_green_circle: open for deploys" : `:no_entry: ${s.calendar.reasons.join(" ")}`;
  const incidents = s.incidents.length
    ? `\n:rotating_light: open: ${s.incidents.map((i) => `${i.severity} “${i.guardrail}” on #${i.deploymentId} since ${when(new Date(i.since), s.timeZone, now)}`).join("; ")}`
    : "";
  const live = s.live ? ` on ${s.live}` : "";
  const kept = s.kept
    ? `\n:package: kept: \`${s.kept.version}\` on ${s.kept.where} until ${when(new Date(s.kept.until), s.timeZone, now)} (a /rollback before then is one weight switch; then it is scaled down)`
    : "";
  return [
    section(
      `*${s.service}* · *${s.environment}*  ${version}${live} · ${tasks}\n${flight} · ${lock}\n${cal}${incidents}${kept}`,
    ),
  ];
}

function progressText(d: Deployment): string {
  const p = d.progress;
  if (!p) return "";
  const t = p.traffic;
  if (t?.mode === "steps" && (d.status === "shifting" || d.status === "paused"))
    return ` (step ${t.step + 1} of ${t.plan.steps.length}: ${t.plan.steps[t.step]?.weight ?? 0}% on \`${d.version}\`)`;
  const tasks = p.desired !== undefined ? ` (tasks ${p.running ?? 0}/${p.desired})` : "";
  return `${tasks}${p.detail ? ` ${p.detail}` : ""}`;
}

function historyBlocks(list: Deployment[], tz: string, now: Date, services: Services, full = false): Block[] {
  if (list.length === 0) return [context(full ? "No deployments recorded yet." : "No deployments recorded yet.")];
  const lines = list.map(
    (d) =>
      `#${d.id} ${when(new Date(d.createdAt), tz, now)} · ${d.kind} \`${d.version}\` · *${d.status.replace(/_/g, " ")}* · ${who(d.requestedBy, services)}${
        d.reason ? ` · “${escapeMrkdwn(d.reason)}”` : ""
      }`,
  );
  return [divider(), section(`*Recent*\n${lines.join("\n")}`)];
}

function calendarBlocks(c: EnvironmentCalendar, now: Date): Block[] {
  const active = c.active.length
    ? c.active.map((f) => `:no_entry: *${f.name}* until ${when(f.endsAt, c.timeZone, now)}`).join("\n")
    : ":large_green_circle: no freeze now";
  const next = c.next
    ? `Next freeze: *${c.next.name}* from ${when(c.next.startsAt, c.timeZone, now)} to ${formatLocal(c.next.endsAt, c.timeZone)}`
    : "No freeze ahead.";
  let window = "Deploy window: any time.";
  if (c.hasWindows) {
    window =
      c.window.inside && c.window.current
        ? `Inside *${c.window.current.name}* until ${when(c.window.current.endsAt, c.timeZone, now)}`
        : c.window.next
          ? `Outside the deploy windows; next: *${c.window.next.name}* ${when(c.window.next.startsAt, c.timeZone, now)}`
          : "Outside the deploy windows.";
  }
  return [section(`*${c.environment}* (${c.timeZone})\n${active}\n${next}\n${window}`)];
}

function footer(now: Date, invokedAs: string): Block[] {
  return [context(`As of ${now.toISOString().replace(/\.\d+Z$/, "Z")} · \`${invokedAs} help\` for more`)];
}

/** A text fallback for notifications and screen readers: the blocks' text without markup. */
export function plainSummary(blocks: Block[]): string {
  const texts: string[] = [];
  for (const b of blocks) {
    const t = (b.text as { text?: string } | undefined)?.text;
    if (t) texts.push(t);
  }
  return texts.join("\n").replace(/[*_`]/g, "").slice(0, 3000);
}
