/**
 * A process for the two-process measurement in test/store/sqlite.test.ts: opens the store file it is given, says it is
 * ready, and on "go" runs `count` store operations as the services make them (transactions that read, then write;
 * single writes; reads), four at a time, then reports how many ran, how many failed and why, and how long it took.
 */
import type { DeploymentEvent } from "../../src/domain/deployment.js";
import { Store } from "../../src/store/index.js";

const [file, name, count] = process.argv.slice(2) as [string, string, string];
const store = Store.sqlite(file);
const LIFE: DeploymentEvent[] = ["allow", "start", "rolled_out", "succeed"];
/** How many read-modify-writes of the shared row this process made (the test adds both up). */
let increments = 0;

/** One operation of chain `chain`, the `n`th of that chain: a mix of what /deploy, the tick, the reconciler and
 *  the monitor do to the store. */
function operation(chain: number, n: number, own: { id: number | null; step: number }): Promise<unknown> {
  const now = new Date();
  const service = `svc-${name}-${chain}`;
  switch (n % 8) {
    case 0:
      // /deploy: read the lock and the history, then record the deployment and its audit row.
      return store.tx(async () => {
        await store.locks.get(service, "production");
        await store.deployments.history(service, "production", 5);
        const d = await store.deployments.create(
          { kind: "deploy", service, environment: "production", version: `v${n}`, requestedBy: name, flags: {} },
          now,
        );
        await store.audit.append({
          at: now,
          actor: name,
          action: "deploy.requested",
          deploymentId: d.id,
          service,
          environment: "production",
        });
        own.id = d.id;
        own.step = 0;
      });
    case 1:
    case 5: {
      // The tick: move the chain's deployment one step along its machine (read, check the transition, write).
      const id = own.id;
      const event = LIFE[own.step];
      if (id === null || !event) return store.deployments.history(service, "production", 1);
      own.step++;
      return store.deployments.apply(id, event, now);
    }
    case 2:
      // The outbox: an intent recorded in a transaction, then claimed and marked done as the reconciler does.
      return store
        .tx(() =>
          store.intents.add({
            key: `${name}:${chain}:${n}`,
            effect: { kind: "slack.post", channel: "#deploys", text: "hello" },
            lane: `slack:${name}:${chain}`,
            at: now,
          }),
        )
        .then(async (intent) => {
          await store.tx(() => store.intents.attempt(intent.id));
          await store.tx(() => store.intents.done(intent.id, new Date()));
        });
    case 3:
      // A read-modify-write of a shared value (what two replicas both do to the same row).
      return store
        .tx(async () => {
          const v = (await store.kv.get<number>("shared")) ?? 0;
          await new Promise((resolve) => setImmediate(resolve));
          await store.kv.set("shared", v + 1);
        })
        .then(() => {
          increments++;
        });
    case 4:
      // The reconciler's and /status's reads, outside any transaction.
      return Promise.all([store.intents.due(now, 50), store.audit.list({ limit: 20 }), store.deployments.counts()]);
    case 6:
      // The monitor's verdict on a guardrail (an upsert), and a replay check (a delete and an insert).
      return store.tx(async () => {
        await store.checks.record(own.id ?? 0, "error rate", "ok", now);
        await store.requests.firstSeen(`${name}:${chain}:${n}`, now, new Date(now.getTime() - 60_000));
      });
    default:
      // Every process asks for the leader lease.
      return store.leases.acquireOrRenew("leader", name, now, 15_000);
  }
}

async function run(): Promise<void> {
  let ran = 0;
  const failures: string[] = [];
  const chains = 4;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: chains }, async (_, chain) => {
      const own = { id: null as number | null, step: 0 };
      for (let n = chain; n < Number(count); n += chains) {
        await operation(chain, Math.floor(n / chains), own).then(
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
  const ms = Date.now() - t0;
  await store.close();
  process.send?.({ ran, failed: failures.length, failures: [...new Set(failures)], ms, increments }, () =>
    process.exit(0),
  );
}

process.once("message", () => void run());
process.send?.("ready");
