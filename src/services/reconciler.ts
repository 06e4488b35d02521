import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Effect, EffectKind, Intent } from "../domain/effects.js";
import { asDeploybotError, DeploybotError } from "../errors.js";
import type { Store } from "../store/index.js";

/** An intent of one effect kind, typed by its kind. */
export type IntentOf<K extends EffectKind> = Intent & { effect: Extract<Effect, { kind: K }> };

/** What a handler did: the world's answer, and the state to record with "done" in one transaction. */
export interface Performed {
  result?: Record<string, unknown>;
  record?: () => Promise<void>;
  /** Not possible yet and not a failure (a thread reply whose parent is not posted yet): try again soon. */
  notYet?: string;
}

/** How one kind of effect is performed, and what happens when deploybot gives up on one. */
export interface EffectHandler<K extends EffectKind> {
  /**
   * Performs the effect, idempotently: when `intent.attempts > 1` an earlier attempt may have reached the world,
   * so the handler reads what the world already did before acting again. Throws a DeploybotError on failure.
   */
  perform(intent: IntentOf<K>): Promise<Performed>;
  /** Why the state no longer wants this effect, if it does not: the intent is abandoned without a call. */
  unwanted?(intent: IntentOf<K>): Promise<string | null>;
  /** Runs in the transaction that abandons the intent, e.g. to fail the deploy that could not start. */
  abandoned?(intent: IntentOf<K>, reason: string): Promise<void>;
  /** How long after the intent was recorded transient failures are still retried (default 24 h). */
  patienceMs?(intent: IntentOf<K>): Promise<number> | number;
}

export type Handlers = { [K in EffectKind]: EffectHandler<K> };

const DAY_MS = 24 * 3_600_000;
/** Unexpected errors (a bug, not the world) are retried this many times, then the intent is abandoned. */
const MAX_UNEXPECTED_ATTEMPTS = 5;
/** Work done before the reconciler lets other due intents of the same pass go first. */
const PRIORITY: Record<EffectKind, number> = {
  "ecs.stop": 0,
  "ecs.rollout": 0,
  "elb.weights": 0,
  "ecs.scale": 0,
  page: 1,
  "slack.card": 2,
  "slack.incident": 2,
  "slack.note": 2,
  "slack.post": 2,
};

/**
 * Who may perform effects: the process that holds the leader lease, and only while it holds it (see leader.ts).
 * A process that is alone on its database (the console, most tests) uses ALONE.
 */
export interface Fence {
  /** In memory, cheap: whether this process leads now. A standby's kicks and passes do nothing. */
  leading(): boolean;
  /**
   * Asked inside the transaction that claims an intent or records what became of it: whether the lease is still
   * ours, at our epoch, and unexpired. False means another process leads now (or may, once it notices).
   */
  holds(): Promise<boolean>;
}

/** The fence of a process that is alone on its database: it always leads. */
export const ALONE: Fence = { leading: () => true, holds: async () => true };

/** The lease was lost during a pass: the pass stops, and the leader's next pass picks up where it left off. */
class Deposed extends Error {
  constructor() {
    super("this process no longer holds the leader lease");
  }
}

export interface ReconcilerOptions {
  /** The first retry's delay; it doubles per failed attempt (default 5 s). */
  baseDelayMs?: number;
  /** The longest delay between attempts (default 5 min). */
  maxDelayMs?: number;
  /** Who may perform effects (default ALONE). */
  fence?: Fence;
}

/**
 * The one place outside effects are performed. Each pass takes the open intents that are due and head their lane,
 * performs them through their handler, and marks each done (with the state it implies, in one transaction),
 * retried with exponential backoff and jitter (after a Retry-After when one was given), or abandoned with a reason
 * that is audited. A restart simply runs a pass: every open intent is resumed.
 *
 * Only the leader performs effects. The attempt counted before a call (the claim), and the outcome recorded after
 * it, are each written in a transaction that first checks the fence: a deposed leader that wakes up claims nothing
 * more and records nothing more, so the only call it can still make is one already under way, which the next
 * leader's idempotent handler reads from the world before acting again.
 */
export class Reconciler {
  private running: Promise<void> | null = null;
  private again = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly fence: Fence;

  constructor(
    private readonly d: { store: Store; clock: Clock; logger: Logger },
    private readonly handlers: Handlers,
    options: ReconcilerOptions = {},
  ) {
    this.baseDelayMs = options.baseDelayMs ?? 5_000;
    this.maxDelayMs = options.maxDelayMs ?? 5 * 60_000;
    this.fence = options.fence ?? ALONE;
  }

