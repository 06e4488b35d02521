import type { Logger } from "pino";
import { SimCloudWatch } from "../adapters/sim/cloudwatch.js";
import { SimEcs } from "../adapters/sim/ecs.js";
import { SimElb } from "../adapters/sim/elbv2.js";
import { SimPagerDuty } from "../adapters/sim/pagerduty.js";
import { SimWorld } from "../adapters/sim/world.js";
import { ScaledClock } from "../clock.js";
import { loadConfig } from "../config/load.js";
import { DeploybotError, ErrorCode } from "../errors.js";
import type { EcsPort, ElbPort, MetricsPort, PagerPort } from "../ports.js";
import { ScaledScheduler } from "../services/scheduler.js";
import { SlackLikeServer } from "./slack-server.js";

/** What a bot process needs to run against a simulated world that other bot processes share. */
export interface SimReplica {
  clock: ScaledClock;
  world: SimWorld;
  /** The Slack-like Web API this process's bot talks to (its messages live in the world file). */
  slack: SlackLikeServer;
  adapters: { ecs: EcsPort; elb: ElbPort; metrics: MetricsPort; pager: PagerPort };
  /** Runs the bot's jobs at their simulated intervals on the scaled clock. */
  scheduler: ScaledScheduler;
  close(): Promise<void>;
}

/**
 * The simulated side of one bot process in the failover tests (the hidden `deploybot sim-replica` mode): simulated
 * ECS, CloudWatch, PagerDuty and Slack in a world file that several processes share, on a clock that runs faster
 * than real time from the origin kept in that file, so every process agrees on the simulated time. The bot itself
 * runs as in Slack mode (startSlack), with its store on a SQLite file or PostgreSQL and its leader lease in real time.
 */
export async function openSimReplica(opts: {
  configFile: string;
  worldFile: string;
  logger: Logger;
}): Promise<SimReplica> {
  const timeline = SimWorld.timeline(opts.worldFile);
  if (!timeline) {
    throw new DeploybotError(
      ErrorCode.ConfigInvalid,
      `${opts.worldFile} holds no simulated timeline: the failover tests create the world and its timeline first`,
    );
  }
  const config = loadConfig(opts.configFile);
  const clock = new ScaledClock(timeline);
  const world = new SimWorld(config, clock, { file: opts.worldFile });
  const slack = new SlackLikeServer(config, clock, world);
  await slack.start();
  return {
    clock,
    world,
    slack,
    adapters: {
      ecs: new SimEcs(world),
      elb: new SimElb(world),
      metrics: new SimCloudWatch(world),
      pager: new SimPagerDuty(world),
    },
    scheduler: new ScaledScheduler(timeline.speed, opts.logger),
    async close() {
      await slack.stop();
      world.kill();
    },
  };
}
