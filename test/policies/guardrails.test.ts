import { describe, expect, it } from "vitest";
import { type Guardrail, guardrail } from "../../src/config/schema.js";
import { DeploybotError } from "../../src/errors.js";
import { alreadyBreachingNote, sparkline } from "../../src/policies/guardrail-format.js";
import { evaluationShape, parseThreshold, type Threshold } from "../../src/policies/guardrail-rules.js";
import {
  evaluateGuardrail,
  guardrailLookbackMs,
  pagesOnBreach,
  preDeployWindow,
  unreadVerdict,
} from "../../src/policies/guardrails.js";
import type { Datapoint } from "../../src/ports.js";

const NOW = new Date("2026-03-02T10:36:00Z");
const MINUTE = 60_000;

/** A guardrail as the config loader would produce it, defaults included. */
function rule(overrides: Record<string, unknown> = {}): Guardrail {
  return guardrail.parse({ name: "error_rate", metric: "error_rate", threshold: "> 1%", for: "5m", ...overrides });
}

/** One datapoint per minute ending at 10:35 (the last complete period before NOW); null leaves a gap. */
function series(values: Array<number | null>, lastAt = "2026-03-02T10:35:00Z"): Datapoint[] {
  const last = Date.parse(lastAt);
  const out: Datapoint[] = [];
  values.forEach((value, i) => {
    if (value !== null) out.push({ at: new Date(last - (values.length - 1 - i) * MINUTE), value });
  });
  return out;
}

const plenty = series([500, 500, 500, 500, 500]);

describe("parseThreshold", () => {
  it.each<[string, Threshold]>([
    ["> 1%", { op: ">", value: 1, unit: "percent" }],
    [">= 0.5%", { op: ">=", value: 0.5, unit: "percent" }],
    ["> 2s", { op: ">", value: 2, unit: "seconds" }],
    ["> 500ms", { op: ">", value: 0.5, unit: "seconds" }],
    ["< 2", { op: "<", value: 2, unit: "count" }],
    ["<= 10", { op: "<=", value: 10, unit: "count" }],
    ["> 10x baseline", { op: ">", value: 10, unit: "baseline" }],
    ["> 1.5 x baseline", { op: ">", value: 1.5, unit: "baseline" }],
  ])("reads %j", (text, expected) => {
    expect(parseThreshold(text)).toEqual(expected);
  });

  it("refuses a threshold without a comparison and shows the forms it accepts", () => {
    expect(() => parseThreshold("1%")).toThrow(DeploybotError);
    expect(() => parseThreshold("1%")).toThrow(/'> 10x baseline'/);
  });
});

describe("evaluationShape", () => {
  it.each([
    [
      { for: "5m", period: "1m" },
      { m: 5, n: 5 },
    ],
    [
      { for: "5m", period: "2m" },
      { m: 3, n: 3 },
    ],
    [
      { for: "30s", period: "1m" },
      { m: 1, n: 1 },
    ],
    [
      { for: "5m", period: "1m", datapoints: "3 of 5" },
      { m: 3, n: 5 },
    ],
  ])("turns %j into %j", (fields, expected) => {
    expect(evaluationShape(rule(fields))).toEqual(expected);
  });

  it("refuses an M of N that could never breach", () => {
    expect(() => evaluationShape(rule({ datapoints: "6 of 5" }))).toThrow(/1 <= M <= N/);
  });
});

