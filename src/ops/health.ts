import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { registry } from "./metrics.js";

/** What /readyz asks. Each check is injected, so the store (sync or async, one replica or several) decides how. */
export interface ReadinessChecks {
  /** Resolves when the database accepts a write; throws or rejects (with the reason) when it does not. */
  databaseWritable(): void | Promise<void>;
  /** Whether the bot token still works (auth.test passed at start, no token error since) and Slack is connected. */
  slack(): { ok: boolean; detail: string };
  /** When the last monitor cycle finished; null before the first. */
  lastCycleAt(): Date | null;
  /** The monitor's interval: a cycle older than MISSED_CYCLES intervals means the monitor has stalled. */
  monitorIntervalMs: number;
  /** When the process started: before the first cycle, the monitor is judged from here. */
  startedAt: Date;
  /** True once shutdown began: a draining process takes no new work. */
  draining?(): boolean;
  /**
   * Whether this process leads (runs the monitor and the other jobs) or is a standby, and since when. A standby is
   * ready too (it serves Slack requests), and its monitor is not judged: the leader runs it.
   */
  leadership?(): { leader: boolean; since: Date; detail: string };
  now?(): Date;
}

/** How many monitor intervals may pass without a finished cycle before the process is not ready. */
export const MISSED_CYCLES = 3;

export interface CheckResult {
  ok: boolean;
  detail: string;
}

export interface Readiness {
  ready: boolean;
  checks: {
    database: CheckResult;
    slack: CheckResult;
    monitor: CheckResult;
    shutdown: CheckResult;
    /** Present where processes share the database: leader or standby (always ok: both serve Slack). */
    leadership?: CheckResult;
  };
}

/** Runs every readiness check; ready only when all pass. */
export async function readiness(c: ReadinessChecks): Promise<Readiness> {
  const now = (c.now?.() ?? new Date()).getTime();
  let database: CheckResult;
  try {
    await c.databaseWritable();
    database = { ok: true, detail: "writable" };
  } catch (err) {
    database = { ok: false, detail: `not writable: ${err instanceof Error ? err.message : String(err)}` };
  }
  const last = c.lastCycleAt();
  const role = c.leadership?.();
  // A process that just became the leader is judged from then: before, the monitor was the old leader's to run.
  const from = Math.max((last ?? c.startedAt).getTime(), role?.leader ? role.since.getTime() : 0);
  const ageMs = now - from;
  const limitMs = MISSED_CYCLES * c.monitorIntervalMs;
  const monitor: CheckResult =
    role && !role.leader
      ? { ok: true, detail: "standby: the leader runs the monitor" }
      : ageMs <= limitMs
        ? { ok: true, detail: last ? `last cycle ${Math.round(ageMs / 1000)} s ago` : "first cycle not due yet" }
        : {
            ok: false,
            detail: `${last ? "last cycle" : "no cycle since start"} ${Math.round(ageMs / 1000)} s ago (limit ${limitMs / 1000} s)`,
          };
  const draining = c.draining?.() ?? false;
  const checks = {
    database,
    slack: c.slack(),
    monitor,
    shutdown: draining ? { ok: false, detail: "shutting down" } : { ok: true, detail: "running" },
    ...(role ? { leadership: { ok: true, detail: role.detail } } : {}),
  };
  return { ready: Object.values(checks).every((x) => x.ok), checks };
}

/**
 * Serves /healthz (liveness: the process answers), /readyz (readiness: the checks above), /leaderz (whether this
 * process leads) and /metrics (Prometheus), for GET and HEAD. Returns false for any other path, for the caller to handle.
 */
export function opsRoutes(options: {
  readiness?: () => Promise<Readiness>;
  metrics?: boolean;
  /** /leaderz: 200 on the leader, 503 on a standby (for a probe or a Service that must reach the leader only). */
  leader?: () => boolean;
}): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const method = req.method ?? "GET";
    if (method !== "GET" && method !== "HEAD") return false;
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, {
        "content-type": type,
        "content-length": Buffer.byteLength(body),
        "cache-control": "no-store",
      });
      res.end(method === "HEAD" ? undefined : body);
    };
    const fail = (err: unknown) => {
      if (!res.headersSent) send(500, "application/json", JSON.stringify({ ok: false, error: String(err) }));
    };
    switch (path) {
      case "/healthz":
        send(200, "application/json", JSON.stringify({ ok: true }));
        return true;
      case "/readyz": {
        const check = options.readiness;
        if (!check) return false;
        check().then((r) => send(r.ready ? 200 : 503, "application/json", JSON.stringify(r)), fail);
        return true;
      }
      case "/leaderz": {
        if (!options.leader) return false;
        const leader = options.leader();
        send(leader ? 200 : 503, "application/json", JSON.stringify({ leader }));
        return true;
      }
      case "/metrics":
        if (!options.metrics) return false;
        registry.metrics().then((text) => send(200, registry.contentType, text), fail);
        return true;
      default:
        return false;
    }
  };
}

/** A small HTTP server for the ops endpoints alone (Socket Mode has no HTTP server of its own). */
export async function startOpsServer(
  port: number,
  routes: (req: IncomingMessage, res: ServerResponse) => boolean,
  host?: string,
): Promise<Server> {
  const server = createServer((req, res) => {
    if (!routes(req, res)) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: false, error: "not_found" }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}

/** The port a started server listens on. */
export const portOf = (server: Server): number => (server.address() as AddressInfo).port;
