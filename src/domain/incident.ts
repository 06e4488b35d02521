import { Machine } from "./machine.js";

/** Every state a guardrail incident (one breach episode of one guardrail of one deployment) can be in. */
export const INCIDENT_STATES = [
  "open",
  "rollback_pending",
  "rolling_back",
  "rolled_back",
  "overridden",
  "recovered",
  "closed",
] as const;
export type IncidentState = (typeof INCIDENT_STATES)[number];

/**
 * The incident state machine. Acknowledging is not a state: it says who is on it and stops PagerDuty's
 * escalation, and it may happen in any active state without changing what deploybot does next.
 */
export const incidentMachine = new Machine("incident", INCIDENT_STATES, {
  /** The grace period of an automatic rollback starts (at the breach, or when a failed rollback is retried). */
  schedule_rollback: { from: ["open"], to: "rollback_pending" },
  /** A rollback was recorded (automatically after the grace period, or Roll back now). */
  start_rollback: { from: ["open", "rollback_pending", "overridden"], to: "rolling_back" },
  /** The rollback finished; the incident waits for the metric to recover on the restored version. */
  rollback_done: { from: ["rolling_back"], to: "rolled_back" },
  /** The rollback could not go ahead; people decide again (Roll back now is offered). */
  rollback_failed: { from: ["rolling_back"], to: "open" },
  /** Someone with the override role chose to continue: no automatic rollback. */
  override: { from: ["open", "rollback_pending"], to: "overridden" },
  /** The metric is within its threshold again (the page is resolved). */
  recover: { from: ["open", "rollback_pending", "overridden", "rolled_back"], to: "recovered" },
  /** Breaching again after a recovery: a new episode, paged again. */
  breach_again: { from: ["recovered"], to: "open" },
  /** Nothing watches it any more (the deploy ended, was superseded or accepted by an override). */
  close: { from: ["open", "rollback_pending", "overridden", "rolled_back", "recovered"], to: "closed" },
});
export type IncidentEvent = keyof typeof incidentMachine.events;

const group = (...states: IncidentState[]): ReadonlySet<IncidentState> => new Set(states);

/** Not resolved: its page (if any) is open and the monitor keeps evaluating it. */
export const ACTIVE = group("open", "rollback_pending", "rolling_back", "rolled_back", "overridden");
const UNSETTLED = group("open", "rollback_pending", "rolling_back", "rolled_back");

/**
 * Holds its deploy's bake open: an unresolved breach that pages or rolls back, not accepted by an override and not
 * in shadow mode. Warnings (Slack only) are reported with the outcome but do not hold it.
 */
export const blocksSuccess = (i: Pick<Incident, "state" | "shadow" | "action">): boolean =>
  UNSETTLED.has(i.state) && !i.shadow && i.action !== "alert";
/** People may still act on it from Slack (Roll back now, Continue anyway, Acknowledge). */
export const ACTIONABLE = group("open", "rollback_pending", "overridden");

export type GuardrailAction = "alert" | "page" | "rollback";

/** One guardrail's breach of one deployment, and what deploybot and people did about it. */
export interface Incident {
  id: number;
  deploymentId: number;
  guardrail: string;
  severity: "warning" | "critical";
  action: GuardrailAction;
  shadow: boolean;
  state: IncidentState;
  /** Breach episodes so far: a breach after a recovery starts episode 2, paged again. */
  episode: number;
  firstSeen: string;
  lastSeen: string;
  resolvedAt: string | null;
  /** When the automatic rollback is due (rollback_pending). */
  rollbackAt: string | null;
  rollbackId: number | null;
  overriddenBy: string | null;
  acknowledgedBy: string | null;
  /** PagerDuty's dedup key, when the guardrail pages. */
  pageKey: string | null;
  /** Why no automatic rollback happens, when one would have (e.g. no previous version is known). */
  note: string | null;
  channel: string | null;
  ts: string | null;
  /** The latest evaluation: reason in words, the value quoted, recent values and their unit and threshold. */
  detail: IncidentDetail;
}

export interface IncidentDetail {
  reason: string;
  observed: number | null;
  values: number[];
  unit: "percent" | "seconds" | "count";
  threshold: string;
}
