import type { PageEvent, Stickiness, TargetGroupWeight } from "../ports.js";

/**
 * An outside effect deploybot has decided on. It is written as an intent in the same transaction as the state
 * change that needs it, and the reconciler performs it (idempotently, retrying what is transient).
 */
export type Effect =
  /** Register the task definition if needed and UpdateService to the deployment's version (deploy or rollback). */
  | { kind: "ecs.rollout"; deploymentId: number }
  /** StopServiceDeployment (ROLLBACK) of the ECS deployment a rollback stops. */
  | { kind: "ecs.stop"; deploymentId: number; arn: string }
  /**
   * Traffic steps: set the forward weights of the deployment's listener rule (or listener) for step `step` of a
   * deploy, or back to the stable side for a rollback (step 0). Read first: weights already as wanted are not sent.
   */
  | { kind: "elb.weights"; deploymentId: number; step: number; weights: TargetGroupWeight[]; stickiness?: Stickiness }
  /** Scale one side's ECS service (the kept previous version once its keep is over, or a side switched away from). */
  | { kind: "ecs.scale"; deploymentId: number; cluster: string; service: string; desiredCount: number }
  /** A PagerDuty event; PagerDuty's dedup key makes a resend safe. */
  | { kind: "page"; event: PageEvent }
  /** Post the deployment's card, or update it in place, rendered from the state when sent. */
  | { kind: "slack.card"; deploymentId: number }
  /** Post an incident's message in #incidents, or update it in place. */
  | { kind: "slack.incident"; incidentId: number }
  /** A reply in the thread of a deployment's card or of an incident's message. */
  | { kind: "slack.note"; on: { deploymentId: number } | { incidentId: number }; text: string }
  /** A message of its own in a channel (an emergency announcement, a rollback report). */
  | { kind: "slack.post"; channel: string; text: string };

export type EffectKind = Effect["kind"];

export type IntentStatus = "open" | "done" | "abandoned";

/** An effect recorded for the reconciler, with its delivery state. */
export interface Intent {
  id: number;
  /** Unique: the same key is never written twice, so recording an intent is idempotent too. */
  key: string;
  effect: Effect;
  /** Intents of one lane are performed in id order (one ECS service; one Slack channel; one PagerDuty key). */
  lane: string;
  status: IntentStatus;
  attempts: number;
  nextAt: string;
  lastError: string | null;
  /** Performed only once this intent is done; abandoned with it. */
  dependsOn: number | null;
  deploymentId: number | null;
  incidentId: number | null;
  createdAt: string;
  doneAt: string | null;
  /** What the world answered (e.g. the Slack ts), or why it was abandoned. */
  result: Record<string, unknown> | null;
}
