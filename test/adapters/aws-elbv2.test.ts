import {
  type Action,
  DescribeListenersCommand,
  DescribeRulesCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  ModifyListenerCommand,
  ModifyRuleCommand,
  OperationNotPermittedException,
  RuleNotFoundException,
  TargetGroupNotFoundException,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { mockClient } from "aws-sdk-client-mock";
import { allCustomMatcher, type BaseMatcher } from "aws-sdk-client-mock-vitest";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { AwsElb } from "../../src/adapters/aws/elbv2.js";
import { DeploybotError, ErrorCode } from "../../src/errors.js";
import type { Router } from "../../src/ports.js";

expect.extend(allCustomMatcher);

declare module "vitest" {
  // biome-ignore lint/suspicious/noExplicitAny: must match vitest's own declaration of Matchers.
  interface Matchers<T = any> extends BaseMatcher<T> {}
}

const elb = mockClient(ElasticLoadBalancingV2Client);

const ARN = "arn:aws:elasticloadbalancing:af-south-1:123456789012";
const BLUE = `${ARN}:targetgroup/comply360-web/73e2d6bc24d8a067`;
const GREEN = `${ARN}:targetgroup/comply360-web-green/6d0ecf831eec9f09`;
const RULE: Router = {
  kind: "rule",
  arn: `${ARN}:listener-rule/app/comply360-prod/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee`,
  region: "af-south-1",
};
const LISTENER: Router = {
  kind: "listener",
  arn: `${ARN}:listener/app/comply360-prod/50dc6c495c0c9188/f2f7dc8efc522ab2`,
  region: "af-south-1",
};

/** A rule that forwards everything to blue, as a fresh blue/green pair is set up. */
const forwardAllToBlue = (order = 1): Action => ({
  Type: "forward",
  Order: order,
  ForwardConfig: {
    TargetGroups: [
      { TargetGroupArn: BLUE, Weight: 100 },
      { TargetGroupArn: GREEN, Weight: 0 },
    ],
    TargetGroupStickinessConfig: { Enabled: false },
  },
});

function adapter(sleep = vi.fn(async (_ms: number) => {})) {
  return { elbAdapter: new AwsElb(undefined, { maxAttempts: 4, baseDelayMs: 100, sleep }), sleep };
}

async function caught(promise: Promise<unknown>): Promise<DeploybotError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeploybotError);
  return err as DeploybotError;
}

beforeEach(() => {
  elb.reset();
});

describe("AwsElb.describeWeights", () => {
  it("reads a listener rule's forward weights with DescribeRules for that one rule", async () => {
    elb.on(DescribeRulesCommand).resolves({ Rules: [{ RuleArn: RULE.arn, Actions: [forwardAllToBlue()] }] });

    const weights = await adapter().elbAdapter.describeWeights(RULE);

    expect(elb.commandCalls(DescribeRulesCommand)[0]?.args[0].input).toStrictEqual({ RuleArns: [RULE.arn] });
    expect(weights).toEqual([
      { targetGroupArn: BLUE, weight: 100 },
      { targetGroupArn: GREEN, weight: 0 },
    ]);
  });

  it("reads a listener's default action with DescribeListeners, a plain forward as weight 1", async () => {
    elb.on(DescribeListenersCommand).resolves({
      Listeners: [{ ListenerArn: LISTENER.arn, DefaultActions: [{ Type: "forward", TargetGroupArn: BLUE }] }],
    });

    const weights = await adapter().elbAdapter.describeWeights(LISTENER);

    expect(elb.commandCalls(DescribeListenersCommand)[0]?.args[0].input).toStrictEqual({
      ListenerArns: [LISTENER.arn],
    });
    expect(weights).toEqual([{ targetGroupArn: BLUE, weight: 1 }]);
  });

  it("refuses a rule without a forward action, naming its actions and the config key", async () => {
    elb.on(DescribeRulesCommand).resolves({
      Rules: [{ RuleArn: RULE.arn, Actions: [{ Type: "redirect", RedirectConfig: { StatusCode: "HTTP_301" } }] }],
    });

    const err = await caught(adapter().elbAdapter.describeWeights(RULE));

    expect(err.message).toBe(
      `listener rule ${RULE.arn} has no forward action (its actions: redirect): traffic steps set the weights of a forward action; point strategy.listener_rule at the rule that forwards to the two target groups`,
    );
  });
});

