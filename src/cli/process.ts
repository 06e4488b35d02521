import type { Logger } from "pino";

/** Exit codes: 0 done, 1 failed (config, start, script), 2 the command line itself is wrong, 70 a bug. */
export const EXIT = { ok: 0, failed: 1, usage: 2, bug: 70 } as const;

/** Waits for SIGTERM or SIGINT, stops once (a second signal exits at once), and resolves the exit code. */
export function untilSignal(logger: Logger, stop: (signal: string) => Promise<unknown>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, "second signal while stopping: exiting now");
        resolve(EXIT.failed);
        return;
      }
      stopping = true;
      stop(signal).then(
        () => resolve(EXIT.ok),
        (err: unknown) => {
          logger.error({ err }, "deploybot could not stop cleanly");
          resolve(EXIT.failed);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

/**
 * A rejected promise nobody awaited is logged and the process goes on (one bad request must not stop the bot);
 * an uncaught exception leaves the process in an unknown state, so it is logged and the process exits for its
 * supervisor to restart it.
 */
export function installCrashHandlers(
  logger: Logger,
  proc: Pick<NodeJS.Process, "on"> = process,
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  proc.on("unhandledRejection", (reason: unknown) => {
    logger.error({ err: reason }, "unhandled promise rejection (the process carries on)");
  });
  proc.on("uncaughtException", (err: Error) => {
    logger.fatal({ err }, "uncaught exception: exiting for the supervisor to restart deploybot");
    exit(EXIT.bug);
  });
}
