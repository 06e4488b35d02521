import { formatRelative } from "../clock.js";
import type { Guardrail } from "../config/schema.js";
import { evaluationShape } from "./guardrail-rules.js";

/**
 * The analysis of one traffic step, as Argo Rollouts and Flagger judge a canary step: pure, the clock passed in.
 * The monitor has already judged every guardrail on the new target group's own metrics each cycle; this reads those
 * verdicts at the end of the step's pause and says whether the step may advance.
 */

/** What the monitor recorded for one guardrail of the deploy. */
export interface CheckRecord {
  lastStatus: string | null;
  lastConclusiveAt: string | null;
}

export interface StepFacts {
  guardrails: Guardrail[];
  checks: ReadonlyMap<string, CheckRecord>;
  /** The deploy's incidents: `blocking` when unresolved and it pages or rolls back (the incident machine's blocksSuccess). */
  incidents: Array<{ guardrail: string; state: string; blocking: boolean }>;
  /** When the step's weights took effect. */
  stepAt: Date;
  /** When the new version first took traffic: a guardrail needs its whole window since then to judge. */
  since: Date;
  now: Date;
}

/**
 * pass: every guardrail old enough to judge said ok during this step. hold: something was inconclusive (too few
 * requests, late or missing data) or a warning is breaching: the step stays where it is, up to max_inconclusive.
 * breach: a guardrail that pages or rolls back is breaching: its incident decides (the rollback switches back).
 */
export type StepVerdict =
  | { outcome: "pass"; reason: string }
  | { outcome: "hold"; reason: string }
  | { outcome: "breach"; reason: string };

/**
 * How long a guardrail needs the new version to have had traffic before it can judge it: its N whole periods, and
 * one more for the period the first shift fell in (which is left out, as it is partly the old traffic mix).
 */
export function guardrailWindowMs(g: Guardrail): number {
  return (evaluationShape(g).n + 1) * g.period;
}

/** Judges the step in progress from the monitor's verdicts; see StepVerdict. */
export function judgeStep(f: StepFacts): StepVerdict {
  const incidentOf = new Map(f.incidents.map((i) => [i.guardrail, i]));
  const blocking = f.incidents.filter((i) => i.blocking);
  if (blocking.length > 0) {
    const names = blocking.map((i) => `“${i.guardrail}” ${i.state.replace(/_/g, " ")}`).join(", ");
    return { outcome: "breach", reason: `${names}: the step holds until it is rolled back or overridden` };
  }
  const aged = f.now.getTime() - f.since.getTime();
  const inconclusive: string[] = [];
  const warnings: string[] = [];
  const breaching: string[] = [];
  let judged = 0;
  let young = 0;
  for (const g of f.guardrails) {
    if (g.shadow) continue;
    if (guardrailWindowMs(g) > aged) {
      // Its window is longer than the new version has had traffic: it judges at a later step (or in the bake).
      young++;
      continue;
    }
    judged++;
    const check = f.checks.get(g.name);
    const overridden = incidentOf.get(g.name)?.state === "overridden";
    const fresh = check?.lastConclusiveAt ? Date.parse(check.lastConclusiveAt) >= f.stepAt.getTime() : false;
    if (check?.lastStatus === "breaching" && !overridden) {
      if (g.action === "alert") warnings.push(`“${g.name}”`);
      else breaching.push(`“${g.name}”`);
    } else if (!fresh || check?.lastStatus === "inconclusive") {
      if (!overridden) inconclusive.push(`“${g.name}”`);
    }
  }
  if (breaching.length > 0)
    return { outcome: "breach", reason: `${breaching.join(", ")} breaching: its incident decides what happens` };
  if (warnings.length > 0 || inconclusive.length > 0) {
    const parts = [
      ...(warnings.length ? [`warning ${warnings.join(", ")} breaching`] : []),
      ...(inconclusive.length
        ? [`no verdict yet from ${inconclusive.join(", ")} (too few requests or late data)`]
        : []),
    ];
    return { outcome: "hold", reason: parts.join("; ") };
  }
  if (judged === 0 && young > 0)
    return {
      outcome: "hold",
      reason: `no guardrail can judge yet: the new version has had traffic for ${formatRelative(aged)}, shorter than every guardrail's window`,
    };
  const later = young > 0 ? `; ${young} with longer windows judge later` : "";
  return {
    outcome: "pass",
    reason:
      judged > 0 ? `${judged} guardrail${judged === 1 ? "" : "s"} passed${later}` : "no guardrails are configured",
  };
}
