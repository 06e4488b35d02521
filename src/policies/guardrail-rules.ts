/**
 * How a guardrail's rule reads: its threshold ("> 1%", "> 10x baseline"), how many periods it looks at and
 * how many must breach ("M of N"), and the unit its values are in. Pure, like the evaluator that uses it.
 */
import type { Guardrail } from "../config/schema.js";
import { DeploybotError, ErrorCode } from "../errors.js";

export type ThresholdOp = ">" | ">=" | "<" | "<=";
export type ThresholdUnit = "percent" | "seconds" | "count" | "baseline";

export interface Threshold {
  op: ThresholdOp;
  /** Percent in percent units (1 for "1%"), seconds for "2s" and "500ms" (0.5), the factor for "10x baseline". */
  value: number;
  unit: ThresholdUnit;
}

const THRESHOLD = /^(>=|<=|>|<)\s*(\d+(?:\.\d+)?)\s*(%|ms|s|x\s*baseline)?$/;

/** Each threshold text parsed, with how the reasons write it. */
const parsed = new Map<string, { threshold: Threshold; rule: string }>();

function parsedOf(text: string): { threshold: Threshold; rule: string } {
  let p = parsed.get(text);
  if (!p) {
    const threshold = parseThresholdText(text);
    p = { threshold, rule: `${threshold.op} ${text.replace(/^[<>]=?\s*/, "")}` };
    if (parsed.size > 1000) parsed.clear();
    parsed.set(text, p);
  }
  return p;
}

/** Parses a threshold (a config holds a handful, read for every verdict: each is parsed once and shared). */
export function parseThreshold(text: string): Threshold {
  return parsedOf(text).threshold;
}

/** "> 1%" as the reasons write it: the operator, one space, the rest of the rule as written. */
export function ruleText(text: string): string {
  return parsedOf(text).rule;
}

/** Parses "> 1%", "> 2s", "> 500ms", "< 2" or "> 10x baseline"; throws on anything else. */
function parseThresholdText(text: string): Threshold {
  const match = THRESHOLD.exec(text.trim());
  if (!match) {
    throw new DeploybotError(
      ErrorCode.ConfigInvalid,
      `"${text}" is not a threshold: use a comparison such as '> 1%', '> 2s', '> 500ms', '< 2' or '> 10x baseline'`,
    );
  }
  const op = match[1] as ThresholdOp;
  const value = Number(match[2]);
  const suffix = match[3];
  if (suffix === "%") return { op, value, unit: "percent" };
  if (suffix === "ms") return { op, value: value / 1000, unit: "seconds" };
  if (suffix === "s") return { op, value, unit: "seconds" };
  if (suffix !== undefined) return { op, value, unit: "baseline" };
  return { op, value, unit: "count" };
}

/** M (breaching periods needed) and N (periods looked at): "M of N" when given, else ceil(for / period) of the same. */
export function evaluationShape(g: Pick<Guardrail, "name" | "for" | "period" | "datapoints">): {
  m: number;
  n: number;
} {
  if (!(g.period > 0)) {
    throw new DeploybotError(ErrorCode.ConfigInvalid, `guardrail ${g.name}: period must be longer than 0`);
  }
  if (g.datapoints !== undefined) {
    const match = /^\s*(\d+)\s+of\s+(\d+)\s*$/.exec(g.datapoints);
    const m = Number(match?.[1]);
    const n = Number(match?.[2]);
    // An "M of N" with M > N could never breach, and "0 of N" always would: both are config mistakes.
    if (!match || m < 1 || m > n) {
      throw new DeploybotError(
        ErrorCode.ConfigInvalid,
        `guardrail ${g.name}: datapoints "${g.datapoints}" must read "M of N" with 1 <= M <= N, e.g. "3 of 5"`,
      );
    }
    return { m, n };
  }
  const n = Math.max(1, Math.ceil(g.for / g.period));
  return { m: n, n };
}

/** The units a guardrail value can be in (a "baseline" threshold is read in its metric's unit). */
export type Valued = "percent" | "seconds" | "count";

const PRESET_UNIT: Record<string, Valued> = {
  error_rate: "percent",
  cpu: "percent",
  memory: "percent",
  p95_latency: "seconds",
  p99_latency: "seconds",
  healthy_hosts: "count",
};

/** The unit of a guardrail's values, given its parsed threshold (see guardrailUnit). */
export function valueUnit(g: Guardrail, threshold: Threshold): Valued {
  if (threshold.unit !== "baseline") return threshold.unit;
  return typeof g.metric === "string" ? (PRESET_UNIT[g.metric] ?? "count") : "count";
}

/** Whether `value` stands in relation `op` to `limit`. */
export function compare(value: number, op: ThresholdOp, limit: number): boolean {
  switch (op) {
    case ">":
      return value > limit;
    case ">=":
      return value >= limit;
    case "<":
      return value < limit;
    case "<=":
      return value <= limit;
  }
}

/** Under `already_breaching: compare`, what a period must pass to count: `worse_by` beyond the pre-deploy value. */
export function clearlyWorseBound(g: Pick<Guardrail, "worse_by">, op: ThresholdOp, pre: number): number {
  const by = g.worse_by ?? 0.5;
  return op === ">" || op === ">=" ? pre + Math.abs(pre) * by : pre - Math.abs(pre) * by;
}
