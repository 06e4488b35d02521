/**
 * The guardrail verdict, computed by a pure function as argo-rollouts does (`analysis.assessMetricStatus`):
 * datapoints in, ok / breaching / inconclusive and a reason out. No I/O and no clock: `now` is passed in.
 *
 * The rule semantics follow CloudWatch alarms: the last N complete periods, M of them breaching, missing
 * periods treated as the guardrail's `missing_data` says. CloudWatch as it really is shapes the window:
 * it ends where the published data ends (ALB/ECS metrics arrive 1-3 min late, up to `max_lag`), it starts
 * no earlier than the deploy took traffic, and a metric already over the threshold before the deploy is
 * judged against what it was then. Anything that makes the numbers meaningless (too little traffic, no
 * baseline, too few datapoints, a deploy too young) is inconclusive, and an inconclusive outcome is never
 * a breach.
 */
import { formatClock, formatRelative } from "../clock.js";
import { DEFAULT_MAX_LAG_MS, type Guardrail } from "../config/schema.js";
import type { Datapoint } from "../ports.js";
import { formatNumber, formatValue, percentText, plural } from "./guardrail-format.js";
import {
  clearlyWorseBound,
  compare,
  evaluationShape,
  parseThreshold,
  ruleText,
  type Valued,
  valueUnit,
} from "./guardrail-rules.js";

export type GuardrailStatus = "ok" | "breaching" | "inconclusive";

export interface GuardrailInput {
  guardrail: Guardrail;
  /** Oldest first, as the metrics port returns them. */
  datapoints: readonly Datapoint[];
  /** Request counts per period (the `${id}_requests` series of error_rate); needed when `min_requests` is set. */
  requestCounts?: readonly Datapoint[];
  /** The metric over the pre-deploy window; needed by relative ("x baseline") thresholds. */
  baseline?: number | null;
  now: Date;
  /** The environment's IANA zone, for the times in the reason (default UTC). */
  timeZone?: string;
  /** How late CloudWatch may publish a period (default: the guardrail's max_lag, 3 min). */
  maxLagMs?: number;
  /** When the deployed version took traffic: periods starting before it are not the deploy's and are left out. */
  notBefore?: Date;
  /** The metric over the window before the deploy (see preDeployWindow), read by the caller; null when unknown. */
  preDeploy?: number | null;
}

export interface GuardrailVerdict {
  status: GuardrailStatus;
  reason: string;
  /** The value the reason quotes: the latest breaching value on a breach, else the latest real value. */
  observed: number | null;
  /** Periods counted as breaching, missing ones included when `missing_data` is "breaching". */
  breachingPoints: number;
  /** Periods that took part in the decision: real ones, plus missing ones unless `missing_data` is "missing". */
  evaluatedPoints: number;
  /** Start of the earliest breaching period in the window (breaching verdicts only). */
  since?: Date;
  /**
   * End of the newest period CloudWatch returned (never after `now`); null when it returned nothing.
   * Always set by evaluateGuardrail; optional only for verdicts made by hand.
   */
  publishedUpTo?: Date | null;
  /** The pre-deploy value when the caller gave one, and whether it was already over the threshold. */
  preDeploy?: { value: number; breaching: boolean };
}

/** The unit a guardrail's values are in: its threshold's own unit, else its preset's, else a plain number. */
export function guardrailUnit(g: Guardrail): Valued {
  return valueUnit(g, parseThreshold(g.threshold));
}

function mod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

/** Is a breach of this guardrail meant to page PagerDuty? Critical ones and those whose action is "page". */
export function pagesOnBreach(g: Pick<Guardrail, "severity" | "action">): boolean {
  return g.severity === "critical" || g.action === "page";
}

/** How far back the caller must read the metric for one verdict: N periods, the one in progress, and max_lag. */
export function guardrailLookbackMs(g: Guardrail): number {
  return (evaluationShape(g).n + 1) * g.period + (g.max_lag ?? DEFAULT_MAX_LAG_MS);
}

