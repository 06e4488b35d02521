import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { App } from "@slack/bolt";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { SimCloudWatch } from "../../src/adapters/sim/cloudwatch.js";
import { SimEcs } from "../../src/adapters/sim/ecs.js";
import { SimPagerDuty } from "../../src/adapters/sim/pagerduty.js";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { SlackChat } from "../../src/adapters/slack.js";
import { createApp } from "../../src/app.js";
import { ManualClock } from "../../src/clock.js";
import {
  COMMAND_ENV,
  commandNameProblem,
  commandNamesFromEnv,
  DEFAULT_COMMANDS,
  SLACK_RESERVED_COMMANDS,
} from "../../src/commands/names.js";
import { loadConfig } from "../../src/config/load.js";
import { ConsoleReceiver } from "../../src/local/receiver.js";
import { buildServices } from "../../src/services/index.js";
import { Store } from "../../src/store/index.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

interface Manifest {
  features: { slash_commands: Array<{ command: string }> };
  oauth_config: { scopes: { bot: string[] } };
  settings: { event_subscriptions: { bot_events: string[] } };
}
const manifest = parse(readFileSync(join(ROOT, "manifest.yml"), "utf8")) as Manifest;
const manifestCommands = manifest.features.slash_commands.map((c) => c.command);

/**
 * Every Slack Web API method deploybot may call, with the bot scopes it needs (Slack's method reference), and the
 * scopes it makes worth having. A method the code calls that is missing here fails the test: add it, with its scopes.
 */
const METHOD_SCOPES: Record<string, { needs: string[]; alsoUses?: string[]; why?: string }> = {
  "auth.test": { needs: [] },
  "chat.postMessage": {
    needs: ["chat:write"],
    alsoUses: ["chat:write.public"],
    why: "post in #deploys and #incidents without being invited first",
  },
  "chat.update": { needs: ["chat:write"] },
  "chat.postEphemeral": { needs: ["chat:write"] },
  "chat.getPermalink": { needs: [] },
  "views.publish": { needs: [] },
  // Slack grants users:read.email only together with users:read.
  "users.lookupByEmail": { needs: ["users:read.email", "users:read"] },
  "users.info": { needs: ["users:read"] },
  "usergroups.list": { needs: ["usergroups:read"] },
  "usergroups.users.list": { needs: ["usergroups:read"] },
  // Public and private channels alike: #deploys may be either.
  "conversations.history": { needs: ["channels:history", "groups:history"] },
  "conversations.replies": { needs: ["channels:history", "groups:history"] },
  // Only to turn a configured "#deploys" into the channel id conversations.history wants.
  "conversations.list": { needs: ["channels:read", "groups:read"] },
};

/** Events the app subscribes to and the bot scopes they need. */
const EVENT_SCOPES: Record<string, string[]> = { app_home_opened: [] };

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/**
 * The Web API methods the production code calls: `client.chat.postMessage(`, `client.usergroups.users.list(`,
 * `apiCall("x.y"`. The Slack-like server (src/local) and the simulated world answer these methods rather than call them.
 */
