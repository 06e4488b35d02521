import cron from "node-cron";
import type { Logger } from "pino";
import type { ManualClock } from "../clock.js";
import { cronEvery, SCHEDULABLE_INTERVALS } from "../config/schedule.js";

/** A job deploybot runs on a fixed interval: following deployments, expiring approvals, the monitor. */
export interface Job {
  name: string;
  intervalMs: number;
  run(): Promise<void>;
}

/** Where jobs are scheduled: node-cron in a real process, simulated time in the console and tests. */
export interface Scheduler {
  add(job: Job): void;
  stop(): void;
}

/** A cron expression firing every `ms` (the config loader already refused an interval cron cannot keep). */
export function cronFor(ms: number): string {
  const expression = cronEvery(ms);
  if (!expression) throw new Error(`an interval of ${ms / 1000} s cannot be scheduled: use ${SCHEDULABLE_INTERVALS}`);
  return expression;
}

/** Runs jobs with node-cron; a run still going when the next is due is skipped, never doubled. */
export class CronScheduler implements Scheduler {
  private readonly tasks: Array<{ stop(): void }> = [];
  constructor(private readonly logger: Logger) {}

  add(job: Job): void {
    let running = false;
    const task = cron.schedule(cronFor(job.intervalMs), async () => {
      if (running) return;
      running = true;
      try {
        await job.run();
      } catch (err) {
        this.logger.error({ err, job: job.name }, "scheduled job failed");
      } finally {
        running = false;
      }
    });
    this.tasks.push(task);
  }

  stop(): void {
    for (const t of this.tasks) t.stop();
  }
}

/** Simulated time: `advance` runs every job that falls due, in time order, with the clock set to each due time. */
export class SimScheduler implements Scheduler {
  private readonly jobs: Job[] = [];
  constructor(
    private readonly clock: ManualClock,
    private readonly afterEach: () => Promise<void> = async () => {},
    private readonly onError: (job: string, err: unknown) => void = () => {},
  ) {}

  add(job: Job): void {
    this.jobs.push(job);
  }

  stop(): void {}

  /** Moves the clock to `to`, running due jobs on the way (a job is due at every multiple of its interval). */
  async advanceTo(to: Date): Promise<void> {
    if (to.getTime() < this.clock.now().getTime()) throw new Error("the simulated clock only moves forward");
    for (;;) {
      const now = this.clock.now().getTime();
      let next = Number.POSITIVE_INFINITY;
      for (const j of this.jobs) next = Math.min(next, (Math.floor(now / j.intervalMs) + 1) * j.intervalMs);
      if (next > to.getTime()) break;
      this.clock.set(new Date(next));
      for (const j of this.jobs) {
        if (next % j.intervalMs === 0) {
          // As with node-cron, a failing run is reported and time goes on.
          try {
            await j.run();
          } catch (err) {
            this.onError(j.name, err);
          }
          await this.afterEach();
        }
      }
    }
    this.clock.set(to);
  }
}

/**
 * Runs each job every `intervalMs / speed` of real time (never more often than every `minRealMs`), skipping a run
 * while the last one still goes: the jobs of a process whose clock is a ScaledClock of that speed.
 */
export class ScaledScheduler implements Scheduler {
  private readonly timers: NodeJS.Timeout[] = [];
  constructor(
    private readonly speed: number,
    private readonly logger: Logger,
    private readonly minRealMs = 10,
  ) {}

  add(job: Job): void {
    let running = false;
    const timer = setInterval(
      async () => {
        if (running) return;
        running = true;
        try {
          await job.run();
        } catch (err) {
          this.logger.error({ err, job: job.name }, "scheduled job failed");
        } finally {
          running = false;
        }
      },
      Math.max(this.minRealMs, job.intervalMs / this.speed),
    );
    this.timers.push(timer);
  }

  stop(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }
}
