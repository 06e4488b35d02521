import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { App } from "@slack/bolt";
import type { Logger } from "pino";
import { SimCloudWatch } from "../adapters/sim/cloudwatch.js";
import { SimEcs } from "../adapters/sim/ecs.js";
import { SimElb } from "../adapters/sim/elbv2.js";
import { SimPagerDuty } from "../adapters/sim/pagerduty.js";
import { SimWorld, simFileFor } from "../adapters/sim/world.js";
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
import { type ConsoleEvent, eventFromSim, eventFromSlack } from "./events.js";
import { applyFaultDirective } from "./faults.js";
import { blockActionsBody, slashCommandBody, slashCommandName } from "./payloads.js";
import { ConsoleReceiver } from "./receiver.js";
import { SlackLikeServer } from "./slack-server.js";

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
    this.slack.onRecord((r) => this.emit(eventFromSlack(r, (id) => this.slack.userName(id))));
    this.world.onEvent((e) => this.emit(eventFromSim(e, this.clock.now())));
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
    const [typed] = text.split(/\s+/);
    const command = slashCommandName(typed as string, this.commands);
    const user = this.slackUser();
    const channelId = this.slack.channelId(this.channel);
    const args = { command, text: text.slice((typed as string).length).trim(), channel: this.channel, channelId, user };
    const responseUrl = this.slack.responseUrl(channelId, user.id);
    const body = slashCommandBody({ ...args, responseUrl, triggerId: this.nextTrigger() });
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
    const responseUrl = this.slack.responseUrl(found.message.channelId, user.id, found.message.ts);
    const body = blockActionsBody({ found, user, responseUrl, triggerId: this.nextTrigger(), now: this.clock.now() });
    const { acked } = await this.receiver.dispatch(body);
    if (!acked) this.error(`the click on "${label}" was not acknowledged`);
  }
}

/** Every console directive, as the help and error texts list them. */
const DIRECTIVES =
  ":as, :in, :click, :advance, :time, :metric, :oncall, :fail, :lag, :throttle, :down, :crash-after or :quit";
