import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { AwsCloudWatch } from "./adapters/aws/cloudwatch.js";
import { AwsEcs } from "./adapters/aws/ecs.js";
import { PagerDutyAdapter } from "./adapters/pagerduty.js";
import { createApp } from "./app.js";
import { systemClock } from "./clock.js";
import { loadConfig } from "./config/load.js";
import { DeploybotError, ErrorCode } from "./errors.js";
import type { PagerPort } from "./ports.js";
import { buildServices } from "./services/index.js";
import { CronScheduler } from "./services/scheduler.js";
import { openStore } from "./store/index.js";

/** PagerDuty when its keys are not set: nothing can be paged and nobody is on call (fail closed). */
const noPagerDuty = (why: string): PagerPort => ({
  sendEvent: async () => {
    throw new DeploybotError(ErrorCode.PagerDutyFailed, `PagerDuty is not configured: ${why}`);
  },
  onCalls: async () => {
    throw new DeploybotError(ErrorCode.PagerDutyFailed, `PagerDuty could not be checked: ${why}`);
  },
});

/** Connects to a real workspace (Socket Mode or HTTP) with the real AWS and PagerDuty adapters. */
export async function startSlack(opts: { configFile: string; dbFile: string; logger: Logger }): Promise<void> {
  const env = process.env;
  const config = loadConfig(opts.configFile);
  mkdirSync(dirname(opts.dbFile), { recursive: true });
  const store = await openStore({ url: env.DEPLOYBOT_DATABASE_URL, file: opts.dbFile });
  const pd = config.pagerduty;
  const routingKey = pd ? env[pd.routing_key_env] : undefined;
  const apiToken = pd ? env[pd.api_token_env] : undefined;
  const pager =
    pd && routingKey && apiToken
      ? new PagerDutyAdapter({ routingKey, apiToken, server: pd.server })
      : noPagerDuty(pd ? `set ${pd.routing_key_env} and ${pd.api_token_env}` : "no pagerduty section in the config");
  const services = buildServices({
    config,
    store,
    clock: systemClock,
    ecs: new AwsEcs(),
    metrics: new AwsCloudWatch(),
    pager,
    logger: opts.logger,
  });
  const botToken = env.SLACK_BOT_TOKEN as string;
  const transport = env.SLACK_APP_TOKEN
    ? ({ kind: "socket", appToken: env.SLACK_APP_TOKEN } as const)
    : ({ kind: "http", signingSecret: env.SLACK_SIGNING_SECRET as string, port: Number(env.PORT ?? 3000) } as const);
  const app = createApp(services, { botToken, transport, scheduler: new CronScheduler(opts.logger) });
  await app.start();
  opts.logger.info(
    { mode: transport.kind, ...(transport.kind === "http" ? { port: transport.port } : {}) },
    transport.kind === "http"
      ? "deploybot is listening for Slack on /slack/events"
      : "deploybot is connected to Slack (Socket Mode)",
  );
}
