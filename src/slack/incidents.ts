import { formatLocal, formatRelative } from "../clock.js";
import type { Deployment } from "../domain/deployment.js";
import { ACTIONABLE, type Incident, type IncidentState } from "../domain/incident.js";
import type { AuditEntry } from "../domain/records.js";
import { formatValue, sparkline } from "../policies/guardrail-format.js";
import type { ChatMessage } from "../ports.js";
import { ACTION } from "./actions.js";
import { actions, type Block, type Button, context, escapeMrkdwn as esc, section } from "./blocks.js";
import { quoted, who } from "./cards.js";

export interface IncidentContext {
  now: Date;
  /** The deploy card's permalink, when known. */
  cardLink: string | null;
  deploysChannel: string;
  /** The rollback the incident started, if any. */
  rollback: Deployment | null;
  slackIdOf: (name: string) => string;
}

/** What deploybot does about the breach now, in words, by the incident's state. */
function plan(i: Incident, c: IncidentContext): string {
  if (i.shadow) return "Shadow mode: reported only, nothing is done.";
  const rollback = c.rollback ? `Rollback #${c.rollback.id} (${c.rollback.status.replace(/_/g, " ")})` : "Rollback";
  const words: Record<IncidentState, string> = {
    open: i.note ? `No automatic rollback: ${esc(i.note)}.` : i.pageKey ? "Paged PagerDuty." : "Slack only.",
    rollback_pending: `Rolling back in ${formatRelative(Math.max(0, Date.parse(i.rollbackAt ?? "") - c.now.getTime()))} unless someone with the override role presses Continue anyway.`,
    rolling_back: `${rollback} is running.`,
    rolled_back: `${rollback} finished; watching the restored version.`,
    overridden: `Continued anyway by ${i.overriddenBy}: no automatic rollback.`,
    recovered: c.rollback ? `${rollback}; recovered.` : "Recovered.",
    closed: "Closed: no longer watched.",
  };
  return words[i.state];
}

/** The #incidents message of a breach, rendered from the incident and updated in place as it moves. */
export function incidentMessage(i: Incident, d: Deployment, c: IncidentContext): ChatMessage {
  const det = i.detail;
  const shadow = i.shadow ? "[shadow] " : "";
  const level = i.severity === "critical" ? ":rotating_light: *CRITICAL*" : ":warning: *Warning*";
  const verb = i.state === "recovered" ? "recovered" : i.state === "closed" ? "closed" : "breached";
  const title = `${shadow}${level} ${d.service} ${d.environment}: guardrail “${esc(i.guardrail)}” ${verb}`;
  const values = det.values.length
    ? `\`${sparkline(det.values)}\` latest ${det.observed !== null ? formatValue(det.observed, det.unit) : "?"}`
    : "";
  const card = c.cardLink ? `<${c.cardLink}|deploy card>` : `card in ${c.deploysChannel}`;
  const blocks: Block[] = [
    section(`${title}\n${esc(det.reason)}${values ? `\n${values}` : ""}`),
    context(
      `${d.kind === "rollback" ? "Rollback" : "Deploy"} #${d.id} \`${esc(d.version)}\` by ${who(d.requestedBy, c.slackIdOf)} · ${card} · threshold ${esc(det.threshold)} · ${plan(i, c)}${i.acknowledgedBy ? ` · acknowledged by ${i.acknowledgedBy}` : ""}`,
    ),
  ];
  if (ACTIONABLE.has(i.state) && !i.shadow && i.severity === "critical") {
    const buttons: Button[] = [];
    if (d.kind === "deploy")
      buttons.push({
        label: "Roll back now",
        actionId: ACTION.incidentRollbackNow,
        value: String(i.id),
        style: "danger",
      });
    if (i.state !== "overridden")
      buttons.push({ label: "Continue anyway", actionId: ACTION.incidentContinue, value: String(i.id) });
    if (!i.acknowledgedBy)
      buttons.push({ label: "Acknowledge", actionId: ACTION.incidentAcknowledge, value: String(i.id) });
    if (buttons.length > 0) blocks.push(actions(`incident_${i.id}`, buttons));
  }
  return { text: title.replace(/[*:]/g, ""), blocks };
}

export interface PostmortemContext {
  timeZone: string;
  /** The deploy's audit entries, then the rollback's. */
  deployLog: AuditEntry[];
  rollbackLog: AuditEntry[];
  /** When the restored version was stable on ECS. */
  stableAt: string;
  slackIdOf: (name: string) => string;
}

/** Seed 000's post-mortem template, filled from the audit log. */
export function postmortem(i: Incident, d: Deployment, r: Deployment, c: PostmortemContext): string {
  const t = (iso: string | undefined) =>
    iso ? formatLocal(new Date(iso), c.timeZone).replace(/^\w+ \d+ \w+ /, "") : "?";
  const started = c.deployLog.find((e) => e.action === "ecs.update_service")?.at ?? d.startedAt ?? d.createdAt;
  const initiated = c.rollbackLog.find((e) => e.action === "rollback.requested")?.at ?? r.createdAt;
  const span = (a?: string, b?: string) => (a && b ? ` (+${formatRelative(Date.parse(b) - Date.parse(a))})` : "");
  return [
    "*Post-mortem draft*",
    `*Incident/Deployment:* ${d.service} ${d.version} → ${d.environment} (deploy #${d.id}, rollback #${r.id})`,
    `*Date:* ${formatLocal(new Date(started), c.timeZone)}`,
    `*Severity:* ${i.severity === "critical" ? "P1" : "P2"} (guardrail “${esc(i.guardrail)}”)`,
    `*Duration:* ${formatRelative(Date.parse(c.stableAt) - Date.parse(i.firstSeen))} from breach to stable`,
    "*What Happened:*",
    esc(i.detail.reason),
    "*Root Cause:*",
    "_to be written_",
    "*Timeline:*",
    `• ${t(started)}: Deployment started`,
    `• ${t(i.firstSeen)}: ${esc(i.guardrail)} breach detected${span(started, i.firstSeen)}`,
    `• ${t(initiated)}: Rollback initiated${span(i.firstSeen, initiated)}${r.flags.automatic ? " (automatic)" : ` by ${who(r.requestedBy, c.slackIdOf)}`}`,
    `• ${t(c.stableAt)}: Services stable on ${r.version}${span(initiated, c.stableAt)}`,
    "*Action Items:*",
    "• [ ] Improve pre-deployment testing",
    `• [ ] Review the “${esc(i.guardrail)}” guardrail`,
  ].join("\n");
}

/** The #incidents report of a rollback that ended, one line. */
export function rollbackReport(
  r: Deployment,
  ok: boolean,
  detail: string,
  took: string,
  slackIdOf: (name: string) => string,
): string {
  const by = r.flags.automatic ? "deploybot (automatic)" : who(r.requestedBy, slackIdOf);
  return ok
    ? `:leftwards_arrow_with_hook: Rolled back *${r.service} ${r.environment}* from \`${esc(r.previousVersion ?? "?")}\` to \`${esc(r.version)}\` by ${by}${r.flags.severity ? ` (${r.flags.severity})` : ""}${r.reason ? `: ${quoted(r.reason)}` : ""}. Took ${took}.`
    : `:red_circle: Rollback #${r.id} of *${r.service} ${r.environment}* to \`${esc(r.version)}\` by ${by} FAILED after ${took}: ${esc(detail)}`;
}
