import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import type { App } from "@slack/bolt";
import type { Logger } from "pino";
import { SimCloudWatch } from "../adapters/sim/cloudwatch.js";
import { SimEcs } from "../adapters/sim/ecs.js";
import { SimElb } from "../adapters/sim/elbv2.js";
import { SimPagerDuty } from "../adapters/sim/pagerduty.js";
import { type SimEvent, SimWorld, simFileFor } from "../adapters/sim/world.js";
import { SlackChat } from "../adapters/slack.js";
import { createApp } from "../app.js";
import { ManualClock, parseDuration } from "../clock.js";
import { type CommandNames, DEFAULT_COMMANDS } from "../commands/names.js";
import { namesOf } from "../commands/status.js";
import { loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { findTarget } from "../domain/targets.js";
import { asDeploybotError, DeploybotError, ErrorCode } from "../errors.js";
import { verifyBotToken } from "../ops/slack-auth.js";
import { buildServices, type Services } from "../services/index.js";
import { SimScheduler } from "../services/scheduler.js";
import { Store } from "../store/index.js";
import { applyFaultDirective } from "./faults.js";
import { ConsoleReceiver } from "./receiver.js";
import { buttonsOf, mrkdwnToText, renderBlocks } from "./render.js";
import { SlackLikeServer, type SlackRecord } from "./slack-server.js";

/** One line of `--json` output: everything the bot does, in order. */
export interface ConsoleEvent {
  at: string;
  kind: "message" | "update" | "ephemeral" | "page" | "aws" | "error";
  channel?: string;
  user?: string;
  text?: string;
  buttons?: string[];
  ts?: string;
  thread_ts?: string;
  action?: string;
  dedupKey?: string;
  severity?: string;
  summary?: string;
  api?: string;
  op?: string;
  input?: Record<string, unknown>;
  /** The code a simulated system refused the call with (ThrottlingException, InternalServiceError...). */
  error?: string;
  /** On `page` lines: PagerDuty accepted the event but deduplicated it. */
  deduplicated?: boolean;
}

export interface ConsoleOptions {
  configFile: string;
  dbFile: string;
  /** Start the simulated clock here (default: where the db's world left off, else now). */
  at?: string;
  logger: Logger;
  /** Receives every event (the CLI prints them; tests collect them). */
  emit: (e: ConsoleEvent) => void;
  /** Receives the echo of each typed line, for the readable transcript. */
  echo?: (line: string, who: string, channel: string, at: Date) => void;
  /** What "the bot dies" means after a `:crash-after` call; default kill() (the CLI sends itself SIGKILL). */
  onCrash?: () => void;
  /** The Slack-facing command names the app registers (`/status` is accepted for the status one too). */
  commands?: CommandNames;
}

/**
 * The local console: the real Bolt app, driven as Slack would drive it, against simulated ECS,
 * CloudWatch and PagerDuty, with its Web API client talking to a Slack-like server on 127.0.0.1.
 */
export class LocalConsole {
  readonly config: Config;
  readonly store: Store;
  readonly clock: ManualClock;
  readonly world: SimWorld;
  readonly slack: SlackLikeServer;
  readonly services: Services;
  readonly scheduler: SimScheduler;
  private readonly receiver = new ConsoleReceiver();
  private app: App | undefined;
  private user: string;
  private channel: string;
  private quitting = false;
  private killed = false;
  /** Each command and click gets its own trigger_id, as in Slack: the app ignores a repeated one as a replay. */
  private triggers = 0;
  private readonly commands: CommandNames;

  constructor(private readonly options: ConsoleOptions) {
    this.config = loadConfig(options.configFile);
    if (options.dbFile !== ":memory:") mkdirSync(dirname(options.dbFile), { recursive: true });
    this.store = Store.sqlite(options.dbFile);
    // The simulated world lives outside the bot, in its own file next to the db.
    const worldFile = simFileFor(options.dbFile);
    const saved = SimWorld.savedClock(worldFile);
    const start = options.at ?? saved ?? new Date().toISOString();
    const refuse = (message: string) => {
      void this.store.close();
      return new DeploybotError(ErrorCode.CommandInvalid, message);
    };
    if (options.at && Number.isNaN(Date.parse(options.at)))
      throw refuse(`--at ${options.at} is not an ISO time such as 2026-11-24T10:15:00+02:00`);
    if (options.at && saved && Date.parse(options.at) < Date.parse(saved)) {
      throw refuse(
        `--at ${options.at} is before this db's simulated time (${saved}); the simulated clock only moves forward`,
      );
    }
    this.clock = new ManualClock(start);
    this.world = new SimWorld(this.config, this.clock, { file: worldFile, onCrash: () => this.crash() });
    this.slack = new SlackLikeServer(this.config, this.clock, this.world);
    this.services = buildServices(
      {
        config: this.config,
        store: this.store,
        clock: this.clock,
        ecs: new SimEcs(this.world),
        elb: new SimElb(this.world),
        metrics: new SimCloudWatch(this.world),
        pager: new SimPagerDuty(this.world),
        chat: new SlackChat(),
        logger: options.logger,
      },
      { oncallCacheMs: 0 },
    );
    this.scheduler = new SimScheduler(
      this.clock,
      () => this.services.idle(),
      (job, err) => this.error(`scheduled job ${job} failed: ${asDeploybotError(err).message}`),
    );
    this.commands = options.commands ?? DEFAULT_COMMANDS;
    this.user = Object.keys(this.config.users)[0] as string;
    this.channel = this.config.channels.deploys;
    this.slack.onRecord((r) => this.emit(this.fromSlack(r)));
    this.world.onEvent((e) => this.emit(this.fromSim(e)));
  }

  async start(): Promise<void> {
    await this.slack.start();
    const botToken = "xoxb-local-console";
    // As in Slack: one auth.test at start, never one per request.
    const identity = await verifyBotToken({ token: botToken, slackApiUrl: this.slack.apiUrl, timeoutMs: 5_000 });
    this.app = createApp(this.services, {
      botToken,
      transport: { kind: "receiver", receiver: this.receiver },
      slackApiUrl: this.slack.apiUrl,
      scheduler: this.scheduler,
      identity,
      commands: this.commands,
    });
    await this.app.start();
  }

  async stop(): Promise<void> {
    await this.services.idle();
    this.world.save();
    await this.app?.stop();
    await this.slack.stop();
    await this.store.close();
  }

  get done(): boolean {
    return this.quitting;
  }

  /** True once this console was killed: it runs nothing, emits nothing and touches neither world nor store. */
  get dead(): boolean {
    return this.killed;
  }

  /**
   * Kills this console as a kill -9 would kill the process: from now on every simulated call from it and every
   * Slack request from it fails, further lines are ignored, nothing is emitted, and the store is abandoned
   * unflushed (the world keeps everything it had accepted, for the next console on the same db).
   */
  kill(): void {
    if (this.killed) return;
    this.killed = true;
    this.quitting = true;
    this.world.kill();
    this.slack.kill();
    // A kill -9 flushes nothing: the connection is dropped, and every later store call of this process fails.
    void this.store.close();
  }

  /** A `:crash-after` call returned: the bot dies (the CLI's handler never returns). */
  private crash(): void {
    if (this.options.onCrash) this.options.onCrash();
    else this.kill();
  }

  private emit(e: ConsoleEvent): void {
    if (!this.killed) this.options.emit(e);
  }

  get prompt(): string {
    return `${this.user} in ${this.channel}> `;
  }

  /**
   * Runs one script or prompt line; a bad line produces an `error` event, changes nothing, and its message is
   * what the returned promise resolves to (undefined for a line that ran).
   */
  async run(line: string): Promise<string | undefined> {
    const text = line.trim();
    if (this.killed || text === "" || text.startsWith("#")) return undefined;
    let failed: string | undefined;
    this.options.echo?.(text, this.user, this.channel, this.clock.now());
    try {
      if (text.startsWith("/")) await this.slash(text);
      else if (text.startsWith(":")) await this.directive(text);
      else
        throw new Error(
          `"${text.slice(0, 40)}" is neither a slash command (/deploy, /rollback, /status) nor a directive (${DIRECTIVES})`,
        );
    } catch (err) {
      failed = asDeploybotError(err).message;
      this.error(failed);
    }
    await this.services.idle();
    this.world.save();
    return failed;
  }

  private error(text: string): void {
    this.emit({ at: this.clock.now().toISOString(), kind: "error", text });
  }

  private slackUser(name = this.user) {
    const u = this.config.users[name];
    if (!u) throw new Error(`unknown user ${name}`);
    return { id: u.slack_id, name };
  }

  private async slash(text: string): Promise<void> {
    const [typed, ...rest] = text.split(/\s+/);
    const { deploy, rollback, status } = this.commands;
    // The console accepts the familiar names and the configured ones, and sends what Slack would: the configured.
    const aliases: Record<string, string> = {
      "/deploy": deploy,
      "/rollback": rollback,
      "/status": status,
      [deploy]: deploy,
      [rollback]: rollback,
      [status]: status,
    };
    const command = Object.hasOwn(aliases, typed as string) ? aliases[typed as string] : undefined;
    if (!command) {
      throw new Error(
        `unknown command ${typed}: deploybot answers /deploy, /rollback and /status${status !== "/status" ? ` (or ${status})` : ""}`,
      );
    }
    const user = this.slackUser();
    const channelId = this.slack.channelId(this.channel);
    const body = {
      token: "local-console",
      team_id: "T0LOCAL",
      team_domain: "local",
      channel_id: channelId,
      channel_name: this.channel.replace(/^#/, ""),
      user_id: user.id,
      user_name: user.name,
      command,
      text: text.slice((typed as string).length).trim(),
      api_app_id: "A0DEPLOYBOT",
      is_enterprise_install: "false",
      response_url: this.slack.responseUrl(channelId, user.id),
      trigger_id: this.nextTrigger(),
    };
    void rest;
    const { acked, response } = await this.receiver.dispatch(body);
    if (!acked) this.error(`${command} was not acknowledged: Slack would show "dispatch_failed"`);
    if (response) await this.slack.deliver(channelId, user.id, response);
  }

  private async directive(text: string): Promise<void> {
    const [name, ...args] = text.split(/\s+/);
    const arg = args.join(" ");
    switch (name) {
      case ":as": {
        if (!this.config.users[arg])
          throw new Error(`:as ${arg}: no such user; users are ${Object.keys(this.config.users).join(", ")}`);
        this.user = arg;
        return;
      }
      case ":in": {
        if (!/^#[a-z0-9._-]+$/.test(arg)) throw new Error(`:in needs a channel such as #deploys`);
        this.channel = arg;
        return;
      }
      case ":click":
        return this.click(arg);
      case ":advance": {
        const ms = parseDuration(arg);
        if (ms === undefined || ms <= 0) throw new Error(`:advance needs a duration such as 90s, 5m, 2h or 1d`);
        await this.scheduler.advanceTo(new Date(this.clock.now().getTime() + ms));
        return;
      }
      case ":time": {
        const to = Date.parse(arg);
        if (Number.isNaN(to)) throw new Error(`:time needs an ISO time such as 2026-11-24T10:15:00+02:00`);
        if (to < this.clock.now().getTime())
          throw new Error(
            `:time ${arg} is in the past: the simulated clock only moves forward (it is ${this.clock.now().toISOString()})`,
          );
        await this.scheduler.advanceTo(new Date(to));
        return;
      }
      case ":metric": {
        const [service, environment, metric, value] = args;
        if (
          args.length !== 4 ||
          !service ||
          !environment ||
          !metric ||
          value === undefined ||
          !Number.isFinite(Number(value))
        ) {
          throw new Error(`:metric needs SERVICE ENV NAME VALUE, e.g. :metric web production error_rate 3.2`);
        }
        this.target(service, environment);
        this.world.setMetric(service, environment, metric, Number(value));
        return;
      }
      case ":oncall": {
        if (arg === "nobody") this.world.setOnCall(null);
        else if (this.config.users[arg]) this.world.setOnCall(arg);
        else
          throw new Error(
            `:oncall ${arg}: no such user; users are ${Object.keys(this.config.users).join(", ")} (or nobody)`,
          );
        return;
      }
      case ":fail": {
        const [service, environment] = args;
        if (args.length !== 2 || !service || !environment)
          throw new Error(`:fail needs SERVICE ENV, e.g. :fail web production`);
        const t = this.target(service, environment);
        this.world.failNext(t.ecs.cluster, t.ecs.service);
        return;
      }
      case ":throttle":
      case ":down":
      case ":crash-after":
      case ":lag":
        return applyFaultDirective(this.world, name, args);
      case ":quit":
        this.quitting = true;
        return;
      default:
        throw new Error(`unknown directive ${name}: use ${DIRECTIVES}`);
    }
  }

  private nextTrigger(): string {
    return `${Date.now()}.${++this.triggers}.${randomBytes(4).toString("hex")}.local`;
  }

  private target(service: string, environment: string) {
    const t = findTarget(this.config, service, environment);
    if (!t) {
      const names = namesOf(this.services);
      throw new Error(
        `${service} ${environment} is not configured; services: ${names.services.join(", ")}; environments: ${names.environments.join(", ")}`,
      );
    }
    return t;
  }

  private async click(label: string): Promise<void> {
    if (!label) throw new Error(`:click needs a button label, e.g. :click Approve`);
    const user = this.slackUser();
    const found = this.slack.findButton(label, user.id);
    if (!found) throw new Error(`no message has a button "${label}"`);
    const { message, button, blockId } = found;
    const body = {
      type: "block_actions",
      team: { id: "T0LOCAL", domain: "local" },
      user: { id: user.id, username: user.name, name: user.name, team_id: "T0LOCAL" },
      api_app_id: "A0DEPLOYBOT",
      token: "local-console",
      container: {
        type: "message",
        message_ts: message.ts,
        channel_id: message.channelId,
        is_ephemeral: Boolean(message.ephemeralFor),
      },
      trigger_id: this.nextTrigger(),
      channel: { id: message.channelId, name: message.channel.replace(/^#/, "") },
      ...(message.ephemeralFor
        ? {}
        : { message: { type: "message", ts: message.ts, text: message.text, blocks: message.blocks } }),
      response_url: this.slack.responseUrl(message.channelId, user.id, message.ts),
      actions: [
        {
          type: "button",
          action_id: button.action_id,
          block_id: blockId,
          text: button.text,
          value: button.value,
          action_ts: String(this.clock.now().getTime() / 1000),
        },
      ],
    };
    const { acked } = await this.receiver.dispatch(body);
    if (!acked) this.error(`the click on "${label}" was not acknowledged`);
  }

  private fromSlack(r: SlackRecord): ConsoleEvent {
    const name = (id: string) => this.slack.userName(id);
    const text = r.blocks.length ? renderBlocks(r.blocks, name) : mrkdwnToText(r.text, name);
    const buttons = buttonsOf(r.blocks);
    return {
      at: r.at.toISOString(),
      kind: r.kind === "home" ? "update" : r.kind,
      channel: r.channel,
      ...(r.user ? { user: r.user } : {}),
      text,
      ...(buttons.length ? { buttons } : {}),
      ts: r.ts,
      ...(r.threadTs ? { thread_ts: r.threadTs } : {}),
    };
  }

  private fromSim(e: SimEvent): ConsoleEvent {
    const at = this.clock.now().toISOString();
    if (e.kind === "aws")
      return { at, kind: "aws", api: e.api, op: e.op, input: e.input, ...(e.error ? { error: e.error } : {}) };
    return {
      at,
      kind: "page",
      action: e.action,
      dedupKey: e.dedupKey,
      severity: e.severity,
      summary: e.summary,
      ...(e.deduplicated ? { deduplicated: true } : {}),
    };
  }
}

/** Every console directive, as the help and error texts list them. */
const DIRECTIVES =
  ":as, :in, :click, :advance, :time, :metric, :oncall, :fail, :lag, :throttle, :down, :crash-after or :quit";

/** The readable transcript line for an event (without --json). */
export function formatEvent(e: ConsoleEvent, timeZone: string): string {
  const time = new Intl.DateTimeFormat("en-GB", {
    timeZone,
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  }).format(new Date(e.at));
  const indent = (s: string) =>
    s
      .split("\n")
      .map((l, i) => (i === 0 ? l : `         ${l}`))
      .join("\n");
  switch (e.kind) {
    case "message":
      return `${time} ${e.channel}${e.thread_ts ? " (thread)" : ""} deploybot: ${indent(e.text ?? "")}`;
    case "update":
      return `${time} ${e.channel} deploybot (edited): ${indent(e.text ?? "")}`;
    case "ephemeral":
      return `${time} ${e.channel} (only ${e.user} sees this): ${indent(e.text ?? "")}`;
    case "page":
      return `${time} PagerDuty ${e.action}${e.deduplicated ? " (deduplicated)" : ""} [${e.severity}] ${e.dedupKey}: ${e.summary}`;
    case "aws":
      return `${time} AWS ${e.api}:${e.op} ${JSON.stringify(e.input)}${e.error ? ` refused: ${e.error}` : ""}`;
    case "error":
      return `${time} error: ${e.text}`;
  }
}

/** Where the interactive console keeps its history: DEPLOYBOT_HISTORY, else ~/.deploybot_history ("" for none). */
export function historyFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const set = env.DEPLOYBOT_HISTORY;
  if (set !== undefined) return set.trim() || undefined;
  return join(homedir(), ".deploybot_history");
}

function loadHistory(file: string | undefined): string[] {
  if (!file) return [];
  try {
    // readline wants the newest first; the file keeps them oldest first, like a shell's.
    return readFileSync(file, "utf8").split("\n").filter(Boolean).reverse().slice(0, HISTORY_SIZE);
  } catch {
    return [];
  }
}

function saveHistory(file: string | undefined, newestFirst: string[]): void {
  if (!file) return;
  try {
    writeFileSync(file, `${[...newestFirst].reverse().join("\n")}\n`, { mode: 0o600 });
  } catch {
    // History is a convenience: a read-only home must not stop the console.
  }
}

const HISTORY_SIZE = 1000;

export interface RunConsoleOptions extends Omit<ConsoleOptions, "emit" | "echo"> {
  /** The script's text; without it, lines come from `input`. */
  script?: string;
  json: boolean;
  /** Leave the AWS calls out of the output. */
  quiet?: boolean;
  /** A person types at a terminal: show a prompt, echo, keep history. */
  interactive: boolean;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  /** The interactive history file (default: historyFile()); false for none. */
  history?: string | false;
}

/** How a console run ended: `failedLine` is the first script line that failed (the run stops there). */
export interface ConsoleResult {
  failedLine?: { number: number; message: string };
}

/** Runs the console on a script or on stdin until :quit or end of input. */
export async function runConsole(opts: RunConsoleOptions): Promise<ConsoleResult> {
  let tz = "UTC";
  const output = opts.output ?? process.stdout;
  const out = (s: string) => output.write(`${s}\n`);
  const { script, json, quiet, interactive, input, history, output: _output, ...options } = opts;
  const con = new LocalConsole({
    ...options,
    emit: (e) => {
      if (quiet && e.kind === "aws") return;
      out(json ? JSON.stringify(e) : formatEvent(e, tz));
    },
    // A kill -9 right after the call: nothing flushed, nothing closed, exit status 137.
    onCrash: () => process.kill(process.pid, "SIGKILL"),
    // At a terminal, readline shows what was typed; a script's lines are echoed with the prompt.
    echo: json || interactive ? undefined : (line, who, channel) => out(`${who} in ${channel}> ${line}`),
  });
  tz = con.config.timezone;
  await con.start();
  try {
    if (script !== undefined) {
      const lines = script.split(/\r?\n/);
      for (const [i, line] of lines.entries()) {
        const failed = await con.run(line);
        if (failed !== undefined) return { failedLine: { number: i + 1, message: failed } };
        if (con.done) break;
      }
      return {};
    }
    if (interactive && !json) {
      out(
        "deploybot local console: simulated ECS, CloudWatch and PagerDuty; type /status, /deploy help, :as NAME, :advance 5m, :quit",
      );
      out(
        "To connect a real workspace, create the app from manifest.yml and set SLACK_BOT_TOKEN with SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP); see README.md.",
      );
    }
    const file = interactive && history !== false ? (history ?? historyFile()) : undefined;
    const rl = createInterface({
      input: input ?? process.stdin,
      ...(interactive ? { output, terminal: true, history: loadHistory(file), historySize: HISTORY_SIZE } : {}),
      removeHistoryDuplicates: true,
      prompt: con.prompt,
    });
    if (interactive) {
      rl.on("history", (h: string[]) => saveHistory(file, h));
      // Ctrl-C at the prompt leaves the console as :quit does.
      rl.on("SIGINT", () => rl.close());
      rl.prompt();
    }
    for await (const line of rl) {
      await con.run(line);
      if (con.done) break;
      rl.setPrompt(con.prompt);
      if (interactive) rl.prompt();
    }
    rl.close();
    return {};
  } finally {
    await con.stop();
  }
}
