import { z } from "zod";
import type { Config } from "../config/schema.js";
import { CommandError } from "../errors.js";
import type { RollbackPlan } from "../services/rollbacks.js";

/**
 * A record id as deploybot writes it into a button value: digits only, no sign, no leading zero, no exponent, no
 * spaces. `Number()` alone would read "1e0", " 1", "01" and "0x1" as ids; a value deploybot never wrote is refused.
 */
const ID = /^[1-9][0-9]{0,9}$/;

/** The id a button carries, or undefined when the value is not exactly one deploybot would have written. */
export function parseButtonId(value: unknown): number | undefined {
  return typeof value === "string" && ID.test(value) ? Number(value) : undefined;
}

const version = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/);
const planShape = z.strictObject({
  service: z.string().min(1).max(64),
  environment: z.string().min(1).max(64),
  fromVersion: z.string().max(128),
  toVersion: version,
  toTaskDefinition: z.string().max(2048).nullable(),
  reason: z.string().max(500).nullable(),
  severity: z.enum(["P0", "P1", "P2", "P3"]).nullable(),
});

/**
 * The plan the Roll back button carries (the JSON of a RollbackPlan), checked field by field: exactly those keys,
 * each of its type, a configured service and environment. The click derives the plan again from the store and ECS,
 * so this only decides whether the value is one deploybot wrote.
 */
export function parseRollbackPlan(value: unknown, config: Config): RollbackPlan {
  const refuse = () => new CommandError("That button does not carry a rollback deploybot made; run /rollback again.");
  if (typeof value !== "string" || value.length > 2000) throw refuse();
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch {
    throw refuse();
  }
  const parsed = planShape.safeParse(json);
  if (!parsed.success) throw refuse();
  const plan = parsed.data;
  // Own keys only: "constructor" or "__proto__" must not pass for a configured name.
  const service = Object.hasOwn(config.services, plan.service) ? config.services[plan.service] : undefined;
  if (!service || !Object.hasOwn(service.environments, plan.environment)) {
    throw new CommandError(
      "That rollback names a service or environment deploybot does not know; run /rollback again.",
    );
  }
  return plan;
}
