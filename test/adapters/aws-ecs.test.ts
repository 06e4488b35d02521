import {
  AccessDeniedException,
  ClusterNotFoundException,
  DescribeServiceDeploymentsCommand,
  DescribeServiceRevisionsCommand,
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  ECSClient,
  InvalidParameterException,
  LimitExceededException,
  ListServiceDeploymentsCommand,
  RegisterTaskDefinitionCommand,
  type TaskDefinition as SdkTaskDefinition,
  ServerException,
  StopServiceDeploymentCommand,
  UpdateServiceCommand,
} from "@aws-sdk/client-ecs";
import { mockClient } from "aws-sdk-client-mock";
import { allCustomMatcher, type BaseMatcher } from "aws-sdk-client-mock-vitest";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { AwsEcs } from "../../src/adapters/aws/ecs.js";
import { DeploybotError, ErrorCode } from "../../src/errors.js";
import type { DeploymentStrategy, EcsTarget } from "../../src/ports.js";

expect.extend(allCustomMatcher);

declare module "vitest" {
  // biome-ignore lint/suspicious/noExplicitAny: must match vitest's own declaration of Matchers.
  interface Matchers<T = any> extends BaseMatcher<T> {}
}

const ecs = mockClient(ECSClient);

const target: EcsTarget = { region: "af-south-1", cluster: "comply360-prod", service: "web", container: "web" };
const ACCOUNT = "arn:aws:ecs:af-south-1:123456789012";
const TD_24 = `${ACCOUNT}:task-definition/web:24`;
const TD_25 = `${ACCOUNT}:task-definition/web:25`;
const DEPLOYMENT = `${ACCOUNT}:service-deployment/comply360-prod/web/aBcD1234`;

const webContainer = {
  name: "web",
  image: "123456789012.dkr.ecr.af-south-1.amazonaws.com/web:v1.4.1",
  essential: true,
  portMappings: [{ containerPort: 8080, protocol: "tcp" as const }],
  environment: [{ name: "NODE_ENV", value: "production" }],
  secrets: [{ name: "DB_URL", valueFrom: "arn:aws:ssm:af-south-1:123456789012:parameter/web/db" }],
};
const agentContainer = {
  name: "datadog-agent",
  image: "public.ecr.aws/datadog/agent:7",
  essential: false,
  environment: [{ name: "DD_SITE", value: "datadoghq.eu" }],
};

/** What DescribeTaskDefinition answers: registrable fields and the ones ECS adds (arn, revision, status...). */
function describedTaskDefinition(): SdkTaskDefinition {
  return {
    taskDefinitionArn: TD_24,
    family: "web",
    revision: 24,
    status: "ACTIVE",
    taskRoleArn: "arn:aws:iam::123456789012:role/web-task",
    executionRoleArn: "arn:aws:iam::123456789012:role/web-exec",
    networkMode: "awsvpc",
    containerDefinitions: [structuredClone(webContainer), structuredClone(agentContainer)],
    volumes: [{ name: "tmp", host: {} }],
    placementConstraints: [],
    requiresCompatibilities: ["FARGATE"],
    compatibilities: ["EC2", "FARGATE"],
    requiresAttributes: [{ name: "com.amazonaws.ecs.capability.task-iam-role" }],
    cpu: "512",
    memory: "1024",
    runtimePlatform: { cpuArchitecture: "ARM64", operatingSystemFamily: "LINUX" },
    ephemeralStorage: { sizeInGiB: 30 },
    enableFaultInjection: false,
    registeredAt: new Date("2025-03-01T10:00:00Z"),
    registeredBy: "arn:aws:sts::123456789012:assumed-role/deploybot/session",
  };
}

function throttled(): Error {
  return Object.assign(new Error("Rate exceeded"), {
    name: "ThrottlingException",
    $fault: "client",
    $metadata: { httpStatusCode: 400 },
  });
}

function adapter(sleep = vi.fn(async (_ms: number) => {})) {
  return { ecsAdapter: new AwsEcs(undefined, { maxAttempts: 4, baseDelayMs: 100, sleep }), sleep };
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
  ecs.reset();
});

