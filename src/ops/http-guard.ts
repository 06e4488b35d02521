import type { IncomingMessage, ServerResponse } from "node:http";
import { parse as parseQuery } from "node:querystring";
import type { Logger } from "pino";
import { foreground } from "../foreground.js";
import { badRequests } from "./metrics.js";

/** How far ahead of our clock a Slack request timestamp may be (clock skew), as Bolt allows behind it. */
export const MAX_FUTURE_SKEW_S = 5 * 60;

/** The largest body deploybot reads (a click carries its whole message, well under this). */
export const BODY_LIMIT_BYTES = 1024 * 1024;

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

export interface GuardOptions {
  logger: Logger;
  /** Answers /healthz, /readyz and /metrics; returns false for other paths. */
  routes?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** The paths Slack posts to (Bolt's default: /slack/events). */
  endpoints?: string[];
  nowSeconds?: () => number;
}

/**
 * Sits in front of Bolt's HTTPReceiver and answers what Bolt would mishandle:
 * - the ops endpoints (GET and HEAD);
 * - signed requests stamped in the future: Bolt refuses those more than 5 minutes old but accepts any stamped
 *   ahead, so a captured request could be replayed for as long as it stays "future" (401);
 * - bodies that are not a JSON object (`null`, `payload=null`, `[]`, `1`): Bolt reads properties of them outside
 *   any try and the process dies of a TypeError (400).
 * The body is read here once and handed to Bolt as `rawBody`, which Bolt reuses; the signature is still checked
 * by Bolt.
 */
export function guardSlackRequests(listener: Listener, options: GuardOptions): Listener {
  const { logger } = options;
  const endpoints = options.endpoints ?? ["/slack/events"];
  const nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  const refuse = (res: ServerResponse, status: number, reason: string, detail: Record<string, unknown> = {}) => {
    badRequests.inc({ reason });
    logger.warn({ ...detail, status, reason }, "refused a request before Bolt");
    if (!res.headersSent) {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: false, error: reason }));
    }
  };
  return (req, res) => {
    if (options.routes?.(req, res)) return;
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (req.method !== "POST" || !endpoints.includes(path)) {
      listener(req, res);
      return;
    }
    const stamp = Number(req.headers["x-slack-request-timestamp"]);
    if (Number.isFinite(stamp) && stamp > nowSeconds() + MAX_FUTURE_SKEW_S) {
      refuse(res, 401, "timestamp_in_future", { stamp });
      req.resume();
      return;
    }
    // Background work waits until this request is answered (see src/foreground.ts).
    const answered = foreground.enter();
    res.once("finish", answered);
    res.once("close", answered);
    readBody(req, BODY_LIMIT_BYTES).then(
      (raw) => {
        if (raw === undefined) {
          refuse(res, 413, "body_too_large");
          return;
        }
        if (!isObjectBody(raw, req.headers["content-type"])) {
          refuse(res, 400, "malformed_body", { bytes: raw.length });
          return;
        }
        (req as IncomingMessage & { rawBody?: Buffer }).rawBody = raw;
        try {
          listener(req, res);
        } catch (err) {
          // Bolt throws for requests it does not route; answer them instead of dropping the connection.
          logger.warn({ err }, "Bolt could not route a request");
          if (!res.headersSent) refuse(res, 404, "not_found");
        }
      },
      (err: unknown) => refuse(res, 400, "unreadable_body", { err }),
    );
  };
}

/** The body, or undefined when it is longer than `limit` bytes. */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Whether Bolt's parser (HTTPModuleFunctions.parseHTTPRequestBody, mirrored here) yields a plain object. */
export function isObjectBody(raw: Buffer, contentType: string | undefined): boolean {
  const text = raw.toString();
  const isObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
  try {
    if (contentType === "application/x-www-form-urlencoded") {
      const { payload } = parseQuery(text);
      return typeof payload === "string" ? isObject(JSON.parse(payload)) : true;
    }
    return isObject(JSON.parse(text));
  } catch {
    return false;
  }
}
