import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { ManualClock } from "../../src/clock.js";
import { DeploybotError, ErrorCode } from "../../src/errors.js";
import { START, simHarness, TD, tempDir, WEB_PROD, WEB_STAGING } from "../helpers/sim-world.js";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** The share of `arn` at each minute from..to (inclusive), reading the world at each one. */
function sharesByMinute(h: ReturnType<typeof simHarness>, arn: string, from: number, to: number, target = WEB_PROD) {
  const out: number[] = [];
  for (let m = from; m <= to; m++) {
    h.at(m);
    out.push(h.share(arn, target));
  }
  return out;
}

async function statusOf(h: ReturnType<typeof simHarness>, target = WEB_PROD) {
  const [latest] = await h.ecs.listServiceDeployments(target);
  return latest?.status;
}

describe("simulated ECS rollouts follow the strategy UpdateService was given", () => {
  it("ROLLING starts one task a minute and gives the new version running/desired of the traffic", async () => {
    const h = simHarness();
    const v2 = await h.deploy("v1.4.2", { type: "ROLLING" });
    expect(sharesByMinute(h, v2, 0, 5)).toEqual([0, 0.25, 0.5, 0.75, 1, 1]);
    h.at(6);
    expect(await statusOf(h)).toBe("SUCCESSFUL");
  });

  it("ROLLING on a 2-task staging service is done after 2 minutes", async () => {
    const h = simHarness();
    const v2 = await h.deploy("v1.4.2", { type: "ROLLING" }, WEB_STAGING);
    h.at(1);
    expect(await statusOf(h, WEB_STAGING)).toBe("IN_PROGRESS");
    expect(sharesByMinute(h, v2, 1, 3, WEB_STAGING)).toEqual([0.5, 1, 1]);
    expect(await statusOf(h, WEB_STAGING)).toBe("SUCCESSFUL");
  });

  it("CANARY starts every new task within a minute, holds 10% for the 5-minute canary bake, then takes it all", async () => {
    const h = simHarness();
    const v2 = await h.deploy("v1.4.2", { type: "CANARY", canaryPercent: 10, canaryBakeMinutes: 5 });
    expect(sharesByMinute(h, v2, 0, 7)).toEqual([0, 0.1, 0.1, 0.1, 0.1, 0.1, 1, 1]);
    expect(sharesByMinute(h, TD(1), 8, 8)).toEqual([0]);

    const h2 = simHarness();
    const arn = await h2.deploy("v1.4.2", { type: "CANARY", canaryPercent: 10, canaryBakeMinutes: 5 });
    h2.at(1);
    const [d] = await h2.ecs.listServiceDeployments(WEB_PROD);
    expect(await h2.ecs.describeServiceDeployment(WEB_PROD, d?.arn as string)).toMatchObject({
      status: "IN_PROGRESS",
      runningCount: 4,
      targetTaskDefinitionArn: arn,
    });
    h2.clock.set(new Date(Date.parse(START) + 6 * 60_000 - 1));
    expect(await statusOf(h2)).toBe("IN_PROGRESS");
    h2.at(6);
    expect(await statusOf(h2)).toBe("SUCCESSFUL");
  });

  it("LINEAR adds its step every step bake until 100%, and succeeds then", async () => {
    const h = simHarness();
    const v2 = await h.deploy("v1.4.2", { type: "LINEAR", stepPercent: 25, stepBakeMinutes: 2 });
    expect(sharesByMinute(h, v2, 0, 8)).toEqual([0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1]);
    const h2 = simHarness();
    await h2.deploy("v1.4.2", { type: "LINEAR", stepPercent: 25, stepBakeMinutes: 2 });
    h2.at(6);
    expect(await statusOf(h2)).toBe("IN_PROGRESS");
    h2.at(7);
    expect(await statusOf(h2)).toBe("SUCCESSFUL");
  });

  it("BLUE_GREEN sends nothing to green until it is up, then everything at once, and succeeds after its bake", async () => {
    const h = simHarness();
    const v2 = await h.deploy("v1.4.2", { type: "BLUE_GREEN", bakeTimeMinutes: 15 });
    expect(sharesByMinute(h, v2, 0, 3)).toEqual([0, 1, 1, 1]);
    h.at(15);
    expect(await statusOf(h)).toBe("IN_PROGRESS");
    h.at(16);
    expect(await statusOf(h)).toBe("SUCCESSFUL");
  });

  it("sends UpdateService the deploymentConfiguration the real adapter sends, with the service's task percentages", async () => {
    const h = simHarness();
    const v2 = await h.deploy("v1.4.2", { type: "CANARY", canaryPercent: 10, canaryBakeMinutes: 5 });
    const update = h.events.find((e) => e.kind === "aws" && e.op === "UpdateService");
    expect(update).toEqual({
      kind: "aws",
      api: "ecs",
      op: "UpdateService",
      input: {
        cluster: "comply360-prod",
        service: "web",
        taskDefinition: v2,
        deploymentConfiguration: {
          maximumPercent: 200,
          minimumHealthyPercent: 100,
          deploymentCircuitBreaker: { enable: true, rollback: true },
          strategy: "CANARY",
          canaryConfiguration: { canaryPercent: 10, canaryBakeTimeInMinutes: 5 },
        },
      },
    });
  });

  it("a new UpdateService supersedes the deployment in progress, and its other traffic goes to what it replaces", async () => {
    const h = simHarness();
    const canary = { type: "CANARY", canaryPercent: 10, canaryBakeMinutes: 5 } as const;
    const v2 = await h.deploy("v1.4.2", canary);
    h.at(3);
    const v3 = await h.deploy("v1.4.3", canary);
    const list = await h.ecs.listServiceDeployments(WEB_PROD);
    expect(list.map((d) => d.status)).toEqual(["IN_PROGRESS", "STOPPED"]);
    // Until v1.4.3 is up, the split v1.4.2's canary had stays: 90% v1.4.0, 10% v1.4.2.
    expect([h.share(TD(1)), h.share(v2), h.share(v3)]).toEqual([0.9, 0.1, 0]);
    h.at(4);
    expect([h.share(TD(1)), h.share(v2), h.share(v3)]).toEqual([0.81, 0.09, 0.1]);
    h.at(9);
    expect([h.share(TD(1)), h.share(v2), h.share(v3)]).toEqual([0, 0, 1]);
  });

  it("StopServiceDeployment(ROLLBACK) puts the traffic back at once and reports ROLLBACK_SUCCESSFUL a minute later", async () => {
    const h = simHarness();
    const v2 = await h.deploy("v1.4.2", { type: "CANARY", canaryPercent: 10, canaryBakeMinutes: 5 });
    h.at(2);
    expect(h.share(v2)).toBe(0.1);
    const [d] = await h.ecs.listServiceDeployments(WEB_PROD);
    await h.ecs.stopServiceDeployment(WEB_PROD, d?.arn as string);
    expect(h.share(v2)).toBe(0);
    expect(h.share(TD(1))).toBe(1);
    expect(await statusOf(h)).toBe("ROLLBACK_IN_PROGRESS");
    h.at(3);
    expect(await statusOf(h)).toBe("ROLLBACK_SUCCESSFUL");
    expect((await h.ecs.describeService(WEB_PROD)).taskDefinitionArn).toBe(TD(1));
  });

  it("a rollback by UpdateService with the CANARY strategy leaves 90% on the bad version for the whole canary bake", async () => {
    const canary = { type: "CANARY", canaryPercent: 10, canaryBakeMinutes: 5 } as const;
    const h = simHarness();
    const bad = await h.deploy("v1.4.2", canary);
    h.at(10);
    expect(await statusOf(h)).toBe("SUCCESSFUL");
    await h.ecs.updateService(WEB_PROD, TD(1), canary);
    // Minute by minute from the rollback at minute 10: what is still on v1.4.2.
    expect(sharesByMinute(h, bad, 10, 17)).toEqual([1, 0.9, 0.9, 0.9, 0.9, 0.9, 0, 0]);

    // The same bad version stopped while still in flight: nothing is left on it from that minute on.
    const s = simHarness();
    const stopped = await s.deploy("v1.4.2", canary);
    s.at(3);
    const [d] = await s.ecs.listServiceDeployments(WEB_PROD);
    await s.ecs.stopServiceDeployment(WEB_PROD, d?.arn as string);
    expect(sharesByMinute(s, stopped, 3, 5)).toEqual([0, 0, 0]);
  });

  it("a deployment the circuit breaker fails (:fail) never takes traffic and is ROLLBACK_SUCCESSFUL after 3 minutes", async () => {
    const h = simHarness();
    h.world.failNext(WEB_PROD.cluster, WEB_PROD.service);
    const v2 = await h.deploy("v1.4.2", { type: "ROLLING" });
    expect(sharesByMinute(h, v2, 0, 2)).toEqual([0, 0, 0]);
    expect(await statusOf(h)).toBe("IN_PROGRESS");
    expect(sharesByMinute(h, v2, 3, 4)).toEqual([0, 0]);
    expect(await statusOf(h)).toBe("ROLLBACK_SUCCESSFUL");
    expect((await h.ecs.describeService(WEB_PROD)).taskDefinitionArn).toBe(TD(1));
  });
});

