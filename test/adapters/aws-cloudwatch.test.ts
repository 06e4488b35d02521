import "aws-sdk-client-mock-vitest/extend";
import {
  CloudWatchClient,
  GetMetricDataCommand,
  type GetMetricDataCommandInput,
  type GetMetricDataCommandOutput,
  LimitExceededException,
  type MetricDataQuery,
} from "@aws-sdk/client-cloudwatch";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { AwsCloudWatch } from "../../src/adapters/aws/cloudwatch.js";
import { DeploybotError, ErrorCode } from "../../src/errors.js";
import { foreground } from "../../src/foreground.js";
import type { MetricQuery, MetricSpec } from "../../src/ports.js";
import { requestSeriesId } from "../../src/ports.js";

const cw = mockClient(CloudWatchClient);
const START = new Date("2026-03-02T10:00:00Z");
const END = new Date("2026-03-02T10:36:00Z");
const T1 = new Date("2026-03-02T10:34:00Z");
const T2 = new Date("2026-03-02T10:35:00Z");
const LB = "arn:aws:elasticloadbalancing:af-south-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188";
const TG = "arn:aws:elasticloadbalancing:af-south-1:123456789012:targetgroup/web-tg/73e2d6bc24d8a067";

function query(id: string, spec: MetricSpec, overrides: Partial<MetricQuery> = {}): MetricQuery {
  return {
    id,
    region: "af-south-1",
    service: "payments",
    environment: "production",
    metricName: "preset" in spec ? spec.preset : "custom",
    spec,
    periodSeconds: 60,
    context: { cluster: "prod", ecsService: "payments-api", loadBalancer: LB, targetGroup: TG },
    ...overrides,
  };
}

const custom = (id: string) => query(id, { namespace: "Payments", name: "Declines", dimensions: {}, stat: "Sum" });

/** Answers every returned query as Complete with two datapoints, as CloudWatch would. */
function echo(input: GetMetricDataCommandInput): GetMetricDataCommandOutput {
  return {
    $metadata: {},
    MetricDataResults: (input.MetricDataQueries ?? [])
      .filter((q) => q.ReturnData !== false)
      .map((q) => ({ Id: q.Id, StatusCode: "Complete", Timestamps: [T1, T2], Values: [1, 2] })),
  };
}

function sentQueries(): MetricDataQuery[][] {
  return cw.commandCalls(GetMetricDataCommand).map((call) => call.args[0].input.MetricDataQueries ?? []);
}

function throttled(): Error {
  return Object.assign(new Error("Rate exceeded"), {
    name: "ThrottlingException",
    $fault: "client",
    $metadata: { httpStatusCode: 400 },
  });
}

let regions: string[];
let sleep: ReturnType<typeof vi.fn<(ms: number) => Promise<void>>>;
let adapter: AwsCloudWatch;

beforeEach(() => {
  cw.reset();
  regions = [];
  sleep = vi.fn(async (_ms: number) => {});
  adapter = new AwsCloudWatch(
    (region) => {
      regions.push(region);
      return new CloudWatchClient({ region });
    },
    { maxAttempts: 3, baseDelayMs: 100, sleep },
  );
});

