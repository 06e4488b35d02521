import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import type { Deployment } from "../domain/deployment.js";
import type { Effect, Intent } from "../domain/effects.js";
import type { Incident } from "../domain/incident.js";
import type { PageEvent, Stickiness, TargetGroupWeight } from "../ports.js";
import type { Store } from "../store/index.js";

/**
 * Where services record the outside effects they decide on. Each method writes an intent, inside the caller's
 * transaction (see `commit`), for the reconciler to perform: the state change and the effect it needs land
 * together or not at all.
 */
export class Outbox {
  private seq = 0;
  /** Set by the reconciler: asks it to run a pass once the current transaction has committed. */
  onCommit: () => void = () => {};

  constructor(private readonly d: { store: Store; config: Config; clock: Clock }) {}

  /** Runs `fn` in one transaction, then wakes the reconciler for the intents it recorded. */
  async commit<T>(fn: () => Promise<T>): Promise<T> {
    const out = await this.d.store.tx(fn);
    this.onCommit();
    return out;
  }

  private async add(
    effect: Effect,
    lane: string,
    subject: { deploymentId?: number; incidentId?: number },
    key?: string,
    dependsOn: number | null = null,
  ): Promise<Intent> {
    const at = this.d.clock.now();
    return this.d.store.intents.add({
      key:
        key ??
        `${effect.kind}:${subject.deploymentId ?? subject.incidentId ?? "-"}:${at.getTime()}:${process.pid}:${++this.seq}`,
      effect,
      lane,
      at,
      dependsOn,
      deploymentId: subject.deploymentId ?? null,
      incidentId: subject.incidentId ?? null,
    });
  }

  private slackLane(channel: string): string {
    return `slack:${channel}`;
  }

  private ecsLane(d: Deployment): string {
    return `ecs:${d.service}/${d.environment}`;
  }

  /**
   * The deployment's card, posted or updated with its state when sent. Changes coalesce into an intent nobody has
   * started on yet (it renders the latest state); once one is under way, a change queues a new one behind it.
   */
  async card(d: Deployment): Promise<Intent> {
    const open = await this.d.store.intents.openOf("slack.card", { deploymentId: d.id });
    if (open?.attempts === 0) return open;
    return this.add({ kind: "slack.card", deploymentId: d.id }, this.slackLane(this.d.config.channels.deploys), {
      deploymentId: d.id,
    });
  }

  /** The incident's #incidents message, posted or updated; one open intent per message at a time. */
  async incident(i: Incident): Promise<Intent> {
    const open = await this.d.store.intents.openOf("slack.incident", { incidentId: i.id });
    if (open?.attempts === 0) return open;
    return this.add({ kind: "slack.incident", incidentId: i.id }, this.slackLane(this.d.config.channels.incidents), {
      incidentId: i.id,
    });
  }

  /** A reply in the thread of a deployment's card. */
  noteOnCard(d: Deployment, text: string, key?: string): Promise<Intent> {
    return this.add(
      { kind: "slack.note", on: { deploymentId: d.id }, text },
      this.slackLane(this.d.config.channels.deploys),
      { deploymentId: d.id },
      key,
    );
  }

  /** A reply in the thread of an incident's message. */
  noteOnIncident(i: Incident, text: string, key?: string): Promise<Intent> {
    return this.add(
      { kind: "slack.note", on: { incidentId: i.id }, text },
      this.slackLane(this.d.config.channels.incidents),
      { incidentId: i.id },
      key,
    );
  }

  /** A message of its own in a channel. */
  post(channel: string, text: string, key?: string, subject: { deploymentId?: number } = {}): Promise<Intent> {
    return this.add({ kind: "slack.post", channel, text }, this.slackLane(channel), subject, key);
  }

  /** A PagerDuty event; `key` makes it once per dedup key, action and episode. */
  page(event: PageEvent, key: string, subject: { deploymentId?: number; incidentId?: number } = {}): Promise<Intent> {
    return this.add({ kind: "page", event }, `pagerduty:${event.dedupKey}`, subject, key);
  }

  /** Roll the deployment's version out on ECS (deploy or rollback), after `dependsOn` when given. */
  rollout(d: Deployment, dependsOn: number | null = null): Promise<Intent> {
    return this.add(
      { kind: "ecs.rollout", deploymentId: d.id },
      this.ecsLane(d),
      { deploymentId: d.id },
      `ecs.rollout:${d.id}`,
      dependsOn,
    );
  }

  /** Set the forward weights of `d`'s router for its step `step` (a rollback's switch back is its step 0). */
  weights(d: Deployment, step: number, weights: TargetGroupWeight[], stickiness?: Stickiness): Promise<Intent> {
    return this.add(
      { kind: "elb.weights", deploymentId: d.id, step, weights, ...(stickiness ? { stickiness } : {}) },
      this.ecsLane(d),
      { deploymentId: d.id },
    );
  }

  /** Scale one side's ECS service to `desiredCount`, on behalf of deployment `d`; once per deployment and service. */
  scale(d: Deployment, side: { cluster: string; service: string }, desiredCount: number): Promise<Intent> {
    return this.add(
      { kind: "ecs.scale", deploymentId: d.id, cluster: side.cluster, service: side.service, desiredCount },
      this.ecsLane(d),
      { deploymentId: d.id },
      `ecs.scale:${d.id}:${side.cluster}/${side.service}:${desiredCount}`,
    );
  }

  /** Stop the ECS deployment `arn` with ROLLBACK, for rollback `r`. */
  stop(r: Deployment, arn: string): Promise<Intent> {
    return this.add(
      { kind: "ecs.stop", deploymentId: r.id, arn },
      this.ecsLane(r),
      { deploymentId: r.id },
      `ecs.stop:${r.id}`,
    );
  }
}