function methodsCalled(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of sourceFiles(join(ROOT, "src"))) {
    const rel = relative(ROOT, file);
    if (rel.startsWith(join("src", "local")) || rel.startsWith(join("src", "adapters", "sim"))) continue;
    const text = readFileSync(file, "utf8");
    const patterns = [
      /\b(?:client|webClient)\.((?:[a-z]+\.)+[a-zA-Z]+)\(/g,
      /\bapiCall\(\s*["']([a-z]+(?:\.[a-zA-Z]+)+)["']/g,
    ];
    for (const re of patterns) {
      for (const m of text.matchAll(re)) found.set(m[1] as string, [...(found.get(m[1] as string) ?? []), rel]);
    }
  }
  return found;
}

describe("manifest.yml installs as it is", () => {
  it("registers no command name Slack reserves (a reserved one makes Slack reject the whole manifest)", () => {
    const reserved = manifestCommands.filter((c) => SLACK_RESERVED_COMMANDS.has(c));
    expect(reserved).toEqual([]);
    for (const c of manifestCommands) expect(commandNameProblem(c)).toBeUndefined();
  });

  it("keeps the names the code registers by default", () => {
    expect([...manifestCommands].sort()).toEqual(Object.values(DEFAULT_COMMANDS).sort());
  });

  it("knows /status and the other names from the issue as reserved", () => {
    for (const name of ["/status", "/me", "/join", "/away", "/dnd", "/shrug", "/remind", "/msg", "/feed", "/who"]) {
      expect(commandNameProblem(name)).toBe("Slack reserves that name for its own command");
    }
    for (const name of ["/collapse", "/expand", "/leave", "/open", "/search", "/topic", "/mute", "/pro", "/help"]) {
      expect(SLACK_RESERVED_COMMANDS.has(name)).toBe(true);
    }
  });
});

describe("every manifest command and event has a listener, and every listener is in the manifest", () => {
  afterEach(() => vi.restoreAllMocks());

  async function registered() {
    const commands = vi.spyOn(App.prototype, "command");
    const events = vi.spyOn(App.prototype, "event");
    const logger = pino({ level: "silent" });
    const config = loadConfig(join(ROOT, "examples/deploybot.yml"));
    const store = Store.sqlite(":memory:");
    const clock = new ManualClock("2026-11-24T10:15:00+02:00");
    const world = new SimWorld(config, clock);
    const services = buildServices({
      config,
      store,
      clock,
      ecs: new SimEcs(world),
      metrics: new SimCloudWatch(world),
      pager: new SimPagerDuty(world),
      logger,
      chat: new SlackChat(),
    });
    const receiver = new ConsoleReceiver();
    createApp(services, {
      botToken: "xoxb-test",
      transport: { kind: "receiver", receiver },
      identity: { botId: "B1", botUserId: "U1" },
    });
    await store.close();
    return {
      commands: commands.mock.calls.map((c) => String(c[0])),
      events: events.mock.calls.map((c) => String(c[0])),
    };
  }

  it("answers exactly the manifest's slash commands", async () => {
    const { commands } = await registered();
    expect([...commands].sort()).toEqual([...manifestCommands].sort());
  });

  it("listens to exactly the manifest's bot events", async () => {
    const { events } = await registered();
    expect([...events].sort()).toEqual([...manifest.settings.event_subscriptions.bot_events].sort());
  });
});

describe("the manifest's bot scopes are exactly what the code calls", () => {
  const called = methodsCalled();
  const scopes = new Set(manifest.oauth_config.scopes.bot);

  it("finds the Web API calls it should (the scan itself works)", () => {
    for (const m of ["chat.postMessage", "chat.update", "views.publish", "users.lookupByEmail", "auth.test"]) {
      expect(called.has(m), m).toBe(true);
    }
  });

  it("has a row in the method → scope table for every method the code calls", () => {
    const unknown = [...called.keys()].filter((m) => !(m in METHOD_SCOPES));
    expect(unknown, `add these methods and their scopes to METHOD_SCOPES: ${unknown.join(", ")}`).toEqual([]);
  });

  it("grants every scope a called method needs", () => {
    const missing = [...called.keys()].flatMap((m) =>
      (METHOD_SCOPES[m]?.needs ?? [])
        .filter((s) => !scopes.has(s))
        .map((s) => `${s} (for ${m} in ${called.get(m)?.[0]})`),
    );
    for (const event of manifest.settings.event_subscriptions.bot_events) {
      for (const s of EVENT_SCOPES[event] ?? []) if (!scopes.has(s)) missing.push(`${s} (for the ${event} event)`);
    }
    if (manifestCommands.length > 0 && !scopes.has("commands")) missing.push("commands (for the slash commands)");
    expect(missing).toEqual([]);
  });

  it("asks for no scope the code does not use", () => {
    const used = new Set<string>(manifestCommands.length > 0 ? ["commands"] : []);
    for (const m of called.keys())
      for (const s of [...(METHOD_SCOPES[m]?.needs ?? []), ...(METHOD_SCOPES[m]?.alsoUses ?? [])]) used.add(s);
    for (const event of manifest.settings.event_subscriptions.bot_events)
      for (const s of EVENT_SCOPES[event] ?? []) used.add(s);
    expect([...scopes].filter((s) => !used.has(s))).toEqual([]);
  });
});

describe("the command names can be changed to names Slack accepts", () => {
  it("reads the three names from the environment", () => {
    expect(
      commandNamesFromEnv({
        [COMMAND_ENV.deploy]: "/ship",
        [COMMAND_ENV.rollback]: "/unship",
        [COMMAND_ENV.status]: "/ship-status",
      }),
    ).toEqual({ deploy: "/ship", rollback: "/unship", status: "/ship-status" });
    expect(commandNamesFromEnv({})).toEqual(DEFAULT_COMMANDS);
  });

  it.each([
    ["/status", "Slack reserves that name"],
    ["status", "a slash and up to 32 lower-case letters"],
    ["/Deploy", "a slash and up to 32 lower-case letters"],
    [`/${"x".repeat(33)}`, "a slash and up to 32 lower-case letters"],
  ])("refuses %s as the status command", (name, why) => {
    expect(() => commandNamesFromEnv({ [COMMAND_ENV.status]: name })).toThrow(why);
  });

  it("refuses two commands with one name", () => {
    expect(() => commandNamesFromEnv({ [COMMAND_ENV.status]: "/deploy" })).toThrow("must differ");
  });
});