describe("AwsCloudWatch.getMetricData", () => {
  it("sends 1,200 queries as exactly 3 calls of 500, 500 and 200", async () => {
    cw.on(GetMetricDataCommand).callsFake(echo);
    const queries = Array.from({ length: 1200 }, (_, i) => custom(`q${i}`));

    const series = await adapter.getMetricData(queries, START, END);

    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 3);
    expect(sentQueries().map((qs) => qs.length)).toEqual([500, 500, 200]);
    expect(series.map((s) => s.id)).toEqual(queries.map((q) => q.id));
    expect(series.every((s) => s.status === "ok")).toBe(true);
  });

  it("sends no further call while a Slack request is being acked, and the rest once it is answered", async () => {
    cw.on(GetMetricDataCommand).callsFake(echo);
    const answered = foreground.enter();
    const done = adapter.getMetricData(
      Array.from({ length: 1200 }, (_, i) => custom(`q${i}`)),
      START,
      END,
    );
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 1);
    answered();
    expect(await done).toHaveLength(1200);
    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 3);
  });

  it("counts both metrics of an error_rate toward the 500 limit and never splits them across calls", async () => {
    cw.on(GetMetricDataCommand).callsFake(echo);
    const queries = Array.from({ length: 251 }, (_, i) => query(`r${i}`, { preset: "error_rate" }));

    const series = await adapter.getMetricData(queries, START, END);

    // 2 MetricDataQueries each (no expression: the rate is divided here): 250 fit in 500, the last in a second call.
    expect(sentQueries().map((qs) => qs.length)).toEqual([500, 2]);
    for (const call of sentQueries()) {
      const ids = call.map((q) => q.Id as string);
      expect(call.filter((q) => q.Expression)).toEqual([]);
      for (const id of ids.filter((x) => x.endsWith("_errors")))
        expect(ids).toContain(id.replace(/_errors$/, "_requests"));
    }
    expect(series).toHaveLength(502);
    expect(series.slice(0, 2).map((s) => s.id)).toEqual(["r0", "r0_requests"]);
  });

  it("translates the presets into the metrics, stats, dimensions and period CloudWatch expects", async () => {
    cw.on(GetMetricDataCommand).callsFake(echo);
    const queries = [
      query("rate", { preset: "error_rate" }),
      query("p95", { preset: "p95_latency" }),
      query("p99", { preset: "p99_latency" }, { periodSeconds: 300 }),
      query("hosts", { preset: "healthy_hosts" }),
      query("cpu", { preset: "cpu" }),
      query("mem", { preset: "memory" }),
      query("declines", { namespace: "Payments", name: "Declines", dimensions: { Merchant: "acme" }, stat: "p90" }),
      query("math", { expression: "SUM(METRICS())" }),
    ];

    await adapter.getMetricData(queries, START, END);

    const alb = [
      { Name: "LoadBalancer", Value: "app/web/50dc6c495c0c9188" },
      { Name: "TargetGroup", Value: "targetgroup/web-tg/73e2d6bc24d8a067" },
    ];
    const ecs = [
      { Name: "ClusterName", Value: "prod" },
      { Name: "ServiceName", Value: "payments-api" },
    ];
    const stat = (
      Id: string,
      Namespace: string,
      MetricName: string,
      Dimensions: Array<{ Name: string; Value: string }>,
      Stat: string,
      Period = 60,
    ) => ({
      Id,
      MetricStat: { Metric: { Namespace, MetricName, Dimensions }, Period, Stat },
      ReturnData: true,
    });
    expect(cw).toHaveReceivedCommandExactlyOnceWith(GetMetricDataCommand, {
      StartTime: START,
      EndTime: END,
      ScanBy: "TimestampAscending",
      MetricDataQueries: [
        stat("rate_errors", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", alb, "Sum"),
        stat("rate_requests", "AWS/ApplicationELB", "RequestCount", alb, "Sum"),
        stat("p95", "AWS/ApplicationELB", "TargetResponseTime", alb, "p95"),
        stat("p99", "AWS/ApplicationELB", "TargetResponseTime", alb, "p99", 300),
        stat("hosts", "AWS/ApplicationELB", "HealthyHostCount", alb, "Minimum"),
        stat("cpu", "AWS/ECS", "CPUUtilization", ecs, "Average"),
        stat("mem", "AWS/ECS", "MemoryUtilization", ecs, "Average"),
        stat("declines", "Payments", "Declines", [{ Name: "Merchant", Value: "acme" }], "p90"),
        { Id: "math", Expression: "SUM(METRICS())", Period: 60, ReturnData: true },
      ],
    });
  });

  it("divides 5xx by requests per period (a period without a 5xx datapoint is 0%), and returns the requests as <id>_requests", async () => {
    const T3 = new Date(T2.getTime() + 60_000);
    cw.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        // ALBs publish the 5xx count only for periods that had one; T3 had no request at all.
        { Id: "rate_errors", StatusCode: "Complete", Timestamps: [T2], Values: [24] },
        { Id: "rate_requests", StatusCode: "Complete", Timestamps: [T1, T2, T3], Values: [800, 750, 0] },
      ],
    });

    const series = await adapter.getMetricData([query("rate", { preset: "error_rate" })], START, END);

    expect(requestSeriesId("rate")).toBe("rate_requests");
    expect(series).toEqual([
      {
        id: "rate",
        status: "ok",
        datapoints: [
          { at: T1, value: 0 },
          { at: T2, value: 3.2 },
        ],
      },
      {
        id: "rate_requests",
        status: "ok",
        datapoints: [
          { at: T1, value: 800 },
          { at: T2, value: 750 },
          { at: T3, value: 0 },
        ],
      },
    ]);
  });

  it("fails an error rate whose 5xx or request series CloudWatch could not read, saying why", async () => {
    cw.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        { Id: "rate_errors", StatusCode: "Forbidden", Messages: [{ Code: "Forbidden", Value: "not authorized" }] },
        { Id: "rate_requests", StatusCode: "Complete", Timestamps: [T1], Values: [800] },
      ],
    });

    const [rate, requests] = await adapter.getMetricData([query("rate", { preset: "error_rate" })], START, END);

    expect(rate).toMatchObject({
      id: "rate",
      status: "error",
      message: expect.stringMatching(/^Forbidden.*not authorized/),
    });
    expect(requests).toMatchObject({ id: "rate_requests", status: "ok" });
  });

  it("follows NextToken with the same queries and joins the pages", async () => {
    cw.on(GetMetricDataCommand)
      .resolvesOnce({
        MetricDataResults: [{ Id: "q0", StatusCode: "PartialData", Timestamps: [T1], Values: [1] }],
        NextToken: "page-2",
      })
      .resolvesOnce({ MetricDataResults: [{ Id: "q0", StatusCode: "Complete", Timestamps: [T2], Values: [2] }] });

    const series = await adapter.getMetricData([custom("q0")], START, END);

    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 2);
    const [first, second] = cw.commandCalls(GetMetricDataCommand).map((c) => c.args[0].input);
    expect(first?.NextToken).toBeUndefined();
    expect(cw).toHaveReceivedNthCommandWith(GetMetricDataCommand, 2, {
      NextToken: "page-2",
      StartTime: START,
      EndTime: END,
      ScanBy: "TimestampAscending",
      MetricDataQueries: first?.MetricDataQueries,
    });
    expect(second?.MetricDataQueries).toHaveLength(1);
    expect(series).toEqual([
      {
        id: "q0",
        status: "ok",
        datapoints: [
          { at: T1, value: 1 },
          { at: T2, value: 2 },
        ],
      },
    ]);
  });

  it("returns a series oldest first even when its pages come newest first", async () => {
    const T3 = new Date(T2.getTime() + 60_000);
    cw.on(GetMetricDataCommand)
      .resolvesOnce({
        MetricDataResults: [{ Id: "q0", StatusCode: "PartialData", Timestamps: [T3, T2], Values: [3, 2] }],
        NextToken: "page-2",
      })
      .resolvesOnce({ MetricDataResults: [{ Id: "q0", StatusCode: "Complete", Timestamps: [T1], Values: [1] }] });

    const [series] = await adapter.getMetricData([custom("q0")], START, END);

    expect(series?.datapoints).toEqual([
      { at: T1, value: 1 },
      { at: T2, value: 2 },
      { at: T3, value: 3 },
    ]);
  });

  it("turns a per-query error into an error series for that query only", async () => {
    cw.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        { Id: "good", StatusCode: "Complete", Timestamps: [T1], Values: [4] },
        {
          Id: "denied",
          StatusCode: "Forbidden",
          Messages: [{ Code: "Forbidden", Value: "not authorized for namespace Payments" }],
        },
        { Id: "broken", StatusCode: "InternalError", Timestamps: [], Values: [] },
      ],
    });

    const series = await adapter.getMetricData(
      [custom("good"), custom("denied"), custom("broken"), custom("absent")],
      START,
      END,
    );

    expect(series[0]).toEqual({ id: "good", status: "ok", datapoints: [{ at: T1, value: 4 }] });
    expect(series[1]).toMatchObject({ id: "denied", status: "error" });
    expect(series[1]?.message).toMatch(/Forbidden.*not authorized for namespace Payments.*cloudwatch:GetMetricData/);
    expect(series[2]).toMatchObject({
      id: "broken",
      status: "error",
      message: expect.stringMatching(/^InternalError/),
    });
    expect(series[3]).toMatchObject({ id: "absent", status: "error", message: expect.stringMatching(/no result/) });
  });

  it("keeps a query failed when a later page says Complete, as the failed page's data is still missing", async () => {
    cw.on(GetMetricDataCommand)
      .resolvesOnce({
        MetricDataResults: [
          { Id: "q0", StatusCode: "InternalError", Messages: [{ Code: "InternalError", Value: "try again" }] },
        ],
        NextToken: "page-2",
      })
      .resolvesOnce({ MetricDataResults: [{ Id: "q0", StatusCode: "Complete", Timestamps: [T2], Values: [2] }] });

    const [series] = await adapter.getMetricData([custom("q0")], START, END);

    expect(series).toMatchObject({
      status: "error",
      message: expect.stringMatching(/^InternalError \(InternalError: try again\)/),
    });
  });

  it("treats PartialData with no NextToken left as an error", async () => {
    cw.on(GetMetricDataCommand).resolves({
      MetricDataResults: [{ Id: "math", StatusCode: "PartialData", Timestamps: [T1], Values: [1] }],
    });

    const [series] = await adapter.getMetricData([query("math", { expression: "SUM(METRICS())" })], START, END);

    expect(series).toMatchObject({ status: "error", message: expect.stringMatching(/^PartialData/) });
  });

  it("keeps a series ok when a Complete result carries only a note, such as a dropped division by zero", async () => {
    cw.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        {
          Id: "q0",
          StatusCode: "Complete",
          Timestamps: [T1],
          Values: [1],
          Messages: [
            { Code: "ArithmeticError", Value: "One or more data points have been dropped due to division by 0" },
          ],
        },
      ],
    });

    const [series] = await adapter.getMetricData([custom("q0")], START, END);

    expect(series?.status).toBe("ok");
  });

  it("answers an ALB preset without a load balancer with an error series and asks AWS nothing", async () => {
    cw.on(GetMetricDataCommand).callsFake(echo);
    const noAlb = { cluster: "prod", ecsService: "payments-api" };

    const series = await adapter.getMetricData(
      [query("rate", { preset: "error_rate" }, { context: noAlb })],
      START,
      END,
    );

    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 0);
    expect(series.map((s) => [s.id, s.status])).toEqual([
      ["rate", "error"],
      ["rate_requests", "error"],
    ]);
    expect(series[0]?.message).toMatch(/load_balancer/);
  });

  it("sends each region's queries to that region's client, created once and reused", async () => {
    cw.on(GetMetricDataCommand).callsFake(echo);
    const queries = [custom("a0"), custom("e0"), custom("a1")];
    (queries[1] as MetricQuery).region = "eu-west-1";

    await adapter.getMetricData(queries, START, END);
    await adapter.getMetricData(queries, START, END);

    expect(regions).toEqual(["af-south-1", "eu-west-1"]);
    expect(sentQueries().map((qs) => qs.map((q) => q.Id))).toEqual([["a0", "a1"], ["e0"], ["a0", "a1"], ["e0"]]);
  });

  it("retries a throttled call with a doubling backoff and then succeeds", async () => {
    cw.on(GetMetricDataCommand)
      .rejectsOnce(throttled())
      .rejectsOnce(new LimitExceededException({ message: "limit", $metadata: {} }))
      .callsFake(echo);

    const series = await adapter.getMetricData([custom("q0")], START, END);

    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 3);
    expect(sleep.mock.calls).toEqual([[100], [200]]);
    expect(series[0]?.status).toBe("ok");
  });

  it("retries an HTTP 429 as throttling", async () => {
    const tooMany = Object.assign(new Error("slow down"), { name: "Unknown", $metadata: { httpStatusCode: 429 } });
    cw.on(GetMetricDataCommand).rejectsOnce(tooMany).callsFake(echo);

    await adapter.getMetricData([custom("q0")], START, END);

    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 2);
  });

  it("gives up after maxAttempts throttled calls with a DeploybotError that says what to change", async () => {
    cw.on(GetMetricDataCommand).rejects(throttled());

    const error = await adapter.getMetricData([custom("q0")], START, END).catch((e: unknown) => e);

    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 3);
    expect(error).toBeInstanceOf(DeploybotError);
    expect(error).toMatchObject({ code: ErrorCode.AwsFailed, message: expect.stringMatching(/throttled.*3 times/) });
  });

  it("does not retry access denied and names the IAM action to grant", async () => {
    cw.on(GetMetricDataCommand).rejects(
      Object.assign(new Error("User is not authorized to perform: cloudwatch:GetMetricData"), {
        name: "AccessDenied",
        $fault: "client",
        $metadata: { httpStatusCode: 403 },
      }),
    );

    const error = await adapter.getMetricData([custom("q0")], START, END).catch((e: unknown) => e);

    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 1);
    expect(sleep).not.toHaveBeenCalled();
    expect(error).toMatchObject({
      code: ErrorCode.AwsFailed,
      message: expect.stringMatching(
        /grant cloudwatch:GetMetricData .*af-south-1|af-south-1.*grant cloudwatch:GetMetricData/,
      ),
    });
    expect((error as Error).cause).toBeInstanceOf(Error);
  });

  it("refuses a query id CloudWatch would reject before calling AWS", async () => {
    const error = await adapter.getMetricData([custom("Bad-id")], START, END).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(DeploybotError);
    expect((error as Error).message).toMatch(/\^\[a-z\]/);
    expect(cw).toHaveReceivedCommandTimes(GetMetricDataCommand, 0);
  });

  it("refuses a query id that collides with another query's helper series", async () => {
    const queries = [query("rate", { preset: "error_rate" }), custom("rate_requests")];

    await expect(adapter.getMetricData(queries, START, END)).rejects.toThrow(/used twice/);
  });
});
