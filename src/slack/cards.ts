import { formatLocal, formatRelative } from "../clock.js";
import type { Deployment, DeploymentStatus } from "../domain/deployment.js";
import type { Approval } from "../domain/records.js";
import { otherSide, type Side, type TrafficState, weightNow } from "../domain/traffic.js";
import { type Approver, approvalProgress } from "../policies/approvals.js";
import type { ChatMessage } from "../ports.js";
import { ACTION } from "./actions.js";
import { actions, type Block, context, escapeMrkdwn as esc, fields, header, mention, section } from "./blocks.js";

const STATUS_LINE: Record<DeploymentStatus, string> = {
  requested: ":hourglass: Requested",
  awaiting_approval: ":raised_hand: Awaiting approval",
  approved: ":white_check_mark: Approved, starting",
  denied: ":no_entry: Denied",
  rejected: ":x: Rejected",
  expired: ":alarm_clock: Expired: nobody approved in time",
  deploying: ":rocket: Deploying",
  shifting: ":twisted_rightwards_arrows: Shifting traffic",
  paused: ":double_vertical_bar: Paused",
  baking: ":bread: Baking",
  succeeded: ":large_green_circle: Succeeded",
  failed: ":red_circle: Failed",
  rolling_back: ":rewind: Rolling back",
  rolled_back: ":leftwards_arrow_with_hook: Rolled back",
  cancelled: ":heavy_minus_sign: Cancelled",
};

export interface CardContext {
  timeZone: string;
  now: Date;
  approvals: Approval[];
  /** Approvers with the roles they held when they approved. */
  approvers: Approver[];
  slackIdOf: (name: string) => string;
}

/** Who did it, as Slack shows it: a mention by Slack id, or deploybot itself. */
export const who = (name: string, slackIdOf: (name: string) => string): string =>
  name === "deploybot" ? "deploybot (automatic)" : mention(slackIdOf(name));

/** `“text”` with whatever a user typed escaped, so it can never mention a channel or forge a link. */
export const quoted = (text: string): string => `“${esc(text)}”`;

