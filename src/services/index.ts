import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import type { Background } from "./background.js";
import type { EcsPort, MetricsPort, PagerPort } from "./ports.js";
import { StatusService } from "./status.js";
import type { Store } from "./store.js";

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
  status: StatusService;
}

export function buildServices(deps: Deps): Services {
  return { ...deps, status: new StatusService(deps) };
}
