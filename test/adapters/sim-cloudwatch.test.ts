import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { DeploybotError, ErrorCode } from "../../src/errors.js";
import { parseThreshold } from "../../src/policies/guardrail-rules.js";
import type { MetricQuery, MetricSpec } from "../../src/ports.js";
import { requestSeriesId } from "../../src/ports.js";
import { EXAMPLE, type SimHarness, START, simHarness, TD, WEB_PROD } from "../helpers/sim-world.js";

const MIN = 60_000;
const t0 = Date.parse(START);
const minute = (m: number) => new Date(t0 + m * MIN);

function query(
  metricName: string,
  spec: MetricSpec = { preset: metricName as "error_rate" },
  service = "web",
  environment = "production",
  id = "q1",
): MetricQuery {
  return {
    id,
    region: "af-south-1",
    service,
    environment,
    metricName,
    spec,
    periodSeconds: 60,
    context: { cluster: "comply360-prod", ecsService: "web" },
  };
}

/** The datapoints of the first series, as [minute after START, value]. */
async function read(h: SimHarness, q: MetricQuery, from: number, to: number) {
  const [series] = await h.cloudwatch.getMetricData([q], minute(from), minute(to));
  return (series?.datapoints ?? []).map((p) => [(p.at.getTime() - t0) / MIN, p.value]);
}

describe("simulated CloudWatch publishes datapoints as CloudWatch does", () => {
  it("returns only periods that have ended, stamped at their start", async () => {
    const h = simHarness();
    h.at(5);
    expect(await read(h, query("error_rate"), 0, 5)).toEqual([
      [0, 0.1],
      [1, 0.1],
      [2, 0.1],
      [3, 0.1],
      [4, 0.1],
    ]);
  });

  it("hides the datapoints of the last :lag after their period ended", async () => {
    const h = simHarness();
    h.world.setLag(3 * MIN);
    h.at(10);
    const points = await read(h, query("p95_latency"), 0, 10);
    expect(points.map(([m]) => m)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    h.world.setLag(0);
    expect((await read(h, query("p95_latency"), 0, 10)).map(([m]) => m).at(-1)).toBe(9);
  });

  it("still returns the request counts next to every error_rate series", async () => {
    const h = simHarness();
    h.at(2);
    const series = await h.cloudwatch.getMetricData([query("error_rate")], minute(0), minute(2));
    expect(series.map((s) => s.id)).toEqual(["q1", requestSeriesId("q1")]);
    expect(series[1]?.datapoints.map((p) => p.value)).toEqual([1200, 1200]);
  });
});

describe("simulated CloudWatch faults", () => {
  it("answers 500s while it is down and recovers when the window ends in simulated time", async () => {
    const h = simHarness();
    h.at(1);
    h.world.down("cloudwatch", 5 * MIN);
    const during = await h.cloudwatch.getMetricData([query("cpu")], minute(0), minute(1)).catch((e: unknown) => e);
    expect(during).toBeInstanceOf(DeploybotError);
    expect(during).toMatchObject({ code: ErrorCode.AwsFailed, transient: true });
    expect((during as Error).message).toContain("HTTP 500");
    h.clock.set(new Date(minute(6).getTime() - 1));
    await expect(h.cloudwatch.getMetricData([query("cpu")], minute(0), minute(1))).rejects.toThrow("HTTP 500");
    h.at(6);
    expect(await read(h, query("cpu"), 0, 2)).toEqual([
      [0, 35],
      [1, 35],
    ]);
    const errors = h.events.map((e) => (e.kind === "aws" ? (e.error ?? "ok") : e.kind));
    expect(errors).toEqual(["InternalServiceError", "InternalServiceError", "ok"]);
  });

  it("throttles the next COUNT GetMetricData calls as Throttling, then answers", async () => {
    const h = simHarness();
    h.at(2);
    h.world.throttle("cloudwatch", "GetMetricData", 1);
    const err = await h.cloudwatch.getMetricData([query("cpu")], minute(0), minute(2)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.AwsFailed, transient: true });
    expect((err as Error).message).toContain("Throttling");
    expect(await read(h, query("cpu"), 0, 2)).toHaveLength(2);
  });
});

