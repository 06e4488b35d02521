import { describe, expect, it } from "vitest";
import type { Deployment, Store } from "../../src/store/index.js";
import { BACKENDS, later, newDeploy, newIncident, sleep, T0, thrown, useStores } from "./fixtures.js";

/** One write through every repository, as a service's transaction would make them. */
async function writeEverywhere(s: Store): Promise<Deployment> {
  const d = await newDeploy(s);
  await s.deployments.apply(d.id, "allow", later(1));
  expect(await s.locks.acquire("web", "production", d.id, "alice", later(1))).toBeNull();
  await s.approvals.record({
    deploymentId: d.id,
    user: "bob",
    decision: "approve",
    groupName: null,
    roles: [],
    note: null,
    at: later(1).toISOString(),
  });
  await s.audit.append({
    at: later(1),
    actor: "alice",
    action: "deploy.requested",
    deploymentId: d.id,
    service: "web",
    environment: "production",
  });
  await s.kv.set("baseline:web", { p99: 310 });
  await s.incidents.open(newIncident(d.id));
  await s.intents.add({
    key: `ecs.rollout:${d.id}`,
    effect: { kind: "ecs.rollout", deploymentId: d.id },
    lane: "ecs:web",
    at: later(1),
    deploymentId: d.id,
  });
  await s.checks.record(d.id, "error-rate", "ok", later(1));
  await s.requests.firstSeen("trigger-1", later(1), T0);
  return s.deployments.must(d.id);
}

/** What every repository holds, to compare before and after. */
async function everything(s: Store) {
  return {
    deployments: await s.deployments.history("web", "production", 100),
    lock: await s.locks.get("web", "production"),
    approvals: await s.approvals.of(1),
    audit: await s.audit.list(),
    kv: await s.kv.get("baseline:web"),
    incidents: await s.incidents.of(1),
    intents: await s.intents.about({ deploymentId: 1 }),
    checks: await s.checks.of(1),
  };
}

describe.each(BACKENDS)("store.tx on %s", (backend) => {
  const { store } = useStores(backend);

  it("commits every write of a transaction together and returns what the function returned", async () => {
    const s = await store();
    const out = await s.tx(async () => {
      const d = await writeEverywhere(s);
      return d.id;
    });
    expect(out).toBe(1);
    const after = await everything(s);
    expect(after.deployments.map((d) => d.status)).toEqual(["approved"]);
    expect(after.lock?.deploymentId).toBe(1);
    expect(after.approvals).toHaveLength(1);
    expect(after.audit).toHaveLength(1);
    expect(after.kv).toEqual({ p99: 310 });
    expect(after.incidents).toHaveLength(1);
    expect(after.intents).toHaveLength(1);
    expect(after.checks.get("error-rate")?.verdicts).toBe(1);
    expect(await s.requests.firstSeen("trigger-1", later(2), T0)).toBe(false);
  });

  it("rolls back every write, through every repository, when the function throws, and rethrows its error", async () => {
    const s = await store();
    const before = await everything(s);
    const boom = new Error("the card could not be rendered");

    const err = await thrown(() =>
      s.tx(async () => {
        await writeEverywhere(s);
        throw boom;
      }),
    );

    expect(err).toBe(boom);
    expect(await everything(s)).toEqual(before);
    expect(await s.requests.firstSeen("trigger-1", later(2), T0)).toBe(true);
  });

  it("undoes a move made by a repository's own transaction when the caller's transaction fails after it", async () => {
    const s = await store();
    const d = await newDeploy(s);
    await s.deployments.apply(d.id, "allow", later(1));
    await s.locks.acquire("web", "production", d.id, "alice", later(1));
    const before = await everything(s);

    await thrown(() =>
      s.tx(async () => {
        await s.deployments.apply(d.id, "not_started", later(2));
        expect(await s.locks.get("web", "production")).toBeUndefined();
        throw new Error("the audit row could not be written");
      }),
    );

    expect(await everything(s)).toEqual(before);
  });

  it("joins a nested transaction to the outer one: its writes go with the outer rollback", async () => {
    const s = await store();
    const err = await thrown(() =>
      s.tx(async () => {
        await s.kv.set("outer", 1);
        const inner = await s.tx(async () => {
          await s.kv.set("inner", 2);
          return "inner done";
        });
        expect(inner).toBe("inner done");
        expect(await s.kv.get("inner")).toBe(2);
        throw new Error("outer fails after the inner one returned");
      }),
    );
    expect(err.message).toBe("outer fails after the inner one returned");
    expect(await s.kv.get("outer")).toBeUndefined();
    expect(await s.kv.get("inner")).toBeUndefined();
  });

  it("joins a nested transaction to the outer one: its writes land with the outer commit", async () => {
    const s = await store();
    await s.tx(async () => {
      await s.kv.set("outer", 1);
      await s.tx(() => s.kv.set("inner", 2));
    });
    expect(await s.kv.get("outer")).toBe(1);
    expect(await s.kv.get("inner")).toBe(2);
  });

  it("keeps an open transaction's writes from a statement made elsewhere, and does not roll that one back with it", async () => {
    const s = await store();
    let wrote!: () => void;
    const written = new Promise<void>((resolve) => {
      wrote = resolve;
    });

    const inside = s.tx(async () => {
      await newDeploy(s);
      await s.kv.set("inside", 1);
      wrote();
      await sleep(40);
      throw new Error("rolled back on purpose");
    });
    const outside = (async () => {
      await written;
      await s.kv.set("outside", 2);
      return { deployments: await s.deployments.history("web", "production"), inside: await s.kv.get("inside") };
    })();

    await expect(inside).rejects.toThrow("rolled back on purpose");
    expect(await outside).toEqual({ deployments: [], inside: undefined });
    expect(await s.kv.get("outside")).toBe(2);
    expect(await s.kv.get("inside")).toBeUndefined();
    expect(await s.deployments.history("web", "production")).toEqual([]);
  });

  it("loses no update when transactions started together each read, wait and write the same row", async () => {
    const s = await store();
    await s.kv.set("counter", 0);
    const increment = () =>
      s.tx(async () => {
        const n = (await s.kv.get<number>("counter")) as number;
        await sleep(10);
        await s.kv.set("counter", n + 1);
      });

    await Promise.all([increment(), increment(), increment()]);

    expect(await s.kv.get("counter")).toBe(3);
  });
});