/** The window the caller reads `preDeploy` (and a relative threshold's baseline) from: `baseline` long, ending when the deploy took traffic. */
export function preDeployWindow(g: Pick<Guardrail, "baseline">, tookTraffic: Date): { start: Date; end: Date } {
  return { start: new Date(tookTraffic.getTime() - g.baseline), end: tookTraffic };
}

/** The verdict for a guardrail whose data could not be read at all (a failed query): inconclusive, never a breach. */
export function unreadVerdict(g: Pick<Guardrail, "name">, why: string): GuardrailVerdict {
  return {
    status: "inconclusive",
    reason: `${g.name}: ${why}`,
    observed: null,
    breachingPoints: 0,
    evaluatedPoints: 0,
    publishedUpTo: null,
  };
}

/**
 * Evaluates one guardrail over its datapoints: ok, breaching or inconclusive, with the reason in words.
 *
 * The window is the guardrail's last N complete periods up to what CloudWatch has published (the end of
 * the newest period it returned, but never earlier than `now - maxLag`), so a metric published 2 min late
 * is judged 2 min late instead of never. Periods that start before `notBefore` belong to the previous
 * version and are left out. A missing period that ended less than `maxLag` ago is "not yet published": it
 * is neither breaching nor evaluated, whatever `missing_data` says.
 */