describe("simulated metrics belong to versions and mix by traffic", () => {
  const canary = { type: "CANARY", canaryPercent: 10, canaryBakeMinutes: 5 } as const;

  it("a 10% canary at 20% errors reads about 2% on the service, then 20% once it takes all the traffic", async () => {
    const h = simHarness();
    const v2 = await h.deploy("v1.4.2", canary);
    h.at(1);
    expect(h.world.setMetric("web", "production", "error_rate", 20)).toEqual({
      version: "v1.4.2",
      taskDefinitionArn: v2,
    });
    h.at(8);
    const points = await read(h, query("error_rate"), 0, 8);
    // 0.1 × 20% + 0.9 × 0.1% while the canary holds 10%, 20% from minute 6.
    expect(points).toEqual([
      [0, 0.1],
      [1, 2.09],
      [2, 2.09],
      [3, 2.09],
      [4, 2.09],
      [5, 2.09],
      [6, 20],
      [7, 20],
    ]);
  });

  it("keeps request_count the service's total while the traffic is split", async () => {
    const h = simHarness();
    await h.deploy("v1.4.2", canary);
    h.at(3);
    const [, requests] = await h.cloudwatch.getMetricData([query("error_rate")], minute(0), minute(3));
    expect(requests?.datapoints.map((p) => p.value)).toEqual([1200, 1200, 1200]);
  });

  it("keeps a value with the version it was set on: the live version's errors still count beside a canary", async () => {
    const h = simHarness();
    h.world.setMetric("web", "production", "error_rate", 5);
    await h.deploy("v1.4.2", canary);
    h.at(2);
    // 0.9 × 5% (v1.4.0, still live) + 0.1 × 0.1% (v1.4.2, healthy).
    expect(h.world.metricAt("web", "production", "error_rate", minute(1))).toBeCloseTo(4.51, 9);
    h.at(7);
    expect(h.world.metricAt("web", "production", "error_rate", minute(6))).toBe(0.1);
  });

  it("drops the bad version's reading at once when StopServiceDeployment rolls it back", async () => {
    const h = simHarness();
    await h.deploy("v1.4.2", canary);
    h.at(2);
    h.world.setMetric("web", "production", "p95_latency", 4);
    expect(h.world.metricAt("web", "production", "p95_latency", minute(2))).toBeCloseTo(0.625, 9);
    const [d] = await h.ecs.listServiceDeployments(WEB_PROD);
    await h.ecs.stopServiceDeployment(WEB_PROD, d?.arn as string);
    expect(h.world.metricAt("web", "production", "p95_latency", minute(2))).toBe(0.25);
    expect(h.world.trafficAt("comply360-prod", "web", minute(2))).toEqual([
      { version: "v1.4.0", taskDefinitionArn: TD(1), share: 1 },
    ]);
  });

  it("reads healthy_hosts as the service's desired count", () => {
    const h = simHarness();
    expect(h.world.metricAt("web", "production", "healthy_hosts", minute(0))).toBe(4);
    expect(h.world.metricAt("web", "staging", "healthy_hosts", minute(0))).toBe(2);
  });

  it("gives custom metrics the defaults of simulation.metrics, and no datapoints to one without a default", async () => {
    const config = loadConfig(EXAMPLE);
    config.simulation.metrics = { FailureRate: 0.4 };
    const h = simHarness({ config });
    h.at(2);
    const custom = (name: string): MetricSpec => ({ namespace: "Shop", name, dimensions: {}, stat: "Average" });
    expect(await read(h, query("FailureRate", custom("FailureRate")), 0, 2)).toEqual([
      [0, 0.4],
      [1, 0.4],
    ]);
    expect(await read(h, query("Errors", custom("Errors")), 0, 2)).toEqual([]);
  });
});

describe("the healthy defaults", () => {
  const dir = fileURLToPath(new URL("../../examples/", import.meta.url));
  const files = readdirSync(dir).filter((f) => f.endsWith(".yml"));

  it.each(files)("stay on the healthy side of every preset guardrail in examples/%s", (file) => {
    const config = loadConfig(`${dir}${file}`);
    const h = simHarness({ config });
    const problems: string[] = [];
    for (const [service, svc] of Object.entries(config.services)) {
      for (const [environment, se] of Object.entries(svc.environments)) {
        for (const g of se.guardrails) {
          if (typeof g.metric !== "string") continue;
          const threshold = parseThreshold(g.threshold);
          if (threshold.unit === "baseline") continue;
          const value = h.world.metricAt(service, environment, g.metric, minute(0));
          const breaching =
            value === undefined || (threshold.op.startsWith(">") ? value >= threshold.value : value <= threshold.value);
          if (breaching) problems.push(`${service} ${environment} ${g.name}: ${value} vs ${g.threshold}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});
