import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import type { Deployment } from "../domain/deployment.js";
import { findTarget } from "../domain/targets.js";
import { asDeploybotError, DeploybotError, ErrorCode } from "../errors.js";
import type { Approver } from "../policies/approvals.js";
import type { ChatMessage, ChatPort } from "../ports.js";
import { escapeMrkdwn } from "../slack/blocks.js";
import { deployCard } from "../slack/cards.js";
import { incidentMessage } from "../slack/incidents.js";
import type { Store } from "../store/index.js";
import type { Lifecycle } from "./lifecycle.js";
import type { Outbox } from "./outbox.js";
import type { People } from "./people.js";
import type { Handlers, IntentOf, Performed } from "./reconciler.js";

/** The Slack code behind a refusal (message_not_found, channel_not_found...), when Slack gave one. */
function slackCode(err: unknown): string | undefined {
  return (asDeploybotError(err).cause as { data?: { error?: string } } | undefined)?.data?.error;
}

/**
 * Slack's side of the outbox: cards and incident messages rendered from the state when sent (so a burst of
 * changes is one update) and updated in place, thread notes, and posts. Before posting again after an attempt
 * that may have reached Slack, the handler looks for the message by its key in the channel's history.
 */
export class SlackEffects {
  /** Permalinks of deploy cards (a card's link never changes once posted). */
  private readonly cardLinks = new Map<number, string>();

  constructor(
    private readonly d: {
      store: Store;
      config: Config;
      clock: Clock;
      chat: ChatPort;
      people: People;
      lifecycle: Lifecycle;
      outbox: Outbox;
      logger: Logger;
    },
  ) {}

  handlers(): Pick<Handlers, "slack.card" | "slack.incident" | "slack.note" | "slack.post"> {
    return {
      "slack.card": {
        perform: (i) => this.card(i),
        // A request whose first card never got up cannot be approved: it fails. A deploy that was to start waits
        // on this card and fails with it. Either way the requester hears it directly (a DM: the channel is what
        // failed), not only the first refusal they were told about when they asked.
        abandoned: async (i, reason) => {
          const d = await this.d.store.deployments.get(i.effect.deploymentId);
          if (!d || d.cardTs) return;
          if (d.status === "awaiting_approval")
            await this.d.lifecycle.notStarted(d, `its card could not be posted: ${reason}`);
          if (
            d.status === "awaiting_approval" ||
            ((d.status === "deploying" || d.status === "approved") && !d.startedAt)
          )
            await this.d.outbox.post(
              this.d.people.slackIdOf(d.requestedBy),
              `:red_circle: ${d.kind === "rollback" ? "Rollback" : "Deploy"} #${d.id} (${d.service} ${escapeMrkdwn(d.version)} → ${d.environment}) was not started: Slack refused its card in ${this.d.config.channels.deploys} (${escapeMrkdwn(reason)}). Nothing changed on ECS and the lock is free; fix the channel and ask again.`,
              `card-given-up:${d.id}`,
              { deploymentId: d.id },
            );
        },
        // A deploy whose first card cannot be posted never starts: it waits at most this long for Slack.
        patienceMs: async (i) => {
          const d = await this.d.store.deployments.get(i.effect.deploymentId);
          return d && !d.cardTs && !d.startedAt ? 10 * 60_000 : 24 * 3_600_000;
        },
      },
      "slack.incident": { perform: (i) => this.incident(i) },
      "slack.note": { perform: (i) => this.note(i) },
      "slack.post": { perform: (i) => this.post(i) },
    };
  }

  /** Posts (once) or updates `message` as the message of `owner`, returning the state to record. */
  private async upsert(
    intent: IntentOf<"slack.card" | "slack.incident">,
    where: { channel: string | null; ts: string | null },
    channel: string,
    message: ChatMessage,
    record: (channel: string, ts: string) => Promise<void>,
  ): Promise<Performed> {
    const { chat } = this.d;
    if (where.channel && where.ts) {
      try {
        await chat.update(where.channel, where.ts, message);
        return { result: { updated: where.ts } };
      } catch (err) {
        // Deleted by someone: post it again. Anything else (a rate limit included) is retried, never re-posted.
        if (slackCode(err) !== "message_not_found") throw err;
      }
    }
    const key = intent.key;
    if (intent.attempts > 1) {
      const ts = await chat.find(channel, key, new Date(intent.createdAt));
      if (ts) {
        await chat.update(channel, ts, message);
        return { result: { found: ts }, record: () => record(channel, ts) };
      }
    }
    const posted = await chat.post(channel, { ...message, key });
    return { result: { posted: posted.ts }, record: () => record(posted.channel, posted.ts) };
  }