describe("AwsEcs.describeService", () => {
  it("asks DescribeServices for the one service in its cluster and returns its task definition and counts", async () => {
    ecs.on(DescribeServicesCommand).resolves({
      services: [
        {
          serviceName: "web",
          serviceArn: `${ACCOUNT}:service/comply360-prod/web`,
          status: "ACTIVE",
          taskDefinition: TD_24,
          desiredCount: 4,
          runningCount: 3,
          pendingCount: 1,
        },
      ],
      failures: [],
    });

    const state = await adapter().ecsAdapter.describeService(target);

    expect(ecs.commandCalls(DescribeServicesCommand)[0]?.args[0].input).toEqual({
      cluster: "comply360-prod",
      services: ["web"],
    });
    expect(state).toEqual({
      serviceArn: `${ACCOUNT}:service/comply360-prod/web`,
      taskDefinitionArn: TD_24,
      desiredCount: 4,
      runningCount: 3,
      pendingCount: 1,
    });
  });

  it("asks for the services of one cluster asked at once in one DescribeServices per 10, each caller getting its own", async () => {
    const names = Array.from({ length: 12 }, (_, i) => `svc${i + 1}`);
    ecs.on(DescribeServicesCommand).callsFake(({ services }: { services: string[] }) => ({
      services: services
        .filter((n) => n !== "svc12")
        .map((n) => ({
          serviceName: n,
          serviceArn: `${ACCOUNT}:service/comply360-prod/${n}`,
          status: "ACTIVE",
          taskDefinition: `${ACCOUNT}:task-definition/${n}:3`,
          desiredCount: 2,
          runningCount: 2,
          pendingCount: 0,
        })),
      failures: services.includes("svc12")
        ? [{ arn: `${ACCOUNT}:service/comply360-prod/svc12`, reason: "MISSING" }]
        : [],
    }));
    const { ecsAdapter } = adapter();

    const results = await Promise.allSettled(
      names.map((service) => ecsAdapter.describeService({ ...target, service })),
    );

    expect(ecs.commandCalls(DescribeServicesCommand).map((c) => c.args[0].input)).toEqual([
      { cluster: "comply360-prod", services: names.slice(0, 10) },
      { cluster: "comply360-prod", services: names.slice(10) },
    ]);
    expect(results.slice(0, 11).map((r) => (r.status === "fulfilled" ? r.value.taskDefinitionArn : r.reason))).toEqual(
      names.slice(0, 11).map((n) => `${ACCOUNT}:task-definition/${n}:3`),
    );
    const missing = results[11];
    expect(missing?.status === "rejected" && (missing.reason as DeploybotError).message).toMatch(
      /^ECS service svc12 not found in cluster comply360-prod/,
    );
  });

  it("fails each of several callers of one throttled DescribeServices with a message naming its own service", async () => {
    ecs.on(DescribeServicesCommand).rejects(throttled());
    const { ecsAdapter } = adapter();

    const [web, api] = await Promise.all([
      caught(ecsAdapter.describeService(target)),
      caught(ecsAdapter.describeService({ ...target, service: "api" })),
    ]);

    expect(ecs).toHaveReceivedCommandTimes(DescribeServicesCommand, 4);
    expect(web.message).toContain("for ECS service web in cluster comply360-prod");
    expect(api.message).toContain("for ECS service api in cluster comply360-prod");
    expect(api.transient).toBe(true);
  });

  it("says which service is missing from which cluster and where to fix it in the config", async () => {
    ecs.on(DescribeServicesCommand).resolves({
      services: [],
      failures: [{ arn: `${ACCOUNT}:service/comply360-prod/web`, reason: "MISSING" }],
    });

    const err = await caught(adapter().ecsAdapter.describeService(target));

    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toMatch(/^ECS service web not found in cluster comply360-prod \(af-south-1\): check the ecs/);
    expect(err.message).toContain("in the config");
  });

  it("reports a missing cluster as not found, naming the cluster and region", async () => {
    ecs
      .on(DescribeServicesCommand)
      .rejects(new ClusterNotFoundException({ message: "Cluster not found.", $metadata: { httpStatusCode: 400 } }));

    const err = await caught(adapter().ecsAdapter.describeService(target));

    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toMatch(/^ECS cluster comply360-prod not found in af-south-1: check the ecs/);
    expect(err.cause).toBeInstanceOf(ClusterNotFoundException);
  });
});

