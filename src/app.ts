import type { IncomingMessage, ServerResponse } from "node:http";
import { App, HTTPReceiver, type Receiver } from "@slack/bolt";
import type { Logger } from "pino";
import { register as registerDeploy } from "./commands/deploy.js";
import { register as registerIncidents } from "./commands/incidents.js";
import { register as registerRollback } from "./commands/rollback.js";
import { register as registerStatus } from "./commands/status.js";
import { boltLogger } from "./logger.js";
import type { Services } from "./services/index.js";
import type { Scheduler } from "./services/scheduler.js";

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
  /** Where the app's periodic jobs run: node-cron in a real process, simulated time in the console. */
  scheduler?: Scheduler;
}

/**
 * Builds the one Bolt app deploybot runs everywhere: in Slack, in the console and in tests. It makes no
 * network call here (no auth.test at construction); Slack signatures are always verified in HTTP mode.
 */
export function createApp(services: Services, options: AppOptions): App {
  const { transport } = options;
  const common = {
    token: options.botToken,
    logger: boltLogger(services.logger),
    tokenVerificationEnabled: false,
    clientOptions: {
      ...(options.slackApiUrl ? { slackApiUrl: options.slackApiUrl } : {}),
      retryConfig: options.slackApiUrl ? { retries: 0 } : { retries: 3 },
      // A rate limit comes back as an error carrying Retry-After, for the caller to schedule; the client
      // would otherwise sleep inside the call and hold up everything queued behind it.
      rejectRateLimitedCalls: true,
    },
  };
  let app: App;
  switch (transport.kind) {
    case "socket":
      app = new App({ ...common, socketMode: true, appToken: transport.appToken });
      break;
    case "http": {
      const receiver = new HTTPReceiver({
        signingSecret: transport.signingSecret,
        logger: common.logger,
        ...(transport.port !== undefined ? { port: transport.port } : {}),
        customRoutes: [
          {
            path: "/healthz",
            method: ["GET"],
            handler: (_req, res) => {
              res.writeHead(200, { "content-type": "application/json" });
              res.end(JSON.stringify({ ok: true }));
            },
          },
        ],
      });
      receiver.requestListener = refuseFutureRequests(receiver.requestListener, services.logger);
      app = new App({ ...common, receiver });
      break;
    }
    case "receiver":
      app = new App({ ...common, receiver: transport.receiver });
      break;
  }
  services.chat.bind(app.client);
  registerStatus(app, services);
  registerDeploy(app, services);
  registerRollback(app, services);
  registerIncidents(app, services);
  options.scheduler?.add({ name: "reconciler", intervalMs: 5_000, run: () => services.reconciler.run() });
  options.scheduler?.add({ name: "deployments", intervalMs: 15_000, run: () => services.deployments.tick() });
  options.scheduler?.add({
    name: "monitor",
    intervalMs: services.config.monitor.interval,
    run: () => services.monitor.cycle(),
  });
  // Whatever was left open when the process last stopped is resumed now.
  services.reconciler.kick();
  app.error(async (err) => {
    services.logger.error({ err: err.original ?? err, code: err.code }, "unhandled error in a Slack listener");
  });
  return app;
}

/** How far ahead of our clock a Slack request timestamp may be (clock skew), as Bolt allows behind it. */
const MAX_FUTURE_SKEW_S = 5 * 60;

/**
 * Bolt refuses signed requests stamped more than 5 minutes in the past but accepts any stamped in the future,
 * so a captured request with a future timestamp could be replayed for as long as it stays "future". This
 * refuses those before Bolt sees them; the signature itself is still checked by Bolt.
 */
export function refuseFutureRequests(
  listener: (req: IncomingMessage, res: ServerResponse) => void,
  logger: Logger,
  nowSeconds: () => number = () => Math.floor(Date.now() / 1000),
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const stamp = Number(req.headers["x-slack-request-timestamp"]);
    if (Number.isFinite(stamp) && stamp > nowSeconds() + MAX_FUTURE_SKEW_S) {
      logger.warn({ stamp }, "refused a Slack request stamped in the future");
      res.writeHead(401);
      res.end();
      return;
    }
    listener(req, res);
  };
}