  /** A later open intent renders the same message from the same state: this one need not be sent. */
  private async superseded(intent: IntentOf<"slack.card" | "slack.incident">, posted: boolean) {
    if (!posted) return undefined;
    const subject =
      intent.effect.kind === "slack.card"
        ? { deploymentId: intent.effect.deploymentId }
        : { incidentId: intent.effect.incidentId };
    const newest = await this.d.store.intents.openOf(intent.effect.kind, subject);
    return newest && newest.id > intent.id ? { result: { superseded: newest.id } } : undefined;
  }

  private async card(intent: IntentOf<"slack.card">): Promise<Performed> {
    const { store, clock, config, people } = this.d;
    const d = await store.deployments.must(intent.effect.deploymentId);
    const later = await this.superseded(intent, d.cardTs !== null);
    if (later) return later;
    const approvals = await store.approvals.of(d.id);
    const approvers: Approver[] = approvals
      .filter((a) => a.decision === "approve")
      .map((a) => ({ user: a.user, roles: new Set(a.roles) }));
    const message = deployCard(d, {
      timeZone: this.timeZone(d),
      now: clock.now(),
      approvals,
      approvers,
      slackIdOf: (n) => people.slackIdOf(n),
    });
    return this.upsert(
      intent,
      { channel: d.cardChannel, ts: d.cardTs },
      config.channels.deploys,
      message,
      async (c, ts) => {
        await store.deployments.patch(d.id, { cardChannel: c, cardTs: ts }, clock.now());
      },
    );
  }

  private async incident(intent: IntentOf<"slack.incident">): Promise<Performed> {
    const { store, clock, config, people } = this.d;
    const i = await store.incidents.must(intent.effect.incidentId);
    const later = await this.superseded(intent, i.ts !== null);
    if (later) return later;
    const d = await store.deployments.must(i.deploymentId);
    const message = incidentMessage(i, d, {
      now: clock.now(),
      cardLink: await this.cardLink(d),
      deploysChannel: config.channels.deploys,
      rollback: i.rollbackId ? ((await store.deployments.get(i.rollbackId)) ?? null) : null,
      slackIdOf: (n) => people.slackIdOf(n),
    });
    return this.upsert(intent, { channel: i.channel, ts: i.ts }, config.channels.incidents, message, async (c, ts) => {
      await store.incidents.patch(i.id, { channel: c, ts });
    });
  }

  private async note(intent: IntentOf<"slack.note">): Promise<Performed> {
    const { store, chat } = this.d;
    const on = intent.effect.on;
    const parent =
      "deploymentId" in on
        ? await store.deployments.get(on.deploymentId).then((d) => ({ channel: d?.cardChannel, ts: d?.cardTs }))
        : await store.incidents.byId(on.incidentId).then((i) => ({ channel: i?.channel, ts: i?.ts }));
    if (!parent.channel || !parent.ts) {
      const pending =
        "deploymentId" in on
          ? await store.intents.openOf("slack.card", { deploymentId: on.deploymentId })
          : await store.intents.openOf("slack.incident", { incidentId: on.incidentId });
      if (pending) return { notYet: "the message to reply to is not posted yet" };
      throw new DeploybotError(ErrorCode.SlackFailed, "the message to reply to was never posted");
    }
    if (intent.attempts > 1) {
      const ts = await chat.find(parent.channel, intent.key, new Date(intent.createdAt), parent.ts);
      if (ts) return { result: { found: ts } };
    }
    const posted = await chat.post(parent.channel, { text: intent.effect.text, key: intent.key }, parent.ts);
    return { result: { posted: posted.ts } };
  }

  private async post(intent: IntentOf<"slack.post">): Promise<Performed> {
    const { chat } = this.d;
    const { channel, text } = intent.effect;
    if (intent.attempts > 1) {
      const ts = await chat.find(channel, intent.key, new Date(intent.createdAt));
      if (ts) return { result: { found: ts } };
    }
    const posted = await chat.post(channel, { text, key: intent.key });
    return { result: { posted: posted.ts } };
  }

  private async cardLink(d: Deployment): Promise<string | null> {
    const cached = this.cardLinks.get(d.id);
    if (cached || !d.cardChannel || !d.cardTs) return cached ?? null;
    try {
      const link = await this.d.chat.permalink(d.cardChannel, d.cardTs);
      this.cardLinks.set(d.id, link);
      return link;
    } catch (err) {
      this.d.logger.warn({ err, deployment: d.id }, "no permalink for the deploy card");
      return null;
    }
  }

  private timeZone(d: Deployment): string {
    return findTarget(this.d.config, d.service, d.environment)?.timeZone ?? this.d.config.timezone;
  }
}
