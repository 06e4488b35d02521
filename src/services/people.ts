import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import { ONCALL } from "../config/schema.js";
import type { DirectoryPort } from "../ports.js";
import type { OnCallDirectory } from "./oncall.js";

export interface Person {
  /** The config's user key (alice), or the Slack id for someone not in the config. */
  name: string;
  slackId: string;
}

export interface HeldRoles {
  roles: Set<string>;
  /** Why the on-call role is held or not ("on call in schedule P1, level 1", "PagerDuty could not be checked: ..."). */
  oncall: string;
}

/** Who is who: config users by Slack id, their roles, and the on-call right from PagerDuty (asked at the moment of use). */
export class People {
  /** User-group members by handle, cached briefly: membership changes are rare, but roles must not lag long. */
  private readonly groups = new Map<string, { at: number; members: string[] }>();

  constructor(
    private readonly config: Config,
    private readonly oncall: OnCallDirectory | null,
    private readonly directory?: DirectoryPort,
    private readonly clock?: Clock,
  ) {}

  private async inGroup(handle: string, slackId: string): Promise<boolean> {
    if (!this.directory || !this.clock) return false;
    const now = this.clock.now().getTime();
    let entry = this.groups.get(handle);
    if (!entry || now - entry.at > 60_000) {
      entry = { at: now, members: await this.directory.usergroupMembers(handle) };
      this.groups.set(handle, entry);
    }
    return entry.members.includes(slackId);
  }

  bySlackId(slackId: string): Person {
    const entry = Object.entries(this.config.users).find(([, u]) => u.slack_id === slackId);
    return { name: entry?.[0] ?? slackId, slackId };
  }

  slackIdOf(name: string): string {
    return this.config.users[name]?.slack_id ?? name;
  }

  /** Roles from the config, plus `oncall` when PagerDuty says so right now (fail closed). */
  async rolesOf(person: Person): Promise<HeldRoles> {
    const roles = new Set<string>();
    for (const [name, r] of Object.entries(this.config.roles)) {
      if (r.users.includes(person.name)) roles.add(name);
      else {
        for (const handle of r.usergroups) {
          // A Slack outage while reading a group fails closed: the role is simply not granted.
          if (await this.inGroup(handle, person.slackId).catch(() => false)) {
            roles.add(name);
            break;
          }
        }
      }
    }
    if (!this.oncall) return { roles, oncall: "not on call: no PagerDuty schedules are configured" };
    const on = await this.oncall.isOnCall(person.slackId);
    if (on.onCall) roles.add(ONCALL);
    return { roles, oncall: on.reason };
  }
}
