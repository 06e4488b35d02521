import type { Server } from "node:http";
import type { App } from "@slack/bolt";
import type { Logger } from "pino";
import { AwsCloudWatch } from "./adapters/aws/cloudwatch.js";
import { AwsEcs } from "./adapters/aws/ecs.js";
import { AwsElb } from "./adapters/aws/elbv2.js";
import { PagerDutyAdapter } from "./adapters/pagerduty.js";
import { SlackChat } from "./adapters/slack.js";
import { createApp, DEPLOYMENTS_TICK_MS } from "./app.js";
import { type Clock, systemClock } from "./clock.js";
import { commandNamesFromEnv } from "./commands/names.js";
import { loadConfig } from "./config/load.js";
import { opsRoutes, portOf, type ReadinessChecks, readiness, startOpsServer } from "./ops/health.js";
import { InFlight, within } from "./ops/inflight.js";
import { onSlackError, registerStoreMetrics, TOKEN_ERRORS } from "./ops/metrics.js";
import { type ReplayGuard, StoreReplayGuard } from "./ops/replay.js";
import { type SlackIdentity, verifyBotToken } from "./ops/slack-auth.js";
import { leaseTtlFromEnv, type SlackSettings, StartupError } from "./ops/startup.js";
import type { EcsPort, ElbPort, MetricsPort, PagerPort } from "./ports.js";
import { listenError, noPagerDuty, openBotStore, socketError } from "./server/parts.js";
import { buildServices } from "./services/index.js";
import { DEFAULT_LEASE_TTL_MS, holderName, LeaderLease } from "./services/leader.js";
import { CronScheduler, type Job, type Scheduler } from "./services/scheduler.js";
import { TABLES } from "./store/index.js";

/** How long the start may take, network included, before it gives up: under the 10 s a supervisor expects. */
export const START_TIMEOUT_MS = 8_000;

/**
 * How long a shutdown waits for running listeners and the current scheduled job. Under Docker's and ECS's
 * default 10 s between SIGTERM and SIGKILL, so the database is always closed cleanly.
 */
export const SHUTDOWN_GRACE_MS = 8_000;

/**
 * How often the leader looks for due intents. Shorter than alone (RECONCILER_MS): intents a standby recorded for a
 * Slack request reach the leader only this way, and a click should not wait long for its card.
 */
export const LEADER_RECONCILER_MS = 1_000;

export interface StartOptions {
  configFile: string;
  dbFile: string;
  logger: Logger;
  settings: SlackSettings;
  /** Where the PagerDuty keys and the command names are read (default: process.env). */
  env?: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
  shutdownGraceMs?: number;
  /** The tables checkDatabase requires (default: the store's own). */
  tables?: readonly string[];
  /** A replay guard (default: the database's seen_requests table, shared by every replica). */
  replayGuard?: ReplayGuard;
  /** Adapters to use instead of the real AWS and PagerDuty ones (tests). */
  adapters?: { ecs?: EcsPort; elb?: ElbPort; metrics?: MetricsPort; pager?: PagerPort };
  /** The services' clock (default: the system's); the leader lease always runs on real time. */
  clock?: Clock;
  /** Where the scheduled jobs run (default: node-cron); the failover tests run them on a scaled clock. */
  scheduler?: Scheduler;
}

/** What a shutdown did, for its one log line. */
export interface StopReport {
  reason: string;
  /** True when every listener and job finished inside the grace period. */
  drained: boolean;
  ms: number;
}

/** A started bot: where it listens, and how to stop it. */
export interface RunningBot {
  identity: SlackIdentity;
  /** HTTP mode: the port Slack's requests arrive on. */
  port?: number;
  /** The METRICS_PORT server's port, when one was asked for. */
  metricsPort?: number;
  /** Stops taking requests, lets running work finish (bounded), closes the database. Idempotent. */
  stop(reason: string): Promise<StopReport>;
}

/**
 * Connects to a real workspace (Socket Mode or HTTP) with the real AWS and PagerDuty adapters. Everything that can
 * be checked is checked before the bot takes a request; any failure is a StartupError (or a config error) within
 * `startTimeoutMs`, after whatever was opened is closed again.
 */
