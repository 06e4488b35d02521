import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimCloudWatch } from "../../src/adapters/sim/cloudwatch.js";
import { SimEcs } from "../../src/adapters/sim/ecs.js";
import { SimPagerDuty } from "../../src/adapters/sim/pagerduty.js";
import { SimWorld } from "../../src/adapters/sim/world.js";
import type { SimEvent } from "../../src/adapters/sim/world-state.js";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import type { DeploymentStrategy, EcsTarget } from "../../src/ports.js";
import { ecsCanaryExample } from "./ecs-canary-example.js";

/** The example with web production on ECS's own CANARY (see ecsCanaryExample). */
export const EXAMPLE = ecsCanaryExample();
/** Tuesday 10:00 SAST, on a minute boundary so that minute-by-minute readings line up with periods. */
export const START = "2026-11-24T08:00:00.000Z";
/** web production of the example: 4 tasks. */
export const WEB_PROD: EcsTarget = {
  region: "af-south-1",
  cluster: "comply360-prod",
  service: "web",
  container: "web",
};
/** web staging of the example: 2 tasks. */
export const WEB_STAGING: EcsTarget = {
  region: "af-south-1",
  cluster: "comply360-staging",
  service: "web",
  container: "web",
};
export const TD = (revision: number, cluster = "comply360-prod") =>
  `arn:aws:ecs:af-south-1:123456789012:task-definition/${cluster}-web:${revision}`;

/** A simulated world on the example config with its adapters, a manual clock and every event it printed. */
export interface SimHarness {
  config: Config;
  clock: ManualClock;
  world: SimWorld;
  ecs: SimEcs;
  cloudwatch: SimCloudWatch;
  pagerduty: SimPagerDuty;
  events: SimEvent[];
  /** Registers `version` as a new revision of the target's task definition and deploys it; returns its ARN. */
  deploy(version: string, strategy: DeploymentStrategy, target?: EcsTarget): Promise<string>;
  /** Moves the clock to `minutes` after START. */
  at(minutes: number): void;
  /** The share of traffic `taskDefinitionArn` takes now on the target. */
  share(taskDefinitionArn: string, target?: EcsTarget): number;
}

export function simHarness(opts: { file?: string; config?: Config; start?: string } = {}): SimHarness {
  const config = opts.config ?? loadConfig(EXAMPLE);
  const clock = new ManualClock(opts.start ?? START);
  const world = new SimWorld(config, clock, opts.file ? { file: opts.file } : {});
  const events: SimEvent[] = [];
  world.onEvent((e) => events.push(e));
  const ecs = new SimEcs(world);
  const start = clock.now().getTime();
  return {
    config,
    clock,
    world,
    ecs,
    cloudwatch: new SimCloudWatch(world),
    pagerduty: new SimPagerDuty(world),
    events,
    async deploy(version, strategy, target = WEB_PROD) {
      const current = await ecs.describeService(target);
      const base = await ecs.describeTaskDefinition(target, current.taskDefinitionArn);
      const image = (base.containers[0]?.image ?? "").replace(/:[^:/]+$/, `:${version}`);
      const registered = await ecs.registerTaskDefinition(target, base, image);
      await ecs.updateService(target, registered.arn, strategy);
      return registered.arn;
    },
    at(minutes) {
      clock.set(new Date(start + minutes * 60_000));
    },
    share(taskDefinitionArn, target = WEB_PROD) {
      return (
        world.trafficAt(target.cluster, target.service).find((s) => s.taskDefinitionArn === taskDefinitionArn)?.share ??
        0
      );
    },
  };
}

/** A fresh temporary directory, and a function that removes it. */
export function tempDir(prefix = "deploybot-sim-"): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
