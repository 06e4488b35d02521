import type { ApprovalRule } from "../config/schema.js";

/** Someone who clicked Approve, with the roles they held at the moment of the click. */
export interface Approver {
  user: string;
  roles: ReadonlySet<string>;
}

export interface GroupProgress {
  name: string;
  from: string[];
  count: number;
  /** Approvers counted toward this group (each approver counts toward one group only). */
  approvedBy: string[];
}

export interface ApprovalProgress {
  satisfied: boolean;
  groups: GroupProgress[];
}

const groupName = (g: ApprovalRule[number], i: number) => g.name ?? `group ${i + 1}`;

/**
 * Counts approvals against a rule: every group needs `count` approvers holding one of its roles, and
 * one person counts toward one group only (seed 004: a Technical Lead AND a Project Manager need two
 * people). Assignment uses augmenting paths, so the order of clicks never changes the answer.
 */
export function approvalProgress(rule: ApprovalRule, approvers: Approver[]): ApprovalProgress {
  const slots: number[] = [];
  rule.forEach((g, i) => {
    for (let k = 0; k < g.count; k++) slots.push(i);
  });
  const slotOwner: Array<number | undefined> = slots.map(() => undefined);
  const eligible = (a: Approver, slot: number) => (rule[slots[slot] as number]?.from ?? []).some((r) => a.roles.has(r));
  const assign = (ai: number, seen: Set<number>): boolean => {
    for (let s = 0; s < slots.length; s++) {
      if (seen.has(s) || !eligible(approvers[ai] as Approver, s)) continue;
      seen.add(s);
      const owner = slotOwner[s];
      if (owner === undefined || assign(owner, seen)) {
        slotOwner[s] = ai;
        return true;
      }
    }
    return false;
  };
  approvers.forEach((_, ai) => {
    assign(ai, new Set());
  });
  const groups = rule.map((g, i) => ({
    name: groupName(g, i),
    from: g.from,
    count: g.count,
    approvedBy: slots
      .map((gi, s) =>
        gi === i && slotOwner[s] !== undefined ? (approvers[slotOwner[s] as number] as Approver).user : undefined,
      )
      .filter((u): u is string => u !== undefined),
  }));
  return { satisfied: groups.every((g) => g.approvedBy.length >= g.count), groups };
}

export type ApprovalCheck = { ok: true } | { ok: false; reason: string };

/**
 * May `approver` approve now? Not the requester, not twice, and only holding a role of a group that
 * still needs someone (checked at the moment of the click, with the roles held then).
 */
export function canApprove(
  rule: ApprovalRule,
  approver: Approver,
  requester: string,
  already: Approver[],
): ApprovalCheck {
  if (approver.user === requester)
    return { ok: false, reason: "You asked for this deploy, so you cannot approve it: someone else must." };
  if (already.some((a) => a.user === approver.user))
    return { ok: false, reason: "You have already approved this; an approval counts once." };
  const roles = [...new Set(rule.flatMap((g) => g.from))];
  if (!roles.some((r) => approver.roles.has(r))) {
    return {
      ok: false,
      reason: `Approving needs one of these roles: ${roles.join(", ")}. You hold ${approver.roles.size ? [...approver.roles].join(", ") : "none"}.`,
    };
  }
  const before = approvalProgress(rule, already);
  const after = approvalProgress(rule, [...already, approver]);
  const counted = (p: ApprovalProgress) => p.groups.reduce((n, g) => n + g.approvedBy.length, 0);
  if (counted(after) === counted(before)) {
    const open = before.groups.filter((g) => g.approvedBy.length < g.count);
    return {
      ok: false,
      reason: `Your roles are already covered; still needed: ${open.map((g) => `${g.count - g.approvedBy.length} from ${g.from.join("/")}`).join(", ")}.`,
    };
  }
  return { ok: true };
}

/** "1 of tech_lead/devops_lead AND 1 of project_manager" */
export function describeRule(rule: ApprovalRule): string {
  return rule.map((g) => `${g.count} from ${g.from.join("/")}`).join(" AND ");
}

/**
 * The roles that may approve deploys in an environment (any of its approval rules); empty when it asks for none.
 * Traffic steps let these people pause and resume a deploy's steps.
 */
export function approverRoles(policy: {
  approvals: ApprovalRule;
  hotfix_approvals?: ApprovalRule | undefined;
  emergency?: { approvals: ApprovalRule } | undefined;
}): string[] {
  const rules = [policy.approvals, policy.hotfix_approvals ?? [], policy.emergency?.approvals ?? []];
  return [...new Set(rules.flatMap((rule) => rule.flatMap((g) => g.from)))];
}
