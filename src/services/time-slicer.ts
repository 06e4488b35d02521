import { setImmediate as yieldToLoop } from "node:timers/promises";
import { foreground } from "../foreground.js";

/** The longest a background job (the monitor, tick) runs without giving the event loop a turn, so acks never wait. */
export const SLICE_MS = 4;

/**
 * Gives the event loop a turn once SLICE_MS have passed since the last one, and waits there while Slack requests are
 * being answered (see foreground.ts): a background job never holds up an ack for more than one slice.
 */
export class TimeSlicer {
  private since = performance.now();

  /** True once a turn is due: checked without a promise, since hot loops ask thousands of times a run. */
  get due(): boolean {
    return performance.now() - this.since >= SLICE_MS;
  }

  /** Before a job's first step (a read of every watched deployment is one block of milliseconds): acks go first. */
  async begin(): Promise<void> {
    await foreground.quiet();
    this.since = performance.now();
  }

  async turn(): Promise<void> {
    if (!this.due) return;
    await yieldToLoop();
    await this.begin();
  }
}