export async function startSlack(opts: StartOptions): Promise<RunningBot> {
  const env = opts.env ?? process.env;
  const { logger, settings } = opts;
  const startedAt = new Date();
  const deadline = Date.now() + (opts.startTimeoutMs ?? START_TIMEOUT_MS);
  const left = () => Math.max(0, deadline - Date.now());

  // Slack mode: a guardrail that pages with no pagerduty section is an error here, not a warning.
  const config = loadConfig(opts.configFile, {
    mode: "slack",
    onWarning: (w) => logger.warn({ config: opts.configFile }, w),
  });
  const commands = commandNamesFromEnv(env);
  const store = await openBotStore(opts.dbFile, env.DEPLOYBOT_DATABASE_URL || undefined, opts.tables ?? TABLES);

  // Whatever was opened is closed again when the start fails half way.
  let app: App | undefined;
  let opsServer: Server | undefined;
  let elected: LeaderLease | undefined;
  const abandon = async () => {
    await elected?.stop();
    await Promise.allSettled([
      app ? within(1_000, app.stop(), () => new Error("stop timed out")) : undefined,
      opsServer ? new Promise((r) => opsServer?.close(r)) : undefined,
    ]);
    await store.close();
  };

  try {
    const identity = await verifyBotToken({
      token: settings.botToken,
      ...(settings.slackApiUrl ? { slackApiUrl: settings.slackApiUrl } : {}),
      timeoutMs: left(),
    });

    const pd = config.pagerduty;
    const routingKey = pd ? env[pd.routing_key_env] : undefined;
    const apiToken = pd ? env[pd.api_token_env] : undefined;
    const pager =
      opts.adapters?.pager ??
      (pd && routingKey && apiToken
        ? new PagerDutyAdapter({ routingKey, apiToken, server: pd.server })
        : noPagerDuty(pd ? `set ${pd.routing_key_env} and ${pd.api_token_env}` : "no pagerduty section in the config"));
    // Processes sharing the database elect one leader: it runs the jobs and performs the effects; the others serve
    // Slack requests and wait to take over.
    const lease = new LeaderLease(
      { store, logger, clock: systemClock },
      { holder: holderName(), ttlMs: leaseTtlFromEnv(env, DEFAULT_LEASE_TTL_MS) },
    );
    const services = buildServices(
      {
        config,
        store,
        clock: opts.clock ?? systemClock,
        ecs: opts.adapters?.ecs ?? new AwsEcs(),
        elb: opts.adapters?.elb ?? new AwsElb(),
        metrics: opts.adapters?.metrics ?? new AwsCloudWatch(),
        pager,
        chat: new SlackChat(),
        logger,
      },
      { fence: lease },
    );
    elected = lease;
    // A new leader first finishes whatever the last one left open.
    lease.onChange((leading) => {
      if (leading) services.reconciler.kick();
    });

    // Deploys, rollbacks and incidents by status come from the store at each scrape.
    registerStoreMetrics({
      deployments: () => store.deployments.counts(),
      incidents: () => store.incidents.counts(),
    });

    // Readiness: the database takes a write, the token still works (and Socket Mode is connected), the monitor runs.
    let lastCycle: Date | null = null;
    let draining = false;
    const slack = { ok: true, detail: `auth.test ok: bot ${identity.botUserId}` };
    const unsubscribe = onSlackError((method, code) => {
      if (TOKEN_ERRORS.has(code))
        Object.assign(slack, { ok: false, detail: `Slack refused the token (${code}) in ${method}` });
    });
    const checks: ReadinessChecks = {
      databaseWritable: () => store.kv.set("ops.readyz", new Date().toISOString()),
      slack: () => ({ ...slack }),
      lastCycleAt: () => lastCycle,
      monitorIntervalMs: config.monitor.interval,
      startedAt,
      draining: () => draining,
      leadership: () => lease.readiness(),
    };
    const http = settings.mode === "http";
    const leader = () => lease.leading();
    const routes = opsRoutes({
      readiness: () => readiness(checks),
      // With METRICS_PORT in HTTP mode, /metrics is served there only, not on the port Slack (and anyone) reaches.
      metrics: !(http && settings.metricsPort !== undefined),
      leader,
    });
    const metricsOnly = opsRoutes({ readiness: () => readiness(checks), metrics: true, leader });

    const inFlight = new InFlight();
    const jobs: Job[] = [];
    app = createApp(services, {
      botToken: settings.botToken,
      transport: http
        ? { kind: "http", signingSecret: settings.signingSecret as string, port: settings.port }
        : { kind: "socket", appToken: settings.appToken as string },
      ...(settings.slackApiUrl ? { slackApiUrl: settings.slackApiUrl } : {}),
      // SLACK_API_URL in production is a proxy or a Slack-compatible server: retry as against Slack itself.
      webApiRetries: 3,
      // Jobs start only once the bot is connected: a failed start must not leave a monitor calling AWS.
      scheduler: { add: (job) => jobs.push(job), stop: () => {} },
      identity,
      commands,
      // Replays are remembered in the database, so every replica recognises them.
      replayGuard: opts.replayGuard ?? new StoreReplayGuard(store.requests),
      inFlight,
      reconcilerMs: LEADER_RECONCILER_MS,
      ...(http ? { opsRoutes: routes } : {}),
      onMonitorCycle: (at) => {
        lastCycle = at;
      },
      onSocketState: (connected, state) => {
        if (!slack.ok && slack.detail.startsWith("Slack refused the token")) return;
        Object.assign(slack, { ok: connected, detail: connected ? "Socket Mode connected" : `Socket Mode ${state}` });
      },
    });

    let port: number | undefined;
    if (http) {
      const listen = { port: settings.port, ...(settings.host ? { host: settings.host } : {}) };
      const server = (await within(left(), app.start(listen as never), () => new Error("listen timed out")).catch(
        (err: unknown) => {
          throw listenError(err, "PORT", settings.port);
        },
      )) as Server;
      port = portOf(server);
    } else {
      await within(
        left(),
        app.start(),
        () =>
          new StartupError(
            `Slack's Socket Mode did not connect within ${Math.round((opts.startTimeoutMs ?? START_TIMEOUT_MS) / 1000)} s`,
            "check the network, proxy and firewall between deploybot and Slack, and that Socket Mode is on for the app",
          ),
      ).catch((err: unknown) => {
        throw socketError(err);
      });
    }
    if (settings.metricsPort === undefined && !http)
      logger.warn(
        "Socket Mode without METRICS_PORT: no /healthz, /readyz or /metrics to probe; set METRICS_PORT (the image sets 9090)",
      );
    if (settings.metricsPort !== undefined) {
      const metricsPort = settings.metricsPort;
      opsServer = await startOpsServer(metricsPort, metricsOnly, settings.host).catch((err: unknown) => {
        throw listenError(err, "METRICS_PORT", metricsPort);
      });
    }

    const cron = opts.scheduler ?? new CronScheduler(logger);
    for (const job of jobs) cron.add(job);
    // Jobs run only while this process leads; it asks for the lease now, then every third of its period.
    await lease.start();
    logger.info(
      {
        mode: settings.mode,
        leader: lease.leading(),
        leaseTtlMs: lease.ttlMs,
        bot: identity.botUserId,
        commands: Object.values(commands),
        ...(port !== undefined ? { port } : {}),
        ...(opsServer ? { metricsPort: portOf(opsServer) } : {}),
        tickMs: DEPLOYMENTS_TICK_MS,
        monitorMs: config.monitor.interval,
      },
      http ? "deploybot is listening for Slack on /slack/events" : "deploybot is connected to Slack (Socket Mode)",
    );

    const started = app;
    const grace = opts.shutdownGraceMs ?? SHUTDOWN_GRACE_MS;
    let stopping: Promise<StopReport> | undefined;
    const stop = (reason: string): Promise<StopReport> => {
      stopping ??= (async () => {
        const t0 = Date.now();
        const until = t0 + grace;
        const rest = () => Math.max(0, until - Date.now());
        draining = true;
        cron.stop();
        // Stop taking requests first; then let what already arrived (and the job under way) finish.
        await within(rest(), started.stop(), () => new Error("the receiver did not stop")).catch((err: unknown) =>
          logger.warn({ err }, "the Slack receiver did not stop cleanly"),
        );
        let drained = await inFlight.idle(rest());
        if (drained)
          drained = await within(
            rest(),
            services.idle().then(() => true),
            () => new Error(""),
          ).catch(() => false);
        if (opsServer) await new Promise((r) => opsServer?.close(r));
        unsubscribe();
        // Given up rather than left to expire: a standby takes over on its next turn.
        await lease.stop();
        // Closing the last connection checkpoints the WAL into the database file.
        await store.close();
        const report = { reason, drained, ms: Date.now() - t0 };
        logger.info(
          { ...report, stillRunning: inFlight.size },
          drained
            ? `deploybot stopped on ${reason}: finished its work and closed the database`
            : `deploybot stopped on ${reason}: gave up on ${inFlight.size} unfinished task(s) after ${grace / 1000} s; closed the database`,
        );
        return report;
      })();
      return stopping;
    };
    return {
      identity,
      ...(port !== undefined ? { port } : {}),
      ...(opsServer ? { metricsPort: portOf(opsServer) } : {}),
      stop,
    };
  } catch (err) {
    await abandon();
    throw err;
  }
}
