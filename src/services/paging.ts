import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { asDeploybotError } from "../errors.js";
import type { PageEvent, PagerPort } from "../ports.js";
import type { Store } from "../store/index.js";

/**
 * Sends PagerDuty events at most once per dedup key, action and episode: the intent is written before
 * the call and marked sent after it, so a restarted process never pages twice for the same breach.
 */
export class Paging {
  constructor(private readonly d: { store: Store; pager: PagerPort; clock: Clock; logger: Logger }) {}

  /** Sends unless this key and action were already sent at or after `since`; returns whether it sent. Throws on failure. */
  async send(event: PageEvent, since: string): Promise<boolean> {
    const { db } = this.d.store;
    const prior = db
      .prepare("SELECT status, at FROM pages WHERE dedup_key = ? AND action = ?")
      .get(event.dedupKey, event.action) as { status: string; at: string } | undefined;
    if (prior?.status === "sent" && prior.at >= since) return false;
    db.prepare(
      "INSERT OR REPLACE INTO pages (dedup_key, action, severity, summary, status, at) VALUES (?, ?, ?, ?, 'intended', ?)",
    ).run(event.dedupKey, event.action, event.severity, event.summary.slice(0, 1024), this.d.clock.now().toISOString());
    try {
      await this.d.pager.sendEvent(event);
    } catch (err) {
      db.prepare("UPDATE pages SET status = 'failed' WHERE dedup_key = ? AND action = ?").run(
        event.dedupKey,
        event.action,
      );
      this.d.logger.error({ err, dedupKey: event.dedupKey }, "could not page PagerDuty");
      throw asDeploybotError(err);
    }
    db.prepare("UPDATE pages SET status = 'sent' WHERE dedup_key = ? AND action = ?").run(event.dedupKey, event.action);
    return true;
  }
}
