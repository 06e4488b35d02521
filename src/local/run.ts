import { readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { type ConsoleOptions, LocalConsole } from "./console.js";
import type { ConsoleEvent } from "./events.js";

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
