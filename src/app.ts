import type { IncomingMessage, ServerResponse } from "node:http";
import { App, HTTPReceiver, type Receiver, SocketModeReceiver } from "@slack/bolt";
import { register as registerDeploy } from "./commands/deploy.js";
import { register as registerIncidents } from "./commands/incidents.js";
import { ackOnArrival } from "./commands/listener.js";
import { type CommandNames, DEFAULT_COMMANDS } from "./commands/names.js";
import { register as registerRollback } from "./commands/rollback.js";
import { register as registerStatus } from "./commands/status.js";
import { boltLogger } from "./logger.js";
import { opsRoutes } from "./ops/health.js";
import { BODY_LIMIT_BYTES, guardSlackRequests } from "./ops/http-guard.js";
import { InFlight } from "./ops/inflight.js";
import { monitorCycleLagSeconds, monitorCycleSeconds, monitorLastCycleSeconds } from "./ops/metrics.js";
import { ignoreReplays, MemoryReplayGuard, type ReplayGuard } from "./ops/replay.js";
import type { SlackIdentity } from "./ops/slack-auth.js";
import type { Services } from "./services/index.js";
import type { Job, Scheduler } from "./services/scheduler.js";

/** How Slack reaches the app: Socket Mode, HTTP (/slack/events), or a receiver the console drives. */
export type Transport =
  | { kind: "socket"; appToken: string }
  | { kind: "http"; signingSecret: string; port?: number }
  | { kind: "receiver"; receiver: Receiver };

export interface AppOptions {
  botToken: string;
  transport: Transport;
  /** The Web API base URL; the console and tests point it at the Slack-like server on 127.0.0.1. */
  slackApiUrl?: string;
  /** How often the Web API client retries a failed call (default 3, or 0 with a slackApiUrl: the local server). */
  webApiRetries?: number;
  /** Where the app's periodic jobs run: node-cron in a real process, simulated time in the console. */
  scheduler?: Scheduler;
  /**
   * The bot's ids from the one auth.test at start. Without them Bolt (token verification off) calls auth.test
   * before every request it handles, and a slow Slack delays every ack.
   */
  identity?: SlackIdentity;
  /** The Slack-facing command names (manifest.yml's defaults when unset). */
  commands?: CommandNames;
  /** Remembers requests so a replay acts once (in memory by default; shared between replicas when injected). */
  replayGuard?: ReplayGuard;
  /** Counts running listeners and scheduled jobs, so a shutdown can let them finish. */
  inFlight?: InFlight;
  /** HTTP mode: answers /healthz, /readyz and /metrics before Bolt; returns false for other paths. */
  opsRoutes?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Told when each monitor cycle ends (readiness reads it). */
  onMonitorCycle?: (at: Date) => void;
  /** Socket Mode: told when the connection to Slack comes and goes (readiness reads it). */
  onSocketState?: (connected: boolean, state: string) => void;
  /** How often the reconciler looks for due intents (default RECONCILER_MS). */
  reconcilerMs?: number;
}

/** How often deployments in flight are followed on ECS. */
export const DEPLOYMENTS_TICK_MS = 15_000;
/** How often the reconciler looks for intents that are due (a state change also wakes it at once). */
export const RECONCILER_MS = 5_000;

/**
 * Builds the one Bolt app deploybot runs everywhere: in Slack, in the console and in tests. It makes no
 * network call here (auth.test runs once at start, in the caller); Slack signatures are always verified in HTTP mode.
 */
