/**
 * A second process for test/store/sqlite.test.ts: opens the store file it is given, says it is ready, and on "go"
 * runs `count` write transactions at once (each a read-modify-write of one counter, holding the write lock across a
 * turn of the event loop), then reports how many ran and how many failed, and why.
 */
import { Store } from "../../src/store/index.js";

const [file, name, count] = process.argv.slice(2) as [string, string, string];
const store = Store.sqlite(file);

async function run(): Promise<void> {
  let ran = 0;
  const failures: string[] = [];
  // Four chains of transactions, each pausing a millisecond between two, so the other process gets its turns too.
  const chains = 4;
  await Promise.all(
    Array.from({ length: chains }, async (_, chain) => {
      for (let i = chain; i < Number(count); i += chains) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        await store
          .tx(async () => {
            const n = (await store.kv.get<number>("counter")) ?? 0;
            await new Promise((resolve) => setImmediate(resolve));
            await store.kv.set("counter", n + 1);
            await store.audit.append({
              at: new Date(),
              actor: name,
              action: "concurrency.write",
              deploymentId: null,
              service: null,
              environment: null,
              detail: { i },
            });
          })
          .then(
            () => {
              ran++;
            },
            (err: unknown) => {
              failures.push(String((err as { code?: string }).code ?? err));
            },
          );
      }
    }),
  );
  await store.close();
  process.send?.({ ran, failed: failures.length, failures: [...new Set(failures)] }, () => process.exit(0));
}

process.once("message", () => void run());
process.send?.("ready");
