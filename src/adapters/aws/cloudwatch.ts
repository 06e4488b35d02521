import { setImmediate as yieldToLoop } from "node:timers/promises";
import type {
  CloudWatchClient,
  GetMetricDataCommandInput,
  MetricDataQuery,
  MetricDataResult,
} from "@aws-sdk/client-cloudwatch";
import { DeploybotError, ErrorCode } from "../../errors.js";
import { foreground } from "../../foreground.js";
import { countAwsErrors, recordGetMetricData } from "../../ops/metrics.js";
import { type Datapoint, inTimeOrder, type MetricQuery, type MetricSeries, type MetricsPort } from "../../ports.js";
import { lazyModule } from "../lazy.js";
import { type Bundle, batches, checkIds, toBundle } from "./cloudwatch-queries.js";
import {
  type AwsRetryOptions,
  describeError,
  type RetrySettings,
  regionalClients,
  retrySettings,
  shape,
  withRetry,
} from "./retry.js";

type CloudWatchSdk = typeof import("@aws-sdk/client-cloudwatch");
/** The SDK, loaded on the first call. */
export const loadCloudWatchSdk = lazyModule(
  "@aws-sdk/client-cloudwatch",
  () => import("@aws-sdk/client-cloudwatch"),
  "CloudWatchClient",
);

/** A guard against a NextToken that never ends; 100,800 datapoints a page makes this generous. */
const MAX_PAGES = 50;

/** How AwsCloudWatch retries throttling and server errors (see AwsRetryOptions). */
export type AwsCloudWatchRetry = AwsRetryOptions;

interface Accumulated {
  /** The status of the latest page: PartialData on one page is normal when a NextToken follows. */
  status?: string;
  /** Forbidden or InternalError on any page: a later Complete page does not bring back the data that page lacked. */
  failedWith?: string;
  messages: string[];
  points: Datapoint[];
}

/** CloudWatch answers a GetMetricData rate limit with these names too. */
const CLOUDWATCH_THROTTLING: ReadonlySet<string> = new Set(["LimitExceededException", "LimitExceededFault"]);

/**
 * The CloudWatch adapter: all queries of a polling cycle, grouped by region and sent as few GetMetricData
 * calls as the 500-query limit allows, every NextToken followed. A query CloudWatch could not answer
 * comes back as an error series (inconclusive for the evaluator); a call that fails as a whole throws a
 * DeploybotError that says what to check.
 */
export class AwsCloudWatch implements MetricsPort {
  private readonly client: (region: string) => Promise<{ client: CloudWatchClient; sdk: CloudWatchSdk }>;
  private readonly retry: RetrySettings;

  constructor(createClient?: (region: string) => CloudWatchClient, retry: AwsCloudWatchRetry = {}) {
    this.client = regionalClients(
      loadCloudWatchSdk,
      (sdk, region) => new sdk.CloudWatchClient({ region, maxAttempts: 1 }),
      createClient,
    );
    this.retry = retrySettings(retry);
  }

  /**
   * Fetches every query's series, in the order asked; an `error_rate` query "q" also returns
   * `requestSeriesId("q")` right after it.
   */
  async getMetricData(queries: MetricQuery[], start: Date, end: Date): Promise<MetricSeries[]> {
    const bundles = queries.map(toBundle);
    checkIds(bundles);

    const results = new Map<string, Accumulated>();
    const byRegion = new Map<string, Bundle[]>();
    for (const bundle of bundles) {
      const list = byRegion.get(bundle.query.region) ?? [];
      list.push(bundle);
      byRegion.set(bundle.query.region, list);
    }
    // Between calls the event loop gets a turn, and no call is sent while Slack requests are being acked:
    // serialising, signing and parsing 500 queries holds the event loop for milliseconds each, and a monitor cycle
    // at 1,000 deploys makes a dozen calls.
    for (const [region, regionBundles] of byRegion) {
      for (const batch of batches(regionBundles)) {
        await this.fetchBatch(region, batch, start, end, results);
        await yieldToLoop();
        await foreground.quiet();
      }
    }

    const series: MetricSeries[] = [];
    for (const bundle of bundles) {
      if ("errorRate" in bundle && bundle.errorRate) {
        const requests = toSeries(bundle.errorRate.requests, results.get(bundle.errorRate.requests));
        series.push(
          errorRateSeries(
            bundle.query.id,
            toSeries(bundle.errorRate.errors, results.get(bundle.errorRate.errors)),
            requests,
          ),
          requests,
        );
        continue;
      }
      for (const id of bundle.returns) {
        series.push("problem" in bundle ? errorSeries(id, bundle.problem) : toSeries(id, results.get(id)));
      }
    }
    return series;
  }

  private async fetchBatch(
    region: string,
    dataQueries: MetricDataQuery[],
    start: Date,
    end: Date,
    results: Map<string, Accumulated>,
  ): Promise<void> {
    let nextToken: string | undefined;
    for (let page = 1; ; page++) {
      const input: GetMetricDataCommandInput = {
        MetricDataQueries: dataQueries,
        StartTime: start,
        EndTime: end,
        ScanBy: "TimestampAscending",
        ...(nextToken ? { NextToken: nextToken } : {}),
      };
      const out = await this.call(region, input);
      for (const result of out.MetricDataResults ?? []) accumulate(results, result);
      nextToken = out.NextToken;
      if (!nextToken) return;
      if (page >= MAX_PAGES) {
        throw new DeploybotError(
          ErrorCode.AwsFailed,
          `CloudWatch GetMetricData in ${region} still returned a NextToken after ${MAX_PAGES} pages: shorten the guardrails' window or lengthen their period`,
        );
      }
    }
  }