export function createApp(services: Services, options: AppOptions): App {
  const { transport } = options;
  const commands = options.commands ?? DEFAULT_COMMANDS;
  const logger = boltLogger(services.logger);
  const clientOptions = {
    ...(options.slackApiUrl ? { slackApiUrl: options.slackApiUrl } : {}),
    retryConfig: { retries: options.webApiRetries ?? (options.slackApiUrl ? 0 : 3) },
    // A rate limit comes back as an error carrying Retry-After, for the caller to schedule; the client
    // would otherwise sleep inside the call and hold up everything queued behind it.
    rejectRateLimitedCalls: true,
  };
  const common = {
    token: options.botToken,
    logger,
    tokenVerificationEnabled: false,
    // Bolt's conversation store is unused here, and its default one builds an Error (a stack trace) for every
    // request that names a channel, to say it holds nothing for it.
    convoStore: false as const,
    ...(options.identity ? { botId: options.identity.botId, botUserId: options.identity.botUserId } : {}),
    clientOptions,
  };
  let app: App;
  switch (transport.kind) {
    case "socket": {
      const receiver = new SocketModeReceiver({
        appToken: transport.appToken,
        logger,
        installerOptions: { clientOptions },
      });
      const report = options.onSocketState;
      if (report) {
        receiver.client.on("connected", () => report(true, "connected"));
        receiver.client.on("reconnecting", () => report(false, "reconnecting"));
        receiver.client.on("disconnected", () => report(false, "disconnected"));
      }
      app = new App({ ...common, receiver });
      break;
    }
    case "http": {
      const receiver = new HTTPReceiver({
        signingSecret: transport.signingSecret,
        logger,
        bodyLimit: BODY_LIMIT_BYTES,
        ...(transport.port !== undefined ? { port: transport.port } : {}),
      });
      receiver.requestListener = guardSlackRequests(receiver.requestListener, {
        logger: services.logger,
        // Liveness at least, wherever the app runs over HTTP; the server adds readiness and metrics.
        routes: options.opsRoutes ?? opsRoutes({}),
      });
      app = new App({ ...common, receiver });
      break;
    }
    case "receiver":
      app = new App({ ...common, receiver: transport.receiver });
      break;
  }
  const inFlight = options.inFlight ?? new InFlight();
  // Counted first, so a shutdown also waits for a request that is still checking for replay.
  app.use(inFlight.middleware());
  // Acked before the replay check (a database write) and before any listener: nothing rides on the ack.
  app.use(ackOnArrival);
  app.use(ignoreReplays(options.replayGuard ?? new MemoryReplayGuard(), services.logger, () => new Date()));
  services.chat.bind(app.client);
  registerStatus(app, services, commands.status);
  registerDeploy(app, services, commands.deploy);
  registerRollback(app, services, commands.rollback);
  registerIncidents(app, services);
  for (const job of jobsOf(services, inFlight, options.reconcilerMs ?? RECONCILER_MS, options.onMonitorCycle))
    options.scheduler?.add(job);
  // Whatever was left open when the process last stopped is resumed now.
  services.reconciler.kick();
  app.error(async (err) => {
    services.logger.error({ err: err.original ?? err, code: err.code }, "unhandled error in a Slack listener");
  });
  return app;
}

/**
 * The periodic jobs: the reconciler, following deployments on ECS, and the guardrail monitor (timed for /metrics and
 * /readyz). Only the leader runs them: on a standby each run does nothing (see services.leader).
 */
function jobsOf(
  services: Services,
  inFlight: InFlight,
  reconcilerMs: number,
  onMonitorCycle?: (at: Date) => void,
): Job[] {
  const interval = services.config.monitor.interval;
  const jobs: Job[] = [
    {
      name: "reconciler",
      intervalMs: reconcilerMs,
      run: () => inFlight.run(() => services.reconciler.run()),
    },
    {
      name: "deployments",
      intervalMs: DEPLOYMENTS_TICK_MS,
      run: () => inFlight.run(() => services.deployments.tick()),
    },
    {
      name: "monitor",
      intervalMs: interval,
      run: () =>
        inFlight.run(async () => {
          const started = services.clock.now();
          // Cycles are due on multiples of the interval (node-cron and the simulated scheduler alike).
          monitorCycleLagSeconds.set((started.getTime() % interval) / 1000);
          const end = monitorCycleSeconds.startTimer();
          let outcome = "error";
          try {
            await services.monitor.cycle();
            outcome = "ok";
          } finally {
            end({ outcome });
            // A cycle that failed still ran: the monitor is alive, and its failure is in the logs and metrics.
            const at = services.clock.now();
            monitorLastCycleSeconds.set(at.getTime() / 1000);
            onMonitorCycle?.(at);
          }
        }),
    },
  ];
  return jobs.map((job) => ({
    ...job,
    run: async () => {
      if (services.leader.leading()) await job.run();
    },
  }));
}
