import type { Config } from "../config/schema.js";
import { ONCALL } from "../config/schema.js";
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
  constructor(
    private readonly config: Config,
    private readonly oncall: OnCallDirectory | null,
  ) {}

  bySlackId(slackId: string): Person {
    const entry = Object.entries(this.config.users).find(([, u]) => u.slack_id === slackId);
    return { name: entry?.[0] ?? slackId, slackId };
  }

  slackIdOf(name: string): string {
    return this.config.users[name]?.slack_id ?? name;
  }

  /** Roles from the config, plus `oncall` when PagerDuty says so right now (fail closed). */
  async rolesOf(person: Person): Promise<HeldRoles> {
    const roles = new Set(
      Object.entries(this.config.roles)
        .filter(([, r]) => r.users.includes(person.name))
        .map(([name]) => name),
    );
    if (!this.oncall) return { roles, oncall: "not on call: no PagerDuty schedules are configured" };
    const on = await this.oncall.isOnCall(person.slackId);
    if (on.onCall) roles.add(ONCALL);
    return { roles, oncall: on.reason };
  }
}