describe("evaluateGuardrail", () => {
  type Case = {
    name: string;
    fields?: Record<string, unknown>;
    values: Array<number | null>;
    lastAt?: string;
    requests?: Datapoint[] | "none";
    baseline?: number | null;
    maxLagMs?: number;
    notBefore?: string;
    preDeploy?: number | null;
    status: "ok" | "breaching" | "inconclusive";
    breaching?: number;
    evaluated?: number;
    reason?: RegExp;
    /** The verdict's publishedUpTo (ISO), or null. */
    published?: string | null;
    pre?: { value: number; breaching: boolean } | "none";
  };

  const cases: Case[] = [
    {
      name: "breaches when every datapoint of the 5 minutes is over the threshold",
      values: [2, 2.5, 3, 3.1, 3.2],
      status: "breaching",
      breaching: 5,
      evaluated: 5,
      reason: /^error_rate 3\.2% > 1% in 5 of 5 datapoints since 10:31 UTC$/,
    },
    {
      name: "is ok when the value sits exactly on a '>' threshold",
      values: [1, 1, 1, 1, 1],
      status: "ok",
      breaching: 0,
      reason: /^error_rate 1%: 0 of 5 datapoints > 1%, 5 needed to breach$/,
    },
    {
      name: "breaches when the value sits exactly on a '>=' threshold",
      fields: { threshold: ">= 1%" },
      values: [1, 1, 1, 1, 1],
      status: "breaching",
    },
    {
      name: "is ok when one of the five datapoints has recovered",
      values: [2, 2, 2, 2, 0.4],
      status: "ok",
      breaching: 4,
    },
    {
      name: "is inconclusive one datapoint short under missing_data: missing",
      values: [null, 2, 2, 2, 2],
      status: "inconclusive",
      breaching: 4,
      evaluated: 4,
      reason: /only 4 datapoints of 5 since 10:31 UTC, 5 needed/,
    },
    {
      name: "counts a gap as breaching under missing_data: breaching",
      fields: { missing_data: "breaching" },
      values: [2, null, 2, 2, 2],
      status: "breaching",
      breaching: 5,
      evaluated: 5,
      reason: /in 5 of 5 datapoints since 10:31 UTC \(1 missing, treated as breaching\)/,
    },
    {
      // Nothing published: the window ends max_lag (3 min) before now, where every period is due.
      name: "breaches on no data at all under missing_data: breaching and says so",
      fields: { missing_data: "breaching" },
      values: [],
      status: "breaching",
      reason:
        /^error_rate had no data in 5 of 5 periods since 10:28 UTC \(missing data is treated as breaching\) \(nothing published yet; judged up to 10:33 UTC, max_lag 3 min\)$/,
      published: null,
    },
    {
      name: "counts a gap as fine under missing_data: notBreaching",
      fields: { missing_data: "notBreaching" },
      values: [2, null, 2, 2, 2],
      status: "ok",
      breaching: 4,
      evaluated: 5,
      reason: /\(1 missing, treated as not breaching\)/,
    },
    {
      name: "is inconclusive with no datapoints under missing_data: missing",
      values: [],
      status: "inconclusive",
      reason: /no datapoints of 5/,
    },
    {
      name: "breaches on 3 of 5 even with two gaps under missing_data: missing",
      fields: { datapoints: "3 of 5" },
      values: [2, null, 2, null, 2],
      status: "breaching",
      breaching: 3,
      evaluated: 3,
      // The gap at 10:34 ended less than max_lag ago: not yet published, not missing.
      reason: /in 3 of 5 datapoints since 10:31 UTC \(1 missing; 1 not yet published\)/,
    },
    {
      name: "is ok on 2 of 5 breaching when 3 of 5 are needed",
      fields: { datapoints: "3 of 5" },
      values: [2, 0.1, 2, 0.1, 0.1],
      status: "ok",
      breaching: 2,
    },
    {
      name: "is inconclusive on 2 real datapoints when 3 of 5 are needed",
      fields: { datapoints: "3 of 5" },
      values: [null, null, 0.1, null, 0.1],
      status: "inconclusive",
    },
    {
      name: "treats NaN datapoints as missing",
      values: [2, Number.NaN, 2, 2, 2],
      status: "inconclusive",
      evaluated: 4,
    },
    {
      name: "does not count a datapoint in the period still in progress",
      values: [0.1, 2, 2, 2, 2, 2],
      lastAt: "2026-03-02T10:36:00Z",
      status: "ok",
      breaching: 4,
      // The period in progress ends after now: what is published is bounded by now.
      published: "2026-03-02T10:36:00Z",
    },
    {
      name: "is inconclusive when traffic is below min_requests, however high the rate",
      fields: { min_requests: 100 },
      values: [50, 50, 50, 50, 50],
      requests: series([4, 4, 4, 4, 4]),
      status: "inconclusive",
      reason: /only 20 requests since 10:31 UTC \(below min_requests 100\)/,
    },
    {
      name: "is inconclusive when min_requests is set and the request count is unknown",
      fields: { min_requests: 100 },
      values: [50, 50, 50, 50, 50],
      requests: "none",
      status: "inconclusive",
      reason: /request count is unknown/,
    },
    {
      name: "judges the rate once traffic reaches min_requests",
      fields: { min_requests: 100 },
      values: [50, 50, 50, 50, 50],
      requests: series([20, 20, 20, 20, 20]),
      status: "breaching",
    },
    {
      name: "breaches a relative threshold at more than 10x the baseline",
      fields: { threshold: "> 10x baseline" },
      values: [2.5, 2.5, 2.5, 2.5, 2.5],
      baseline: 0.2,
      status: "breaching",
      reason: /^error_rate 2\.5% > 10x baseline \(2%\) in 5 of 5 datapoints/,
    },
    {
      name: "is ok below 10x the baseline",
      fields: { threshold: "> 10x baseline" },
      values: [1.9, 1.9, 1.9, 1.9, 1.9],
      baseline: 0.2,
      status: "ok",
    },
    {
      name: "is inconclusive, not breaching, on a baseline of zero",
      fields: { threshold: "> 10x baseline" },
      values: [0.3, 0.3, 0.3, 0.3, 0.3],
      baseline: 0,
      status: "inconclusive",
      reason: /baseline is 0%.*pair it with an absolute threshold/,
    },
    {
      name: "is inconclusive without a baseline",
      fields: { threshold: "> 10x baseline" },
      values: [5, 5, 5, 5, 5],
      baseline: null,
      status: "inconclusive",
      reason: /no baseline/,
    },
    {
      name: "is inconclusive on a NaN baseline",
      fields: { threshold: "> 10x baseline" },
      values: [5, 5, 5, 5, 5],
      baseline: Number.NaN,
      status: "inconclusive",
    },
    {
      name: "breaches a '<' threshold when healthy hosts drop below 2",
      fields: { name: "healthy_hosts", metric: "healthy_hosts", threshold: "< 2", for: "3m" },
      values: [1, 1, 0],
      status: "breaching",
      reason: /^healthy_hosts 0 < 2 in 3 of 3 datapoints since 10:33 UTC$/,
    },
    {
      name: "is ok at exactly 2 healthy hosts under '< 2'",
      fields: { name: "healthy_hosts", metric: "healthy_hosts", threshold: "< 2", for: "3m" },
      values: [2, 2, 2],
      status: "ok",
    },
    {
      name: "formats sub-second latency in milliseconds",
      fields: { name: "p95", metric: "p95_latency", threshold: "> 500ms" },
      values: [0.75, 0.75, 0.75, 0.75, 0.75],
      status: "breaching",
      reason: /^p95 750ms > 500ms in 5 of 5/,
    },
    {
      name: "formats latency over a second in seconds",
      fields: { name: "p95", metric: "p95_latency", threshold: "> 2s" },
      values: [2.4, 2.4, 2.4, 2.4, 2.4],
      status: "breaching",
      reason: /^p95 2\.4s > 2s in 5 of 5/,
    },
    {
      name: "looks at 2-minute periods when the guardrail's period is 2m",
      fields: { for: "6m", period: "2m" },
      values: [2, null, 2, null, 2],
      lastAt: "2026-03-02T10:34:00Z",
      status: "breaching",
      breaching: 3,
      evaluated: 3,
    },
    // Late data: CloudWatch publishes ALB and ECS metrics 1-3 min after a period ends.
    {
      name: "fires a 5 of 5 guardrail when the newest 2 periods are not yet published, 2 min behind",
      values: [2, 2, 2, 2, 2],
      lastAt: "2026-03-02T10:33:00Z",
      status: "breaching",
      breaching: 5,
      evaluated: 5,
      reason: /^error_rate 2% > 1% in 5 of 5 datapoints since 10:29 UTC \(data up to 10:34 UTC, 2 min behind\)$/,
      published: "2026-03-02T10:34:00Z",
    },
    {
      name: "is ok on data 2 min behind and says how far behind it is",
      values: [0.2, 0.2, 0.2, 0.2, 0.2],
      lastAt: "2026-03-02T10:33:00Z",
      status: "ok",
      evaluated: 5,
      reason: /^error_rate 0\.2%: 0 of 5 datapoints > 1%, 5 needed to breach \(data up to 10:34 UTC, 2 min behind\)$/,
    },
    {
      name: "says nothing of lag when the newest complete period is published",
      values: [2, 2, 2, 2, 2],
      status: "breaching",
      reason: /since 10:31 UTC$/,
      published: "2026-03-02T10:36:00Z",
    },
    {
      name: "with max_lag 0, counts the 2 unpublished periods as missing, as before",
      fields: { max_lag: "0s" },
      values: [2, 2, 2, 2, 2],
      lastAt: "2026-03-02T10:33:00Z",
      status: "inconclusive",
      evaluated: 3,
      reason: /only 3 datapoints of 5 since 10:31 UTC, 5 needed to judge > 1% \(2 missing\)/,
    },
    {
      name: "takes maxLagMs from the caller over the guardrail's max_lag",
      values: [2, 2, 2, 2, 2],
      lastAt: "2026-03-02T10:33:00Z",
      maxLagMs: 0,
      status: "inconclusive",
      evaluated: 3,
    },
    {
      name: "treats periods later than max_lag as missing, not as late",
      values: [2, 2, 2, 2, 2],
      lastAt: "2026-03-02T10:30:00Z",
      status: "inconclusive",
      evaluated: 3,
      reason: /only 3 datapoints of 5 since 10:28 UTC, 5 needed .*\(2 missing\) \(data up to 10:31 UTC, 5 min behind\)/,
      published: "2026-03-02T10:31:00Z",
    },
    {
      name: "waits max_lag longer under a longer max_lag",
      fields: { max_lag: "5m" },
      values: [2, 2, 2, 2, 2],
      lastAt: "2026-03-02T10:30:00Z",
      status: "breaching",
      reason: /since 10:26 UTC \(data up to 10:31 UTC, 5 min behind\)$/,
    },
    {
      name: "never counts a not-yet-published gap as breaching under missing_data: breaching",
      fields: { missing_data: "breaching", datapoints: "3 of 5" },
      values: [2, 2, null, null, 0.1],
      status: "ok",
      breaching: 2,
      evaluated: 3,
      reason: /\(2 not yet published\)/,
    },
    {
      name: "counts a gap as breaching once max_lag has passed since its period ended",
      fields: { missing_data: "breaching", datapoints: "3 of 5" },
      values: [2, null, 0.1, 0.1, 0.1],
      status: "ok",
      breaching: 2,
      evaluated: 5,
      reason: /\(1 missing, treated as breaching\)/,
    },
    {
      name: "does not count a not-yet-published gap as fine under missing_data: notBreaching",
      fields: { missing_data: "notBreaching" },
      values: [0.1, 0.1, null, 0.1, 0.1],
      status: "inconclusive",
      evaluated: 4,
      reason: /only 4 datapoints of 5 .*\(1 not yet published\)/,
    },

    // Only the deploy's own data.
    {
      name: "leaves out the periods before the deploy took traffic",
      fields: { datapoints: "2 of 5" },
      values: [9, 9, 0.2, 0.2, 0.2],
      notBefore: "2026-03-02T10:33:00Z",
      status: "ok",
      breaching: 0,
      evaluated: 3,
      reason: /^error_rate 0\.2%: 0 of 3 datapoints > 1%, 2 needed to breach$/,
    },
    {
      name: "leaves out a period the deploy took traffic in the middle of",
      fields: { datapoints: "2 of 5" },
      values: [0.2, 0.2, 9, 9, 0.2],
      notBefore: "2026-03-02T10:33:20Z",
      status: "ok",
      breaching: 1,
      evaluated: 2,
    },
    {
      name: "is inconclusive, saying the deploy is too young, with fewer of its own periods than needed",
      values: [9, 9, 9, 9, 9],
      notBefore: "2026-03-02T10:32:30Z",
      status: "inconclusive",
      reason:
        /^error_rate: the deploy is too young to judge: it took traffic at 10:32 UTC, only 3 complete periods of 1 min since, 5 needed$/,
    },
    {
      name: "is too young to judge when the deploy has no complete period yet",
      values: [9, 9, 9, 9, 9, 9],
      lastAt: "2026-03-02T10:36:00Z",
      notBefore: "2026-03-02T10:35:30Z",
      status: "inconclusive",
      reason: /too young to judge: it took traffic at 10:35 UTC, no complete period of 1 min since, 5 needed$/,
    },
    {
      name: "judges a deploy 7 min old on data 2 min behind once 5 of its own periods are published",
      values: [2, 2, 2, 2, 2],
      lastAt: "2026-03-02T10:33:00Z",
      notBefore: "2026-03-02T10:29:00Z",
      status: "breaching",
      reason: /in 5 of 5 datapoints since 10:29 UTC \(data up to 10:34 UTC, 2 min behind\)$/,
    },
    {
      name: "says the deploy is too young and the data late when both hold",
      values: [2, 2, 2, 2],
      lastAt: "2026-03-02T10:33:00Z",
      notBefore: "2026-03-02T10:30:00Z",
      status: "inconclusive",
      reason:
        /too young to judge: .*only 4 complete periods of 1 min since, 5 needed \(data up to 10:34 UTC, 2 min behind\)$/,
    },
    {
      name: "never counts a missing period from before the deploy as breaching",
      fields: { missing_data: "breaching", datapoints: "3 of 5" },
      values: [null, null, 0.2, 0.2, 0.2],
      notBefore: "2026-03-02T10:33:00Z",
      status: "ok",
      breaching: 0,
      evaluated: 3,
    },

    // A metric already over the threshold before the deploy.
    {
      name: "does not blame the deploy for an error rate that was already over the threshold",
      values: [3.3, 3.4, 3.3, 3.5, 3.4],
      preDeploy: 3.2,
      status: "ok",
      breaching: 0,
      reason:
        /^error_rate 3\.4%: 0 of 5 datapoints > 4\.8% \(50% worse than before the deploy\), 5 needed to breach; error_rate was already 3\.2% before this deploy \(> 1%\), so only 50% worse than that counts$/,
      pre: { value: 3.2, breaching: true },
    },
    {
      name: "breaches when the deploy makes an already breaching error rate clearly worse",
      values: [5, 5.5, 6, 6, 6.2],
      preDeploy: 3.2,
      status: "breaching",
      breaching: 5,
      reason:
        /^error_rate 6\.2% > 4\.8% \(50% worse than before the deploy\) in 5 of 5 datapoints since 10:31 UTC; error_rate was already 3\.2% before this deploy \(> 1%\), so only 50% worse than that counts$/,
      pre: { value: 3.2, breaching: true },
    },
    {
      name: "reads 'clearly worse' from worse_by",
      fields: { worse_by: "10%" },
      values: [3.6, 3.6, 3.6, 3.6, 3.6],
      preDeploy: 3.2,
      status: "breaching",
      reason: /> 3\.52% \(10% worse than before the deploy\)/,
    },
    {
      name: "applies the plain threshold to an already breaching metric under already_breaching: judge",
      fields: { already_breaching: "judge" },
      values: [3.3, 3.3, 3.3, 3.3, 3.3],
      preDeploy: 3.2,
      status: "breaching",
      reason:
        /^error_rate 3\.3% > 1% in 5 of 5 datapoints since 10:31 UTC; error_rate was already 3\.2% before this deploy$/,
      pre: { value: 3.2, breaching: true },
    },
    {
      name: "judges the plain threshold when the metric was healthy before, and says nothing of it",
      values: [1.5, 1.5, 1.5, 1.5, 1.5],
      preDeploy: 0.2,
      status: "breaching",
      reason: /^error_rate 1\.5% > 1% in 5 of 5 datapoints since 10:31 UTC$/,
      pre: { value: 0.2, breaching: false },
    },
    {
      name: "carries no pre-deploy value when the caller has none",
      values: [1.5, 1.5, 1.5, 1.5, 1.5],
      preDeploy: null,
      status: "breaching",
      pre: "none",
    },
    {
      name: "does not blame the deploy for hosts that were already down under '< 1'",
      fields: { name: "healthy_hosts", metric: "healthy_hosts", threshold: "< 1", for: "3m" },
      values: [0, 0, 0],
      preDeploy: 0,
      status: "ok",
      reason: /healthy_hosts was already 0 before this deploy/,
      pre: { value: 0, breaching: true },
    },
    {
      name: "breaches a '<' threshold when the deploy halves what was already too low",
      fields: { name: "healthy_hosts", metric: "healthy_hosts", threshold: "< 2", for: "3m" },
      values: [0, 0, 0],
      preDeploy: 1,
      status: "breaching",
      reason: /^healthy_hosts 0 < 0\.5 \(50% worse than before the deploy\) in 3 of 3/,
    },
    {
      name: "says what the metric was before the deploy even when the deploy is too young to judge",
      values: [3.3, 3.3, 3.3, 3.3, 3.3],
      notBefore: "2026-03-02T10:34:00Z",
      preDeploy: 3.2,
      status: "inconclusive",
      reason: /too young to judge: .*, 5 needed; error_rate was already 3\.2% before this deploy/,
      pre: { value: 3.2, breaching: true },
    },
    {
      name: "keeps relative thresholds working next to a pre-deploy value",
      fields: { threshold: "> 10x baseline" },
      values: [2.5, 2.5, 2.5, 2.5, 2.5],
      baseline: 0.2,
      preDeploy: 0.2,
      status: "breaching",
      reason: /^error_rate 2\.5% > 10x baseline \(2%\) in 5 of 5 datapoints since 10:31 UTC$/,
      pre: { value: 0.2, breaching: false },
    },
  ];

  it.each(cases)("$name", (c) => {
    const verdict = evaluateGuardrail({
      guardrail: rule(c.fields),
      datapoints: series(c.values, c.lastAt),
      requestCounts: c.requests === "none" ? undefined : (c.requests ?? plenty),
      baseline: c.baseline,
      now: NOW,
      ...(c.maxLagMs !== undefined ? { maxLagMs: c.maxLagMs } : {}),
      ...(c.notBefore !== undefined ? { notBefore: new Date(c.notBefore) } : {}),
      ...(c.preDeploy !== undefined ? { preDeploy: c.preDeploy } : {}),
    });
    expect(verdict.status).toBe(c.status);
    if (c.breaching !== undefined) expect(verdict.breachingPoints).toBe(c.breaching);
    if (c.evaluated !== undefined) expect(verdict.evaluatedPoints).toBe(c.evaluated);
    if (c.reason) expect(verdict.reason).toMatch(c.reason);
    if (c.published !== undefined)
      expect(verdict.publishedUpTo).toEqual(c.published === null ? null : new Date(c.published));
    if (c.pre === "none") expect(verdict.preDeploy).toBeUndefined();
    else if (c.pre !== undefined) expect(verdict.preDeploy).toEqual(c.pre);
  });

  it("reports the latest breaching value and when the breach began", () => {
    const verdict = evaluateGuardrail({
      guardrail: rule({ datapoints: "3 of 5" }),
      datapoints: series([0.2, 4, 5, 6, 0.3]),
      now: NOW,
    });
    expect(verdict).toMatchObject({ status: "breaching", observed: 6, since: new Date("2026-03-02T10:32:00Z") });
  });

  it("aligns periods to the datapoints' own timestamps, not to the minute", () => {
    const offset = series([2, 2, 2, 2, 2]).map((d) => ({ at: new Date(d.at.getTime() - 20_000), value: d.value }));
    const verdict = evaluateGuardrail({ guardrail: rule(), datapoints: offset, now: NOW });
    expect(verdict).toMatchObject({ status: "breaching", breachingPoints: 5 });
  });

  it("says how late the data is in the environment's own zone", () => {
    const verdict = evaluateGuardrail({
      guardrail: rule({ name: "error rate" }),
      datapoints: series([3.2, 3.2, 3.2, 3.2, 3.2], "2026-03-02T10:33:00Z"),
      now: NOW,
      timeZone: "Africa/Johannesburg",
    });
    expect(verdict.reason).toBe(
      "error rate 3.2% > 1% in 5 of 5 datapoints since 12:29 SAST (data up to 12:34 SAST, 2 min behind)",
    );
    expect(verdict.publishedUpTo).toEqual(new Date("2026-03-02T10:34:00Z"));
  });

  it("ignores datapoints older than the window", () => {
    const old = series([9, 9, 9, 9, 9], "2026-03-02T10:20:00Z");
    const verdict = evaluateGuardrail({ guardrail: rule(), datapoints: old, now: NOW });
    expect(verdict.status).toBe("inconclusive");
  });
});

