import {
  CloudWatchClient,
  GetMetricDataCommand,
  type GetMetricDataCommandInput,
  type GetMetricDataCommandOutput,
  type MetricDataQuery,
} from "@aws-sdk/client-cloudwatch";
import { mockClient } from "aws-sdk-client-mock";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AwsCloudWatch } from "../../src/adapters/aws/cloudwatch.js";
import { SimEcs } from "../../src/adapters/sim/ecs.js";
import { SimPagerDuty } from "../../src/adapters/sim/pagerduty.js";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { SlackChat } from "../../src/adapters/slack.js";
import { ManualClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import type { Config, Guardrail } from "../../src/config/schema.js";
import type { Deployment } from "../../src/domain/deployment.js";
import { findTarget } from "../../src/domain/targets.js";
import { foreground } from "../../src/foreground.js";
import { guardrailLookbackMs } from "../../src/policies/guardrails.js";
import { buildServices, type Services } from "../../src/services/index.js";
import { seriesOf } from "../../src/services/series.js";
import { Store } from "../../src/store/index.js";
import { EXAMPLE } from "../helpers/sim-world.js";

const cw = mockClient(CloudWatchClient);
const MINUTE = 60_000;
/** Tuesday 10:30 SAST: web v1.4.2 started rolling out at 10:24 and bakes. */
const NOW = "2026-11-24T08:30:00.000Z";
const STARTED = new Date(Date.parse(NOW) - 6 * MINUTE);

/** A healthy reading per metric, as CloudWatch would return it for web production. */
function healthy(q: MetricDataQuery): number {
  const values: Record<string, number> = {
    HTTPCode_Target_5XX_Count: 1.2, // 0.1% of the requests
    RequestCount: 1200,
    TargetResponseTime: 0.2,
    HealthyHostCount: 4,
    CPUUtilization: 35,
    MemoryUtilization: 50,
    ConnectionPoolUtilization: 35,
    DiskUsedPercent: 41,
  };
  return values[q.MetricStat?.Metric?.MetricName ?? ""] ?? 1;
}

/** Answers GetMetricData as CloudWatch does: one Complete result per returned query, a datapoint per period. */
function answer(input: GetMetricDataCommandInput): GetMetricDataCommandOutput {
  const start = (input.StartTime as Date).getTime();
  const end = (input.EndTime as Date).getTime();
  return {
    $metadata: {},
    MetricDataResults: (input.MetricDataQueries ?? [])
      .filter((q) => q.ReturnData !== false)
      .map((q) => {
        const period = (q.MetricStat?.Period ?? q.Period ?? 60) * 1000;
        const timestamps: Date[] = [];
        for (let t = Math.ceil(start / period) * period; t + period <= end; t += period) timestamps.push(new Date(t));
        return { Id: q.Id, StatusCode: "Complete", Timestamps: timestamps, Values: timestamps.map(() => healthy(q)) };
      }),
  };
}

interface Harness {
  config: Config;
  clock: ManualClock;
  services: Services;
  store: Store;
  guardrails: Guardrail[];
}

let h: Harness | undefined;
beforeEach(() => {
  cw.reset();
  cw.on(GetMetricDataCommand).callsFake(answer);
});
afterEach(async () => {
  await h?.store.close();
  h = undefined;
});

/** deploybot on the example config with the real CloudWatch adapter, and web v1.4.2 baking in production since 10:24. */
async function watchedDeploy(config = loadConfig(EXAMPLE)): Promise<Harness> {
  const store = Store.sqlite(":memory:");
  const clock = new ManualClock(NOW);
  const world = new SimWorld(config, clock);
  const services = buildServices(
    {
      config,
      store,
      clock,
      ecs: new SimEcs(world),
      metrics: new AwsCloudWatch(undefined, { sleep: async () => {} }),
      pager: new SimPagerDuty(world),
      chat: new SlackChat(),
      logger: pino({ level: "silent" }),
    },
    { oncallCacheMs: 60_000 },
  );
  await baking(store, clock.now(), {
    service: "web",
    version: "v1.4.2",
    previous: "v1.4.0",
    started: STARTED,
    tasks: 4,
  });
  const guardrails = config.services.web?.environments.production?.guardrails ?? [];
  h = { config, clock, services, store, guardrails };
  return h;
}

/** A deploy of `service` in production, started (rolled out on ECS) at `started` and baking from `now` until NOW + 24 min. */
function baking(
  store: Store,
  now: Date,
  o: { service: "web" | "api"; version: string; previous: string; started: Date; tasks: number },
): Promise<Deployment> {
  const taskDefinition = (revision: number) =>
    `arn:aws:ecs:af-south-1:123456789012:task-definition/comply360-prod-${o.service}:${revision}`;
  return store.tx(async () => {
    const d = await store.deployments.create(
      {
        kind: "deploy",
        service: o.service,
        environment: "production",
        version: o.version,
        requestedBy: "alice",
        reason: null,
        previousVersion: o.previous,
        previousTaskDefinition: taskDefinition(1),
        taskDefinition: taskDefinition(2),
      },
      o.started,
    );
    await store.deployments.apply(d.id, "allow", o.started);
    await store.locks.acquire(o.service, "production", d.id, "alice", o.started);
    await store.deployments.apply(d.id, "start", o.started, { startedAt: o.started.toISOString() });
    return store.deployments.apply(d.id, "rolled_out", now, {
      progress: {
        running: o.tasks,
        desired: o.tasks,
        bakeEndsAt: new Date(Date.parse(NOW) + 24 * MINUTE).toISOString(),
      },
    });
  });
}

/** Runs one monitor cycle at `minutes` after NOW; returns the GetMetricData inputs it sent. */
async function cycleAt(t: Harness, minutes: number): Promise<GetMetricDataCommandInput[]> {
  t.clock.set(new Date(Date.parse(NOW) + minutes * MINUTE));
  const from = cw.commandCalls(GetMetricDataCommand).length;
  await t.services.monitor.cycle();
  return cw
    .commandCalls(GetMetricDataCommand)
    .slice(from)
    .map((c) => c.args[0].input);
}

/** The calls that read up to now (the check), as opposed to the one read of the window before the deploy. */
const checks = (calls: GetMetricDataCommandInput[], now: Date) =>
  calls.filter((c) => (c.EndTime as Date).getTime() === now.getTime());

/** What a MetricDataQuery reads, whatever its id: two identical ones read the same series. */
const what = (q: MetricDataQuery) => JSON.stringify(q.Expression ? q.Expression.replace(/s\d+/g, "s") : q.MetricStat);

/** A call's StartTime and EndTime, in minutes from `now`. */
const span = (c: GetMetricDataCommandInput | undefined, now: number) =>
  c ? [((c.StartTime as Date).getTime() - now) / MINUTE, ((c.EndTime as Date).getTime() - now) / MINUTE] : [];

/** MetricDataQueries one series costs: an error rate is its 5xx count, its request count and their expression. */
const costOf = (g: Guardrail) => (g.metric === "error_rate" ? 2 : 1);

describe("the monitor's queries to the real CloudWatch adapter (issue 9 §5)", () => {
  it("asks each distinct series of web production's nine guardrails once per cycle: 8 MetricDataQueries for 7 series, not 11", async () => {
    const t = await watchedDeploy();
    const target = findTarget(t.config, "web", "production");
    if (!target) throw new Error("no web production");
    const series = new Map(t.guardrails.map((g) => [seriesOf(target, g).key, g]));
    expect([t.guardrails.length, series.size]).toEqual([9, 7]);
    const perSeries = [...series.values()].reduce((n, g) => n + costOf(g), 0);
    const perGuardrail = t.guardrails.reduce((n, g) => n + costOf(g), 0);
    expect([perSeries, perGuardrail]).toEqual([8, 11]);

    for (const minute of [0, 1, 2]) {
      const [check, ...more] = checks(await cycleAt(t, minute), t.clock.now());
      expect(more).toEqual([]);
      const sent = check?.MetricDataQueries ?? [];
      expect(sent).toHaveLength(perSeries);
      expect(new Set(sent.map(what)).size).toBe(sent.length);
      // One query per distinct series, the error rate's being its 5xx count (its requests are the second one).
      expect(sent.filter((q) => !q.Id?.endsWith("_requests"))).toHaveLength(series.size);
      expect(sent.filter((q) => q.Expression)).toEqual([]);
    }
    expect(await t.store.incidents.of(1)).toEqual([]);
  });

  it("starts a cycle only once the Slack requests being acked are answered", async () => {
    const t = await watchedDeploy();
    t.clock.set(new Date(Date.parse(NOW)));
    const answered = foreground.enter();
    const from = cw.commandCalls(GetMetricDataCommand).length;
    const cycle = t.services.monitor.cycle();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(cw.commandCalls(GetMetricDataCommand).length - from).toBe(0);
    answered();
    await cycle;
    expect(cw.commandCalls(GetMetricDataCommand).length - from).toBeGreaterThan(0);
  });

  it("costs no MetricDataQuery more for a tenth guardrail on a series already read", async () => {
    const config = loadConfig(EXAMPLE);
    const web = config.services.web?.environments.production;
    const rollback = web?.guardrails.find((g) => g.name === "error rate (rollback)");
    if (!web || !rollback) throw new Error("examples/deploybot.yml changed");
    web.guardrails = [...web.guardrails, { ...rollback, name: "error rate (severe)", threshold: "> 5%" }];
    const t = await watchedDeploy(config);
    expect(t.guardrails).toHaveLength(10);

    const [check] = checks(await cycleAt(t, 0), t.clock.now());
    expect(check?.MetricDataQueries).toHaveLength(8);
  });

  it("reads the whole lookback on the first cycle, then from the second on only now − (max_lag + 2 periods)", async () => {
    const t = await watchedDeploy();
    const lookback = Math.max(...t.guardrails.map(guardrailLookbackMs));
    // CPU (warning): 15 periods of 1 min, the one in progress, and max_lag 3 min.
    expect(lookback).toBe(19 * MINUTE);

    const first = await cycleAt(t, 0);
    const now0 = t.clock.now().getTime();
    const [check0] = checks(first, t.clock.now());
    expect(span(check0, now0)).toEqual([-lookback / MINUTE, 0]);
    // The one read of the 30 minutes before the rollout, for the pre-deploy values: first cycle only.
    const pre = first.filter((c) => c !== check0);
    expect(pre.map((c) => span(c, STARTED.getTime()))).toEqual([[-30, 0]]);

    for (const minute of [1, 2, 3]) {
      const calls = await cycleAt(t, minute);
      const now = t.clock.now().getTime();
      expect(calls).toHaveLength(1);
      // max_lag 3 min and 2 periods of 1 min: the periods CloudWatch may still fill in, and the newest.
      expect(span(calls[0], now)).toEqual([-5, 0]);
    }
    expect(await t.store.incidents.of(1)).toEqual([]);
  });
});

describe("the values before each deploy (issue 9: the baseline window is each deploy's own)", () => {
  /** The 5xx CloudWatch reports: 5% of the requests until 10:15 SAST, 0.1% from then on; every other metric healthy. */
  const STEP = Date.parse("2026-11-24T08:15:00.000Z");
  const answerStepped = (input: GetMetricDataCommandInput): GetMetricDataCommandOutput => {
    const out = answer(input);
    for (const r of out.MetricDataResults ?? [])
      if (r.Id?.endsWith("_errors")) r.Values = (r.Timestamps ?? []).map((at) => (at.getTime() < STEP ? 60 : 1.2));
    return out;
  };

  it("reads each deploy's window before its own rollout, in one call for the deploys that started apart", async () => {
    cw.on(GetMetricDataCommand).callsFake(answerStepped);
    const t = await watchedDeploy();
    // A second deploy, of api, rolled out ten minutes before web's (10:14): its 30 minutes before are all at 5%.
    const apiStarted = new Date(STARTED.getTime() - 10 * MINUTE);
    const api = await baking(t.store, t.clock.now(), {
      service: "api",
      version: "v2.0.1",
      previous: "v2.0.0",
      started: apiStarted,
      tasks: 2,
    });

    const calls = await cycleAt(t, 0);
    // One read before the deploys, from the earlier one's window start to the later one's rollout.
    const pre = calls.filter((c) => (c.EndTime as Date).getTime() !== t.clock.now().getTime());
    expect(pre.map((c) => [c.StartTime, c.EndTime])).toEqual([[new Date(apiStarted.getTime() - 30 * MINUTE), STARTED]]);
    const valueBefore = async (deploymentId: number, service: "web" | "api") => {
      const target = findTarget(t.config, service, "production");
      const g = target?.settings.guardrails.find((x) => x.name === "error rate (rollback)");
      if (!target || !g) throw new Error(`examples/deploybot.yml: no error rate (rollback) on ${service}`);
      return (await t.store.kv.get<{ value: number | null }>(`predeploy/${deploymentId}/${seriesOf(target, g).key}`))
        ?.value;
    };
    // api (10:14): 09:44–10:14, all at 5%. web (10:24): 09:54–10:24, 21 minutes at 5% and 9 at 0.1%.
    expect(await valueBefore(api.id, "api")).toBe(5);
    expect(await valueBefore(1, "web")).toBeCloseTo((21 * 5 + 9 * 0.1) / 30, 6);
  });
});
