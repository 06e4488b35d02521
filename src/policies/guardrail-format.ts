/** Numbers, units and times as people read them, in guardrail verdicts and in Slack messages. */
import type { Guardrail } from "../config/schema.js";
import { clearlyWorseBound, parseThreshold, type Valued, valueUnit } from "./guardrail-rules.js";

/** A number to three significant figures, whole from 100 up. */
export function formatNumber(v: number): string {
  if (Math.abs(v) >= 100) return String(Math.round(v));
  return String(Number(v.toPrecision(3)));
}

/** 3.2%, 850ms, 2.3s, 12: a value as a person reads it. */
export function formatValue(v: number, unit: Valued): string {
  if (unit === "percent") return `${formatNumber(v)}%`;
  if (unit === "seconds") return Math.abs(v) < 1 ? `${formatNumber(v * 1000)}ms` : `${formatNumber(v)}s`;
  return formatNumber(v);
}

/** "3 periods", "1 period". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** "50%" from 0.5. */
export function percentText(fraction: number): string {
  return `${formatNumber(fraction * 100)}%`;
}

const BARS = "▁▂▃▄▅▆▇█";

/** A one-line chart for Slack messages, scaled from the lowest to the highest value; gaps (NaN) show as "·". */
export function sparkline(values: number[]): string {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return values.map(() => "·").join("");
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const top = BARS.length - 1;
  return values
    .map((v) => {
      if (!Number.isFinite(v)) return "·";
      const level = hi === lo ? 0 : Math.round(((v - lo) / (hi - lo)) * top);
      return BARS[level];
    })
    .join("");
}

/**
 * What the deploy card says when a metric was already over a guardrail's threshold before the deploy (the
 * verdict's `preDeploy`), and how the deploy is judged because of it; null when it was not, or is unknown.
 */
export function alreadyBreachingNote(
  g: Guardrail,
  preDeploy: { value: number; breaching: boolean } | undefined,
): string | null {
  if (!preDeploy?.breaching) return null;
  const threshold = parseThreshold(g.threshold);
  const unit = valueUnit(g, threshold);
  const before = `“${g.name}” was already ${formatValue(preDeploy.value, unit)} before this deploy (threshold ${g.threshold})`;
  if ((g.already_breaching ?? "compare") === "judge") return `${before}: the plain threshold applies anyway.`;
  const rising = threshold.op === ">" || threshold.op === ">=";
  const bound = formatValue(clearlyWorseBound(g, threshold.op, preDeploy.value), unit);
  return `${before}: the deploy is not blamed for that; only ${percentText(g.worse_by ?? 0.5)} worse (${rising ? ">" : "<"} ${bound}) counts against it.`;
}
