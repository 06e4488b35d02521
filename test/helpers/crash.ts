import { join } from "node:path";
import { pino } from "pino";
import type { SimApi } from "../../src/adapters/sim/world.js";
import { LocalConsole } from "../../src/local/console.js";
import type { ConsoleEvent } from "../../src/local/events.js";
import { EXAMPLE_CONFIG, tempDir } from "./monitor-console.js";

/** `:time` to a moment of Tuesday 24 Nov 2026, SAST (the flows' day, inside the production window). */
export const at = (hhmmss: string): string => `:time 2026-11-24T${hhmmss}+02:00`;

/** The same moment as an ISO string in UTC, as events carry it. */
export const iso = (hhmmss: string): string => new Date(`2026-11-24T${hhmmss}+02:00`).toISOString();

/** A call that changes the outside world, named as `:crash-after` names it. */
export interface EffectCall {
  api: Extract<SimApi, "ecs" | "pagerduty" | "slack">;
  op: string;
}

const ECS_WRITES = new Set(["RegisterTaskDefinition", "UpdateService", "StopServiceDeployment"]);

/**
 * The effect call behind a console event, if it is one the world accepted: an ECS write, a PagerDuty event, or a
 * Slack post or update (ephemeral replies and response_url answers are not Web API effects of the bot's own).
 */
export function effectCall(e: ConsoleEvent): EffectCall | undefined {
  if (e.kind === "aws" && !e.error && ECS_WRITES.has(e.op ?? "")) return { api: "ecs", op: e.op as string };
  if (e.kind === "page") return { api: "pagerduty", op: e.action as string };
  if (e.kind === "message" && e.user === "deploybot") return { api: "slack", op: "chat.postMessage" };
  if (e.kind === "update") return { api: "slack", op: "chat.update" };
  return undefined;
}

/**
 * A bot on a db file that can be killed (`:crash-after`, in process) at a chosen call and started again on the
 * same file, as often as a test needs. `events` holds every life's events in order; the console state that a
 * person would simply type again after a restart (`:as`, `:in`) is typed again.
 */
export class CrashableBot {
  readonly events: ConsoleEvent[] = [];
  /** How many consoles have run on the db so far. */
  lives = 0;
  private current: LocalConsole | undefined;
  private readonly triggers: Array<{ when: (e: ConsoleEvent) => boolean; call: EffectCall }> = [];
  private readonly retyped = new Map<string, string>();

  constructor(
    readonly db: string,
    private readonly configFile = EXAMPLE_CONFIG,
  ) {}

  /** A bot on a db file in a fresh temporary directory; `cleanup` stops it and removes the directory. */
  static async inTempDir(start: string): Promise<{ bot: CrashableBot; cleanup(): Promise<void> }> {
    const tmp = tempDir("deploybot-crash-");
    const bot = new CrashableBot(join(tmp.dir, "deploybot.db"));
    await bot.start(start);
    return {
      bot,
      cleanup: async () => {
        await bot.stop();
        tmp.remove();
      },
    };
  }

  get con(): LocalConsole {
    if (!this.current) throw new Error("the bot was never started");
    return this.current;
  }

  get dead(): boolean {
    return this.current?.dead ?? false;
  }

  /** Starts a console on the db: at `start` the first time, else where the world's clock was left. */
  async start(start?: string): Promise<void> {
    const con = new LocalConsole({
      configFile: this.configFile,
      dbFile: this.db,
      ...(start ? { at: start } : {}),
      logger: pino({ level: "silent" }),
      emit: (e) => {
        this.events.push(e);
        // Armed while the call is under way: the world then kills the bot right after that very call returns.
        const hit = this.triggers.findIndex((t) => t.when(e));
        if (hit < 0) return;
        const [trigger] = this.triggers.splice(hit, 1);
        if (trigger) con.world.crashAfter(trigger.call.api, trigger.call.op);
      },
    });
    this.current = con;
    this.lives++;
    await con.start();
    for (const line of this.retyped.values()) await con.run(line);
  }

  /** Kills the bot right after the accepted call `call` whose event first matches `when`. */
  crashWhen(call: EffectCall, when: (e: ConsoleEvent) => boolean): void {
    this.triggers.push({
      call,
      when: (e) => effectCall(e)?.api === call.api && effectCall(e)?.op === call.op && when(e),
    });
  }

  /** Kills the bot right after the `n`th accepted `call` from now on. */
  crashAfterNth(call: EffectCall, n: number): void {
    let seen = 0;
    this.crashWhen(call, () => ++seen === n);
  }

  /** Runs lines until the end or until the bot dies; returns the index of the line it died in, or -1. */
  async run(...lines: string[]): Promise<number> {
    for (const [i, line] of lines.entries()) {
      if (/^:(as|in)\s/.test(line)) this.retyped.set(line.slice(0, 3), line);
      await this.con.run(line);
      if (this.dead) return i;
    }
    return -1;
  }

  /** Starts the bot again on the same db after it died (or was stopped). */
  async restart(): Promise<void> {
    await this.stopCurrent();
    await this.start();
  }

  /** Stops the current console; safe to call twice. */
  async stop(): Promise<void> {
    await this.stopCurrent();
  }

  private async stopCurrent(): Promise<void> {
    const con = this.current;
    if (!con) return;
    this.current = undefined;
    // A dead console's store is already gone: only its servers are left to close.
    await con.stop().catch(() => {});
  }
}