export function evaluateGuardrail(input: GuardrailInput): GuardrailVerdict {
  const { guardrail: g, now } = input;
  const threshold = parseThreshold(g.threshold);
  const { m, n } = evaluationShape(g);
  const unit = valueUnit(g, threshold);
  const period = g.period;
  const nowMs = now.getTime();
  const maxLag = Math.max(0, input.maxLagMs ?? g.max_lag ?? DEFAULT_MAX_LAG_MS);
  // "10:31 SAST" in the environment's zone (UTC when none is given).
  const clock = (at: number | Date) => formatClock(new Date(at), input.timeZone ?? "UTC");
  const show = (v: number) => formatValue(v, unit);

  // What CloudWatch has published: the end of the newest period it returned (a period still in progress
  // ends at `now`). The judging horizon never goes back further than maxLag: a period older than that
  // without a datapoint is missing, not late.
  let newestAt: number | undefined;
  for (const d of input.datapoints) {
    const t = d.at.getTime();
    if (t <= nowMs && Number.isFinite(d.value) && (newestAt === undefined || t > newestAt)) newestAt = t;
  }
  const publishedUpTo = newestAt === undefined ? null : new Date(Math.min(newestAt + period, nowMs));
  const horizon = Math.min(nowMs, Math.max(publishedUpTo?.getTime() ?? Number.NEGATIVE_INFINITY, nowMs - maxLag));

  // Set once the threshold is known (below); every verdict from then on carries it.
  let preDeploy: GuardrailVerdict["preDeploy"];
  const extra = () => ({ publishedUpTo, ...(preDeploy ? { preDeploy } : {}) });
  // The reason is written when read (most inconclusive verdicts, a deploy too young to judge, are never shown).
  const inconclusive = (why: () => string, observed: number | null = null): GuardrailVerdict => ({
    status: "inconclusive",
    get reason() {
      return `${g.name}: ${why()}`;
    },
    observed,
    breachingPoints: 0,
    evaluatedPoints: 0,
    ...extra(),
  });

  // Relative thresholds need a positive baseline: "10x" of nothing (0), of an unknown or of a negative
  // number has no meaning, so rather than breach on 0.01% against a 0% baseline the verdict is
  // inconclusive, and the reason says to pair the rule with an absolute one.
  let limit = threshold.value;
  let thresholdText = ruleText(g.threshold);
  if (threshold.unit === "baseline") {
    const baseline = input.baseline;
    if (baseline === null || baseline === undefined || !Number.isFinite(baseline)) {
      return inconclusive(() => "no baseline from the pre-deploy window, so a relative threshold cannot be judged");
    }
    if (baseline <= 0) {
      return inconclusive(
        () =>
          `the pre-deploy baseline is ${show(baseline)}, so "${g.threshold}" cannot be judged; pair it with an absolute threshold`,
      );
    }
    limit = threshold.value * baseline;
    thresholdText = `${threshold.op} ${threshold.value}x baseline (${show(limit)})`;
  }

  // A metric already over the threshold before the deploy is not the deploy's doing: under `compare` a
  // period counts only when it is also worse than before by more than `worse_by`; `judge` keeps the plain
  // threshold. Either way the reason says what the metric was before.
  const pre = input.preDeploy;
  let preNote = "";
  let worseThan: ((v: number) => boolean) | undefined;
  if (pre !== null && pre !== undefined && Number.isFinite(pre)) {
    const breachingBefore = compare(pre, threshold.op, limit);
    preDeploy = { value: pre, breaching: breachingBefore };
    if (breachingBefore) {
      preNote = `; ${g.name} was already ${show(pre)} before this deploy`;
      if ((g.already_breaching ?? "compare") === "compare") {
        const by = g.worse_by ?? 0.5;
        const rising = threshold.op === ">" || threshold.op === ">=";
        const worse = clearlyWorseBound(g, threshold.op, pre);
        worseThan = rising ? (v) => v > worse : (v) => v < worse;
        preNote += ` (${thresholdText}), so only ${percentText(by)} worse than that counts`;
        thresholdText = `${rising ? ">" : "<"} ${show(worse)} (${percentText(by)} worse than before the deploy)`;
      }
    }
  }
  const breachesAt = (v: number) => compare(v, threshold.op, limit) && (worseThan === undefined || worseThan(v));

  // Periods are aligned to the datapoints' own timestamps (CloudWatch stamps each with its period's start);
  // only periods complete at the horizon count, as a partial one under-reports sums such as request counts.
  let anchor: Datapoint | undefined;
  for (let i = input.datapoints.length - 1; i >= 0 && anchor === undefined; i--) {
    const d = input.datapoints[i] as Datapoint;
    if (d.at.getTime() <= nowMs) anchor = d;
  }
  const offset = anchor ? mod(anchor.at.getTime(), period) : 0;
  const lastCompleteBefore = (t: number) => Math.floor((t - period - offset) / period) * period + offset;
  const lastStart = lastCompleteBefore(horizon);
  const windowEnd = lastStart + period;
  let firstStart = lastStart - (n - 1) * period;
  const late = windowEnd < lastCompleteBefore(nowMs) + period;
  // Written only into a reason someone reads (most verdicts of a cycle are "ok" and never shown).
  const lateNote = () =>
    !late
      ? ""
      : publishedUpTo === null
        ? ` (nothing published yet; judged up to ${clock(windowEnd)}, max_lag ${formatRelative(maxLag)})`
        : ` (data up to ${clock(publishedUpTo)}, ${formatRelative(nowMs - publishedUpTo.getTime())} behind)`;

  // Only the deploy's own periods: one that starts before the new version took traffic mixes in the old one.
  if (input.notBefore !== undefined) {
    const from = input.notBefore.getTime();
    const firstOwn = Math.ceil((from - offset) / period) * period + offset;
    if (firstOwn > firstStart) firstStart = firstOwn;
    const own = Math.max(0, Math.floor((lastStart - firstStart) / period) + 1);
    if (own < m) {
      const seen = own === 0 ? "no complete period" : `only ${plural(own, "complete period")}`;
      return inconclusive(
        () =>
          `the deploy is too young to judge: it took traffic at ${clock(from)}, ${seen} of ${formatRelative(period)} since, ${m} needed${lateNote()}${preNote}`,
      );
    }
  }
  const size = Math.floor((lastStart - firstStart) / period) + 1;
  const bucketOf = (at: Date): number | undefined => {
    const t = at.getTime();
    if (t < firstStart || t >= windowEnd) return undefined;
    return Math.floor((t - firstStart) / period);
  };

  const sums = new Array<number>(size).fill(0);
  const counts = new Array<number>(size).fill(0);
  for (const d of input.datapoints) {
    const i = bucketOf(d.at);
    // NaN (and ±Infinity) is no measurement: the period stays missing.
    if (i === undefined || !Number.isFinite(d.value)) continue;
    sums[i] = (sums[i] as number) + d.value;
    counts[i] = (counts[i] as number) + 1;
  }
  const values: Array<number | null> = sums.map((s, i) =>
    (counts[i] as number) > 0 ? s / (counts[i] as number) : null,
  );

  if (g.min_requests !== undefined) {
    if (input.requestCounts === undefined) {
      return inconclusive(() => `the request count is unknown, and min_requests is ${g.min_requests}`);
    }
    let requests = 0;
    for (const d of input.requestCounts) {
      if (bucketOf(d.at) !== undefined && Number.isFinite(d.value)) requests += d.value;
    }
    if (requests < g.min_requests) {
      return inconclusive(
        () =>
          `only ${formatNumber(requests)} requests since ${clock(firstStart)} (below min_requests ${g.min_requests}), too few to judge a rate${lateNote()}${preNote}`,
      );
    }
  }

  let real = 0;
  let missing = 0;
  let unpublished = 0;
  let breaching = 0;
  let since: Date | undefined;
  let latestReal: number | null = null;
  let latestBreach: number | null = null;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number | null;
    const start = firstStart + i * period;
    if (v === null) {
      // Missing-data rules apply once a period had max_lag to be published; before that it is only late.
      if (start + period > nowMs - maxLag) {
        unpublished++;
        continue;
      }
      missing++;
      if (g.missing_data === "breaching") {
        breaching++;
        since ??= new Date(start);
      }
      continue;
    }
    real++;
    latestReal = v;
    if (breachesAt(v)) {
      breaching++;
      latestBreach = v;
      since ??= new Date(start);
    }
  }

  const evaluated = g.missing_data === "missing" ? real : real + missing;
  const notes: string[] = [];
  if (missing > 0)
    notes.push(
      g.missing_data === "missing"
        ? `${missing} missing`
        : `${missing} missing, treated as ${g.missing_data === "breaching" ? "breaching" : "not breaching"}`,
    );
  if (unpublished > 0) notes.push(`${unpublished} not yet published`);
  const missingNote = notes.length > 0 ? ` (${notes.join("; ")})` : "";
  const observed: number | null = latestBreach ?? latestReal;
  const counted = { breachingPoints: breaching, evaluatedPoints: evaluated, ...extra() };

  if (breaching >= m) {
    const sinceText = clock(since as Date);
    return {
      status: "breaching",
      reason:
        observed === null
          ? `${g.name} had no data in ${breaching} of ${size} periods since ${sinceText} (missing data is treated as breaching)${lateNote()}`
          : `${g.name} ${show(observed)} ${thresholdText} in ${breaching} of ${size} datapoints since ${sinceText}${missingNote}${lateNote()}${preNote}`,
      observed,
      ...counted,
      since,
    };
  }

  if (evaluated < m) {
    const seen = real === 0 ? "no datapoints" : `only ${plural(real, "datapoint")}`;
    return {
      status: "inconclusive",
      get reason() {
        return `${g.name}: ${seen} of ${size} since ${clock(firstStart)}, ${m} needed to judge ${thresholdText}${missingNote}${lateNote()}${preNote}`;
      },
      observed: latestReal,
      ...counted,
    };
  }

  // The reason of an "ok" verdict is written when read: a cycle judges thousands and shows almost none.
  return {
    status: "ok",
    get reason() {
      const current = latestReal === null ? "" : ` ${show(latestReal)}`;
      return `${g.name}${current}: ${breaching} of ${size} datapoints ${thresholdText}, ${m} needed to breach${missingNote}${lateNote()}${preNote}`;
    },
    observed: latestReal,
    ...counted,
  };
}