describe("what the caller needs around a verdict", () => {
  it("reads N periods, the one in progress and max_lag back: 5 + 1 min + 3 min for a 5 min guardrail", () => {
    expect(guardrailLookbackMs(rule())).toBe(9 * MINUTE);
    expect(guardrailLookbackMs(rule({ max_lag: "0s", period: "2m", for: "6m" }))).toBe(8 * MINUTE);
  });

  it("reads the pre-deploy value over the baseline window that ends when the deploy took traffic", () => {
    const tookTraffic = new Date("2026-03-02T10:30:00Z");
    expect(preDeployWindow(rule({ baseline: "60m" }), tookTraffic)).toEqual({
      start: new Date("2026-03-02T09:30:00Z"),
      end: tookTraffic,
    });
  });

  it.each([
    [{ severity: "critical", action: "alert" }, true],
    [{ severity: "warning", action: "page" }, true],
    [{ severity: "critical", action: "rollback" }, true],
    [{ severity: "warning", action: "rollback" }, false],
    [{ severity: "warning", action: "alert" }, false],
  ] as const)("says whether %j pages PagerDuty on a breach: %s", (fields, pages) => {
    expect(pagesOnBreach(rule(fields))).toBe(pages);
  });

  it("makes an unread guardrail inconclusive, with nothing published", () => {
    expect(unreadVerdict(rule(), "CloudWatch said Forbidden")).toEqual({
      status: "inconclusive",
      reason: "error_rate: CloudWatch said Forbidden",
      observed: null,
      breachingPoints: 0,
      evaluatedPoints: 0,
      publishedUpTo: null,
    });
  });

  it("sets publishedUpTo on every verdict, null when CloudWatch returned nothing", () => {
    const empty = evaluateGuardrail({ guardrail: rule(), datapoints: [], now: NOW });
    expect(empty).toHaveProperty("publishedUpTo", null);
    const nan = evaluateGuardrail({
      guardrail: rule(),
      datapoints: [{ at: new Date("2026-03-02T10:35:00Z"), value: Number.NaN }],
      now: NOW,
    });
    expect(nan.publishedUpTo).toBeNull();
    const tooYoung = evaluateGuardrail({
      guardrail: rule(),
      datapoints: series([1, 1, 1, 1, 1]),
      now: NOW,
      notBefore: new Date("2026-03-02T10:35:00Z"),
    });
    expect(tooYoung).toMatchObject({ status: "inconclusive", publishedUpTo: new Date("2026-03-02T10:36:00Z") });
  });
});

