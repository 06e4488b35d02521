import { formatLocal, formatRelative } from "../clock.js";
import type { ApprovalRule, EnvironmentPolicy } from "../config/schema.js";
import { checkCalendar } from "./calendar.js";

/** What a deploy request asks for, as the gate sees it. */
export interface DeployRequest {
  service: string;
  environment: string;
  version: string;
  requester: string;
  hotfix: boolean;
  emergency: string | null;
}

/** Who holds the service/environment lock, to say so in a refusal. */
export interface LockHolder {
  deploymentId: number;
  holder: string;
  version: string;
  status: string;
  since: Date;
}

export interface DeployFacts {
  request: DeployRequest;
  policy: EnvironmentPolicy;
  timeZone: string;
  now: Date;
  lock: LockHolder | null;
}

export type Decision =
  | { outcome: "allow"; reasons: string[]; bypassed: string[] }
  | {
      outcome: "needs_approval";
      reasons: string[];
      bypassed: string[];
      rule: ApprovalRule;
      kind: "normal" | "hotfix" | "emergency";
    }
  | { outcome: "deny"; reasons: string[]; bypassed: string[] };

/**
 * The deploy gate: facts in, a Decision out, always with reasons. Pure; the clock is in the facts.
 * Order: the lock, then the calendar (an emergency may pass it with an override role's approval),
 * then the approval rule of the environment (the hotfix rule with --hotfix).
 */
export function decideDeploy(f: DeployFacts): Decision {
  const { request, policy, now, timeZone } = f;
  const label = request.environment.charAt(0).toUpperCase() + request.environment.slice(1);
  if (f.lock) {
    const l = f.lock;
    return {
      outcome: "deny",
      bypassed: [],
      reasons: [
        `${request.service} ${request.environment} is locked by deploy #${l.deploymentId} of ${l.version} (${l.status.replace(/_/g, " ")}), started by ${l.holder} at ${formatLocal(l.since, timeZone)} (${formatRelative(now.getTime() - l.since.getTime())} ago). One deploy at a time: wait for it to finish or roll it back.`,
      ],
    };
  }
  const calendar = checkCalendar(policy, timeZone, now, label);
  if (!calendar.open) {
    if (!request.emergency) {
      return {
        outcome: "deny",
        bypassed: [],
        reasons: [...calendar.reasons, 'For a critical fix, add --emergency "reason"; it needs an override approval.'],
      };
    }
    const rule = policy.emergency?.approvals ?? [];
    if (rule.length === 0) {
      return {
        outcome: "deny",
        bypassed: [],
        reasons: [
          ...calendar.reasons,
          `${label} has no emergency approvers configured, so --emergency cannot pass this.`,
        ],
      };
    }
    return {
      outcome: "needs_approval",
      kind: "emergency",
      rule,
      bypassed: calendar.blockers.map((b) => (b.kind === "freeze" ? `freeze: ${b.name}` : `deploy window: ${b.name}`)),
      reasons: [
        ...calendar.reasons,
        `Emergency: “${request.emergency}”. It may pass only with approval from ${rule.map((g) => g.from.join(" or ")).join(" and ")}, never the requester.`,
      ],
    };
  }
  const hotfixRule = policy.hotfix_approvals;
  const rule = request.hotfix && hotfixRule ? hotfixRule : policy.approvals;
  if (rule.length === 0) {
    return { outcome: "allow", bypassed: [], reasons: [...calendar.reasons, `${label} needs no approval.`] };
  }
  const kind = request.hotfix && hotfixRule ? "hotfix" : "normal";
  return {
    outcome: "needs_approval",
    kind,
    rule,
    bypassed: [],
    reasons: [
      ...calendar.reasons,
      `${kind === "hotfix" ? "A hotfix" : "This deploy"} needs approval: ${rule.map((g) => `${g.count} from ${g.from.join(" or ")}`).join(" and ")}; approvals expire after ${formatRelative(policy.approval_ttl)}.`,
    ],
  };
}