describe("simulated ECS task definitions", () => {
  it("answers DescribeTaskDefinition by ARN, by family:revision, and by a bare family with its latest revision, as ECS does", async () => {
    const h = simHarness();
    const base = await h.ecs.describeTaskDefinition(WEB_PROD, TD(1));
    expect((await h.ecs.describeTaskDefinition(WEB_PROD, "comply360-prod-web")).arn).toBe(TD(1));
    const v2 = await h.ecs.registerTaskDefinition(WEB_PROD, base, "web:v1.4.2");
    expect((await h.ecs.describeTaskDefinition(WEB_PROD, "comply360-prod-web")).arn).toBe(v2.arn);
    expect((await h.ecs.describeTaskDefinition(WEB_PROD, "comply360-prod-web:1")).arn).toBe(TD(1));
    await expect(h.ecs.describeTaskDefinition(WEB_PROD, "comply360-prod-api-x")).rejects.toThrow("not found");
  });
});

describe("simulated ECS faults", () => {
  it("throttles the next COUNT calls of one operation with a transient Throttling error, printed with its code", async () => {
    const h = simHarness();
    h.world.throttle("ecs", "UpdateService", 2);
    const current = await h.ecs.describeService(WEB_PROD);
    const base = await h.ecs.describeTaskDefinition(WEB_PROD, current.taskDefinitionArn);
    const v2 = await h.ecs.registerTaskDefinition(WEB_PROD, base, "web:v1.4.2");
    const strategy = { type: "ROLLING" } as const;

    for (let i = 0; i < 2; i++) {
      const err = await h.ecs.updateService(WEB_PROD, v2.arn, strategy).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeploybotError);
      expect(err).toMatchObject({ code: ErrorCode.AwsFailed, transient: true });
      expect((err as Error).message).toContain("Throttling");
    }
    expect(await h.ecs.listServiceDeployments(WEB_PROD)).toEqual([]);
    await h.ecs.updateService(WEB_PROD, v2.arn, strategy);
    expect(await h.ecs.listServiceDeployments(WEB_PROD)).toHaveLength(1);

    const updates = h.events.filter((e) => e.kind === "aws" && e.op === "UpdateService");
    expect(updates.map((e) => (e.kind === "aws" ? (e.error ?? "ok") : ""))).toEqual([
      "ThrottlingException",
      "ThrottlingException",
      "ok",
    ]);
    // DescribeServices inside UpdateService was never throttled.
    expect(h.events.filter((e) => e.kind === "aws" && e.error && e.op !== "UpdateService")).toEqual([]);
  });

  it("refuses every call once the world is killed, and writes nothing more", async () => {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    const file = join(tmp.dir, "world.sim");
    const h = simHarness({ file });
    h.world.kill();
    await expect(h.ecs.describeService(WEB_PROD)).rejects.toThrow("killed");
    await expect(h.ecs.updateService(WEB_PROD, TD(1), { type: "ROLLING" })).rejects.toThrow("killed");
    expect(h.events).toEqual([]);
  });
});