  private async call(region: string, input: GetMetricDataCommandInput) {
    const { client, sdk } = await this.client(region);
    const send = () => {
      recordGetMetricData(input.MetricDataQueries?.length ?? 0);
      return countAwsErrors("cloudwatch:GetMetricData", client.send(new sdk.GetMetricDataCommand(input)));
    };
    return withRetry(this.retry, send, {
      throttling: CLOUDWATCH_THROTTLING,
      notRetryable: (err) => toDeploybotError(err, region),
      exhausted: (err, attempts, what) =>
        new DeploybotError(
          ErrorCode.AwsFailed,
          `CloudWatch ${what} GetMetricData in ${region} ${attempts} times in a row (last: ${describeError(err)}): poll less often (monitor.interval) or ask AWS for a higher GetMetricData quota`,
          { cause: err, transient: true },
        ),
    });
  }
}

function accumulate(results: Map<string, Accumulated>, result: MetricDataResult): void {
  if (!result.Id) return;
  const acc = results.get(result.Id) ?? { messages: [], points: [] };
  results.set(result.Id, acc);
  acc.status = result.StatusCode;
  if (result.StatusCode === "Forbidden" || result.StatusCode === "InternalError") acc.failedWith ??= result.StatusCode;
  for (const m of result.Messages ?? []) {
    const text = [m.Code, m.Value].filter(Boolean).join(": ");
    if (text && !acc.messages.includes(text)) acc.messages.push(text);
  }
  const timestamps = result.Timestamps ?? [];
  const values = result.Values ?? [];
  for (let i = 0; i < Math.min(timestamps.length, values.length); i++) {
    acc.points.push({ at: timestamps[i] as Date, value: values[i] as number });
  }
}

/**
 * The error rate in percent per period: 5xx ÷ requests × 100. ALBs publish HTTPCode_Target_5XX_Count only for
 * periods that had a 5xx, so a period with requests and no 5xx datapoint is 0% (CloudWatch's FILL(errors, 0)), and
 * one without requests (or with none) has no rate. A failed series fails the rate, with its reason.
 */
export function errorRateSeries(id: string, errors: MetricSeries, requests: MetricSeries): MetricSeries {
  const failed = errors.status === "error" ? errors : requests.status === "error" ? requests : undefined;
  if (failed) return errorSeries(id, failed.message ?? "CloudWatch could not answer");
  const fivexx = new Map(errors.datapoints.map((p) => [p.at.getTime(), p.value]));
  const datapoints: Datapoint[] = [];
  for (const r of requests.datapoints)
    if (r.value > 0) datapoints.push({ at: r.at, value: (100 * (fivexx.get(r.at.getTime()) ?? 0)) / r.value });
  return { id, status: "ok", datapoints };
}

function errorSeries(id: string, message: string, datapoints: Datapoint[] = []): MetricSeries {
  return { id, status: "error", message, datapoints };
}

function toSeries(id: string, acc: Accumulated | undefined): MetricSeries {
  if (!acc) return errorSeries(id, "CloudWatch returned no result for this query");
  const datapoints = inTimeOrder(acc.points);
  const said = acc.messages.length > 0 ? ` (${acc.messages.join("; ")})` : "";
  const status = acc.failedWith ?? acc.status;
  switch (status) {
    case "Complete":
      // Messages on a Complete result are notes (e.g. ArithmeticError for a division by zero in one
      // period): the data is good, those periods are just missing.
      return { id, status: "ok", datapoints };
    case "Forbidden":
      return errorSeries(
        id,
        `Forbidden${said}: check that deploybot's IAM role may read this metric (cloudwatch:GetMetricData)`,
        datapoints,
      );
    case "InternalError":
      return errorSeries(
        id,
        `InternalError${said}: CloudWatch failed on this query; it is asked again next cycle`,
        datapoints,
      );
    case "PartialData":
      return errorSeries(id, `PartialData${said}: CloudWatch returned only part of the datapoints`, datapoints);
    default:
      return errorSeries(id, `CloudWatch answered ${status ?? "without a status"}${said}`, datapoints);
  }
}

/** Turns an SDK error from GetMetricData into a DeploybotError that says what to check. */
function toDeploybotError(err: unknown, region: string): DeploybotError {
  if (err instanceof DeploybotError) return err;
  const e = shape(err);
  const aws = e.message ? ` AWS said: ${e.message}` : "";
  const fail = (message: string) => new DeploybotError(ErrorCode.AwsFailed, message, { cause: err });
  switch (e.name) {
    case "AccessDenied":
    case "AccessDeniedException":
    case "UnauthorizedOperation":
      return fail(
        `deploybot is not allowed to read CloudWatch metrics in ${region}: grant cloudwatch:GetMetricData to deploybot's IAM role.${aws}`,
      );
    case "CredentialsProviderError":
    case "ExpiredTokenException":
    case "UnrecognizedClientException":
    case "InvalidClientTokenId":
      return fail(
        `deploybot has no valid AWS credentials for CloudWatch in ${region}: check the task role or AWS_PROFILE.${aws}`,
      );
    case "InvalidParameterValueException":
    case "InvalidParameterCombinationException":
    case "MissingRequiredParameterException":
    case "ValidationError":
    case "ValidationException":
      return fail(
        `CloudWatch rejected the GetMetricData request in ${region}: check the guardrails' metrics (namespace, name, dimensions, stat, expression) and periods (a multiple of 60 s).${aws}`,
      );
    case "InvalidNextToken":
      return fail(`CloudWatch did not accept its own NextToken in ${region}; the next cycle starts over.${aws}`);
    default:
      return fail(
        `CloudWatch GetMetricData failed in ${region} (${describeError(err)}): check network access to monitoring.${region}.amazonaws.com and that deploybot's IAM role allows cloudwatch:GetMetricData`,
      );
  }
}
