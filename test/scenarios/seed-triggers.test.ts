import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_METRICS } from "../../src/adapters/sim/world-metrics.js";
import type { Config, Guardrail } from "../../src/config/schema.js";
import { stepsStrategyOf } from "../../src/domain/traffic.js";
import type { ConsoleEvent } from "../../src/local/events.js";
import { parseThreshold } from "../../src/policies/guardrail-rules.js";
import { guardrailUnit, pagesOnBreach } from "../../src/policies/guardrails.js";
import { type Scenario, scenario } from "../helpers/scenario.js";
import { SEED_TRIGGERS, simName, triggerGuardrail } from "../helpers/seed-triggers.js";

/**
 * How each example's users ship to production: when (inside its deploy window), who asks and who approves.
 * tickettoken starts at 09:58 so that its 10-minute restart count has a whole period (10:30-10:40) after its
 * 31-minute canary and before its 15-minute bake ends.
 */
const SHIPPING: Record<string, { at: string; requester: string; approvers: string[] }> = {
  "deploybot.yml": { at: "2026-11-24T10:15:00+02:00", requester: "alice", approvers: ["bob"] },
  "complinist.yml": { at: "2026-11-24T10:00:00-05:00", requester: "maria", approvers: ["devon"] },
  "tickettoken.yml": { at: "2026-11-24T09:58:00Z", requester: "kai", approvers: ["lena"] },
  "multitenant.yml": { at: "2026-11-24T10:00:00Z", requester: "ola", approvers: ["ravi"] },
  "ecommerce.yml": { at: "2026-11-24T10:15:00-06:00", requester: "tom", approvers: ["mike", "jane"] },
};

/** A reading that breaches the guardrail clearly: twice its limit (a percentage at most 100), 0 under a '<'. */
function breachingValue(config: Config, g: Guardrail): number {
  const t = parseThreshold(g.threshold);
  const healthy = config.simulation.metrics?.[simName(g)] ?? DEFAULT_METRICS[simName(g)];
  const limit = t.unit === "baseline" ? t.value * (healthy as number) : t.value;
  if (t.op === "<" || t.op === "<=") return 0;
  if (limit === 0) return 1;
  return guardrailUnit(g) === "percent" ? Math.min(limit * 2, Math.max(limit, 100)) : limit * 2;
}

let s: Scenario | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

/** Advances a minute at a time until `done` (at most `limit` minutes); returns the minutes it took. */
async function advanceUntil(t: Scenario, done: () => Promise<boolean> | boolean, limit: number): Promise<number> {
  for (let m = 0; m <= limit; m++) {
    if (await done()) return m;
    await t.run(":advance 1m");
  }
  throw new Error(`not reached within ${limit} simulated minutes`);
}

describe("each example's seed triggers breach in the console (issue 9 §7)", () => {
  it("ships every example as its own users, inside its windows", () => {
    expect(Object.keys(SHIPPING).sort()).toEqual([...new Set(SEED_TRIGGERS.map((t) => t.file))].sort());
  });

  const verb = { rollback: "rolls it back", page: "pages", alert: "warns in #incidents" } as const;
  it.each(
    SEED_TRIGGERS.map(
      (t) =>
        [
          `${t.seed}: ${t.service} production's ${t.metric} past ${t.threshold} opens its incident and ${verb[t.action]}`,
          t,
        ] as const,
    ),
  )("seed %s", async (_name, trigger) => {
    const ship = SHIPPING[trigger.file];
    if (!ship) throw new Error(`no way to ship ${trigger.file}`);
    const t = await scenario(ship.at, trigger.file);
    s = t;
    const { config } = t.con;
    const g = triggerGuardrail(config, trigger);
    const ecs = config.services[trigger.service]?.environments.production?.ecs;
    if (!ecs) throw new Error(`${trigger.file}: no ${trigger.service} production`);

    await t.run(`:as ${ship.requester}`, `/deploy ${trigger.service} v9.0.0 to production`);
    for (const approver of ship.approvers) await t.run(`:as ${approver}`, ":click Approve");
    // Breach once the new version takes all the traffic (its rollout or its last traffic step done): the rollback is
    // then an UpdateService, or with traffic steps one switch of the weights back to the side kept running.
    await advanceUntil(t, async () => (await t.con.store.deployments.get(1))?.status === "baking", 90);
    const settings = config.services[trigger.service]?.environments.production;
    const stepped = settings ? stepsStrategyOf(settings, false) : null;

    // Healthy until the metric is set: the simulator's defaults trip nothing.
    expect(await t.con.store.incidents.of(1)).toEqual([]);
    const value = breachingValue(config, g);
    const before = t.mark();
    await t.run(`:metric ${trigger.service} production ${trigger.metric} ${value}`);
    const incidentOf = async () => (await t.con.store.incidents.of(1)).find((i) => i.guardrail === g.name);
    // What moves traffic: a deployment (UpdateService of a task definition, not a mere scale-down) or new weights.
    const moves = (e: ConsoleEvent) =>
      e.kind === "aws" &&
      ((e.op === "UpdateService" && e.input?.taskDefinition !== undefined) ||
        e.op === "ModifyRule" ||
        e.op === "ModifyListener");
    const rollbacks = () => t.since(before).filter(moves);
    await advanceUntil(
      t,
      async () => (trigger.action === "rollback" ? rollbacks().length > 0 : (await incidentOf()) !== undefined),
      30,
    );

    const incident = await incidentOf();
    expect(incident, `${g.name} at ${value}`).toMatchObject({ severity: g.severity, action: g.action });
    const posted = t.since(before).filter((e) => e.kind === "message" && e.channel === config.channels.incidents);
    expect(posted.map((e) => e.text)).toContainEqual(expect.stringContaining(`guardrail “${g.name}” breached`));
    if (pagesOnBreach(g)) {
      const pages = t.since(before).filter((e) => e.kind === "page" && e.action === "trigger");
      expect(pages.map((p) => p.dedupKey)).toContainEqual(expect.stringContaining(`/${g.name.replace(/\s+/g, "-")}`));
    }
    if (trigger.action === "rollback" && stepped) {
      // Within keep_previous: one ModifyRule (or ModifyListener) puts all the traffic back on blue.
      const [change] = rollbacks();
      expect(rollbacks()).toHaveLength(1);
      expect(change?.op).toBe(stepped.listener_rule ? "ModifyRule" : "ModifyListener");
      const actions = (change?.input?.Actions ?? change?.input?.DefaultActions) as Array<{
        ForwardConfig?: { TargetGroups?: Array<{ TargetGroupArn: string; Weight: number }> };
      }>;
      expect(actions[0]?.ForwardConfig?.TargetGroups).toEqual([
        { TargetGroupArn: settings?.load_balancer?.target_group, Weight: 100 },
        { TargetGroupArn: stepped.green.target_group, Weight: 0 },
      ]);
      const rollback = await t.con.store.deployments.get(2);
      expect([rollback?.kind, rollback?.rollsBack, rollback?.flags.automatic]).toEqual(["rollback", 1, true]);
    } else if (trigger.action === "rollback") {
      expect(rollbacks().map((e) => e.input?.taskDefinition)).toEqual([
        `arn:aws:ecs:${ecs.region}:123456789012:task-definition/${ecs.cluster}-${ecs.service}:1`,
      ]);
      const rollback = await t.con.store.deployments.get(2);
      expect([rollback?.kind, rollback?.rollsBack, rollback?.flags.automatic]).toEqual(["rollback", 1, true]);
    } else {
      expect(rollbacks()).toEqual([]);
    }
  });
});
