import { readFileSync } from "node:fs";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import type {
  CloudWatchClient,
  GetMetricDataCommandInput,
  GetMetricDataCommandOutput,
  MetricDataResult,
} from "@aws-sdk/client-cloudwatch";
import { pino } from "pino";
import { parse, stringify } from "yaml";
import { AwsCloudWatch } from "../src/adapters/aws/cloudwatch.js";
import { SimEcs } from "../src/adapters/sim/ecs.js";
import { SimPagerDuty } from "../src/adapters/sim/pagerduty.js";
import { SimWorld } from "../src/adapters/sim/world.js";
import { SlackChat } from "../src/adapters/slack.js";
import { ManualClock } from "../src/clock.js";
import { parseConfig } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";
import { buildServices, type Services } from "../src/services/index.js";
import { Store } from "../src/store/index.js";

/** A Tuesday inside the example config's deploy window (the clock does not matter to the monitor, only to /status). */
export const BENCH_NOW = "2026-11-24T10:30:00+02:00";

/** Guardrails per generated service: the example config's six production guardrails. */
export const GUARDRAILS_PER_DEPLOY = 6;

/**
 * The example config with `n` extra services (bench0001...), each with a production environment that
 * uses the same six production guardrails, load balancer and strategy as `web`.
 */
export function benchConfig(n: number): Config {
  const raw = parse(readFileSync(new URL("../examples/deploybot.yml", import.meta.url), "utf8"), {
    maxAliasCount: 10_000,
  }) as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (key.startsWith("x-")) delete raw[key];
  const services = raw.services as Record<string, { environments: Record<string, Record<string, unknown>> }>;
  const web = services.web?.environments.production;
  if (!web) throw new Error("examples/deploybot.yml has no web production environment");
  for (let i = 1; i <= n; i++) {
    const name = serviceName(i);
    services[name] = {
      environments: {
        production: {
          ...structuredClone(web),
          ecs: { cluster: "comply360-prod", service: name, container: name, region: "af-south-1" },
          load_balancer: {
            name: "app/comply360-prod/50dc6c495c0c9188",
            target_group: `targetgroup/${name}/${(0x73e2d6bc24d8a067n + BigInt(i)).toString(16)}`,
          },
        },
      },
    };
  }
  return parseConfig(stringify(raw, { aliasDuplicateObjects: false }), `examples/deploybot.yml + ${n} services`);
}

export function serviceName(i: number): string {
  return `bench${String(i).padStart(4, "0")}`;
}

/** Counts what the real AwsCloudWatch adapter sends. */
export interface CallCounter {
  calls: number;
  dataQueries: number;
  maxPerCall: number;
}

/**
 * A hand-written CloudWatchClient: `send` answers a GetMetricDataCommand with one Complete result per
 * returned query id (ReturnData !== false), a datapoint per period, healthy values (nothing breaches).
 * It awaits one setImmediate per call, as a network round trip would yield to the event loop.
 */
export function fakeCloudWatchClient(counter: CallCounter): CloudWatchClient {
  const client = {
    async send(command: { input: GetMetricDataCommandInput }): Promise<Partial<GetMetricDataCommandOutput>> {
      const input = command.input;
      const queries = input.MetricDataQueries ?? [];
      counter.calls++;
      counter.dataQueries += queries.length;
      counter.maxPerCall = Math.max(counter.maxPerCall, queries.length);
      if (queries.length > 500) throw Object.assign(new Error("too many queries"), { name: "ValidationError" });
      await yieldToLoop();
      const start = (input.StartTime as Date).getTime();
      const end = (input.EndTime as Date).getTime();
      const results: MetricDataResult[] = [];
      for (const q of queries) {
        if (q.ReturnData === false) continue;
        const period = (q.MetricStat?.Period ?? q.Period ?? 60) * 1000;
        const timestamps: Date[] = [];
        for (let t = Math.ceil(start / period) * period; t < end; t += period) timestamps.push(new Date(t));
        const value = healthyValue(q.Id ?? "", q.MetricStat?.Metric?.MetricName, q.Expression);
        results.push({
          Id: q.Id,
          StatusCode: "Complete",
          Timestamps: timestamps,
          Values: timestamps.map(() => value),
        });
      }
      return { MetricDataResults: results, $metadata: {} };
    },
  };
  return client as unknown as CloudWatchClient;
}

function healthyValue(id: string, metric: string | undefined, expression: string | undefined): number {
  if (expression) return 0.1; // error rate, percent
  if (id.endsWith("_requests") || metric === "RequestCount") return 1200;
  switch (metric) {
    case "TargetResponseTime":
      return 0.18;
    case "CPUUtilization":
      return 35;
    case "MemoryUtilization":
      return 48;
    case "HealthyHostCount":
      return 4;
    default:
      return 1;
  }
}

export interface Bot {
  n: number;
  config: Config;
  store: Store;
  clock: ManualClock;
  services: Services;
  counter: CallCounter;
}

/**
 * deploybot's services as the console builds them (Store, ManualClock, SimWorld, sims, Background,
 * buildServices), except CloudWatch: the real AwsCloudWatch adapter on the fake client above.
 * The SimWorld is in memory (no world file), so simulated ECS calls cost no disk writes (a console-only cost).
 */
export async function buildBot(n: number, configOverride?: Config): Promise<Bot> {
  const config = configOverride ?? benchConfig(n);
  const store = Store.sqlite(":memory:");
  const clock = new ManualClock(BENCH_NOW);
  const world = new SimWorld(config, clock);
  const logger = pino({ level: "silent" });
  const counter: CallCounter = { calls: 0, dataQueries: 0, maxPerCall: 0 };
  const services = buildServices(
    {
      config,
      store,
      clock,
      ecs: new SimEcs(world),
      metrics: new AwsCloudWatch(() => fakeCloudWatchClient(counter), { sleep: async () => {} }),
      pager: new SimPagerDuty(world),
      chat: new SlackChat(),
      logger,
    },
    { oncallCacheMs: 60_000 },
  );
  await seedDeployments(store, clock, n);
  return { n, config, store, clock, services, counter };
}

/** `n` deploys of bench0001..n to production, moved requested → approved → deploying → baking, bake ending in 25 min. */
export async function seedDeployments(store: Store, clock: ManualClock, n: number): Promise<void> {
  const now = clock.now();
  const started = new Date(now.getTime() - 5 * 60_000);
  const bakeEndsAt = new Date(now.getTime() + 25 * 60_000).toISOString();
  await store.tx(async () => {
    for (let i = 1; i <= n; i++) {
      const service = serviceName(i);
      const d = await store.deployments.create(
        {
          kind: "deploy",
          service,
          environment: "production",
          version: "v1.4.2",
          requestedBy: "alice",
          reason: "benchmark",
          previousVersion: "v1.4.0",
          previousTaskDefinition: `arn:aws:ecs:af-south-1:123456789012:task-definition/comply360-prod-${service}:1`,
          taskDefinition: `arn:aws:ecs:af-south-1:123456789012:task-definition/comply360-prod-${service}:2`,
        },
        started,
      );
      await store.deployments.apply(d.id, "allow", started);
      await store.locks.acquire(service, "production", d.id, "alice", started);
      await store.deployments.apply(d.id, "start", started, {
        startedAt: started.toISOString(),
        ecsDeploymentArn: `arn:aws:ecs:af-south-1:123456789012:service-deployment/comply360-prod/${service}/${d.id}`,
      });
      await store.deployments.apply(d.id, "rolled_out", now, { progress: { running: 4, desired: 4, bakeEndsAt } });
    }
  });
}
