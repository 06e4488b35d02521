import type { ApprovalRule, EnvironmentPolicy } from "../config/schema.js";
import { ONCALL } from "../config/schema.js";

export interface RollbackFacts {
  environment: string;
  policy: EnvironmentPolicy;
  user: string;
  roles: ReadonlySet<string>;
  /** Why the on-call right is held or not, from the on-call directory ("on call in schedule P1, level 1"). */
  oncall: string;
}

export type RollbackAuthority =
  | { allowed: true; reason: string; approvals: ApprovalRule }
  | { allowed: false; reason: string };

/** The roles that may roll back an environment: its rollback section, else whoever may approve its deploys. */
export function rollbackRoles(policy: EnvironmentPolicy): string[] {
  if (policy.rollback) return policy.rollback.allowed;
  return [...new Set(policy.approvals.flatMap((g) => g.from))];
}

/**
 * May this user roll back this environment right now? Pure: the roles (including the on-call right, which
 * PagerDuty grants only while it says so and never when it cannot be reached) are facts passed in.
 */
export function decideRollbackAuthority(f: RollbackFacts): RollbackAuthority {
  const allowed = rollbackRoles(f.policy);
  const approvals = f.policy.rollback?.approvals ?? [];
  if (allowed.length === 0) {
    return { allowed: true, reason: `${f.environment} has no rollback restriction`, approvals };
  }
  const configRole = allowed.find((r) => r !== ONCALL && f.roles.has(r));
  if (configRole) return { allowed: true, reason: `${f.user} holds ${configRole}`, approvals };
  if (allowed.includes(ONCALL) && f.roles.has(ONCALL))
    return { allowed: true, reason: `${f.user} is ${f.oncall}`, approvals };
  const held = [...f.roles].filter((r) => r !== ONCALL);
  const parts = [
    `Rolling back ${f.environment} needs ${allowed.map((r) => (r === ONCALL ? "being on call" : r)).join(" or ")}.`,
  ];
  parts.push(`${f.user} holds ${held.length ? held.join(", ") : "no role"}`);
  if (allowed.includes(ONCALL))
    parts[1] += f.oncall.startsWith("PagerDuty could not be checked")
      ? ` and ${f.oncall}, so the on-call right was not granted`
      : ` and is ${f.oncall}`;
  return { allowed: false, reason: `${parts[0]} ${parts[1]}.` };
}

/** May this user stop a pending automatic rollback ("Continue anyway")? Only the override roles. */
export function canOverride(policy: EnvironmentPolicy, roles: ReadonlySet<string>): boolean {
  return policy.override.some((r) => roles.has(r));
}