  /** Asks for a pass soon; passes never overlap, and a kick during one runs another after it. A standby's does nothing. */
  kick(): void {
    if (!this.fence.leading()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again);
    })()
      .catch((err: unknown) => this.d.logger.error({ err }, "reconciler pass failed; the next one retries"))
      .finally(() => {
        this.running = null;
      });
  }

  /** Resolves once no pass is running or asked for. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * An intent once its first attempt is over, for a reply that says how it went: on the leader, after the pass its
   * recording kicked; on a standby, once the leader's next pass (every second) has performed it or failed at it,
   * looked for every 100 ms for at most `withinMs`. Otherwise whatever it is by then (the leader is slow).
   */
  async firstAttempt(id: number, withinMs = 3_000): Promise<Intent | undefined> {
    await this.idle();
    let intent = await this.d.store.intents.byId(id);
    if (this.fence.leading()) return intent;
    const until = Date.now() + withinMs;
    while (intent?.status === "open" && intent.lastError === null && Date.now() < until) {
      await sleep(100);
      intent = await this.d.store.intents.byId(id);
    }
    return intent;
  }

  /** The scheduled job: one pass (joined with any running one). */
  async run(): Promise<void> {
    this.kick();
    await this.idle();
  }

  private async pass(): Promise<void> {
    // Each round may unblock a lane (its head is done): go round until nothing more is due now.
    for (let round = 0; round < 50; round++) {
      const due = await this.d.store.intents.due(this.d.clock.now(), 200);
      if (due.length === 0) return;
      due.sort((a, b) => PRIORITY[a.effect.kind] - PRIORITY[b.effect.kind] || a.id - b.id);
      let progressed = false;
      for (const intent of due) {
        if (!this.fence.leading()) return;
        try {
          if (await this.step(intent)) progressed = true;
        } catch (err) {
          if (err instanceof Deposed) {
            this.d.logger.warn(
              { intent: intent.id },
              "lost the leader lease during a pass: leaving the rest to the leader",
            );
            return;
          }
          // A fault in deploybot itself (or the store) on one intent must not hold up the others.
          this.d.logger.error({ err, intent: intent.id }, "could not handle an intent; the next pass tries again");
        }
      }
      if (!progressed) return;
    }
  }

  /** Performs one intent; true when it left the open state (done or abandoned). */
  private async step(intent: Intent): Promise<boolean> {
    const handler = this.handlers[intent.effect.kind] as EffectHandler<EffectKind>;
    const { store, clock } = this.d;
    if (intent.dependsOn !== null) {
      const dep = await store.intents.byId(intent.dependsOn);
      if (dep?.status === "open") return false;
      if (dep?.status === "abandoned") {
        await this.abandon(
          intent,
          handler,
          `it needed ${dep.effect.kind} #${dep.id}, which was abandoned: ${dep.lastError}`,
        );
        return true;
      }
    }
    const unwanted = await handler.unwanted?.(intent);
    if (unwanted) {
      await this.abandon(intent, handler, unwanted);
      return true;
    }
    await this.fenced(() => store.intents.attempt(intent.id));
    const attempt = { ...intent, attempts: intent.attempts + 1 };
    let performed: Performed;
    try {
      performed = await handler.perform(attempt);
    } catch (err) {
      return this.failed(attempt, handler, err);
    }
    if (performed.notYet) {
      const notYet = performed.notYet;
      await this.fenced(() =>
        store.intents.retry(intent.id, new Date(clock.now().getTime() + this.baseDelayMs), notYet),
      );
      return false;
    }
    await this.fenced(async () => {
      await performed.record?.();
      await store.intents.done(intent.id, clock.now(), performed.result ?? {});
    });
    return true;
  }

  /** Runs `fn` in one transaction that first checks the lease is still ours; throws Deposed (writing nothing) if not. */
  private fenced(fn: () => Promise<void>): Promise<void> {
    return this.d.store.tx(async () => {
      if (!(await this.fence.holds())) throw new Deposed();
      await fn();
    });
  }

  /** Retries the intent later or gives up on it; true when it gave up (the intent left the open state). */
  private async failed(intent: Intent, handler: EffectHandler<EffectKind>, err: unknown): Promise<boolean> {
    const e = asDeploybotError(err);
    const known = err instanceof DeploybotError;
    const now = this.d.clock.now().getTime();
    const patience = (await handler.patienceMs?.(intent)) ?? DAY_MS;
    const giveUp = known
      ? !e.transient || now - Date.parse(intent.createdAt) >= patience
      : intent.attempts >= MAX_UNEXPECTED_ATTEMPTS;
    this.d.logger.warn(
      { err: known ? e.message : err, intent: intent.id, kind: intent.effect.kind, attempts: intent.attempts },
      giveUp ? "giving up on an effect" : "an effect failed; it will be retried",
    );
    if (giveUp) {
      await this.abandon(intent, handler, e.message);
      return true;
    }
    await this.fenced(() =>
      this.d.store.intents.retry(intent.id, new Date(now + this.delay(intent, e.retryAfterMs)), e.message),
    );
    return false;
  }

  /**
   * Exponential backoff with a deterministic jitter of ±20% (per intent and attempt). When the other side said
   * when to come back (Slack's Retry-After), that is the delay, plus up to 20%: never sooner, and not minutes later
   * either, since everything queued behind the intent in its lane waits with it.
   */
  private delay(intent: Intent, retryAfterMs = 0): number {
    const spread = ((intent.id * 7919 + intent.attempts * 104_729) % 1000) / 1000;
    if (retryAfterMs > 0) return Math.round(retryAfterMs * (1 + 0.2 * spread));
    const exp = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.max(0, intent.attempts - 1));
    return Math.round(exp * (0.8 + 0.4 * spread));
  }

  private async abandon(intent: Intent, handler: EffectHandler<EffectKind>, reason: string): Promise<void> {
    const { store, clock } = this.d;
    await this.fenced(async () => {
      await store.intents.abandon(intent.id, clock.now(), reason);
      await store.audit.append({
        at: clock.now(),
        actor: "deploybot",
        action: "intent.abandoned",
        deploymentId: intent.deploymentId,
        service: null,
        environment: null,
        detail: { intent: intent.id, kind: intent.effect.kind, key: intent.key, reason },
      });
      await handler.abandoned?.(intent, reason);
    });
  }
}
