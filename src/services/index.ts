import type { Logger } from "pino";
import { SlackChat } from "../adapters/slack.js";
import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import type { EcsPort, MetricsPort, PagerPort } from "../ports.js";
import type { Store } from "../store/index.js";
import type { Background } from "./background.js";
import { DeploymentService } from "./deployments.js";
import { Monitor } from "./monitor.js";
import { OnCallDirectory } from "./oncall.js";
import { Paging } from "./paging.js";
import { People } from "./people.js";
import { RollbackService } from "./rollbacks.js";
import { StatusService } from "./status.js";

/** What deploybot is built from: the config, the store, the clock and the adapters behind the ports. */
export interface Deps {
  config: Config;
  store: Store;
  clock: Clock;
  ecs: EcsPort;
  metrics: MetricsPort;
  pager: PagerPort;
  logger: Logger;
  /** Work started after a Slack ack; the console waits on it. */
  background: Background;
}

/** The services the Slack listeners call; one instance per process. */
export interface Services extends Deps {
  chat: SlackChat;
  people: People;
  status: StatusService;
  deployments: DeploymentService;
  rollbacks: RollbackService;
  paging: Paging;
  monitor: Monitor;
}

/** Wires the services from their dependencies; `oncallCacheMs` overrides the config (the console uses 0). */
export function buildServices(deps: Deps, options: { oncallCacheMs?: number } = {}): Services {
  const { config } = deps;
  const pd = config.pagerduty;
  const chat = new SlackChat();
  const emails = new Map(
    Object.values(config.users).flatMap((u) => (u.email ? [[u.email.toLowerCase(), u.slack_id] as const] : [])),
  );
  const oncall = pd
    ? new OnCallDirectory({
        pager: deps.pager,
        scheduleIds: pd.schedules,
        maxLevel: pd.max_escalation_level,
        cacheMs: options.oncallCacheMs ?? pd.cache,
        clock: deps.clock,
        // The config's own emails first (an explicit mapping), then Slack's directory.
        resolveEmail: async (email) => emails.get(email.toLowerCase()) ?? chat.lookupByEmail(email),
      })
    : null;
  const people = new People(config, oncall, chat, deps.clock);
  const paging = new Paging(deps);
  const deployments = new DeploymentService({ ...deps, chat, people });
  const rollbacks = new RollbackService({ ...deps, chat, people, paging }, deployments);
  return {
    ...deps,
    chat,
    people,
    status: new StatusService(deps),
    deployments,
    paging,
    rollbacks,
    monitor: new Monitor({ ...deps, chat, people, paging }, deployments, rollbacks),
  };
}
