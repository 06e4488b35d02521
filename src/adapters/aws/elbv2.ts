import type {
  Action,
  ElasticLoadBalancingV2Client,
  ModifyListenerCommandInput,
  ModifyRuleCommandInput,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { DeploybotError, ErrorCode } from "../../errors.js";
import { countAwsErrors } from "../../ops/metrics.js";
import type { ElbPort, Router, Stickiness, TargetGroupWeight } from "../../ports.js";
import { lazyModule } from "../lazy.js";
import {
  type AwsRetryOptions,
  credentialsProblem,
  describeError,
  type RetrySettings,
  regionalClients,
  retrySettings,
  shape,
  withRetry,
} from "./retry.js";

type ElbSdk = typeof import("@aws-sdk/client-elastic-load-balancing-v2");

/** The ELBv2 SDK, loaded on the first load balancer call (only environments with traffic steps make one). */
export const loadElbSdk = lazyModule(
  "@aws-sdk/client-elastic-load-balancing-v2",
  () => import("@aws-sdk/client-elastic-load-balancing-v2"),
  "ElasticLoadBalancingV2Client",
);

/** How AwsElb retries throttling and server errors (see AwsRetryOptions). */
export type AwsElbRetry = AwsRetryOptions;

/** The action (for IAM messages) and the thing acted on (for every message) of one Elastic Load Balancing call. */
interface CallContext {
  action: string;
  subject: string;
  region: string;
  /** The config key that names the resource, for "check ..." hints. */
  configKey: string;
}

/** "listener rule arn:…" or "the default action of listener arn:…": what a router is, as messages name it. */
export function routerSubject(router: Router): string {
  return router.kind === "rule" ? `listener rule ${router.arn}` : `the default action of listener ${router.arn}`;
}

const routerKey = (router: Router) => (router.kind === "rule" ? "strategy.listener_rule" : "strategy.listener");

/**
 * The forward action's weights as ALB reports them: a ForwardConfig's target groups, or the single target group of
 * a plain forward (weight 1). Throws when the router has no forward action: there is nothing to weigh.
 */
export function forwardWeights(actions: Action[], router: Router): TargetGroupWeight[] {
  const forward = actions.find((a) => a.Type === "forward");
  if (!forward) throw noForward(router, actions);
  const groups = forward.ForwardConfig?.TargetGroups;
  if (groups?.length) return groups.map((g) => ({ targetGroupArn: g.TargetGroupArn ?? "", weight: g.Weight ?? 1 }));
  return forward.TargetGroupArn ? [{ targetGroupArn: forward.TargetGroupArn, weight: 1 }] : [];
}

function noForward(router: Router, actions: Action[]): DeploybotError {
  const kinds = actions.map((a) => a.Type).join(", ") || "none";
  return new DeploybotError(
    ErrorCode.AwsFailed,
    `${routerSubject(router)} has no forward action (its actions: ${kinds}): traffic steps set the weights of a forward action; point ${routerKey(router)} at the rule that forwards to the two target groups`,
  );
}

/**
 * The router's actions with new weights: its forward action becomes a ForwardConfig with exactly these target groups
 * and weights (keeping its Order), every other action (authentication, say) is sent back as it was. Stickiness: as
 * given, else the forward action's own setting is kept. An authenticate-oidc action is described without its client
 * secret, so it is sent back with UseExistingClientSecret.
 */
export function withWeights(
  actions: Action[],
  router: Router,
  weights: TargetGroupWeight[],
  stickiness?: Stickiness,
): Action[] {
  const index = actions.findIndex((a) => a.Type === "forward");
  if (index < 0) throw noForward(router, actions);
  const current = actions[index] as Action;
  const sticky =
    stickiness === undefined
      ? current.ForwardConfig?.TargetGroupStickinessConfig
      : stickiness.enabled
        ? { Enabled: true, DurationSeconds: stickiness.seconds }
        : { Enabled: false };
  const forward: Action = {
    Type: "forward",
    ...(current.Order !== undefined ? { Order: current.Order } : {}),
    ForwardConfig: {
      TargetGroups: weights.map((w) => ({ TargetGroupArn: w.targetGroupArn, Weight: w.weight })),
      ...(sticky ? { TargetGroupStickinessConfig: sticky } : {}),
    },
  };
  return actions.map((a, i) => {
    if (i === index) return forward;
    if (a.Type === "authenticate-oidc" && a.AuthenticateOidcConfig) {
      const { ClientSecret: _secret, ...oidc } = a.AuthenticateOidcConfig;
      return { ...a, AuthenticateOidcConfig: { ...oidc, UseExistingClientSecret: true } };
    }
    return a;
  });
}

/** The ModifyRule or ModifyListener input that sets these weights on the router, from its actions as described. */
export function modifyInput(
  router: Router,
  actions: Action[],
  weights: TargetGroupWeight[],
  stickiness?: Stickiness,
): { op: "ModifyRule"; input: ModifyRuleCommandInput } | { op: "ModifyListener"; input: ModifyListenerCommandInput } {
  const next = withWeights(actions, router, weights, stickiness);
  return router.kind === "rule"
    ? { op: "ModifyRule", input: { RuleArn: router.arn, Actions: next } }
    : { op: "ModifyListener", input: { ListenerArn: router.arn, DefaultActions: next } };
}

/**
 * The Elastic Load Balancing adapter: the forward weights of a listener rule (DescribeRules / ModifyRule) or of a
 * listener's default action (DescribeListeners / ModifyListener), and a target group's health (DescribeTargetHealth).
 * SDK errors become DeploybotErrors that name the call, the resource and the config key to check.
 */
export class AwsElb implements ElbPort {
  private readonly client: (region: string) => Promise<{ client: ElasticLoadBalancingV2Client; sdk: ElbSdk }>;
  private readonly retry: RetrySettings;

  constructor(createClient?: (region: string) => ElasticLoadBalancingV2Client, retry: AwsElbRetry = {}) {
    this.client = regionalClients(
      loadElbSdk,
      (sdk, region) => new sdk.ElasticLoadBalancingV2Client({ region, maxAttempts: 1 }),
      createClient,
    );
    this.retry = retrySettings(retry);
  }

  async describeWeights(router: Router): Promise<TargetGroupWeight[]> {
    return forwardWeights(await this.actionsOf(router), router);
  }

  async setWeights(router: Router, weights: TargetGroupWeight[], stickiness?: Stickiness): Promise<void> {
    const modify = modifyInput(router, await this.actionsOf(router), weights, stickiness);
    const context = this.context(router, `elasticloadbalancing:${modify.op}`);
    await this.call(context, (client, sdk) =>
      modify.op === "ModifyRule"
        ? client.send(new sdk.ModifyRuleCommand(modify.input))
        : client.send(new sdk.ModifyListenerCommand(modify.input)),
    );
  }

  async targetHealth(region: string, targetGroupArn: string): Promise<{ healthy: number; total: number }> {
    const context: CallContext = {
      action: "elasticloadbalancing:DescribeTargetHealth",
      subject: `target group ${targetGroupArn}`,
      region,
      configKey: "strategy.green.target_group (or load_balancer.target_group)",
    };
    const out = await this.call(context, (client, sdk) =>
      client.send(new sdk.DescribeTargetHealthCommand({ TargetGroupArn: targetGroupArn })),
    );
    const targets = out.TargetHealthDescriptions ?? [];
    return { healthy: targets.filter((t) => t.TargetHealth?.State === "healthy").length, total: targets.length };
  }

  /** The router's actions as they are now: a rule's Actions, or a listener's DefaultActions. */
  private async actionsOf(router: Router): Promise<Action[]> {
    if (router.kind === "rule") {
      const context = this.context(router, "elasticloadbalancing:DescribeRules");
      const out = await this.call(context, (client, sdk) =>
        client.send(new sdk.DescribeRulesCommand({ RuleArns: [router.arn] })),
      );
      const rule = out.Rules?.find((r) => r.RuleArn === router.arn) ?? out.Rules?.[0];
      if (!rule) throw notFound(context);
      return rule.Actions ?? [];
    }
    const context = this.context(router, "elasticloadbalancing:DescribeListeners");
    const out = await this.call(context, (client, sdk) =>
      client.send(new sdk.DescribeListenersCommand({ ListenerArns: [router.arn] })),
    );
    const listener = out.Listeners?.find((l) => l.ListenerArn === router.arn) ?? out.Listeners?.[0];
    if (!listener) throw notFound(context);
    return listener.DefaultActions ?? [];
  }

  private context(router: Router, action: string): CallContext {
    return { action, subject: routerSubject(router), region: router.region, configKey: routerKey(router) };
  }

  /** Sends with exponential backoff on throttling and server errors; everything else is mapped at once. */
  private async call<T>(
    context: CallContext,
    send: (client: ElasticLoadBalancingV2Client, sdk: ElbSdk) => Promise<T>,
  ): Promise<T> {
    const { client, sdk } = await this.client(context.region);
    return withRetry(this.retry, () => countAwsErrors(context.action, send(client, sdk)), {
      notRetryable: (err) => toDeploybotError(err, context),
      exhausted: (err, attempts, what) =>
        new DeploybotError(
          ErrorCode.AwsFailed,
          `Elastic Load Balancing ${what} ${context.action} for ${context.subject} ${attempts} times in a row (last: ${describeError(err)}): try again in a minute`,
          { cause: err, transient: true },
        ),
    });
  }
}

function notFound(context: CallContext): DeploybotError {
  return new DeploybotError(
    ErrorCode.NotFound,
    `Elastic Load Balancing has no ${context.subject} in ${context.region}: check ${context.configKey} of this service's environment in the config`,
  );
}

/** Turns one SDK error into a DeploybotError that says what failed and what to change. */
function toDeploybotError(err: unknown, context: CallContext): DeploybotError {
  if (err instanceof DeploybotError) return err;
  const e = shape(err);
  const aws = e.message ? ` AWS said: ${e.message}` : "";
  const { action, subject } = context;
  const fail = (code: ErrorCode, message: string) => new DeploybotError(code, message, { cause: err });
  const credentials = credentialsProblem(e.name, action);
  if (credentials) return fail(ErrorCode.AwsFailed, `${credentials}${aws}`);
  switch (e.name) {
    case "AccessDenied":
    case "AccessDeniedException":
      return fail(
        ErrorCode.AwsFailed,
        `deploybot is not allowed to call ${action} for ${subject}: grant ${action} to deploybot's IAM role.${aws}`,
      );
    case "RuleNotFoundException":
    case "ListenerNotFoundException":
      return fail(ErrorCode.NotFound, `${notFound(context).message}.${aws}`);
    case "TargetGroupNotFoundException":
      return fail(
        ErrorCode.NotFound,
        `a target group named for ${subject} does not exist in ${context.region}: check load_balancer.target_group and strategy.green.target_group of this service's environment in the config.${aws}`,
      );
    case "OperationNotPermittedException":
    case "InvalidConfigurationRequestException":
    case "InvalidLoadBalancerActionException":
    case "IncompatibleProtocolsException":
    case "TooManyTargetGroupsException":
    case "TargetGroupAssociationLimitException":
    case "TooManyActionsException":
      return fail(ErrorCode.AwsFailed, `Elastic Load Balancing refused ${action} for ${subject} (${e.name}).${aws}`);
    default:
      return fail(ErrorCode.AwsFailed, `Elastic Load Balancing ${action} failed for ${subject}: ${describeError(err)}`);
  }
}
