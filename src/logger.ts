import { type Logger as BoltLogger, LogLevel } from "@slack/bolt";
import { type Logger, pino } from "pino";

/** Secrets that must never reach a log line, wherever they appear in a logged object. */
const REDACT = [
  "token",
  "*.token",
  "*.*.token",
  "botToken",
  "appToken",
  "signingSecret",
  "routingKey",
  "routing_key",
  "*.routing_key",
  "apiToken",
  "headers.authorization",
  "*.headers.authorization",
  "config.headers.Authorization",
];

/** The process logger: JSON lines on stderr (stdout belongs to the console), secrets redacted. */
export function createLogger(level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({ level, redact: { paths: REDACT, censor: "[redacted]" } }, pino.destination(2));
}

/** Bolt's Logger interface on top of pino, so Bolt's own messages follow the same rules. */
export function boltLogger(logger: Logger): BoltLogger {
  let level = LogLevel.INFO;
  const child = logger.child({ component: "bolt" });
  const str = (args: unknown[]) =>
    args
      .map((a) => (typeof a === "string" ? a : JSON.stringify(a)))
      .join(" ")
      .replace(/xox[abposr]-[A-Za-z0-9-]+/g, "xox?-[redacted]");
  return {
    debug: (...a: unknown[]) => child.debug(str(a)),
    info: (...a: unknown[]) => child.info(str(a)),
    warn: (...a: unknown[]) => child.warn(str(a)),
    error: (...a: unknown[]) => child.error(str(a)),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}
