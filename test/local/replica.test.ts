import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { ManualClock, ScaledClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import { openSimReplica } from "../../src/local/replica.js";
import { ScaledScheduler } from "../../src/services/scheduler.js";
import { EXAMPLE, START, tempDir } from "../helpers/sim-world.js";

const logger = pino({ level: "silent" });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("the scaled clock of the failover tests", () => {
  it("runs `speed` times faster than real time from its origin, the same for every process that shares it", () => {
    let real = 1_000_000;
    const timeline = { simulated: START, real, speed: 300 };
    const a = new ScaledClock(timeline, () => real);
    const b = new ScaledClock({ ...timeline }, () => real);
    real += 1_000;
    expect(a.now().toISOString()).toBe("2026-11-24T08:05:00.000Z");
    expect(b.now()).toEqual(a.now());
  });

  it("runs each job every simulated interval divided by the speed, never two runs of one job at once", async () => {
    const scheduler = new ScaledScheduler(1_000, logger);
    cleanups.push(() => scheduler.stop());
    let runs = 0;
    let overlapping = 0;
    let running = false;
    scheduler.add({
      name: "tick",
      intervalMs: 15_000,
      run: async () => {
        if (running) overlapping++;
        running = true;
        runs++;
        await new Promise((r) => setTimeout(r, 40));
        running = false;
      },
    });
    await new Promise((r) => setTimeout(r, 400));
    // Every 15 ms of real time, each run taking 40 ms: the runs that fall due meanwhile are skipped.
    expect(runs).toBeGreaterThanOrEqual(3);
    expect(runs).toBeLessThanOrEqual(10);
    expect(overlapping).toBe(0);
  });

  it("is read from the world file by every bot process, and a world without one is refused", async () => {
    const tmp = tempDir("deploybot-replica-");
    cleanups.push(tmp.remove);
    const file = join(tmp.dir, "world.sim");
    const world = new SimWorld(loadConfig(EXAMPLE), new ManualClock(START), { file });
    cleanups.push(() => world.kill());
    await expect(openSimReplica({ configFile: EXAMPLE, worldFile: file, logger })).rejects.toThrow(
      /holds no simulated timeline/,
    );

    const timeline = { simulated: START, real: Date.now(), speed: 60 };
    world.setTimeline(timeline);
    const replica = await openSimReplica({ configFile: EXAMPLE, worldFile: file, logger });
    cleanups.push(() => replica.close());
    expect(replica.clock.timeline).toEqual(timeline);
    const now = replica.clock.now().getTime();
    expect(now).toBeGreaterThanOrEqual(Date.parse(START));
    expect(now).toBeLessThan(Date.parse(START) + 60 * 60_000);
  });
});
