import type { AnyMiddlewareArgs, Middleware } from "@slack/bolt";

/**
 * Work that a shutdown lets finish: Slack listeners still running after their ack, and the scheduled job (monitor
 * cycle, deployments tick) under way when the signal came.
 */
export class InFlight {
  private readonly running = new Set<Promise<unknown>>();

  /** Runs `work`, counted as in flight until it settles; its result or error passes through. */
  run<T>(work: () => Promise<T>): Promise<T> {
    const p = work();
    this.running.add(p);
    const done = () => {
      this.running.delete(p);
    };
    p.then(done, done);
    return p;
  }

  /** How many pieces of work are running. */
  get size(): number {
    return this.running.size;
  }

  /** Resolves true once nothing is running, or false when `timeoutMs` passes first. */
  async idle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.running.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, left);
      });
      await Promise.race([Promise.allSettled([...this.running]), timeout]);
      clearTimeout(timer);
    }
    return true;
  }

  /** Bolt global middleware counting each request's listeners as in flight until they finish. */
  middleware(): Middleware<AnyMiddlewareArgs> {
    return async ({ next }) => {
      await this.run(next);
    };
  }
}

/** Resolves with `work`'s result, or rejects with `onTimeout()` when `ms` passes first. */
export async function within<T>(ms: number, work: Promise<T>, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), Math.max(0, ms));
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
