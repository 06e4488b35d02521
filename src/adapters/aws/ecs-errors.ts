import { DeploybotError, ErrorCode } from "../../errors.js";
import type { EcsTarget } from "../../ports.js";
import { credentialsProblem, describeError, shape } from "./retry.js";

// What the ECS adapter says when a call fails: SDK errors and odd answers turned into DeploybotErrors that
// name the call, the thing it acted on and what the operator should change.

/** The action (for IAM messages) and the thing acted on (for every message) of one ECS call. */
export interface CallContext {
  action: string;
  subject: string;
  target: EcsTarget;
  /** The action AccessDenied most likely means, when it is not `action` (e.g. tagging on register). */
  permissionHint?: string;
}

/** "ECS service web in cluster prod (eu-west-1)": the thing most ECS calls act on, as messages name it. */
export function serviceSubject(target: EcsTarget): string {
  return `ECS service ${target.service} in cluster ${target.cluster} (${target.region})`;
}

function configHint(target: EcsTarget): string {
  return `check the ecs block (region ${target.region}, cluster ${target.cluster}, service ${target.service}) of this service's environment in the config`;
}

/** The error for a service ECS does not have, or has only as INACTIVE. */
export function serviceNotFound(target: EcsTarget, why: string): DeploybotError {
  const state = why === "INACTIVE" ? "is INACTIVE (deleted)" : "not found";
  return new DeploybotError(
    ErrorCode.NotFound,
    `ECS service ${target.service} ${state} in cluster ${target.cluster} (${target.region}): ${configHint(target)}`,
  );
}

/** The error for an answer that lacks what the call promised. */
export function incomplete(context: CallContext, what: string): DeploybotError {
  return new DeploybotError(
    ErrorCode.AwsFailed,
    `ECS answered ${context.action} for ${context.subject}, but ${what}: try again, and report it if it persists`,
  );
}

/** " (detail)" when ECS gave one, else nothing. */
export function detail(text: string | undefined): string {
  return text ? ` (${text})` : "";
}

/** Turns one SDK error into a DeploybotError that says what failed and what to change. */
export function toDeploybotError(err: unknown, context: CallContext): DeploybotError {
  if (err instanceof DeploybotError) return err;
  const e = shape(err);
  const aws = e.message ? ` AWS said: ${e.message}` : "";
  const { target, action, subject } = context;
  const fail = (code: ErrorCode, message: string) => new DeploybotError(code, message, { cause: err });
  const credentials = credentialsProblem(e.name, action);
  if (credentials) return fail(ErrorCode.AwsFailed, `${credentials}${aws}`);
  switch (e.name) {
    case "AccessDeniedException": {
      // AWS names the exact action it refused (often iam:PassRole on register); prefer it.
      const refused = /perform: ([\w-]+:\w+)/.exec(e.message ?? "")?.[1];
      const needed = refused ?? context.permissionHint ?? action;
      return fail(
        ErrorCode.AwsFailed,
        `deploybot is not allowed to call ${action} for ${subject}: grant ${needed} to deploybot's IAM role.${aws}`,
      );
    }
    case "ClusterNotFoundException":
      return fail(
        ErrorCode.NotFound,
        `ECS cluster ${target.cluster} not found in ${target.region}: ${configHint(target)}`,
      );
    case "ServiceNotFoundException":
    case "ServiceNotActiveException":
      return fail(
        ErrorCode.NotFound,
        `ECS service ${target.service} ${e.name === "ServiceNotActiveException" ? "is not ACTIVE" : "not found"} in cluster ${target.cluster} (${target.region}): ${configHint(target)}`,
      );
    case "ServiceDeploymentNotFoundException":
      return fail(
        ErrorCode.NotFound,
        `ECS has no ${subject}: it may have been cleaned up or belong to another service.${aws}`,
      );
    case "ClientException":
      if (action === "ecs:DescribeTaskDefinition") {
        return fail(
          ErrorCode.NotFound,
          `ECS could not find ${subject} in ${target.region}: check the family and revision exist there.${aws}`,
        );
      }
      return fail(ErrorCode.AwsFailed, `ECS refused ${action} for ${subject}.${aws}`);
    case "InvalidParameterException":
      return fail(ErrorCode.AwsFailed, `ECS rejected ${action} for ${subject} as invalid.${aws}`);
    case "ConflictException":
      return fail(
        ErrorCode.AwsFailed,
        `ECS refused ${action} for ${subject}: it is no longer in a state that allows it.${aws}`,
      );
    case "UnsupportedFeatureException":
      return fail(ErrorCode.AwsFailed, `ECS does not support ${action} for ${subject} in ${target.region}.${aws}`);
    default:
      return fail(ErrorCode.AwsFailed, `ECS ${action} failed for ${subject}: ${describeError(err)}`);
  }
}
