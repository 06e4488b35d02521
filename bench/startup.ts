/**
 * The real entry point, `node bin/deploybot.js`, started as Slack mode starts it in HTTP mode: start to ready, and
 * its resident memory idle and with 1,000 watched deploys. AWS (AWS_ENDPOINT_URL, fake credentials) and Slack's
 * Web API (SLACK_API_URL, for a build that reads it) point at bench/aws-server.ts; nothing leaves 127.0.0.1.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { AWS_CREDENTIALS } from "./fixtures.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The path that says the bot is ready; switch to "/readyz" once the app serves it. */
export const READY_PATH = "/healthz";
/** Printed by src/server.ts once the HTTP receiver listens. */
const LISTENING_LINE = "is listening for Slack";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface RunningBot {
  child: ChildProcess;
  port: number;
  /** From spawn to the first 200 on READY_PATH. */
  readyMs: number;
  /** From spawn to the "listening" log line (NaN when it never came). */
  listeningMs: number;
  /** CPU the process had used (all its threads) when it was ready: less moved by a busy machine than the wall time. */
  cpuMsAtReady: number;
}

/** Starts `node bin/deploybot.js` in HTTP mode and resolves once READY_PATH answers 200. */
export async function startBot(opts: { configFile: string; dbFile: string; awsUrl: string }): Promise<RunningBot> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: "production",
    SLACK_BOT_TOKEN: "xoxb-bench",
    SLACK_SIGNING_SECRET: "bench-signing-secret-0123456789abcdef",
    PORT: String(port),
    DEPLOYBOT_CONFIG: opts.configFile,
    DEPLOYBOT_DB: opts.dbFile,
    SLACK_API_URL: `${opts.awsUrl}/api/`,
    AWS_ENDPOINT_URL: opts.awsUrl,
    AWS_ACCESS_KEY_ID: AWS_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: AWS_CREDENTIALS.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  };
  const t0 = performance.now();
  const child = spawn(process.execPath, ["bin/deploybot.js"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let listeningMs = Number.NaN;
  let output = "";
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    if (output.length < 20_000) output += text;
    if (Number.isNaN(listeningMs) && text.includes(LISTENING_LINE)) listeningMs = performance.now() - t0;
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const url = `http://127.0.0.1:${port}${READY_PATH}`;
  const deadline = t0 + 30_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`deploybot exited with ${child.exitCode} before it was ready:\n${output}`);
    if (performance.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`deploybot was not ready on ${READY_PATH} within 30 s:\n${output}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) {
        const readyMs = performance.now() - t0;
        const cpuMsAtReady = cpuMsOf(child.pid as number);
        // The log line may come a little after the first answer (the logger writes asynchronously).
        while (Number.isNaN(listeningMs) && performance.now() < readyMs + t0 + 2000) await sleep(5);
        return { child, port, readyMs, listeningMs, cpuMsAtReady };
      }
    } catch {
      // not listening yet
    }
    await sleep(5);
  }
}

export async function stopBot(bot: RunningBot): Promise<void> {
  if (bot.child.exitCode !== null) return;
  const exited = new Promise((resolve) => bot.child.once("exit", resolve));
  bot.child.kill("SIGTERM");
  const timer = setTimeout(() => bot.child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** User + system CPU of a process so far (utime and stime of /proc/PID/stat), in ms; NaN where /proc is not there. */
export function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 a second on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size now and at its peak (VmRSS, VmHWM from /proc), in MB; NaN where /proc is not there. */
export function memoryOf(pid: number): { rssMb: number; peakRssMb: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
    return { rssMb: kb("VmRSS") / 1024, peakRssMb: kb("VmHWM") / 1024 };
  } catch {
    return { rssMb: Number.NaN, peakRssMb: Number.NaN };
  }
}