describe("the simulated world is durable at every call", () => {
  it("a second world on the same file sees the deployments, task definitions, metrics, on-call and the clock", async () => {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    const file = join(tmp.dir, "deploybot.db.sim");
    const first = simHarness({ file });
    const v2 = await first.deploy("v1.4.2", { type: "CANARY", canaryPercent: 10, canaryBakeMinutes: 5 });
    first.at(2);
    first.world.setMetric("web", "production", "error_rate", 20);
    first.world.setOnCall("carol");
    // No close, no save: what was written at each call must be enough.

    expect(SimWorld.savedClock(file)).toBe(new Date(Date.parse(START) + 2 * 60_000).toISOString());
    const second = simHarness({ file, start: new Date(Date.parse(START) + 2 * 60_000).toISOString() });
    expect(second.world.savedClock?.toISOString()).toBe(new Date(Date.parse(START) + 2 * 60_000).toISOString());
    expect(second.share(v2)).toBe(0.1);
    expect((await second.ecs.describeService(WEB_PROD)).taskDefinitionArn).toBe(v2);
    expect(await second.ecs.describeTaskDefinition(WEB_PROD, "comply360-prod-web:2")).toMatchObject({ arn: v2 });
    expect(second.world.read().onCall).toBe("carol");
    expect(second.world.metricAt("web", "production", "error_rate", second.clock.now())).toBeCloseTo(2.09, 9);
    second.at(6);
    expect(await statusOf(second)).toBe("SUCCESSFUL");
  });

  it("two worlds open on the same file at once act on each other's writes, never on a stale copy", async () => {
    const tmp = tempDir();
    cleanups.push(tmp.remove);
    const file = join(tmp.dir, "deploybot.db.sim");
    const a = simHarness({ file });
    const b = simHarness({ file });
    const v2 = await a.deploy("v1.4.2", { type: "CANARY", canaryPercent: 10, canaryBakeMinutes: 5 });
    a.at(2);
    b.at(2);
    const [d] = await b.ecs.listServiceDeployments(WEB_PROD);
    expect(d?.status).toBe("IN_PROGRESS");
    await b.ecs.stopServiceDeployment(WEB_PROD, d?.arn as string);
    // A's next write starts from B's rollback instead of overwriting it.
    a.world.setOnCall("dave");
    expect(await statusOf(b)).toBe("ROLLBACK_IN_PROGRESS");
    expect(a.share(v2)).toBe(0);
    expect(b.world.read().onCall).toBe("dave");
  });

  it("starts fresh in memory when no file is given", () => {
    const world = new SimWorld(simHarness().config, new ManualClock(START));
    expect(world.file).toBe(":memory:");
    expect(world.savedClock).toBeUndefined();
  });
});
