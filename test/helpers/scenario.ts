import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { LocalConsole } from "../../src/local/console.js";
import type { ConsoleEvent } from "../../src/local/events.js";
import { ecsCanaryExample } from "./ecs-canary-example.js";

/** A local console on the example config and an in-memory db, with every event it emits kept in order. */
export interface Scenario {
  con: LocalConsole;
  events: ConsoleEvent[];
  /** Runs console lines in order (slash commands and directives). */
  run(...lines: string[]): Promise<void>;
  /** Events emitted since `mark()` was last called (or since the start). */
  since(mark: number): ConsoleEvent[];
  /** The number of events so far, to compare before and after a step. */
  mark(): number;
  /** The AWS operations called (e.g. "UpdateService"), in order, optionally from a mark on. */
  awsOps(from?: number): string[];
  /** The text of deploy card #id as it stands now: the last post or update of that message. */
  card(id: number): string;
  /** Ephemeral texts shown to a user, optionally from a mark on. */
  ephemeralsFor(user: string, from?: number): string[];
  stop(): Promise<void>;
}

/**
 * Starts a console at `at` (an ISO time with offset) on examples/deploybot.yml with web production on ECS's own
 * CANARY (see ecsCanaryExample), or on another example as it is (deploybot.yml itself with `"deploybot.yml"`).
 */
export async function scenario(at: string, example?: string): Promise<Scenario> {
  const events: ConsoleEvent[] = [];
  const con = new LocalConsole({
    configFile: example ? fileURLToPath(new URL(`../../examples/${example}`, import.meta.url)) : ecsCanaryExample(),
    dbFile: ":memory:",
    at,
    logger: pino({ level: "silent" }),
    emit: (e) => events.push(e),
  });
  await con.start();
  const cardTs = (id: number): string | undefined =>
    events.find(
      (e) => e.kind === "message" && !e.thread_ts && e.channel === "#deploys" && e.text?.includes(`Deploy #${id} ·`),
    )?.ts;
  return {
    con,
    events,
    async run(...lines) {
      for (const line of lines) await con.run(line);
    },
    since: (mark) => events.slice(mark),
    mark: () => events.length,
    awsOps: (from = 0) =>
      events
        .slice(from)
        .filter((e) => e.kind === "aws")
        .map((e) => e.op ?? ""),
    card(id) {
      const ts = cardTs(id);
      if (!ts) throw new Error(`no card for deploy #${id} was posted in #deploys`);
      const last = events
        .filter((e) => (e.kind === "message" || e.kind === "update") && e.ts === ts && !e.thread_ts)
        .at(-1);
      return last?.text ?? "";
    },
    ephemeralsFor: (user, from = 0) =>
      events
        .slice(from)
        .filter((e) => e.kind === "ephemeral" && e.user === user)
        .map((e) => e.text ?? ""),
    stop: () => con.stop(),
  };
}
