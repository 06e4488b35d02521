import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ackOnArrival } from "../../src/commands/listener.js";
import { afterAck } from "../../src/commands/reply.js";
import { Foreground, foreground, LINGER_MS } from "../../src/foreground.js";
import { ignoreReplays } from "../../src/ops/replay.js";
import { TimeSlicer } from "../../src/services/time-slicer.js";

/** Whether a promise has settled yet (checked after the microtasks queued before it ran). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => {
    done = true;
  });
  await sleep(0);
  return done;
}

describe("Foreground", () => {
  it("has nothing to wait for when no request is open", () => {
    const f = new Foreground();
    expect(f.busy).toBe(false);
    expect(f.quiet()).toBeUndefined();
  });

  it("holds background work while a request is open, and lets it go once answered and the linger has passed", async () => {
    const f = new Foreground({ lingerMs: 10, waitMaxMs: 5000 });
    const answered = f.enter();
    const quiet = f.quiet() as Promise<void>;
    expect(quiet).toBeInstanceOf(Promise);
    await sleep(30);
    expect(await settled(quiet)).toBe(false);
    answered();
    // Still lingering: the rest of a burst may arrive.
    expect(f.busy).toBe(true);
    expect(await settled(quiet)).toBe(false);
    await sleep(25);
    expect(await settled(quiet)).toBe(true);
    expect(f.busy).toBe(false);
  });

  it("keeps waiting for a request that arrives while lingering", async () => {
    const f = new Foreground({ lingerMs: 15, waitMaxMs: 5000 });
    f.enter()();
    const quiet = f.quiet() as Promise<void>;
    await sleep(5);
    const second = f.enter();
    await sleep(40);
    expect(await settled(quiet)).toBe(false);
    second();
    second(); // answering twice changes nothing
    await sleep(40);
    expect(await settled(quiet)).toBe(true);
  });

  it("never waits longer than waitMaxMs, however long a request stays open", async () => {
    const f = new Foreground({ waitMaxMs: 20, holdMaxMs: 60_000 });
    f.enter();
    const started = performance.now();
    await f.quiet();
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(15);
    expect(f.busy).toBe(true);
  });

  it("stops counting a request open longer than holdMaxMs (a client that never finishes)", async () => {
    const f = new Foreground({ holdMaxMs: 20, lingerMs: 0 });
    f.enter();
    expect(f.busy).toBe(true);
    await sleep(30);
    expect(f.busy).toBe(false);
    expect(f.quiet()).toBeUndefined();
  });
});

describe("background work and the process's foreground", () => {
  it("holds background work while a request is being acked, whatever the transport (ackOnArrival)", async () => {
    let busyWhileAcking = false;
    let nextRan = false;
    await ackOnArrival({
      ack: async () => {
        busyWhileAcking = foreground.busy;
      },
      next: async () => {
        nextRan = true;
      },
    } as unknown as Parameters<typeof ackOnArrival>[0]);
    expect(busyWhileAcking).toBe(true);
    expect(nextRan).toBe(true);
    await sleep(LINGER_MS + 5);
    expect(foreground.busy).toBe(false);
  });

  it("runs a command's work after its ack only once the requests still open are answered", async () => {
    const answered = foreground.enter();
    let ran = false;
    const work = afterAck(async () => {
      ran = true;
    });
    await sleep(30);
    expect(ran).toBe(false);
    answered();
    await work;
    expect(ran).toBe(true);
  });

  it("checks a request for replay (a database write) only once the requests still open are acked", async () => {
    const checked: string[] = [];
    const guard = {
      firstSeen: async (key: string) => {
        checked.push(key);
        return true;
      },
    };
    const answered = foreground.enter();
    let nextRan = false;
    const passing = ignoreReplays(
      guard,
      pino({ level: "silent" }),
    )({
      body: { trigger_id: "1.2.3" },
      next: async () => {
        nextRan = true;
      },
    } as unknown as Parameters<ReturnType<typeof ignoreReplays>>[0]);
    await sleep(30);
    expect(checked).toEqual([]);
    answered();
    await passing;
    expect(checked).toEqual(["trigger:1.2.3"]);
    expect(nextRan).toBe(true);
  });

  it("starts a background job only once the requests still open are answered", async () => {
    const answered = foreground.enter();
    const begun = new TimeSlicer().begin();
    await sleep(30);
    expect(await settled(begun)).toBe(false);
    answered();
    await begun;
  });

  it("gives the monitor's next slice only once the requests still open are answered", async () => {
    const slicer = new TimeSlicer();
    await sleep(10); // a slice's worth of work done: a turn is due
    const answered = foreground.enter();
    const turn = slicer.turn();
    await sleep(30);
    expect(await settled(turn)).toBe(false);
    answered();
    await turn;
    expect(slicer.due).toBe(false);
  });
});
