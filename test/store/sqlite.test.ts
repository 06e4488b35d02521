import { type ChildProcess, fork } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Store } from "../../src/store/index.js";
import type { SqliteDriver } from "../../src/store/sqlite.js";
import { newDeploy, sleep, useStores } from "./fixtures.js";

const { sqlite: store, tempFile } = useStores();

describe("store.tx on SQLite", () => {
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

  it("run 6,000 store operations as the services make them (reads, then writes) without one SQLITE_BUSY", async () => {
    const WORKER = fileURLToPath(new URL("./mixed-worker.ts", import.meta.url));
    type Report = WriterReport & { ms: number; increments: number };
    const TOTAL = 6_000;
    const file = tempFile();
    await store(file).kv.set("shared", 0);

    const workers = ["a", "b"].map((name) =>
      fork(WORKER, [file, name, String(TOTAL / 2)], { cwd: ROOT, execArgv: ["--import", "tsx"], stdio: "inherit" }),
    );
    try {
      await Promise.all(workers.map((w) => nextMessage(w)));
      const reports = workers.map((w) => nextMessage<Report>(w));
      const t0 = Date.now();
      for (const w of workers) w.send("go");
      const [a, b] = (await Promise.all(reports)) as [Report, Report];
      const seconds = (Date.now() - t0) / 1000;

      const ran = a.ran + b.ran;
      const failed = a.failed + b.failed;
      console.log(
        `two processes on one SQLite file: ${ran + failed} store operations, ${ran} ran, ${failed} failed ${JSON.stringify([...a.failures, ...b.failures])}, in ${seconds.toFixed(1)} s (${Math.round((ran + failed) / seconds)} operations/s; a ${a.ms} ms, b ${b.ms} ms)`,
      );

      expect({ ran, failed, failures: [...a.failures, ...b.failures] }).toEqual({
        ran: TOTAL,
        failed: 0,
        failures: [],
      });
      // Every read-modify-write of the shared row landed: none was lost to the other process.
      const s = store(file);
      expect(await s.kv.get("shared")).toBe(a.increments + b.increments);
      expect(a.increments + b.increments).toBeGreaterThan(TOTAL / 10);
      expect((await s.leases.get("leader"))?.epoch).toBe(1);
    } finally {
      for (const w of workers) if (w.exitCode === null) w.kill();
    }
  });
});

describe("WAL checkpoints in a thread of their own (checkpointEveryMs, as Slack mode opens the file)", () => {
  it("leaves the WAL to the thread, which copies it into the database file, and closing leaves one file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "deploybot-checkpoint-"));
    const file = join(dir, "c.db");
    try {
      const s = Store.sqlite(file, { checkpointEveryMs: 50 });
      const before = statSync(file).size;
      await s.tx(async () => {
        for (let i = 0; i < 3000; i++) await s.kv.set(`k${i}`, { padding: "x".repeat(200), i });
      });
      // This connection no longer checkpoints by itself: the writes are in the WAL, not yet in the file.
      expect((s as unknown as { driver: SqliteDriver }).driver.db.pragma("wal_autocheckpoint", { simple: true })).toBe(
        0,
      );
      let grown = statSync(file).size;
      // A checkpoint may copy the WAL in more than one pass (and the file grows as it goes): wait for all of it.
      for (let i = 0; i < 150 && grown <= before + 500_000; i++) {
        await new Promise((r) => setTimeout(r, 20));
        grown = statSync(file).size;
      }
      expect(grown).toBeGreaterThan(before + 500_000);
      expect(await s.kv.get("k2999")).toEqual({ padding: "x".repeat(200), i: 2999 });
      await s.close();
      expect(existsSync(`${file}-wal`)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
