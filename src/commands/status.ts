import type { App } from "@slack/bolt";
import { formatLocal, formatRelative } from "../clock.js";
import type { Deployment } from "../domain/deployment.js";
import type { Services } from "../services/index.js";
import type { EnvironmentCalendar, Overview, TargetStatus } from "../services/status.js";
import { type Block, context, divider, header, section } from "../slack/blocks.js";
import { type Names, parseStatus, USAGE } from "./parse.js";
import { afterAck, replyError } from "./reply.js";

/** `/status`: what runs where, what is in flight, and what the calendar allows. */
export function register(app: App, services: Services): void {
  app.command("/status", async ({ command, ack, respond }) => {
    await ack();
    await afterAck(async () => {
      try {
        const parsed = parseStatus(command.text, namesOf(services));
        const blocks = await render(parsed, services);
        await respond({ response_type: "ephemeral", text: plainSummary(blocks), blocks });
      } catch (err) {
        await replyError(respond, err, services.logger);
      }
    });
  });
  registerHome(app, services);
}

/** App Home: the same overview as `/status`, refreshed whenever someone opens the tab. */
function registerHome(app: App, services: Services): void {
  app.event("app_home_opened", async ({ event, client }) => {
    if (event.tab !== "home") return;
    try {
      const now = services.clock.now();
      const blocks = [header("deploybot"), ...overviewBlocks(await services.status.overview(), now), ...footer(now)];
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

async function render(cmd: ReturnType<typeof parseStatus>, services: Services): Promise<Block[]> {
  const now = services.clock.now();
  switch (cmd.kind) {
    case "help":
      return [section(`*Status*\n${USAGE.status}`)];
    case "overview":
      return [header("deploybot status"), ...overviewBlocks(await services.status.overview(), now), ...footer(now)];
    case "service":
      return [
        header(`${cmd.service}`),
        ...(await services.status.service(cmd.service)).flatMap((s) => targetBlocks(s, now)),
        ...footer(now),
      ];
    case "target": {
      const s = await services.status.one(cmd.service, cmd.environment);
      const recent = await services.status.history(cmd.service, cmd.environment, 5);
      return [
        header(`${cmd.service} · ${cmd.environment}`),
        ...targetBlocks(s, now),
        ...historyBlocks(recent, s.timeZone, now),
      ];
    }
    case "history": {
      const list = await services.status.history(cmd.service, cmd.environment, 15);
      const tz = services.config.environments[cmd.environment]?.timezone ?? services.config.timezone;
      return [header(`History · ${cmd.service} · ${cmd.environment}`), ...historyBlocks(list, tz, now, true)];
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

function targetBlocks(s: TargetStatus, now: Date): Block[] {
  const version = s.version ? `\`${s.version}\`` : "_unknown_";
  const tasks = s.running !== null ? `tasks ${s.running}/${s.desired}` : `ECS unavailable: ${s.ecsError}`;
  const flight = s.inFlight
    ? `#${s.inFlight.id} ${s.inFlight.kind} \`${s.inFlight.version}\` *${s.inFlight.status.replace(/_/g, " ")}*${progressText(s.inFlight)} by <@${s.inFlight.requestedBy}>`
    : "nothing in flight";
  const lock = s.lock
    ? `:lock: locked by #${s.lock.deploymentId} (<@${s.lock.holder}>) since ${when(new Date(s.lock.since), s.timeZone, now)}`
    : ":unlock: unlocked";
  const cal = s.calendar.open ? ":large_green_circle: open for deploys" : `:no_entry: ${s.calendar.reasons.join(" ")}`;
  const incidents = s.incidents.length
    ? `\n:rotating_light: open: ${s.incidents.map((i) => `${i.severity} “${i.guardrail}” on #${i.deploymentId} since ${when(new Date(i.since), s.timeZone, now)}`).join("; ")}`
    : "";
  return [
    section(`*${s.service}* · *${s.environment}*  ${version} · ${tasks}\n${flight} · ${lock}\n${cal}${incidents}`),
  ];
}

function overviewBlocks(o: Overview, now: Date): Block[] {
  const blocks = o.targets.flatMap((s) => targetBlocks(s, now));
  if (o.notListed > 0) {
    const busy = o.busyNotListed > 0 ? ` (${o.busyNotListed} of them busy)` : "";
    blocks.push(context(`…and ${o.notListed} more${busy}: \`/status SERVICE\` shows one service.`));
  }
  return blocks;
}

function progressText(d: Deployment): string {
  const p = d.progress;
  if (!p) return "";
  const tasks = p.desired !== undefined ? ` (tasks ${p.running ?? 0}/${p.desired})` : "";
  return `${tasks}${p.detail ? ` ${p.detail}` : ""}`;
}

function historyBlocks(list: Deployment[], tz: string, now: Date, full = false): Block[] {
  if (list.length === 0) return [context(full ? "No deployments recorded yet." : "No deployments recorded yet.")];
  const lines = list.map(
    (d) =>
      `#${d.id} ${when(new Date(d.createdAt), tz, now)} · ${d.kind} \`${d.version}\` · *${d.status.replace(/_/g, " ")}* · <@${d.requestedBy}>${
        d.reason ? ` · “${d.reason}”` : ""
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

function footer(now: Date): Block[] {
  return [context(`As of ${now.toISOString().replace(/\.\d+Z$/, "Z")} · \`/status help\` for more`)];
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
