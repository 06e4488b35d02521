/**
 * The Slack requests being answered right now. Background work (the monitor's and tick's slices, the work a command
 * does after its ack) waits while any is open, so a burst of requests is acked before anything else takes the event
 * loop: Slack gives an ack 3 seconds, and a reply 30 minutes.
 *
 * Work resumes once no request has been open for LINGER_MS (a burst arrives over milliseconds, not at once). Two
 * bounds keep this from stalling the background: a request open longer than HOLD_MAX_MS (a client that never
 * finishes sending) stops counting, and no wait lasts longer than WAIT_MAX_MS (a steady stream of requests slows
 * the monitor down, never stops it). Fed by the HTTP receiver (from a request's arrival to its answer) and by
 * ackOnArrival (around each ack, which is all Socket Mode and the console show of a request).
 */
export const HOLD_MAX_MS = 1000;
export const WAIT_MAX_MS = 100;
export const LINGER_MS = 5;

export interface ForegroundTimes {
  holdMaxMs: number;
  waitMaxMs: number;
  lingerMs: number;
}

export class Foreground {
  private readonly times: ForegroundTimes;
  /** Open requests by token, with when each arrived. */
  private readonly open = new Map<number, number>();
  private nextToken = 0;
  private lastAnswerAt = Number.NEGATIVE_INFINITY;
  private waiters: Array<() => void> = [];
  private releasing = false;

  constructor(times: Partial<ForegroundTimes> = {}) {
    this.times = { holdMaxMs: HOLD_MAX_MS, waitMaxMs: WAIT_MAX_MS, lingerMs: LINGER_MS, ...times };
  }

  /** A request arrived; the function returned says it was answered (calling it again does nothing). */
  enter(): () => void {
    const token = this.nextToken++;
    this.open.set(token, performance.now());
    return () => {
      if (!this.open.delete(token)) return;
      this.lastAnswerAt = performance.now();
      if (this.open.size === 0) this.releaseSoon();
    };
  }

  /** Whether a request is open (and young enough to count), or one was answered less than LINGER_MS ago. */
  get busy(): boolean {
    const now = performance.now();
    if (this.open.size > 0) {
      for (const [token, at] of this.open) if (at < now - this.times.holdMaxMs) this.open.delete(token);
      if (this.open.size > 0) return true;
      this.releaseSoon();
    }
    return now - this.lastAnswerAt < this.times.lingerMs;
  }

  /** Resolves once the requests are answered, or after WAIT_MAX_MS at most; undefined when none is open. */
  quiet(): Promise<void> | undefined {
    if (!this.busy) return undefined;
    return new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(finish, this.times.waitMaxMs);
      this.waiters.push(finish);
    });
  }

  /** Wakes the waiters once no request has been open for LINGER_MS (a request arriving meanwhile starts it over). */
  private releaseSoon(): void {
    if (this.releasing) return;
    this.releasing = true;
    const check = () => {
      if (this.open.size > 0) {
        this.releasing = false; // its answer arms this again
        return;
      }
      const left = this.times.lingerMs - (performance.now() - this.lastAnswerAt);
      if (left > 0) {
        setTimeout(check, left);
        return;
      }
      this.releasing = false;
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    };
    setTimeout(check, this.times.lingerMs);
  }
}

/** The process's one gate: fed by the HTTP receiver, read by every background loop. */
export const foreground = new Foreground();
