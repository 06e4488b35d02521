import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import type { Intent } from "../../src/domain/effects.js";
import { LeaderLease } from "../../src/services/leader.js";
import { type EffectHandler, type Fence, type Handlers, Reconciler } from "../../src/services/reconciler.js";
import { Store } from "../../src/store/index.js";

const logger = pino({ level: "silent" });
const TTL = 15_000;
const stores: Store[] = [];
const leases: LeaderLease[] = [];
afterEach(async () => {
  for (const l of leases.splice(0)) await l.stop();
  for (const s of stores.splice(0)) await s.close();
});

function world() {
  const store = Store.sqlite(":memory:");
  stores.push(store);
  const clock = new ManualClock("2026-11-24T08:15:00.000Z");
  const lease = (holder: string, s: Store = store) => {
    const l = new LeaderLease({ store: s, logger, clock }, { holder, ttlMs: TTL });
    leases.push(l);
    return l;
  };
  return { store, clock, lease };
}

describe("the leader lease of a process", () => {
  it("leads when it gets the lease first; the other waits as a standby and is told who leads", async () => {
    const { lease } = world();
    const a = lease("a");
    const b = lease("b");
    await a.renew();
    await b.renew();
    expect(a.status()).toMatchObject({ leader: true, epoch: 1, current: { holder: "a" } });
    expect(b.status()).toMatchObject({ leader: false, epoch: 0, current: { holder: "a" } });
    expect(await a.holds()).toBe(true);
    expect(await b.holds()).toBe(false);
  });

  it("stops leading by itself once the lease runs out unrenewed, and the standby takes over at the next epoch", async () => {
    const { clock, lease } = world();
    const a = lease("a");
    const b = lease("b");
    const told: string[] = [];
    a.onChange((leading) => told.push(`a ${leading}`));
    b.onChange((leading) => told.push(`b ${leading}`));
    await a.renew();
    await b.renew();
    clock.advance(TTL - 1);
    expect(a.leading()).toBe(true);
    clock.advance(1);
    // a's process stalled (or its renewals stopped coming back): it knows, without asking the database.
    expect(a.leading()).toBe(false);
    await b.renew();
    expect(b.status()).toMatchObject({ leader: true, epoch: 2 });
    await a.renew();
    expect(a.status()).toMatchObject({ leader: false, current: { holder: "b" } });
    expect(await a.holds()).toBe(false);
    expect(told).toEqual(["a true", "a false", "b true"]);
  });

  it("stays leader at the same epoch while it renews in time", async () => {
    const { clock, lease } = world();
    const a = lease("a");
    const b = lease("b");
    await a.renew();
    for (let i = 0; i < 10; i++) {
      clock.advance(TTL / 3);
      await a.renew();
      await b.renew();
    }
    expect(a.status()).toMatchObject({ leader: true, epoch: 1 });
    expect(b.leading()).toBe(false);
  });

  it("stops leading at once when the lease cannot be renewed (the database is gone)", async () => {
    const { lease } = world();
    const own = Store.sqlite(":memory:");
    const a = lease("a", own);
    await a.renew();
    expect(a.leading()).toBe(true);
    await own.close();
    await a.renew();
    expect(a.leading()).toBe(false);
  });

  it("gives the lease up on stop, so a standby takes over at once rather than when it expires", async () => {
    const { clock, lease } = world();
    const a = lease("a");
    const b = lease("b");
    await a.renew();
    await a.stop();
    clock.advance(1);
    await b.renew();
    expect(b.status()).toMatchObject({ leader: true, epoch: 2 });
  });
});

/** A page intent, and a handler that records what it was asked to do. */
async function withIntent(store: Store, clock: ManualClock) {
  const intent = await store.intents.add({
    key: "page:1",
    effect: {
      kind: "page",
      event: { action: "trigger", dedupKey: "k", severity: "critical", summary: "5xx", source: "deploybot" },
    },
    lane: "pagerduty:k",
    at: clock.now(),
  });
  return intent;
}

function reconcilerWith(store: Store, clock: ManualClock, fence: Fence, perform: EffectHandler<"page">["perform"]) {
  const handlers = { page: { perform } } as unknown as Handlers;
  return new Reconciler({ store, clock, logger }, handlers, { fence });
}

describe("the reconciler under a fence", () => {
  it("performs nothing on a standby: a kick and a scheduled pass both do nothing", async () => {
    const { store, clock } = world();
    const intent = await withIntent(store, clock);
    const calls: number[] = [];
    const r = reconcilerWith(store, clock, { leading: () => false, holds: async () => false }, async (i) => {
      calls.push(i.id);
      return {};
    });
    r.kick();
    await r.run();
    expect(calls).toEqual([]);
    expect(await store.intents.byId(intent.id)).toMatchObject({ status: "open", attempts: 0 });
  });

  it("claims nothing once the lease is no longer its own, even while it still believes it leads", async () => {
    const { store, clock } = world();
    const intent = await withIntent(store, clock);
    const calls: number[] = [];
    const r = reconcilerWith(store, clock, { leading: () => true, holds: async () => false }, async (i) => {
      calls.push(i.id);
      return {};
    });
    await r.run();
    expect(calls).toEqual([]);
    expect(await store.intents.byId(intent.id)).toMatchObject({ status: "open", attempts: 0 });
  });

  it("records nothing when it loses the lease during a call; the next leader reads the world and finishes it", async () => {
    const { store, clock } = world();
    const intent = await withIntent(store, clock);
    let ours = true;
    const deposed = reconcilerWith(store, clock, { leading: () => true, holds: async () => ours }, async () => {
      // The call is under way when another process takes the lease over.
      ours = false;
      return { result: { sent: true }, record: () => store.kv.set("recorded by the deposed leader", true) };
    });
    await deposed.run();
    expect(await store.intents.byId(intent.id)).toMatchObject({ status: "open", attempts: 1 });
    expect(await store.kv.get("recorded by the deposed leader")).toBeUndefined();

    const seen: Intent[] = [];
    const next = reconcilerWith(store, clock, { leading: () => true, holds: async () => true }, async (i) => {
      seen.push(i);
      return { result: { sent: true } };
    });
    await next.run();
    // attempts > 1: the handler knows an earlier attempt may have reached the world, and reads it first.
    expect(seen.map((i) => i.attempts)).toEqual([2]);
    expect(await store.intents.byId(intent.id)).toMatchObject({ status: "done", attempts: 2 });
  });

  it("records neither a retry nor an abandonment for a call that failed after it lost the lease", async () => {
    const { store, clock } = world();
    const intent = await withIntent(store, clock);
    let ours = true;
    const r = reconcilerWith(store, clock, { leading: () => true, holds: async () => ours }, async () => {
      ours = false;
      throw new Error("a bug, not the world");
    });
    await r.run();
    expect(await store.intents.byId(intent.id)).toMatchObject({ status: "open", attempts: 1, lastError: null });
  });
});
