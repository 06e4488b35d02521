import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { parse, stringify } from "yaml";
import { LocalConsole } from "../../src/local/console.js";
import type { ConsoleEvent } from "../../src/local/events.js";
import { ecsCanaryExample } from "./ecs-canary-example.js";

/** The example with web production on ECS's own CANARY: the safety loop's suites drive ECS's rollout path on it. */
export const EXAMPLE_CONFIG = ecsCanaryExample();

/** A Tuesday inside the production window (10:00-12:00 SAST). */
export const TUESDAY = "2026-11-24T10:15:00+02:00";

/** alice asks for web v1.4.2 in production and bob approves: the rollout starts at 10:15, baking from 10:19. */
export const APPROVED_PRODUCTION_DEPLOY = [
  ":as alice",
  "/deploy web v1.4.2 to production",
  ":as bob",
  ":click Approve",
];

/** The task definition web ran in production before v1.4.2 (the simulated world's initial v1.4.0). */
export const PREVIOUS_TASK_DEFINITION = /task-definition\/comply360-prod-web:1$/;

/** The #incidents channel of the example config. */
export const INCIDENTS = "#incidents";

/** A local console on a config and a db (in memory unless a file is named), with the events it emitted. */
export interface MonitorConsole {
  con: LocalConsole;
  events: ConsoleEvent[];
  run(...lines: string[]): Promise<void>;
  mark(): number;
  since(mark: number): ConsoleEvent[];
  /** PagerDuty events, optionally only one action. */
  pages(action?: "trigger" | "acknowledge" | "resolve", from?: number): ConsoleEvent[];
  /** ECS UpdateService calls that put web production back on the previous task definition. */
  rollbackUpdates(from?: number): ConsoleEvent[];
  /** Every ECS UpdateService call. */
  updateServices(from?: number): ConsoleEvent[];
  /** Top-level posts in #incidents (not thread replies, not edits). */
  incidentPosts(from?: number): ConsoleEvent[];
  /** Thread replies in #incidents under the message `ts`. */
  incidentReplies(ts: string, from?: number): ConsoleEvent[];
  /** The text and buttons of #incidents message `ts` as it stands now (its last post or edit). */
  latest(ts: string): ConsoleEvent;
  ephemeralsFor(user: string, from?: number): string[];
  errors(from?: number): string[];
  /** Stops the console; safe to call twice. */
  stop(): Promise<void>;
}

/** Starts a console; without `at` it resumes the db's simulated clock. */
export async function openMonitorConsole(
  opts: { at?: string; dbFile?: string; configFile?: string } = {},
): Promise<MonitorConsole> {
  const events: ConsoleEvent[] = [];
  const con = new LocalConsole({
    configFile: opts.configFile ?? EXAMPLE_CONFIG,
    dbFile: opts.dbFile ?? ":memory:",
    ...(opts.at ? { at: opts.at } : {}),
    logger: pino({ level: "silent" }),
    emit: (e) => events.push(e),
  });
  await con.start();
  let stopped = false;
  const from = (n = 0) => events.slice(n);
  const updates = (n = 0) => from(n).filter((e) => e.kind === "aws" && e.op === "UpdateService");
  return {
    con,
    events,
    async run(...lines) {
      for (const line of lines) await con.run(line);
    },
    mark: () => events.length,
    since: (n) => from(n),
    pages: (action, n) => from(n).filter((e) => e.kind === "page" && (!action || e.action === action)),
    updateServices: updates,
    rollbackUpdates: (n) => updates(n).filter((e) => PREVIOUS_TASK_DEFINITION.test(String(e.input?.taskDefinition))),
    incidentPosts: (n) => from(n).filter((e) => e.kind === "message" && e.channel === INCIDENTS && !e.thread_ts),
    incidentReplies: (ts, n) =>
      from(n).filter((e) => e.kind === "message" && e.channel === INCIDENTS && e.thread_ts === ts),
    latest(ts) {
      const last = events.filter((e) => (e.kind === "message" || e.kind === "update") && e.ts === ts).at(-1);
      if (!last) throw new Error(`no message ${ts} was posted`);
      return last;
    },
    ephemeralsFor: (user, n) =>
      from(n)
        .filter((e) => e.kind === "ephemeral" && e.user === user)
        .map((e) => e.text ?? ""),
    errors: (n) =>
      from(n)
        .filter((e) => e.kind === "error")
        .map((e) => e.text ?? ""),
    async stop() {
      if (stopped) return;
      stopped = true;
      await con.stop();
    },
  };
}

/** A fresh temporary directory, and a function that removes it. */
export function tempDir(prefix = "deploybot-monitor-"): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The example config with web production's guardrails written out as their own list (no YAML alias) in
 * which "error rate (rollback)" is in shadow mode; api production keeps the shared list. Returns its path.
 */
export function writeShadowConfig(dir: string): string {
  const doc = parse(readFileSync(EXAMPLE_CONFIG, "utf8")) as {
    services: { web: { environments: { production: { guardrails: Array<Record<string, unknown>> } } } };
  };
  const production = doc.services.web.environments.production;
  production.guardrails = structuredClone(production.guardrails);
  const rollback = production.guardrails.find((g) => g.name === "error rate (rollback)");
  if (!rollback) throw new Error("examples/deploybot.yml no longer has the “error rate (rollback)” guardrail");
  rollback.shadow = true;
  const file = join(dir, "deploybot.yml");
  writeFileSync(file, stringify(doc));
  return file;
}
