/** Small statistics and timing helpers shared by the bench's processes. */
import { createHistogram, type RecordableHistogram } from "node:perf_hooks";

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}
export const median = (xs: number[]) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
export const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
export const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

/** CPU (this process, all threads) and wall time of one awaited call. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ cpuMs: number; wallMs: number; value: T }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  return { wallMs: performance.now() - t0, cpuMs: cpuMs(process.cpuUsage(c0)), value };
}

/**
 * Event-loop delay, sampled by a 1 ms timer: each sample is how late the timer fired (what a request arriving then
 * would have waited). Unlike perf_hooks' monitorEventLoopDelay it can be paused and resumed into one histogram, so
 * the loaded waves of a run pool into one p99 without counting the pauses between them.
 */
export class LoopDelay {
  private readonly h: RecordableHistogram = createHistogram();
  private timer: NodeJS.Timeout | null = null;
  private last = 0;

  start(): void {
    if (this.timer) return;
    this.last = performance.now();
    const tick = () => {
      const now = performance.now();
      this.h.record(Math.max(1, Math.round((now - this.last - 1) * 1e6)));
      this.last = now;
      this.timer = setTimeout(tick, 1);
    };
    this.timer = setTimeout(tick, 1);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Milliseconds. */
  percentile(p: number): number {
    return this.h.count ? this.h.percentile(p) / 1e6 : Number.NaN;
  }
  get maxMs(): number {
    return this.h.count ? this.h.max / 1e6 : Number.NaN;
  }
  get samples(): number {
    return this.h.count;
  }
}
