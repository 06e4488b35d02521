import { expect } from "vitest";
import type { ConsoleEvent } from "../../src/local/events.js";
import type { Scenario } from "./scenario.js";

/** A Tuesday inside the production window (10:00-12:00 SAST). */
export const TUESDAY = "2026-11-24T10:15:00+02:00";
/** The next morning, still inside the window, for the second deploy. */
export const WEDNESDAY = "2026-11-25T10:15:00+02:00";

/** The task definition RegisterTaskDefinition produced for v1.4.2 (revision 1 is the initial v1.4.0). */
export const V142_TASK_DEFINITION = "arn:aws:ecs:af-south-1:123456789012:task-definition/comply360-prod-web:2";
export const V143_TASK_DEFINITION = "arn:aws:ecs:af-south-1:123456789012:task-definition/comply360-prod-web:3";

/** Deploys web `version` to production as alice, approved by bob; with `finish`, waits until it succeeded. */
export async function deployToProduction(t: Scenario, version: string, finish = true): Promise<void> {
  await t.run(":as alice", `/deploy web ${version} to production`, ":as bob", ":click Approve");
  if (finish) await t.run(":advance 40m");
}

/**
 * Production history for a rollback: deploy #1 v1.4.2 on Tuesday and deploy #2 v1.4.3 on Wednesday, both
 * succeeded. Checks what it builds on, so a scenario never passes on a history that is not there.
 */
export async function twoGoodProductionDeploys(t: Scenario): Promise<void> {
  await deployToProduction(t, "v1.4.2");
  await t.run(`:time ${WEDNESDAY}`);
  await deployToProduction(t, "v1.4.3");
  const [second, first] = await t.con.store.deployments.history("web", "production");
  expect([first?.version, first?.status, first?.taskDefinition]).toEqual(["v1.4.2", "succeeded", V142_TASK_DEFINITION]);
  expect([second?.version, second?.status, second?.taskDefinition]).toEqual([
    "v1.4.3",
    "succeeded",
    V143_TASK_DEFINITION,
  ]);
  expect(await t.con.store.locks.get("web", "production")).toBeUndefined();
}

/** The AWS events with operation `op` from a mark on. */
export function awsCalls(t: Scenario, op: string, from = 0): ConsoleEvent[] {
  return t.since(from).filter((e) => e.kind === "aws" && e.op === op);
}

/** The audit actions recorded so far, in order, optionally only those about one deployment. */
export async function auditActions(t: Scenario, deploymentId?: number): Promise<string[]> {
  return (await t.con.store.audit.list(deploymentId === undefined ? {} : { deploymentId }))
    .sort((a, b) => a.id - b.id)
    .map((a) => a.action);
}

/** Messages posted (not threaded) to #incidents from a mark on. */
export function incidentPosts(t: Scenario, from = 0): string[] {
  return t
    .since(from)
    .filter((e) => e.kind === "message" && e.channel === "#incidents" && !e.thread_ts)
    .map((e) => e.text ?? "");
}
