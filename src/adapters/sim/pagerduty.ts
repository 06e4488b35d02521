import { DeploybotError, ErrorCode } from "../../errors.js";
import type { OnCallEntry, PageEvent, PagerPort } from "../../ports.js";
import type { SimWorld } from "./world.js";

/** Simulated PagerDuty: a schedule with one person on call (`:oncall NAME`), and every event recorded. */
export class SimPagerDuty implements PagerPort {
  readonly sent: PageEvent[] = [];
  constructor(private readonly world: SimWorld) {}

  async sendEvent(event: PageEvent): Promise<void> {
    this.sent.push(event);
    this.world.emit({
      kind: "page",
      action: event.action,
      dedupKey: event.dedupKey,
      severity: event.severity,
      summary: event.summary,
    });
  }

  async onCalls(scheduleIds: string[], maxLevel: number): Promise<OnCallEntry[]> {
    const state = this.world.read();
    if (!state.pagerdutyReachable) {
      throw new DeploybotError(ErrorCode.PagerDutyFailed, "PagerDuty could not be reached (simulated outage)");
    }
    const user = state.onCall ? this.world.config.users[state.onCall] : undefined;
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
