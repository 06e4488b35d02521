import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/**
 * SQLite's WAL checkpoints, run by a worker thread on a connection of its own. SQLite's automatic checkpoint runs in
 * the writer's thread: with a thousand watched deploys the monitor's writes filled a thousand pages every few
 * cycles, and copying them back into the database held the event loop (and every Slack ack) for about 100 ms.
 * A PASSIVE checkpoint from another connection blocks neither readers nor writers; when the thread is gone, the
 * caller turns the automatic checkpoint back on.
 */
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.module);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma("busy_timeout = 1000");
const run = () => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message) });
  }
};
const timer = setInterval(run, workerData.everyMs);
parentPort.on("message", (m) => {
  if (m !== "stop") return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  /** Stops the thread and closes its connection (before the main one closes, so that one checkpoints last). */
  stop(): Promise<void>;
}

/** Starts the thread; `onExit` is told if it ends by itself (an error), so automatic checkpoints can resume. */
export function startCheckpointer(
  file: string,
  everyMs: number,
  onProblem: (message: string, stopped: boolean) => void,
): Checkpointer {
  const module = createRequire(import.meta.url).resolve("better-sqlite3");
  const worker = new Worker(WORKER, { eval: true, workerData: { file, module, everyMs } });
  worker.unref();
  let stopping = false;
  worker.on("message", (m: { error?: string }) => {
    if (m.error) onProblem(m.error, false);
  });
  worker.on("error", (err) => onProblem(err.message, true));
  worker.on("exit", (code) => {
    if (!stopping) onProblem(`the checkpoint thread exited (${code})`, true);
  });
  return {
    stop: async () => {
      if (stopping) return;
      stopping = true;
      // Held (ref) while it stops: an unref'd thread would let the process end with this promise unsettled.
      worker.ref();
      const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
      worker.postMessage("stop");
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2_000)))]);
      clearTimeout(timer);
      await worker.terminate();
    },
  };
}
