import type { Logger } from "pino";

/**
 * Work a listener starts after it has acked Slack (deploy orchestration, posting cards). It is tracked
 * so the console and tests can wait until the bot is quiet, and so failures are logged, never lost.
 */
export class Background {
  private readonly pending = new Set<Promise<unknown>>();
  constructor(private readonly logger: Logger) {}

  run(name: string, work: () => Promise<unknown>): void {
    const p = (async () => {
      try {
        await work();
      } catch (err) {
        this.logger.error({ err, work: name }, "background work failed");
      }
    })();
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Resolves when nothing is pending, including work started by work that was pending. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
