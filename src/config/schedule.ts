/**
 * Which intervals a cron scheduler can keep: the rule of `cronFor` (src/services/scheduler.ts) as a pure
 * function, so the config loader refuses an interval before the process starts instead of at the first
 * `schedule` call.
 */

/** The six-field cron expression firing every `ms`, or undefined when it divides neither a minute (in seconds) nor an hour (in minutes). */
export function cronEvery(ms: number): string | undefined {
  const s = ms / 1000;
  if (Number.isInteger(s) && s > 0 && s < 60 && 60 % s === 0) return `*/${s} * * * * *`;
  const m = s / 60;
  if (Number.isInteger(m) && m > 0 && m < 60 && 60 % m === 0) return `0 */${m} * * * *`;
  if (m === 60) return "0 0 * * * *";
  return undefined;
}

/** What to write instead, for messages: every interval cronEvery accepts. */
export const SCHEDULABLE_INTERVALS =
  "1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30 s, or 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60 min";
