import { DeploybotError, ErrorCode } from "../../errors.js";
import type { OnCallEntry, PageEvent, PagerPort } from "../../ports.js";
import type { SimWorld } from "./world.js";
import type { SimPage } from "./world-state.js";

/**
 * Simulated PagerDuty: a schedule with one person on call (`:oncall NAME`), and Events API v2 with dedup keys
 * honoured as PagerDuty does (see SimWorld.page). `:down pagerduty` makes every call a network error.
 */
export class SimPagerDuty implements PagerPort {
  constructor(private readonly world: SimWorld) {}

  /** Every event PagerDuty accepted, oldest first, kept in the world (deduplicated ones marked). */
  get accepted(): SimPage[] {
    return this.world.pages();
  }

  async sendEvent(event: PageEvent): Promise<void> {
    this.world.admit("pagerduty", event.action, {});
    const page = this.world.page({
      action: event.action,
      dedupKey: event.dedupKey,
      severity: event.severity,
      summary: event.summary,
    });
    this.world.emit({
      kind: "page",
      action: page.action,
      dedupKey: page.dedupKey,
      severity: page.severity,
      summary: page.summary,
      ...(page.deduplicated ? { deduplicated: true } : {}),
    });
    this.world.completed("pagerduty", event.action);
  }

  async onCalls(scheduleIds: string[], maxLevel: number): Promise<OnCallEntry[]> {
    this.world.admit("pagerduty", "onCalls", {});
    const state = this.world.read();
    if (!state.pagerdutyReachable) {
      throw new DeploybotError(ErrorCode.PagerDutyFailed, "PagerDuty could not be reached (simulated outage)", {
        transient: true,
      });
    }
    const user = state.onCall ? this.world.config.users[state.onCall] : undefined;
    this.world.completed("pagerduty", "onCalls");
    if (!user || maxLevel < 1 || scheduleIds.length === 0) return [];
    return [
      {
        scheduleId: scheduleIds[0] as string,
        escalationLevel: 1,
        userName: user.name,
        userEmail: user.email ?? `${state.onCall}@example.com`,
      },
    ];
  }
}