describe("AwsElb.setWeights", () => {
  it("sends ModifyRule with exactly the ForwardConfig asked for: both target groups weighted, stickiness as configured", async () => {
    elb.on(DescribeRulesCommand).resolves({ Rules: [{ RuleArn: RULE.arn, Actions: [forwardAllToBlue()] }] });
    elb.on(ModifyRuleCommand).resolves({});

    await adapter().elbAdapter.setWeights(
      RULE,
      [
        { targetGroupArn: BLUE, weight: 90 },
        { targetGroupArn: GREEN, weight: 10 },
      ],
      { enabled: true, seconds: 3600 },
    );

    expect(elb).toHaveReceivedCommandOnce(ModifyRuleCommand);
    expect(elb.commandCalls(ModifyRuleCommand)[0]?.args[0].input).toStrictEqual({
      RuleArn: RULE.arn,
      Actions: [
        {
          Type: "forward",
          Order: 1,
          ForwardConfig: {
            TargetGroups: [
              { TargetGroupArn: BLUE, Weight: 90 },
              { TargetGroupArn: GREEN, Weight: 10 },
            ],
            TargetGroupStickinessConfig: { Enabled: true, DurationSeconds: 3600 },
          },
        },
      ],
    });
  });

  it("switches all traffic back in one ModifyRule with stickiness off, so no client stays on the version rolled back", async () => {
    elb.on(DescribeRulesCommand).resolves({
      Rules: [
        {
          RuleArn: RULE.arn,
          Actions: [
            {
              Type: "forward",
              ForwardConfig: {
                TargetGroups: [
                  { TargetGroupArn: BLUE, Weight: 50 },
                  { TargetGroupArn: GREEN, Weight: 50 },
                ],
                TargetGroupStickinessConfig: { Enabled: true, DurationSeconds: 3600 },
              },
            },
          ],
        },
      ],
    });
    elb.on(ModifyRuleCommand).resolves({});

    await adapter().elbAdapter.setWeights(
      RULE,
      [
        { targetGroupArn: BLUE, weight: 100 },
        { targetGroupArn: GREEN, weight: 0 },
      ],
      { enabled: false },
    );

    expect(elb).toHaveReceivedCommandOnce(ModifyRuleCommand);
    expect(elb.commandCalls(ModifyRuleCommand)[0]?.args[0].input).toStrictEqual({
      RuleArn: RULE.arn,
      Actions: [
        {
          Type: "forward",
          ForwardConfig: {
            TargetGroups: [
              { TargetGroupArn: BLUE, Weight: 100 },
              { TargetGroupArn: GREEN, Weight: 0 },
            ],
            TargetGroupStickinessConfig: { Enabled: false },
          },
        },
      ],
    });
  });

  it("keeps the forward action's own stickiness when none is given", async () => {
    elb.on(DescribeRulesCommand).resolves({ Rules: [{ RuleArn: RULE.arn, Actions: [forwardAllToBlue()] }] });
    elb.on(ModifyRuleCommand).resolves({});

    await adapter().elbAdapter.setWeights(RULE, [
      { targetGroupArn: BLUE, weight: 50 },
      { targetGroupArn: GREEN, weight: 50 },
    ]);

    const sent = elb.commandCalls(ModifyRuleCommand)[0]?.args[0].input.Actions?.[0];
    expect(sent?.ForwardConfig?.TargetGroupStickinessConfig).toStrictEqual({ Enabled: false });
  });

  it("sends a rule's authentication back before the forward action, with UseExistingClientSecret instead of the secret", async () => {
    const oidc: Action = {
      Type: "authenticate-oidc",
      Order: 1,
      AuthenticateOidcConfig: {
        Issuer: "https://idp.example.com",
        AuthorizationEndpoint: "https://idp.example.com/authorize",
        TokenEndpoint: "https://idp.example.com/token",
        UserInfoEndpoint: "https://idp.example.com/userinfo",
        ClientId: "deploy",
      },
    };
    elb.on(DescribeRulesCommand).resolves({ Rules: [{ RuleArn: RULE.arn, Actions: [oidc, forwardAllToBlue(2)] }] });
    elb.on(ModifyRuleCommand).resolves({});

    await adapter().elbAdapter.setWeights(
      RULE,
      [
        { targetGroupArn: BLUE, weight: 50 },
        { targetGroupArn: GREEN, weight: 50 },
      ],
      { enabled: false },
    );

    expect(elb.commandCalls(ModifyRuleCommand)[0]?.args[0].input.Actions).toStrictEqual([
      { ...oidc, AuthenticateOidcConfig: { ...oidc.AuthenticateOidcConfig, UseExistingClientSecret: true } },
      {
        Type: "forward",
        Order: 2,
        ForwardConfig: {
          TargetGroups: [
            { TargetGroupArn: BLUE, Weight: 50 },
            { TargetGroupArn: GREEN, Weight: 50 },
          ],
          TargetGroupStickinessConfig: { Enabled: false },
        },
      },
    ]);
  });

  it("sets a listener's default action with ModifyListener (seed 004's listener switch)", async () => {
    elb.on(DescribeListenersCommand).resolves({
      Listeners: [{ ListenerArn: LISTENER.arn, DefaultActions: [{ Type: "forward", TargetGroupArn: BLUE }] }],
    });
    elb.on(ModifyListenerCommand).resolves({});

    await adapter().elbAdapter.setWeights(LISTENER, [
      { targetGroupArn: BLUE, weight: 90 },
      { targetGroupArn: GREEN, weight: 10 },
    ]);

    expect(elb).not.toHaveReceivedCommand(ModifyRuleCommand);
    expect(elb.commandCalls(ModifyListenerCommand)[0]?.args[0].input).toStrictEqual({
      ListenerArn: LISTENER.arn,
      DefaultActions: [
        {
          Type: "forward",
          ForwardConfig: {
            TargetGroups: [
              { TargetGroupArn: BLUE, Weight: 90 },
              { TargetGroupArn: GREEN, Weight: 10 },
            ],
          },
        },
      ],
    });
  });
});

