import { afterEach, describe, expect, it } from "vitest";
import { SimElb } from "../../src/adapters/sim/elbv2.js";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import { findTarget, type Target } from "../../src/domain/targets.js";
import { anyStepsOf, trafficPlan, weightsFor } from "../../src/domain/traffic.js";
import { DeploybotError } from "../../src/errors.js";
import type { EcsTarget, MetricQuery } from "../../src/ports.js";
import { STEPS_EXAMPLE } from "../helpers/ecs-canary-example.js";
import { type SimHarness, START, simHarness, tempDir } from "../helpers/sim-world.js";

const MIN = 60_000;
const t0 = Date.parse(START);
const minute = (m: number) => new Date(t0 + m * MIN);

const config = loadConfig(STEPS_EXAMPLE);
const target = findTarget(config, "web", "production") as Target;
const plan = trafficPlan(target, anyStepsOf(target.settings) as NonNullable<ReturnType<typeof anyStepsOf>>);
const BLUE = plan.sides.blue.targetGroup;
const GREEN = plan.sides.green.targetGroup;
const GREEN_ECS: EcsTarget = { ...target.ecs, service: "web-green" };

/** A query of one target group's preset, as the monitor makes it for one side. */
function query(metricName: string, targetGroup?: string, id = "q1"): MetricQuery {
  return {
    id,
    region: "af-south-1",
    service: "web",
    environment: "production",
    metricName,
    spec: { preset: metricName as "error_rate" },
    periodSeconds: 60,
    context: {
      cluster: "comply360-prod",
      ecsService: "web",
      loadBalancer: "app/comply360-prod/50dc6c495c0c9188",
      ...(targetGroup ? { targetGroup } : {}),
    },
  };
}

async function values(h: SimHarness, q: MetricQuery, from: number, to: number, series = 0): Promise<number[]> {
  const out = await h.cloudwatch.getMetricData([q], minute(from), minute(to));
  return (out[series]?.datapoints ?? []).map((p) => p.value);
}

/** green runs v1.4.2 on 4 tasks (its ECS rollout done); the rule still sends everything to blue. */
async function greenUp(h: SimHarness): Promise<string> {
  const base = await h.ecs.describeTaskDefinition(
    target.ecs,
    (await h.ecs.describeService(target.ecs)).taskDefinitionArn,
  );
  const image = (base.containers[0]?.image ?? "").replace(/:[^:/]+$/, ":v1.4.2");
  const v2 = (await h.ecs.registerTaskDefinition(target.ecs, base, image)).arn;
  await h.ecs.updateService(GREEN_ECS, v2, { type: "ROLLING" }, 4);
  return v2;
}

let cleanup: (() => void) | undefined;
afterEach(() => {
  cleanup?.();
  cleanup = undefined;
});

