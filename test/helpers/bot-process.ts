import { type ChildProcess, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { request } from "node:http";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";

/**
 * The environment of a real `bin/deploybot.js` under test: no variable of the developer's leaks in, AWS calls go to
 * `aws` on 127.0.0.1 (or a closed port), and no AWS profile, metadata service or real endpoint is ever asked.
 */
export function botEnv(vars: Record<string, string>, aws = "http://127.0.0.1:1"): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LOG_LEVEL: "info",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    AWS_ENDPOINT_URL: aws,
    AWS_ACCESS_KEY_ID: "AKIATEST",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_REGION: "af-south-1",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: "/dev/null",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    HOST: "127.0.0.1",
    ...vars,
  };
}

export interface BotProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stderr JSON log line whose msg matches, or rejects when the process exits first. */
  logLine(match: RegExp): Promise<Record<string, unknown>>;
  /** The exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

/** Starts `node bin/deploybot.js ...args`; killed after `timeoutMs` if it has not exited, so no test hangs. */
export function startBot(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 20_000): BotProcess {
  const child = spawn(process.execPath, ["bin/deploybot.js", ...args], { cwd: ROOT, env, stdio: "pipe" });
  let out = "";
  let err = "";
  const waiters: Array<() => void> = [];
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(timer);
      for (const w of waiters.splice(0)) w();
      resolve(code);
    }),
  );
  const logs = () =>
    err
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    logLine: (match) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = logs().find((l) => match.test(String(l.msg)));
          if (found) return resolve(found);
          if (child.exitCode !== null || child.signalCode !== null) {
            return reject(new Error(`deploybot exited (${child.exitCode}) before logging ${match}: ${err}`));
          }
          waiters.push(check);
        };
        check();
      }),
  };
}

/** A slash command body as Slack sends it, form-encoded. */
export function slashBody(fields: Record<string, string>): string {
  return new URLSearchParams({
    token: "unused",
    team_id: "T0LOCAL",
    team_domain: "local",
    channel_id: "CDEPLOYS",
    channel_name: "deploys",
    user_id: "U0ALICE01",
    user_name: "alice",
    api_app_id: "A0DEPLOYBOT",
    ...fields,
  }).toString();
}

/** POSTs `body` to /slack/events signed as Slack signs it, on a fresh connection; resolves the status code. */
export function postSigned(
  port: number,
  body: string,
  contentType = "application/x-www-form-urlencoded",
  secret = SIGNING_SECRET,
): Promise<number> {
  const ts = Math.floor(Date.now() / 1000);
  const signature = `v0=${createHmac("sha256", secret).update(`v0:${ts}:${body}`).digest("hex")}`;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/slack/events",
        method: "POST",
        agent: false,
        headers: {
          "content-type": contentType,
          "content-length": Buffer.byteLength(body),
          "x-slack-request-timestamp": String(ts),
          "x-slack-signature": signature,
        },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** GET (or HEAD) on a fresh connection: the status and body, or the connection error's code (ECONNREFUSED). */
export function get(port: number, path: string, method = "GET"): Promise<{ status: number; body: string } | string> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path, method, agent: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => {
        body += d.toString();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}