describe("AwsElb.targetHealth", () => {
  it("counts the healthy targets of a target group with DescribeTargetHealth", async () => {
    elb.on(DescribeTargetHealthCommand).resolves({
      TargetHealthDescriptions: [
        { Target: { Id: "10.0.1.5", Port: 8080 }, TargetHealth: { State: "healthy" } },
        { Target: { Id: "10.0.1.6", Port: 8080 }, TargetHealth: { State: "healthy" } },
        {
          Target: { Id: "10.0.1.7", Port: 8080 },
          TargetHealth: { State: "initial", Reason: "Elb.RegistrationInProgress" },
        },
        { Target: { Id: "10.0.1.8", Port: 8080 }, TargetHealth: { State: "unhealthy" } },
      ],
    });

    const health = await adapter().elbAdapter.targetHealth("af-south-1", GREEN);

    expect(elb.commandCalls(DescribeTargetHealthCommand)[0]?.args[0].input).toStrictEqual({ TargetGroupArn: GREEN });
    expect(health).toEqual({ healthy: 2, total: 4 });
  });
});

describe("AwsElb errors", () => {
  const throttled = () =>
    Object.assign(new Error("Rate exceeded"), {
      name: "Throttling",
      $fault: "client",
      $metadata: { httpStatusCode: 400 },
    });

  it("retries ELB's Throttling with exponential backoff, then sends the change once", async () => {
    elb.on(DescribeRulesCommand).resolves({ Rules: [{ RuleArn: RULE.arn, Actions: [forwardAllToBlue()] }] });
    elb.on(ModifyRuleCommand).rejectsOnce(throttled()).rejectsOnce(throttled()).resolves({});
    const { elbAdapter, sleep } = adapter();

    await elbAdapter.setWeights(RULE, [
      { targetGroupArn: BLUE, weight: 0 },
      { targetGroupArn: GREEN, weight: 100 },
    ]);

    expect(elb).toHaveReceivedCommandTimes(ModifyRuleCommand, 3);
    expect(sleep.mock.calls.map(([ms]) => ms)).toEqual([100, 200]);
  });

  it("gives up after maxAttempts with a transient error that says ELB kept throttling", async () => {
    elb.on(DescribeRulesCommand).rejects(throttled());
    const { elbAdapter } = adapter();

    const err = await caught(elbAdapter.describeWeights(RULE));

    expect(err.transient).toBe(true);
    expect(err.message).toBe(
      `Elastic Load Balancing throttled elasticloadbalancing:DescribeRules for listener rule ${RULE.arn} 4 times in a row (last: Throttling: Rate exceeded): try again in a minute`,
    );
  });

  it("names the IAM action to grant when access is denied, without retrying", async () => {
    elb.on(DescribeRulesCommand).resolves({ Rules: [{ RuleArn: RULE.arn, Actions: [forwardAllToBlue()] }] });
    elb.on(ModifyRuleCommand).rejects(
      Object.assign(new Error("User is not authorized to perform: elasticloadbalancing:ModifyRule"), {
        name: "AccessDenied",
        $fault: "client",
        $metadata: { httpStatusCode: 403 },
      }),
    );
    const { elbAdapter, sleep } = adapter();

    const err = await caught(
      elbAdapter.setWeights(RULE, [
        { targetGroupArn: BLUE, weight: 0 },
        { targetGroupArn: GREEN, weight: 100 },
      ]),
    );

    expect(err.transient).toBe(false);
    expect(err.message).toContain(
      `deploybot is not allowed to call elasticloadbalancing:ModifyRule for listener rule ${RULE.arn}: grant elasticloadbalancing:ModifyRule to deploybot's IAM role`,
    );
    expect(sleep).not.toHaveBeenCalled();
  });

  it("says when AWS refuses deploybot's credentials, without retrying", async () => {
    elb.on(DescribeRulesCommand).rejects(
      Object.assign(new Error("The security token included in the request is expired"), {
        name: "ExpiredToken",
        $fault: "client",
        $metadata: { httpStatusCode: 403 },
      }),
    );
    const { elbAdapter, sleep } = adapter();

    const err = await caught(elbAdapter.describeWeights(RULE));

    expect(err.message).toBe(
      "AWS did not accept deploybot's credentials for elasticloadbalancing:DescribeRules (ExpiredToken): refresh them or check the IAM role. AWS said: The security token included in the request is expired",
    );
    expect(sleep).not.toHaveBeenCalled();
  });

  it("says which config key to check when the rule or a target group does not exist", async () => {
    elb
      .on(DescribeRulesCommand)
      .rejects(new RuleNotFoundException({ message: "One or more rules not found", $metadata: {} }));
    const missingRule = await caught(adapter().elbAdapter.describeWeights(RULE));
    expect(missingRule.code).toBe(ErrorCode.NotFound);
    expect(missingRule.message).toContain("check strategy.listener_rule of this service's environment");

    elb
      .on(DescribeTargetHealthCommand)
      .rejects(new TargetGroupNotFoundException({ message: "Target groups not found", $metadata: {} }));
    const missingGroup = await caught(adapter().elbAdapter.targetHealth("af-south-1", GREEN));
    expect(missingGroup.code).toBe(ErrorCode.NotFound);
    expect(missingGroup.message).toContain("check load_balancer.target_group and strategy.green.target_group");
  });

  it("keeps AWS's words when ELB refuses the change", async () => {
    elb.on(DescribeListenersCommand).resolves({
      Listeners: [{ ListenerArn: LISTENER.arn, DefaultActions: [forwardAllToBlue()] }],
    });
    elb.on(ModifyListenerCommand).rejects(
      new OperationNotPermittedException({
        message: "Target groups must be associated with the load balancer",
        $metadata: {},
      }),
    );

    const err = await caught(
      adapter().elbAdapter.setWeights(LISTENER, [
        { targetGroupArn: BLUE, weight: 0 },
        { targetGroupArn: GREEN, weight: 100 },
      ]),
    );

    expect(err.transient).toBe(false);
    expect(err.message).toBe(
      `Elastic Load Balancing refused elasticloadbalancing:ModifyListener for the default action of listener ${LISTENER.arn} (OperationNotPermittedException). AWS said: Target groups must be associated with the load balancer`,
    );
  });
});
