import { formatLocal, formatRelative } from "../clock.js";
import type { Deployment } from "../domain/deployment.js";
import type { Lock } from "../domain/records.js";
import type { ActiveFreeze, CalendarVerdict, UpcomingFreeze, windowStatus } from "../policies/calendar.js";
import { type Block, context, divider, escapeMrkdwn, mention, section } from "./blocks.js";

/** What /status (and App Home) show: the answers, as the status service reads them, and their Block Kit. */

export interface TargetStatus {
  service: string;
  environment: string;
  timeZone: string;
  version: string | null;
  taskDefinition: string | null;
  running: number | null;
  desired: number | null;
  /** Why ECS could not be read, when it could not. */
  ecsError: string | null;
  inFlight: Deployment | null;
  lock: Lock | null;
  calendar: CalendarVerdict;
  /** Guardrail breaches still open on this service and environment. */
  incidents: Array<{ guardrail: string; severity: string; deploymentId: number; since: string }>;
  /** With traffic steps: the ECS service taking the traffic now, and the previous version kept on the other side. */
  live?: string;
  kept?: { version: string; where: string; until: string; deploymentId: number } | null;
}

export interface EnvironmentCalendar {
  environment: string;
  timeZone: string;
  active: ActiveFreeze[];
  next: UpcomingFreeze | null;
  window: ReturnType<typeof windowStatus>;
  hasWindows: boolean;
}

const when = (at: Date, tz: string, now: Date): string => {
  const delta = at.getTime() - now.getTime();
  return `${formatLocal(at, tz)} (${delta >= 0 ? `in ${formatRelative(delta)}` : `${formatRelative(-delta)} ago`})`;
};

/** How people are named: a mention of their Slack id. */
export type SlackIdOf = (name: string) => string;

/** One service in one environment: version, tasks, what is in flight, the lock, the calendar, open incidents. */
export function targetBlocks(s: TargetStatus, now: Date, slackIdOf: SlackIdOf): Block[] {
  const who = (name: string) => mention(slackIdOf(name));
  const version = s.version ? `\`${s.version}\`` : "_unknown_";
  const tasks = s.running !== null ? `tasks ${s.running}/${s.desired}` : `ECS unavailable: ${s.ecsError}`;
  const flight = s.inFlight
    ? `#${s.inFlight.id} ${s.inFlight.kind} \`${s.inFlight.version}\` *${s.inFlight.status.replace(/_/g, " ")}*${progressText(s.inFlight)} by ${who(s.inFlight.requestedBy)}`
    : "nothing in flight";
  const lock = s.lock
    ? `:lock: locked by #${s.lock.deploymentId} (${who(s.lock.holder)}) since ${when(new Date(s.lock.since), s.timeZone, now)}`
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

/**
 * The overview: one block per listed target, then how many more are configured than fit in one message (a Slack
 * message holds 50 blocks) and how to see them.
 */
export function overviewBlocks(
  o: { targets: TargetStatus[]; notListed: number; busyNotListed: number },
  now: Date,
  slackIdOf: SlackIdOf,
  invokedAs: string,
): Block[] {
  const blocks = o.targets.flatMap((s) => targetBlocks(s, now, slackIdOf));
  if (o.notListed > 0) {
    const busy = o.busyNotListed > 0 ? ` (${o.busyNotListed} of them busy)` : "";
    blocks.push(context(`…and ${o.notListed} more${busy}: \`${invokedAs} SERVICE\` shows one service.`));
  }
  return blocks;
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

/** The recent deployments of a target, newest first. */
export function historyBlocks(list: Deployment[], tz: string, now: Date, slackIdOf: SlackIdOf, full = false): Block[] {
  if (list.length === 0) return [context(full ? "No deployments recorded yet." : "No deployments recorded yet.")];
  const lines = list.map(
    (d) =>
      `#${d.id} ${when(new Date(d.createdAt), tz, now)} · ${d.kind} \`${d.version}\` · *${d.status.replace(/_/g, " ")}* · ${mention(slackIdOf(d.requestedBy))}${
        d.reason ? ` · “${escapeMrkdwn(d.reason)}”` : ""
      }`,
  );
  return [divider(), section(`*Recent*\n${lines.join("\n")}`)];
}

/** An environment's freezes and deploy windows. */
export function calendarBlocks(c: EnvironmentCalendar, now: Date): Block[] {
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

/** When the answer was read, and how to ask for more. */
export function footer(now: Date, invokedAs: string): Block[] {
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
