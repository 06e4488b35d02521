/** Every error deploybot raises carries one of these codes, so callers branch on codes, not messages. */
export enum ErrorCode {
  ConfigInvalid = "deploybot_config_invalid",
  ConfigUnreadable = "deploybot_config_unreadable",
  CommandInvalid = "deploybot_command_invalid",
  IllegalTransition = "deploybot_illegal_transition",
  NotFound = "deploybot_not_found",
  Forbidden = "deploybot_forbidden",
  LockHeld = "deploybot_lock_held",
  AwsFailed = "deploybot_aws_failed",
  PagerDutyFailed = "deploybot_pagerduty_failed",
  SlackFailed = "deploybot_slack_failed",
  Unknown = "deploybot_unknown",
}

/** How an outside failure may be retried: by the adapter that raised it, read by the reconciler. */
export interface ErrorOptions {
  cause?: unknown;
  /** The same call may succeed later (throttling, an outage, a network error, a 5xx): worth retrying. */
  transient?: boolean;
  /** How long the other side asked to wait before the next call (Slack's Retry-After), when it said. */
  retryAfterMs?: number;
}

/** Base class: a code, a message meant for a human, and the cause kept when wrapping. */
export class DeploybotError extends Error {
  readonly code: ErrorCode;
  readonly transient: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
    this.transient = options.transient ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export class ConfigError extends DeploybotError {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(
      ErrorCode.ConfigInvalid,
      `${file} is not a valid deploybot config:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
  }
}

export class CommandError extends DeploybotError {
  constructor(message: string) {
    super(ErrorCode.CommandInvalid, message);
  }
}

export class IllegalTransitionError extends DeploybotError {
  constructor(
    readonly from: string,
    readonly to: string,
    readonly subject: string,
    readonly machine = "deployment",
  ) {
    super(ErrorCode.IllegalTransition, `${machine} ${subject} cannot go from ${from} to ${to}`);
  }
}

/** Wraps anything thrown into a DeploybotError, keeping the original as `cause`. */
export function asDeploybotError(err: unknown, code = ErrorCode.Unknown): DeploybotError {
  if (err instanceof DeploybotError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new DeploybotError(code, message, { cause: err });
}
