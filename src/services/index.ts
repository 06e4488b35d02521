import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import type { EcsPort, ElbPort, MetricsPort, PagerPort, SlackPort } from "../ports.js";
import type { Store } from "../store/index.js";
import { DeploymentService } from "./deployments.js";
import { IncidentService } from "./incidents.js";
import { Lifecycle } from "./lifecycle.js";
import { Monitor } from "./monitor.js";
import { OnCallDirectory } from "./oncall.js";
import { Outbox } from "./outbox.js";
import { pageHandler } from "./paging.js";
import { People } from "./people.js";
import { ALONE, type Fence, Reconciler, type ReconcilerOptions } from "./reconciler.js";
import { RollbackService } from "./rollbacks.js";
import { EcsRollout } from "./rollout.js";
import { SlackEffects } from "./slack-effects.js";
import { StatusService } from "./status.js";
import { TrafficSteps } from "./steps.js";

/** What deploybot is built from: the config, the store, the clock and the adapters behind the ports. */
export interface Deps {
  config: Config;
  store: Store;
  clock: Clock;
  ecs: EcsPort;
  metrics: MetricsPort;
  pager: PagerPort;
  /** Slack's Web API, bound to the Bolt app's client when the app is built. */
  chat: SlackPort;
  /** Elastic Load Balancing, for traffic steps; only a config with a STEPS strategy needs it. */
  elb?: ElbPort;
  logger: Logger;
}

/** The ELB port of a process built without one: any use says so (the config has no STEPS strategy to need it). */
const NO_ELB: ElbPort = new Proxy({} as ElbPort, {
  get: () => async () => {
    throw new DeploybotError(
      ErrorCode.Unknown,
      "traffic steps need an Elastic Load Balancing adapter, and this process was built without one",
    );
  },
});

/** The services the Slack listeners and the scheduled jobs call; one instance per process. */
export interface Services extends Deps {
  people: People;
  outbox: Outbox;
  reconciler: Reconciler;
  status: StatusService;
  steps: TrafficSteps;
  deployments: DeploymentService;
  rollbacks: RollbackService;
  incidents: IncidentService;
  monitor: Monitor;
  /** Whether this process leads (runs the scheduled jobs and performs effects): always, unless a lease says otherwise. */
  leader: Fence;
  /** Resolves once no work started by a request or a job is still running (the console and tests wait on it). */
  idle(): Promise<void>;
}

/**
 * Wires the services from their dependencies; `oncallCacheMs` overrides the config (the console uses 0). `fence` is
 * the leader lease of a process that shares its database with others (default: alone, always the leader).
 */
export function buildServices(
  deps: Deps,
  options: { oncallCacheMs?: number; reconciler?: ReconcilerOptions; fence?: Fence } = {},
): Services {
  const { config } = deps;
  const pd = config.pagerduty;
  const { chat } = deps;
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
  const outbox = new Outbox(deps);
  const lifecycle = new Lifecycle({ ...deps, outbox, people });
  const steps = new TrafficSteps({ ...deps, elb: deps.elb ?? NO_ELB, outbox, lifecycle, people });
  const rollout = new EcsRollout({ ...deps, outbox, lifecycle, placement: (d, t) => steps.placement(d, t) });
  const slack = new SlackEffects({ ...deps, chat, people, lifecycle, outbox });
  const reconciler = new Reconciler(
    deps,
    { ...rollout.handlers(), ...steps.handlers(), ...slack.handlers(), page: pageHandler({ ...deps, outbox }) },
    { ...options.reconciler, fence: options.fence ?? ALONE },
  );
  outbox.onCommit = () => reconciler.kick();
  const rollbacks = new RollbackService({ ...deps, people, outbox, lifecycle, steps });
  const deployments = new DeploymentService({
    ...deps,
    people,
    outbox,
    lifecycle,
    rollout,
    rollbacks,
    reconciler,
    steps,
  });
  const incidents = new IncidentService({ ...deps, outbox, lifecycle, people, rollbacks });
  return {
    ...deps,
    people,
    outbox,
    reconciler,
    status: new StatusService({ ...deps, steps }),
    steps,
    deployments,
    rollbacks,
    incidents,
    monitor: new Monitor({ ...deps, incidents }),
    leader: options.fence ?? ALONE,
    idle: () => reconciler.idle(),
  };
}
