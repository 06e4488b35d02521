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

/** Base class: a code, a message meant for a human, and the cause kept when wrapping. */
export class DeploybotError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
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
    readonly deploymentId: string,
  ) {
    super(ErrorCode.IllegalTransition, `deployment ${deploymentId} cannot go from ${from} to ${to}`);
  }
}

/** Wraps anything thrown into a DeploybotError, keeping the original as `cause`. */
export function asDeploybotError(err: unknown, code = ErrorCode.Unknown): DeploybotError {
  if (err instanceof DeploybotError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new DeploybotError(code, message, { cause: err });
}
