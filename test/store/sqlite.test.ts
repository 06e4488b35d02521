import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Deployment, Store } from "../../src/store/index.js";
import { later, newDeploy, newIncident, sleep, T0, thrown, useStores } from "./fixtures.js";

const { store, tempFile } = useStores();

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

describe("store.tx on SQLite", () => {
  it("commits every write of a transaction together and returns what the function returned", async () => {
    const s = store();
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
    const s = store();
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
    const s = store();
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
    const s = store();
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
    const s = store();
    await s.tx(async () => {
      await s.kv.set("outer", 1);
      await s.tx(() => s.kv.set("inner", 2));
    });
    expect(await s.kv.get("outer")).toBe(1);
    expect(await s.kv.get("inner")).toBe(2);
  });

  it("makes a statement from elsewhere wait for an open transaction: it sees none of its writes and is not rolled back with it", async () => {
    const s = store();
    const events: string[] = [];

    const inside = s.tx(async () => {
      await newDeploy(s);
      await s.kv.set("inside", 1);
      events.push("tx wrote");
      await sleep(40);
      events.push("tx fails");
      throw new Error("rolled back on purpose");
    });
    const outside = (async () => {
      await sleep(5);
      events.push("outside asks");
      await s.kv.set("outside", 2);
      events.push("outside wrote");
      return { deployments: await s.deployments.history("web", "production"), inside: await s.kv.get("inside") };
    })();

    await expect(inside).rejects.toThrow("rolled back on purpose");
    const seen = await outside;

    expect(events).toEqual(["tx wrote", "outside asks", "tx fails", "outside wrote"]);
    expect(seen).toEqual({ deployments: [], inside: undefined });
    expect(await s.kv.get("outside")).toBe(2);
    expect(await s.kv.get("inside")).toBeUndefined();
    expect(await s.deployments.get(1)).toBeUndefined();
  });

  it("runs two transactions started together one after the other, so no update is lost", async () => {
    const s = store();
    await s.kv.set("counter", 0);
    const events: string[] = [];
    const increment = (name: string) =>
      s.tx(async () => {
        events.push(`${name} reads`);
        const n = (await s.kv.get<number>("counter")) as number;
        await sleep(10);
        await s.kv.set("counter", n + 1);
        events.push(`${name} writes`);
      });

    await Promise.all([increment("a"), increment("b")]);

    expect(await s.kv.get("counter")).toBe(2);
    expect(events).toEqual(["a reads", "a writes", "b reads", "b writes"]);
  });
});

describe("two processes on one SQLite file", () => {
  const WRITER = fileURLToPath(new URL("./concurrent-writer.ts", import.meta.url));
  /** Where `--import tsx` resolves from. */
  const ROOT = fileURLToPath(new URL("../..", import.meta.url));
  const PER_PROCESS = 200;

  interface WriterReport {
    ran: number;
    failed: number;
    failures: string[];
  }

  const nextMessage = <T>(child: ChildProcess) =>
    new Promise<T>((resolve, reject) => {
      child.once("message", (m) => resolve(m as T));
      child.once("exit", (code) => reject(new Error(`the writer exited with ${code} before answering`)));
    });

  it("never fail with SQLITE_BUSY and lose no write when both write at once", async () => {
    const file = tempFile();
    // Created here first: both writers then open a migrated file.
    await store(file).kv.set("counter", 0);

    const writers = ["a", "b"].map((name) =>
      fork(WRITER, [file, name, String(PER_PROCESS)], { cwd: ROOT, execArgv: ["--import", "tsx"], stdio: "inherit" }),
    );
    try {
      await Promise.all(writers.map((w) => nextMessage(w)));
      const reports = writers.map((w) => nextMessage<WriterReport>(w));
      for (const w of writers) w.send("go");
      const [a, b] = (await Promise.all(reports)) as [WriterReport, WriterReport];

      const ran = a.ran + b.ran;
      const failed = a.failed + b.failed;
      console.log(
        `two processes: ${ran + failed} write transactions, ${ran} ran, ${failed} failed ${JSON.stringify([...a.failures, ...b.failures])}`,
      );

      const s = store(file);
      const actors = (await s.audit.list()).map((e) => e.actor);
      const turns = actors.filter((actor, n) => n > 0 && actor !== actors[n - 1]).length;
      console.log(`two processes: the writer changed ${turns} times in the audit log`);

      expect({ failed, failures: [...a.failures, ...b.failures] }).toEqual({ failed: 0, failures: [] });
      expect(ran).toBe(2 * PER_PROCESS);
      expect(await s.kv.get("counter")).toBe(2 * PER_PROCESS);
      expect(actors.filter((x) => x === "a")).toHaveLength(PER_PROCESS);
      expect(actors.filter((x) => x === "b")).toHaveLength(PER_PROCESS);
      // They really wrote at the same time, not one after the other.
      expect(turns).toBeGreaterThan(10);
    } finally {
      for (const w of writers) if (w.exitCode === null) w.kill();
    }
  });
});
