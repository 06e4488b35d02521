import { openSimReplica } from "../local/replica.js";
import { createLogger } from "../logger.js";
import { startSlack } from "../server.js";
import { installCrashHandlers, untilSignal } from "./process.js";

/**
 * A bot as in Slack mode (HTTP on 127.0.0.1, PORT or any free port) against a simulated world that other processes
 * share, on the world's scaled clock: what the failover tests start several of, and kill.
 */
export async function simReplica(
  configFile: string,
  dbFile: string,
  worldFile: string,
  started: () => void,
): Promise<number> {
  const logger = createLogger();
  installCrashHandlers(logger);
  const sim = await openSimReplica({ configFile, worldFile, logger });
  const running = await startSlack({
    configFile,
    dbFile,
    logger,
    settings: {
      mode: "http",
      botToken: "xoxb-sim-replica",
      signingSecret: process.env.SLACK_SIGNING_SECRET ?? "sim-replica",
      port: Number(process.env.PORT ?? 0),
      host: "127.0.0.1",
      slackApiUrl: sim.slack.apiUrl,
    },
    adapters: sim.adapters,
    clock: sim.clock,
    scheduler: sim.scheduler,
  }).catch(async (err: unknown) => {
    await sim.close();
    throw err;
  });
  started();
  return untilSignal(logger, async (signal) => {
    await running.stop(signal);
    await sim.close();
  });
}
