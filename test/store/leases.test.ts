import { describe, expect, it } from "vitest";
import type { Store } from "../../src/store/index.js";
import { BACKENDS, T0, useStores } from "./fixtures.js";

const TTL = 15_000;
const at = (ms: number) => new Date(T0.getTime() + ms);

describe.each(BACKENDS)("the leader lease on %s", (backend) => {
  const { store, postgres, schema, tempFile, sqlite } = useStores(backend);

  it("goes to the first to ask, at epoch 1; the next is told who holds it and until when", async () => {
    const s = await store();
    expect(await s.leases.acquireOrRenew("leader", "a", T0, TTL)).toEqual({
      held: true,
      lease: { name: "leader", holder: "a", epoch: 1, expiresAt: at(TTL).toISOString() },
    });
    expect(await s.leases.acquireOrRenew("leader", "b", at(1000), TTL)).toEqual({
      held: false,
      lease: { name: "leader", holder: "a", epoch: 1, expiresAt: at(TTL).toISOString() },
    });
  });

  it("is renewed by its holder at the same epoch, which keeps it from the others", async () => {
    const s = await store();
    await s.leases.acquireOrRenew("leader", "a", T0, TTL);
    expect(await s.leases.acquireOrRenew("leader", "a", at(10_000), TTL)).toMatchObject({
      held: true,
      lease: { epoch: 1, expiresAt: at(25_000).toISOString() },
    });
    expect((await s.leases.acquireOrRenew("leader", "b", at(20_000), TTL)).held).toBe(false);
    expect(await s.leases.holds("leader", "a", 1, at(24_999))).toBe(true);
  });

  it("passes to another once expired, at the next epoch, and fences the old holder out", async () => {
    const s = await store();
    await s.leases.acquireOrRenew("leader", "a", T0, TTL);
    expect(await s.leases.holds("leader", "a", 1, at(TTL))).toBe(false);
    expect(await s.leases.acquireOrRenew("leader", "b", at(TTL), TTL)).toMatchObject({
      held: true,
      lease: { holder: "b", epoch: 2 },
    });
    // The old holder wakes up: it cannot renew, and its epoch no longer holds.
    expect(await s.leases.acquireOrRenew("leader", "a", at(TTL + 1), TTL)).toMatchObject({
      held: false,
      lease: { holder: "b", epoch: 2 },
    });
    expect(await s.leases.holds("leader", "a", 1, at(TTL + 1))).toBe(false);
    expect(await s.leases.holds("leader", "b", 2, at(TTL + 1))).toBe(true);
    expect(await s.leases.holds("leader", "b", 1, at(TTL + 1))).toBe(false);
  });

  it("moves to the next epoch when its own holder takes it again after it expired", async () => {
    const s = await store();
    await s.leases.acquireOrRenew("leader", "a", T0, TTL);
    expect(await s.leases.acquireOrRenew("leader", "a", at(TTL + 5000), TTL)).toMatchObject({
      held: true,
      lease: { holder: "a", epoch: 2 },
    });
    expect(await s.leases.holds("leader", "a", 1, at(TTL + 5001))).toBe(false);
  });

  it("once released, goes to the next to ask at once, and the releaser's epoch holds no more", async () => {
    const s = await store();
    await s.leases.acquireOrRenew("leader", "a", T0, TTL);
    expect(await s.leases.release("leader", "b", 1, at(1000))).toBe(false);
    expect(await s.leases.release("leader", "a", 1, at(1000))).toBe(true);
    expect(await s.leases.holds("leader", "a", 1, at(1000))).toBe(false);
    expect(await s.leases.acquireOrRenew("leader", "b", at(1000), TTL)).toMatchObject({
      held: true,
      lease: { holder: "b", epoch: 2 },
    });
    expect(await s.leases.get("leader")).toMatchObject({ holder: "b", epoch: 2 });
  });

  it("goes to exactly one of many processes that ask at the same moment", async () => {
    // One store per asker where the backend can share a database between connections in one process.
    let stores: Store[];
    if (backend === "postgres") {
      const name = schema();
      stores = await Promise.all(Array.from({ length: 4 }, () => postgres(name)));
    } else {
      stores = [sqlite(tempFile())];
    }
    for (let round = 0; round < 5; round++) {
      const now = at(round * 2 * TTL);
      const claims = await Promise.all(
        ["a", "b", "c", "d"].map((holder, i) =>
          (stores[i % stores.length] as Store).leases.acquireOrRenew("leader", `${holder}${round}`, now, TTL),
        ),
      );
      expect(claims.filter((c) => c.held)).toHaveLength(1);
      expect((await stores[0]?.leases.get("leader"))?.epoch).toBe(round + 1);
    }
  });
});