describe("alreadyBreachingNote", () => {
  it.each([
    {
      name: "says what an error rate was before the deploy and what now counts against it",
      fields: {},
      pre: { value: 3.2, breaching: true },
      note: "“error_rate” was already 3.2% before this deploy (threshold > 1%): the deploy is not blamed for that; only 50% worse (> 4.8%) counts against it.",
    },
    {
      name: "reads worse_by and a '<' threshold",
      fields: { name: "hosts", metric: "healthy_hosts", threshold: "< 3", worse_by: "50%" },
      pre: { value: 2, breaching: true },
      note: "“hosts” was already 2 before this deploy (threshold < 3): the deploy is not blamed for that; only 50% worse (< 1) counts against it.",
    },
    {
      name: "says the plain threshold applies under already_breaching: judge",
      fields: { already_breaching: "judge" },
      pre: { value: 3.2, breaching: true },
      note: "“error_rate” was already 3.2% before this deploy (threshold > 1%): the plain threshold applies anyway.",
    },
    {
      name: "says nothing when the metric was healthy before",
      fields: {},
      pre: { value: 0.2, breaching: false },
      note: null,
    },
    { name: "says nothing when the value before is unknown", fields: {}, pre: undefined, note: null },
  ])("$name", ({ fields, pre, note }) => {
    expect(alreadyBreachingNote(rule(fields), pre)).toBe(note);
  });
});

describe("sparkline", () => {
  it("draws the lowest value as the shortest bar and the highest as the tallest", () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe("▁▂▃▄▅▆▇█");
  });

  it("shows gaps as dots", () => {
    expect(sparkline([0, Number.NaN, 7])).toBe("▁·█");
  });

  it("draws a flat series flat", () => {
    expect(sparkline([3, 3, 3])).toBe("▁▁▁");
  });

  it("draws nothing for no values", () => {
    expect(sparkline([])).toBe("");
  });
});