describe("AwsEcs task definitions", () => {
  it("describes a task definition with its tags and maps its containers", async () => {
    ecs.on(DescribeTaskDefinitionCommand).resolves({
      taskDefinition: describedTaskDefinition(),
      tags: [{ key: "team", value: "payments" }],
    });

    const td = await adapter().ecsAdapter.describeTaskDefinition(target, "web:24");

    expect(ecs).toHaveReceivedCommandExactlyOnceWith(DescribeTaskDefinitionCommand, {
      taskDefinition: "web:24",
      include: ["TAGS"],
    });
    expect(ecs.commandCalls(DescribeTaskDefinitionCommand)[0]?.args[0].input).toEqual({
      taskDefinition: "web:24",
      include: ["TAGS"],
    });
    expect({ arn: td.arn, family: td.family, revision: td.revision, containers: td.containers }).toEqual({
      arn: TD_24,
      family: "web",
      revision: 24,
      containers: [
        { name: "web", image: webContainer.image },
        { name: "datadog-agent", image: agentContainer.image },
      ],
    });
  });

  it("registers a copy of the described task definition with only the target container's image replaced", async () => {
    ecs.on(DescribeTaskDefinitionCommand).resolves({
      taskDefinition: describedTaskDefinition(),
      tags: [{ key: "team", value: "payments" }],
    });
    ecs.on(RegisterTaskDefinitionCommand).resolves({
      taskDefinition: {
        ...describedTaskDefinition(),
        taskDefinitionArn: TD_25,
        revision: 25,
        containerDefinitions: [{ ...webContainer, image: "123456789012.dkr.ecr.af-south-1.amazonaws.com/web:v1.4.2" }],
      },
      tags: [{ key: "team", value: "payments" }],
    });
    const { ecsAdapter } = adapter();
    const base = await ecsAdapter.describeTaskDefinition(target, "web:24");

    const registered = await ecsAdapter.registerTaskDefinition(
      target,
      base,
      "123456789012.dkr.ecr.af-south-1.amazonaws.com/web:v1.4.2",
    );

    expect(ecs).toHaveReceivedCommandOnce(RegisterTaskDefinitionCommand);
    expect(ecs.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input).toStrictEqual({
      family: "web",
      taskRoleArn: "arn:aws:iam::123456789012:role/web-task",
      executionRoleArn: "arn:aws:iam::123456789012:role/web-exec",
      networkMode: "awsvpc",
      containerDefinitions: [
        { ...webContainer, image: "123456789012.dkr.ecr.af-south-1.amazonaws.com/web:v1.4.2" },
        agentContainer,
      ],
      volumes: [{ name: "tmp", host: {} }],
      placementConstraints: [],
      requiresCompatibilities: ["FARGATE"],
      cpu: "512",
      memory: "1024",
      runtimePlatform: { cpuArchitecture: "ARM64", operatingSystemFamily: "LINUX" },
      ephemeralStorage: { sizeInGiB: 30 },
      enableFaultInjection: false,
      tags: [{ key: "team", value: "payments" }],
    });
    expect(registered.arn).toBe(TD_25);
    expect(registered.revision).toBe(25);
    // The described base is left as it was, so a retry can copy it again.
    expect(base.containers[0]?.image).toBe(webContainer.image);
  });

  it("leaves tags out of the registration when the task definition has none", async () => {
    ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: describedTaskDefinition(), tags: [] });
    ecs.on(RegisterTaskDefinitionCommand).resolves({ taskDefinition: { ...describedTaskDefinition(), revision: 25 } });
    const { ecsAdapter } = adapter();
    const base = await ecsAdapter.describeTaskDefinition(target, "web:24");

    await ecsAdapter.registerTaskDefinition(target, base, "web:v2");

    expect(ecs.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input).not.toHaveProperty("tags");
  });

  it("refuses to register when the configured container is not in the task definition, and names the ones that are", async () => {
    ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: describedTaskDefinition(), tags: [] });
    const { ecsAdapter } = adapter();
    const base = await ecsAdapter.describeTaskDefinition(target, "web:24");

    const err = await caught(ecsAdapter.registerTaskDefinition({ ...target, container: "api" }, base, "api:v2"));

    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toBe(
      "container api is not in task definition web:24 (it has web, datadog-agent): check ecs.container for ECS service web in the config",
    );
    expect(ecs).not.toHaveReceivedCommand(RegisterTaskDefinitionCommand);
  });

  it("names iam:PassRole when AWS refuses to pass the task's role on registration", async () => {
    ecs.on(DescribeTaskDefinitionCommand).resolves({ taskDefinition: describedTaskDefinition(), tags: [] });
    ecs.on(RegisterTaskDefinitionCommand).rejects(
      new AccessDeniedException({
        message:
          "User: arn:aws:sts::123456789012:assumed-role/deploybot/x is not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/web-task",
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const { ecsAdapter } = adapter();
    const base = await ecsAdapter.describeTaskDefinition(target, "web:24");

    const err = await caught(ecsAdapter.registerTaskDefinition(target, base, "web:v2"));

    expect(err.message).toContain("grant iam:PassRole to deploybot's IAM role");
  });
});

describe("AwsEcs.updateService", () => {
  const cases: Array<{ strategy: DeploymentStrategy; deploymentConfiguration: Record<string, unknown> }> = [
    {
      strategy: { type: "ROLLING" },
      deploymentConfiguration: { deploymentCircuitBreaker: { enable: true, rollback: true }, strategy: "ROLLING" },
    },
    {
      strategy: { type: "BLUE_GREEN", bakeTimeMinutes: 15 },
      deploymentConfiguration: {
        deploymentCircuitBreaker: { enable: true, rollback: true },
        strategy: "BLUE_GREEN",
        bakeTimeInMinutes: 15,
      },
    },
    {
      strategy: { type: "LINEAR", stepPercent: 25, stepBakeMinutes: 5 },
      deploymentConfiguration: {
        deploymentCircuitBreaker: { enable: true, rollback: true },
        strategy: "LINEAR",
        linearConfiguration: { stepPercent: 25, stepBakeTimeInMinutes: 5 },
      },
    },
    {
      strategy: { type: "CANARY", canaryPercent: 10, canaryBakeMinutes: 20 },
      deploymentConfiguration: {
        deploymentCircuitBreaker: { enable: true, rollback: true },
        strategy: "CANARY",
        canaryConfiguration: { canaryPercent: 10, canaryBakeTimeInMinutes: 20 },
      },
    },
  ];

  it("keeps the service's alarms, lifecycle hooks and task percentages, and drops another strategy's settings", async () => {
    const alarms = { alarmNames: ["web-5xx"], enable: true, rollback: true };
    const lifecycleHooks = [
      {
        hookTargetArn: "arn:aws:lambda:af-south-1:123456789012:function:smoke",
        roleArn: "arn:aws:iam::123456789012:role/hooks",
        lifecycleStages: ["POST_TEST_TRAFFIC_SHIFT" as const],
      },
    ];
    ecs.on(DescribeServicesCommand).resolves({
      services: [
        {
          serviceName: "web",
          deploymentConfiguration: {
            alarms,
            lifecycleHooks,
            maximumPercent: 150,
            minimumHealthyPercent: 50,
            strategy: "CANARY",
            canaryConfiguration: { canaryPercent: 10, canaryBakeTimeInMinutes: 5 },
            deploymentCircuitBreaker: { enable: false, rollback: false },
          },
        },
      ],
    });
    ecs.on(UpdateServiceCommand).resolves({});

    await adapter().ecsAdapter.updateService(target, TD_25, { type: "LINEAR", stepPercent: 25, stepBakeMinutes: 5 });

    expect(ecs.commandCalls(UpdateServiceCommand)[0]?.args[0].input.deploymentConfiguration).toStrictEqual({
      alarms,
      lifecycleHooks,
      maximumPercent: 150,
      minimumHealthyPercent: 50,
      deploymentCircuitBreaker: { enable: true, rollback: true },
      strategy: "LINEAR",
      linearConfiguration: { stepPercent: 25, stepBakeTimeInMinutes: 5 },
    });
  });

  it.each(cases)(
    "starts a $strategy.type deployment with the circuit breaker rolling back on failure",
    async ({ strategy, deploymentConfiguration }) => {
      ecs.on(UpdateServiceCommand).resolves({});

      await adapter().ecsAdapter.updateService(target, TD_25, strategy);

      expect(ecs).toHaveReceivedCommandOnce(UpdateServiceCommand);
      expect(ecs.commandCalls(UpdateServiceCommand)[0]?.args[0].input).toStrictEqual({
        cluster: "comply360-prod",
        service: "web",
        taskDefinition: TD_25,
        deploymentConfiguration,
      });
    },
  );

  it("sets the desired count with the task definition when asked (the idle side of traffic steps)", async () => {
    ecs.on(UpdateServiceCommand).resolves({});

    await adapter().ecsAdapter.updateService(target, TD_25, { type: "ROLLING" }, 4);

    expect(ecs.commandCalls(UpdateServiceCommand)[0]?.args[0].input).toStrictEqual({
      cluster: "comply360-prod",
      service: "web",
      taskDefinition: TD_25,
      desiredCount: 4,
      deploymentConfiguration: { deploymentCircuitBreaker: { enable: true, rollback: true }, strategy: "ROLLING" },
    });
  });

  it("scales a service with an UpdateService that names only its desired count", async () => {
    ecs.on(UpdateServiceCommand).resolves({});

    await adapter().ecsAdapter.scaleService(target, 0);

    expect(ecs).toHaveReceivedCommandOnce(UpdateServiceCommand);
    expect(ecs).not.toHaveReceivedCommand(DescribeServicesCommand);
    expect(ecs.commandCalls(UpdateServiceCommand)[0]?.args[0].input).toStrictEqual({
      cluster: "comply360-prod",
      service: "web",
      desiredCount: 0,
    });
  });

  it("names the IAM action to grant when access is denied", async () => {
    ecs.on(UpdateServiceCommand).rejects(
      new AccessDeniedException({
        message: "User is not authorized to perform this action.",
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const { ecsAdapter, sleep } = adapter();

    const err = await caught(ecsAdapter.updateService(target, TD_25, { type: "ROLLING" }));

    expect(err.code).toBe(ErrorCode.AwsFailed);
    expect(err.message).toContain(
      "deploybot is not allowed to call ecs:UpdateService for ECS service web in cluster comply360-prod (af-south-1): grant ecs:UpdateService to deploybot's IAM role",
    );
    expect(ecs).toHaveReceivedCommandTimes(UpdateServiceCommand, 1);
    expect(sleep).not.toHaveBeenCalled();
  });

  it("keeps AWS's message when ECS rejects a parameter, without retrying", async () => {
    ecs.on(UpdateServiceCommand).rejects(
      new InvalidParameterException({
        message: "The service must use the ECS deployment controller to use the CANARY strategy.",
        $metadata: { httpStatusCode: 400 },
      }),
    );

    const err = await caught(
      adapter().ecsAdapter.updateService(target, TD_25, { type: "CANARY", canaryPercent: 10, canaryBakeMinutes: 5 }),
    );

    expect(err.message).toContain("ECS rejected ecs:UpdateService for ECS service web");
    expect(err.message).toContain("AWS said: The service must use the ECS deployment controller");
    expect(ecs).toHaveReceivedCommandTimes(UpdateServiceCommand, 1);
  });
});

describe("AwsEcs quotas", () => {
  it("does not retry ECS's LimitExceededException: it is a quota, not a rate limit", async () => {
    ecs.on(UpdateServiceCommand).rejects(
      new LimitExceededException({
        message: "The limit for the resource was exceeded.",
        $metadata: { httpStatusCode: 400 },
      }),
    );

    const err = await caught(adapter().ecsAdapter.updateService(target, TD_25, { type: "ROLLING" }));

    expect(err.message).not.toContain("throttled");
    expect(err.message).toContain("The limit for the resource was exceeded.");
    expect(ecs).toHaveReceivedCommandTimes(UpdateServiceCommand, 1);
  });
});

describe("AwsEcs retries", () => {
  it("retries throttling and server errors with exponential backoff, then returns the answer", async () => {
    ecs
      .on(DescribeServicesCommand)
      .rejectsOnce(throttled())
      .rejectsOnce(
        Object.assign(new Error("Too Many Requests"), { name: "Unknown", $metadata: { httpStatusCode: 429 } }),
      )
      .rejectsOnce(new ServerException({ message: "Internal error", $metadata: { httpStatusCode: 500 } }))
      .resolves({
        services: [{ serviceName: "web", serviceArn: "arn:web", status: "ACTIVE", taskDefinition: TD_24 }],
      });
    const { ecsAdapter, sleep } = adapter();

    const state = await ecsAdapter.describeService(target);

    expect(state.taskDefinitionArn).toBe(TD_24);
    expect(ecs).toHaveReceivedCommandTimes(DescribeServicesCommand, 4);
    expect(sleep.mock.calls.map(([ms]) => ms)).toEqual([100, 200, 400]);
  });

  it("gives up after maxAttempts with an error that says ECS kept throttling", async () => {
    ecs.on(DescribeServicesCommand).rejects(throttled());
    const { ecsAdapter, sleep } = adapter();

    const err = await caught(ecsAdapter.describeService(target));

    expect(ecs).toHaveReceivedCommandTimes(DescribeServicesCommand, 4);
    expect(sleep).toHaveBeenCalledTimes(3);
    expect(err.code).toBe(ErrorCode.AwsFailed);
    expect(err.message).toBe(
      "ECS throttled ecs:DescribeServices for ECS service web in cluster comply360-prod (af-south-1) 4 times in a row (last: ThrottlingException: Rate exceeded): try again in a minute",
    );
  });

  it("creates one ECS client per region and reuses it", async () => {
    ecs.on(UpdateServiceCommand).resolves({});
    const factory = vi.fn((region: string) => new ECSClient({ region }));
    const ecsAdapter = new AwsEcs(factory, { sleep: async () => {} });

    await ecsAdapter.updateService(target, TD_25, { type: "ROLLING" });
    await ecsAdapter.updateService(target, TD_25, { type: "ROLLING" });
    await ecsAdapter.updateService({ ...target, region: "eu-west-1" }, TD_25, { type: "ROLLING" });

    expect(factory.mock.calls).toEqual([["af-south-1"], ["eu-west-1"]]);
  });
});

describe("AwsEcs service deployments", () => {
  it("lists deployments since a time, following nextToken, newest first", async () => {
    const since = new Date("2025-03-01T09:00:00Z");
    ecs
      .on(ListServiceDeploymentsCommand)
      .resolvesOnce({
        serviceDeployments: [
          {
            serviceDeploymentArn: `${DEPLOYMENT}-1`,
            status: "SUCCESSFUL",
            createdAt: new Date("2025-03-01T09:10:00Z"),
          },
        ],
        nextToken: "page-2",
      })
      .resolvesOnce({
        serviceDeployments: [
          {
            serviceDeploymentArn: `${DEPLOYMENT}-2`,
            status: "IN_PROGRESS",
            createdAt: new Date("2025-03-01T10:00:00Z"),
          },
        ],
      });

    const list = await adapter().ecsAdapter.listServiceDeployments(target, since);

    const inputs = ecs.commandCalls(ListServiceDeploymentsCommand).map((call) => call.args[0].input);
    expect(inputs).toStrictEqual([
      { service: "web", cluster: "comply360-prod", createdAt: { after: since } },
      { service: "web", cluster: "comply360-prod", createdAt: { after: since }, nextToken: "page-2" },
    ]);
    expect(list).toEqual([
      { arn: `${DEPLOYMENT}-2`, status: "IN_PROGRESS" },
      { arn: `${DEPLOYMENT}-1`, status: "SUCCESSFUL" },
    ]);
  });

  it("lists without a createdAt filter when no time is given", async () => {
    ecs.on(ListServiceDeploymentsCommand).resolves({ serviceDeployments: [] });

    await adapter().ecsAdapter.listServiceDeployments(target);

    expect(ecs.commandCalls(ListServiceDeploymentsCommand)[0]?.args[0].input).toStrictEqual({
      service: "web",
      cluster: "comply360-prod",
    });
  });

  it("maps a deployment that rolled back, with its reason, task definitions and counts", async () => {
    const targetRevision = `${ACCOUNT}:service-revision/comply360-prod/web/2`;
    const sourceRevision = `${ACCOUNT}:service-revision/comply360-prod/web/1`;
    ecs.on(DescribeServiceDeploymentsCommand).resolves({
      serviceDeployments: [
        {
          serviceDeploymentArn: DEPLOYMENT,
          status: "ROLLBACK_SUCCESSFUL",
          statusReason: "Service deployment rolled back because the circuit breaker threshold was exceeded.",
          startedAt: new Date("2025-03-01T10:00:00Z"),
          finishedAt: new Date("2025-03-01T10:12:00Z"),
          targetServiceRevision: { arn: targetRevision, requestedTaskCount: 4, runningTaskCount: 0 },
          sourceServiceRevisions: [{ arn: sourceRevision, requestedTaskCount: 4, runningTaskCount: 4 }],
        },
      ],
      failures: [],
    });
    ecs.on(DescribeServiceRevisionsCommand).resolves({
      serviceRevisions: [
        { serviceRevisionArn: targetRevision, taskDefinition: TD_25 },
        { serviceRevisionArn: sourceRevision, taskDefinition: TD_24 },
      ],
    });

    const deployment = await adapter().ecsAdapter.describeServiceDeployment(target, DEPLOYMENT);

    expect(ecs.commandCalls(DescribeServiceDeploymentsCommand)[0]?.args[0].input).toStrictEqual({
      serviceDeploymentArns: [DEPLOYMENT],
    });
    expect(ecs.commandCalls(DescribeServiceRevisionsCommand)[0]?.args[0].input).toStrictEqual({
      serviceRevisionArns: [targetRevision, sourceRevision],
    });
    expect(deployment).toStrictEqual({
      arn: DEPLOYMENT,
      status: "ROLLBACK_SUCCESSFUL",
      statusReason: "Service deployment rolled back because the circuit breaker threshold was exceeded.",
      targetTaskDefinitionArn: TD_25,
      sourceTaskDefinitionArn: TD_24,
      desiredCount: 4,
      runningCount: 0,
      startedAt: new Date("2025-03-01T10:00:00Z"),
      finishedAt: new Date("2025-03-01T10:12:00Z"),
    });
  });

  it("looks up a service revision's task definition once while polling the same deployment", async () => {
    const targetRevision = `${ACCOUNT}:service-revision/comply360-prod/web/2`;
    ecs.on(DescribeServiceDeploymentsCommand).resolves({
      serviceDeployments: [
        {
          serviceDeploymentArn: DEPLOYMENT,
          status: "IN_PROGRESS",
          targetServiceRevision: { arn: targetRevision, requestedTaskCount: 2, runningTaskCount: 1 },
        },
      ],
    });
    ecs.on(DescribeServiceRevisionsCommand).resolves({
      serviceRevisions: [{ serviceRevisionArn: targetRevision, taskDefinition: TD_25 }],
    });
    const { ecsAdapter } = adapter();

    await ecsAdapter.describeServiceDeployment(target, DEPLOYMENT);
    const second = await ecsAdapter.describeServiceDeployment(target, DEPLOYMENT);

    expect(second.targetTaskDefinitionArn).toBe(TD_25);
    expect(ecs).toHaveReceivedCommandTimes(DescribeServiceDeploymentsCommand, 2);
    expect(ecs).toHaveReceivedCommandTimes(DescribeServiceRevisionsCommand, 1);
  });

  it("turns a deployment ARN listed in failures into a not-found error", async () => {
    ecs.on(DescribeServiceDeploymentsCommand).resolves({
      serviceDeployments: [],
      failures: [{ arn: DEPLOYMENT, reason: "MISSING" }],
    });

    const err = await caught(adapter().ecsAdapter.describeServiceDeployment(target, DEPLOYMENT));

    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toContain(`ECS has no deployment ${DEPLOYMENT} of ECS service web`);
    expect(ecs).not.toHaveReceivedCommand(DescribeServiceRevisionsCommand);
  });

  it("stops an in-flight deployment by asking ECS to roll it back", async () => {
    ecs.on(StopServiceDeploymentCommand).resolves({ serviceDeploymentArn: DEPLOYMENT });

    await adapter().ecsAdapter.stopServiceDeployment(target, DEPLOYMENT);

    expect(ecs).toHaveReceivedCommandOnce(StopServiceDeploymentCommand);
    expect(ecs.commandCalls(StopServiceDeploymentCommand)[0]?.args[0].input).toStrictEqual({
      serviceDeploymentArn: DEPLOYMENT,
      stopType: "ROLLBACK",
    });
  });
});