/** The one live card of a deploy, re-rendered from the store at every phase and updated in place. */
export function deployCard(d: Deployment, c: CardContext): ChatMessage {
  const by = (name: string) => who(name, c.slackIdOf);
  const flags = [
    d.flags.hotfix ? "hotfix" : "",
    d.flags.emergency ? `EMERGENCY: ${quoted(d.flags.emergency)}` : "",
    d.flags.automatic ? "automatic" : "",
    d.flags.canary ? "canary (traffic steps)" : "",
  ]
    .filter(Boolean)
    .join(" · ");
  const title = `${d.kind === "rollback" ? "Rollback" : "Deploy"} #${d.id} · ${d.service} ${d.version} → ${d.environment}`;
  let status = STATUS_LINE[d.status];
  const p = d.progress;
  const traffic = p?.traffic;
  if (d.status === "deploying" && traffic?.mode === "switch") status += ": switching all traffic back";
  else if (d.status === "deploying" && traffic?.mode === "steps" && traffic.upAt)
    status += `: up on ${sideLabel(traffic, traffic.side)}, checking its target group${traffic.healthy ? ` (${traffic.healthy.healthy}/${traffic.healthy.desired} healthy)` : ""}`;
  else if (d.status === "deploying" && !d.startedAt) status += ": starting on ECS";
  else if (d.status === "deploying" && p?.desired !== undefined) status += `: tasks ${p.running ?? 0}/${p.desired}`;
  if (d.status === "baking" && p?.bakeEndsAt) {
    const left = Date.parse(p.bakeEndsAt) - c.now.getTime();
    status += left > 0 ? `: guardrails on, ${formatRelative(left)} left` : ": bake window over, waiting on guardrails";
  }
  if (p?.detail && d.status !== "awaiting_approval") status += `\n> ${esc(p.detail)}`;
  const blocks: Block[] = [
    header(title),
    fields([
      `*Requested by*\n${by(d.requestedBy)}`,
      `*Version*\n\`${esc(d.version)}\`${d.previousVersion ? ` (from \`${esc(d.previousVersion)}\`)` : ""}`,
      `*Reason*\n${d.reason ? esc(d.reason) : "_none given_"}`,
      `*Status*\n${status}`,
    ]),
  ];
  if (flags) blocks.push(section(`*${flags}*`));
  if (traffic?.mode === "steps" && d.kind === "deploy") blocks.push(...stepsBlocks(d, traffic, c));
  if (d.approvalRule && d.approvalRule.length > 0) {
    const progress = approvalProgress(d.approvalRule, c.approvers);
    const lines = progress.groups.map(
      (g) =>
        `${g.approvedBy.length >= g.count ? ":white_check_mark:" : ":white_circle:"} ${g.count} from ${g.from.join(" or ")}${g.approvedBy.length ? `: ${g.approvedBy.map(by).join(", ")}` : ""}`,
    );
    const rejected = c.approvals.find((a) => a.decision === "reject");
    if (rejected)
      lines.push(`:x: Rejected by ${by(rejected.user)}${rejected.note ? `: ${quoted(rejected.note)}` : ""}`);
    if (d.status === "awaiting_approval" && d.expiresAt) {
      const exp = new Date(d.expiresAt);
      lines.push(`Expires ${formatLocal(exp, c.timeZone)} (in ${formatRelative(exp.getTime() - c.now.getTime())}).`);
    }
    blocks.push(section(`*Approvals*\n${lines.join("\n")}`));
  }
  if (d.status === "awaiting_approval") {
    blocks.push(
      actions(`deploy_${d.id}`, [
        { label: "Approve", actionId: ACTION.approve, value: String(d.id), style: "primary" },
        { label: "Reject", actionId: ACTION.reject, value: String(d.id), style: "danger" },
      ]),
    );
  }
  // The gate's reasons explain a pending or refused request; once decided they would only be stale.
  if (d.decision?.reasons.length && (d.status === "awaiting_approval" || d.status === "denied"))
    blocks.push(context(esc(d.decision.reasons.join(" "))));
  if (d.decision?.bypassed.length)
    blocks.push(context(`:warning: Bypassed safeties: ${esc(d.decision.bypassed.join("; "))}`));
  return { text: `${title}: ${STATUS_LINE[d.status].replace(/^:[a-z_]+: /, "")}`, blocks };
}

/** "web-green", or "production-green/frontend" when the two sides are in different clusters. */
function sideLabel(t: TrafficState, side: Side): string {
  const mine = t.plan.sides[side];
  return mine.cluster === t.plan.sides[otherSide(side)].cluster ? mine.service : `${mine.cluster}/${mine.service}`;
}

/**
 * The traffic steps of a deploy: the schedule with the current step, the weights on each side, what happens next and
 * when, and while it shifts the buttons Promote, Pause or Resume, and Abort (each checked again at the click).
 */
function stepsBlocks(d: Deployment, t: TrafficState, c: CardContext): Block[] {
  const stepping = d.status === "shifting" || d.status === "paused";
  const schedule = t.plan.steps
    .map((s, i) => (i === t.step && stepping ? `*${s.weight}%*` : `${s.weight}%`))
    .join(" → ");
  const lines = [`*Traffic steps* ${schedule}`];
  if (stepping) {
    const w = weightNow(t);
    lines.push(
      `Step ${t.step + 1} of ${t.plan.steps.length}: \`${esc(d.version)}\` ${w}% (${sideLabel(t, t.side)}) · \`${esc(d.previousVersion ?? "previous")}\` ${100 - w}% (${sideLabel(t, otherSide(t.side))})`,
    );
    const pause = t.plan.steps[t.step]?.pauseMs ?? 0;
    const next = t.plan.steps[t.step + 1];
    if (d.status === "paused")
      lines.push(
        `:double_vertical_bar: Paused by ${t.pausedBy === "deploybot" || !t.pausedBy ? "deploybot" : mention(c.slackIdOf(t.pausedBy))}${t.pauseReason ? `: ${esc(t.pauseReason)}` : ""}`,
      );
    else if (!t.stepAt)
      lines.push(next ? "Setting the weights…" : "Setting the last weights: all traffic to the new version…");
    else if (t.holdingSince) {
      const pauseAt = Date.parse(t.holdingSince) + t.plan.maxInconclusiveMs;
      lines.push(
        `Holding: ${esc(t.hold ?? "inconclusive")} (pauses for a person at ${formatLocal(new Date(pauseAt), c.timeZone)}, in ${formatRelative(Math.max(0, pauseAt - c.now.getTime()))})`,
      );
    } else if (t.hold) lines.push(`Holding: ${esc(t.hold)}`);
    else if (next) {
      // The card is edited when something happens, not every minute: the time of day stays true as it ages.
      const due = Date.parse(t.stepAt) + pause;
      const left = due - c.now.getTime();
      lines.push(
        left > 0
          ? `Next step (${next.weight}%) at ${formatLocal(new Date(due), c.timeZone)} (in ${formatRelative(left)}) if the guardrails pass`
          : `Next step (${next.weight}%) once the guardrails pass`,
      );
    }
  }
  const keep = t.keepUntil ? Date.parse(t.keepUntil) : 0;
  if (!stepping && keep > c.now.getTime() && !t.scaledDown && (d.status === "baking" || d.status === "succeeded"))
    lines.push(
      `\`${esc(d.previousVersion ?? "previous")}\` kept on ${sideLabel(t, otherSide(t.side))} until ${formatLocal(new Date(keep), c.timeZone)}: a rollback before then is one weight switch`,
    );
  const blocks: Block[] = [section(lines.join("\n"))];
  if (stepping) {
    const id = String(d.id);
    blocks.push(
      actions(`deploy_steps_${d.id}`, [
        {
          label: "Promote",
          actionId: ACTION.stepsPromote,
          value: id,
          style: "primary",
          confirm: {
            title: "Promote?",
            text: "All traffic goes to the new version now, skipping the remaining steps and their analysis.",
            confirm: "Promote",
            deny: "Cancel",
          },
        },
        d.status === "paused"
          ? { label: "Resume", actionId: ACTION.stepsResume, value: id }
          : { label: "Pause", actionId: ACTION.stepsPause, value: id },
        {
          label: "Abort",
          actionId: ACTION.stepsAbort,
          value: id,
          style: "danger",
          confirm: {
            title: "Abort?",
            text: "All traffic goes back to the previous version in one switch.",
            confirm: "Abort",
            deny: "Cancel",
          },
        },
      ]),
    );
  }
  return blocks;
}
