import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { leaderGauge } from "../ops/metrics.js";
import type { Store } from "../store/index.js";
import type { Fence } from "./reconciler.js";

/** The lease the scheduled jobs and the reconciler run under. */
export const LEADER_LEASE = "leader";
/** How long a lease lasts unless renewed (DEPLOYBOT_LEASE_TTL); it is renewed every third of it. */
export const DEFAULT_LEASE_TTL_MS = 15_000;

/** A name for this process as a lease holder: host, pid and a random part (a restarted process is a new holder). */
export function holderName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
}

/** What /readyz and the logs say about leadership. */
export interface Leadership {
  leader: boolean;
  /** This process's holder name. */
  holder: string;
  /** The epoch this process leads at (0 while it never led). */
  epoch: number;
  /** Since when this process leads, or since when it is a standby. */
  since: Date;
  /** Who holds the lease as last seen (this process when it leads), and until when. */
  current: { holder: string; expiresAt: string } | null;
}

export interface LeaderLeaseOptions {
  holder: string;
  ttlMs: number;
  /** The lease's name (default "leader"). */
  name?: string;
}

/**
 * The leader lease of one process: it asks for the lease (or renews it) every third of its period. While it holds
 * it, the process leads: it runs the scheduled jobs and the reconciler. Otherwise it is a standby that serves Slack
 * requests (they write state and intents; the leader's next pass performs them) and takes the lease over within
 * one period and a third of the leader's last renewal when the leader dies.
 *
 * The lease is judged by real time (the process's clock, not the simulated one), and fenced by its epoch: every
 * claim of an intent asks the database whether this process still holds the lease at its epoch (`holds`). A renewal
 * that fails (the database is gone) ends the leadership at once, and so does a lease that runs out before a
 * renewal came back.
 */
export class LeaderLease implements Fence {
  private isLeader = false;
  private epoch = 0;
  /** Until when (ms, this process's clock) the lease is ours for sure: its expiry as the database holds it. */
  private deadline = 0;
  private since: Date;
  private current: Leadership["current"] = null;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | null = null;
  private stopped = false;
  private readonly listeners: Array<(leading: boolean) => void> = [];
  readonly name: string;

  constructor(
    private readonly d: { store: Store; logger: Logger; clock: Clock },
    private readonly options: LeaderLeaseOptions,
  ) {
    this.name = options.name ?? LEADER_LEASE;
    this.since = d.clock.now();
  }

  get holder(): string {
    return this.options.holder;
  }

  get ttlMs(): number {
    return this.options.ttlMs;
  }

  leading(): boolean {
    if (!this.isLeader) return false;
    if (this.d.clock.now().getTime() < this.deadline) return true;
    this.lose("the lease ran out before a renewal came back");
    return false;
  }

  holds(): Promise<boolean> {
    if (!this.isLeader) return Promise.resolve(false);
    return this.d.store.leases.holds(this.name, this.options.holder, this.epoch, this.d.clock.now());
  }

  /** Told with true when this process starts to lead, false when it stops. */
  onChange(listener: (leading: boolean) => void): void {
    this.listeners.push(listener);
  }

  status(): Leadership {
    return {
      leader: this.leading(),
      holder: this.options.holder,
      epoch: this.epoch,
      since: this.since,
      current: this.current,
    };
  }

  /** Leader or standby, since when, and a line that says so, for /readyz. */
  readiness(): { leader: boolean; since: Date; detail: string } {
    const s = this.status();
    const now = this.d.clock.now().getTime();
    const detail = s.leader
      ? `leader since ${s.since.toISOString()} (epoch ${s.epoch})`
      : s.current?.holder && Date.parse(s.current.expiresAt) > now
        ? `standby: ${s.current.holder} leads (lease until ${s.current.expiresAt})`
        : "standby: no leader right now; this process asks for the lease every third of its period";
    return { leader: s.leader, since: s.since, detail };
  }

  /** Asks for the lease once now, then every third of its period until stop(). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.renew();
    if (!this.isLeader && this.current) {
      this.d.logger.info(
        { leader: this.current.holder, until: this.current.expiresAt, holder: this.options.holder },
        "standby: another process leads; this one serves Slack requests and takes over if the leader stops",
      );
    }
    this.timer = setInterval(() => void this.renew(), Math.max(1, Math.floor(this.options.ttlMs / 3)));
  }

  /** One renewal (or attempt to take the lease); never overlaps another, never throws. */
  renew(): Promise<void> {
    this.renewing ??= this.renewOnce().finally(() => {
      this.renewing = null;
    });
    return this.renewing;
  }

  private async renewOnce(): Promise<void> {
    if (this.stopped) return;
    const asked = this.d.clock.now();
    let claim: Awaited<ReturnType<Store["leases"]["acquireOrRenew"]>>;
    try {
      claim = await this.d.store.leases.acquireOrRenew(this.name, this.options.holder, asked, this.options.ttlMs);
    } catch (err) {
      this.lose("the lease could not be renewed", err);
      return;
    }
    this.current = { holder: claim.lease.holder, expiresAt: claim.lease.expiresAt };
    if (!claim.held) {
      if (this.isLeader) this.lose(`${claim.lease.holder} holds the lease now (epoch ${claim.lease.epoch})`);
      return;
    }
    this.deadline = asked.getTime() + this.options.ttlMs;
    if (this.isLeader && claim.lease.epoch === this.epoch) return;
    this.isLeader = true;
    this.epoch = claim.lease.epoch;
    this.since = this.d.clock.now();
    leaderGauge.set(1);
    this.d.logger.info(
      { holder: this.options.holder, epoch: this.epoch, ttlMs: this.options.ttlMs },
      "this process leads now: it runs the scheduled jobs and performs the effects",
    );
    // A renewal that came back during stop(): stop() gives the lease up again, and nobody is told.
    if (!this.stopped) this.tell(true);
  }

  private lose(why: string, err?: unknown): void {
    if (!this.isLeader) {
      if (err) this.d.logger.warn({ err, holder: this.options.holder }, `standby: ${why}`);
      return;
    }
    this.isLeader = false;
    this.since = this.d.clock.now();
    leaderGauge.set(0);
    this.d.logger.warn(
      { ...(err ? { err } : {}), holder: this.options.holder, epoch: this.epoch },
      `this process no longer leads (${why}): it stops running the scheduled jobs`,
    );
    this.tell(false);
  }

  private tell(leading: boolean): void {
    for (const l of this.listeners) {
      try {
        l(leading);
      } catch (err) {
        this.d.logger.error({ err }, "a leadership listener failed");
      }
    }
  }

  /** Stops renewing and gives the lease up if this process holds it, so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.renewing?.catch(() => {});
    if (!this.isLeader) return;
    const epoch = this.epoch;
    this.isLeader = false;
    leaderGauge.set(0);
    this.tell(false);
    await this.d.store.leases
      .release(this.name, this.options.holder, epoch, this.d.clock.now())
      .catch((err: unknown) =>
        this.d.logger.warn({ err }, "could not give the leader lease up: a standby takes over when it expires"),
      );
  }
}
