/**
 * A child process that answers IPC requests by kind: the bench's helpers use it. A `.ts` script runs through tsx;
 * a built `.mjs` (the bundled measurement) runs as it is.
 */
import { type ChildProcess, fork } from "node:child_process";

export class Child<Req extends { kind: string }, Reply extends { kind: string }> {
  readonly process: ChildProcess;

  constructor(script: URL, env: NodeJS.ProcessEnv = process.env, args: string[] = []) {
    this.process = fork(script, args, {
      execArgv: script.pathname.endsWith(".ts") ? ["--import", "tsx"] : [],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env,
    });
  }

  /** Sends a request and resolves with the first reply of the same kind. */
  ask<K extends Req["kind"]>(req: Extract<Req, { kind: K }>): Promise<Extract<Reply, { kind: K }>> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: Reply) => {
        if (m.kind !== req.kind) return;
        this.process.off("message", onMessage);
        this.process.off("exit", onExit);
        resolve(m as Extract<Reply, { kind: K }>);
      };
      const onExit = (code: number | null) => reject(new Error(`child exited (${code}) before answering ${req.kind}`));
      this.process.on("message", onMessage);
      this.process.once("exit", onExit);
      this.process.send(req);
    });
  }

  stop(): void {
    if (this.process.exitCode === null) this.process.kill();
  }
}