describe("the simulated load balancer of a target with traffic steps", () => {
  it("starts with web-green idle and the rule forwarding everything to blue", async () => {
    const h = simHarness({ config });
    const elb = new SimElb(h.world);
    expect(await elb.describeWeights(plan.router)).toEqual(weightsFor(plan, "blue", 100));
    expect(h.world.read().services["comply360-prod/web-green"]).toMatchObject({ desiredCount: 0 });
    expect(await elb.targetHealth("af-south-1", GREEN)).toEqual({ healthy: 0, total: 0 });
  });

  it("counts green's healthy targets as ECS brings its tasks up", async () => {
    const h = simHarness({ config });
    const elb = new SimElb(h.world);
    await greenUp(h);
    h.at(2);
    expect(await elb.targetHealth("af-south-1", GREEN)).toEqual({ healthy: 2, total: 4 });
    h.at(4);
    expect(await elb.targetHealth("af-south-1", GREEN)).toEqual({ healthy: 4, total: 4 });
  });

  it("prints ModifyRule with the exact input and moves the traffic, and each group's metrics, with it", async () => {
    const h = simHarness({ config });
    const elb = new SimElb(h.world);
    await greenUp(h);
    h.at(4);
    h.world.setMetric("web", "production", "error_rate", 20);
    await elb.setWeights(plan.router, weightsFor(plan, "green", 10));
    const modify = h.events.find((e) => e.kind === "aws" && e.op === "ModifyRule");
    expect(modify).toEqual({
      kind: "aws",
      api: "elbv2",
      op: "ModifyRule",
      input: {
        RuleArn: plan.router.arn,
        Actions: [
          {
            Type: "forward",
            ForwardConfig: {
              TargetGroups: [
                { TargetGroupArn: BLUE, Weight: 90 },
                { TargetGroupArn: GREEN, Weight: 10 },
              ],
            },
          },
        ],
      },
    });
    expect(await elb.describeWeights(plan.router)).toEqual(weightsFor(plan, "green", 10));
    h.at(7);
    // Each target group reads its own version's values; the load balancer reads the mix by weight (DESIGN §6).
    expect(await values(h, query("error_rate", GREEN), 4, 7)).toEqual([20, 20, 20]);
    expect(await values(h, query("error_rate", BLUE), 4, 7)).toEqual([0.1, 0.1, 0.1]);
    expect(await values(h, query("error_rate"), 4, 7)).toEqual([2.09, 2.09, 2.09]);
    // Requests split by weight: green serves 10% of the 1200 a minute.
    expect(await values(h, query("error_rate", GREEN), 4, 7, 1)).toEqual([120, 120, 120]);
    expect(await values(h, query("error_rate", BLUE), 4, 7, 1)).toEqual([1080, 1080, 1080]);
  });

  it("replays past minutes with the weights they had", async () => {
    const h = simHarness({ config });
    const elb = new SimElb(h.world);
    await greenUp(h);
    h.at(4);
    h.world.setMetric("web", "production", "error_rate", 10);
    await elb.setWeights(plan.router, weightsFor(plan, "green", 50));
    h.at(6);
    await elb.setWeights(plan.router, weightsFor(plan, "blue", 100));
    h.at(8);
    // Minutes 4-5 at 50% (5.05% on the load balancer), then all back on blue.
    expect(await values(h, query("error_rate"), 3, 8)).toEqual([0.1, 5.05, 5.05, 0.1, 0.1]);
    expect(await values(h, query("error_rate", GREEN), 3, 8, 1)).toEqual([0, 600, 600, 0, 0]);
  });

  it("throttles ModifyRule as :throttle says, with ELB's own code, and sets nothing", async () => {
    const h = simHarness({ config });
    const elb = new SimElb(h.world);
    h.world.throttle("elbv2", "ModifyRule", 1);
    const err = await elb.setWeights(plan.router, weightsFor(plan, "green", 10)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeploybotError);
    expect((err as DeploybotError).transient).toBe(true);
    expect((err as DeploybotError).message).toContain("Elastic Load Balancing throttled ModifyRule (Throttling");
    expect(h.events.filter((e) => e.kind === "aws" && e.op === "ModifyRule")).toMatchObject([{ error: "Throttling" }]);
    expect(await elb.describeWeights(plan.router)).toEqual(weightsFor(plan, "blue", 100));
    await elb.setWeights(plan.router, weightsFor(plan, "green", 10));
    expect(await elb.describeWeights(plan.router)).toEqual(weightsFor(plan, "green", 10));
  });

  it("keeps the new weights in the world file when the bot dies right after ModifyRule", async () => {
    const tmp = tempDir();
    cleanup = tmp.remove;
    const file = `${tmp.dir}/world.sim`;
    const clock = new ManualClock(START);
    const world = new SimWorld(config, clock, { file });
    world.crashAfter("elbv2", "ModifyRule");
    await new SimElb(world).setWeights(plan.router, weightsFor(plan, "green", 10));
    expect(world.dead).toBe(true);
    const again = new SimWorld(config, clock, { file });
    try {
      expect(await new SimElb(again).describeWeights(plan.router)).toEqual(weightsFor(plan, "green", 10));
    } finally {
      again.kill();
    }
  });
});
