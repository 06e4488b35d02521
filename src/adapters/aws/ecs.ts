import type {
  ECSClient,
  ListServiceDeploymentsCommandInput,
  DeploymentConfiguration as SdkDeploymentConfiguration,
  ServiceDeploymentBrief,
} from "@aws-sdk/client-ecs";
import { DeploybotError, ErrorCode } from "../../errors.js";
import { countAwsErrors } from "../../ops/metrics.js";
import type {
  DeploymentStrategy,
  EcsDeployment,
  EcsDeploymentStatus,
  EcsPort,
  EcsTarget,
  ServiceState,
  TaskDefinition,
} from "../../ports.js";
import { lazyModule } from "../lazy.js";
import { DescribeBatcher } from "./ecs-describe.js";
import {
  type CallContext,
  detail,
  incomplete,
  serviceNotFound,
  serviceSubject,
  toDeploybotError,
} from "./ecs-errors.js";
import { newRevisionInput, toTaskDefinition } from "./ecs-task-definitions.js";
import {
  type AwsRetryOptions,
  describeError,
  type RetryFailure,
  type RetrySettings,
  regionalClients,
  retrySettings,
  withRetry,
} from "./retry.js";

type EcsSdk = typeof import("@aws-sdk/client-ecs");
/** The SDK, loaded on the first call. */
export const loadEcsSdk = lazyModule("@aws-sdk/client-ecs", () => import("@aws-sdk/client-ecs"), "ECSClient");

/** How AwsEcs retries throttling and server errors (see AwsRetryOptions). */
export type AwsEcsRetry = AwsRetryOptions;

const STATUSES: ReadonlySet<string> = new Set<EcsDeploymentStatus>([
  "PENDING",
  "IN_PROGRESS",
  "SUCCESSFUL",
  "STOPPED",
  "STOP_REQUESTED",
  "ROLLBACK_REQUESTED",
  "ROLLBACK_IN_PROGRESS",
  "ROLLBACK_SUCCESSFUL",
  "ROLLBACK_FAILED",
]);

/** The ECS adapter: one SDK call per port method (plus DescribeServiceRevisions), SDK errors turned into DeploybotErrors. */
export class AwsEcs implements EcsPort {
  private readonly client: (region: string) => Promise<{ client: ECSClient; sdk: EcsSdk }>;
  private readonly retry: RetrySettings;
  /** Service revisions never change, so their task definitions are looked up once. */
  private readonly revisionTaskDefinitions = new Map<string, string>();
  private readonly describes: DescribeBatcher;

  constructor(createClient?: (region: string) => ECSClient, retry: AwsEcsRetry = {}) {
    this.client = regionalClients(
      loadEcsSdk,
      (sdk, region) => new sdk.ECSClient({ region, maxAttempts: 1 }),
      createClient,
    );
    this.retry = retrySettings(retry);
    this.describes = new DescribeBatcher(
      (region) => this.client(region),
      this.retry,
      (c) => this.failures(c),
    );
  }

  async describeService(target: EcsTarget): Promise<ServiceState> {
    const context = this.context(target, "ecs:DescribeServices", serviceSubject(target));
    const { out, alone } = await this.describes.describe(context);
    const service =
      out.services?.find((s) => s.serviceName === target.service || s.serviceArn === target.service) ??
      (alone ? out.services?.[0] : undefined);
    const failure =
      out.failures?.find((f) => f.arn === target.service || f.arn?.endsWith(`/${target.service}`)) ??
      (alone ? out.failures?.[0] : undefined);
    if (!service || service.status === "INACTIVE") {
      const reason = failure?.reason ?? service?.status ?? "MISSING";
      if (reason === "MISSING" || reason === "INACTIVE") throw serviceNotFound(target, reason);
      throw new DeploybotError(
        ErrorCode.AwsFailed,
        `ECS could not describe ${serviceSubject(target)}: ${reason}${detail(failure?.detail)}`,
      );
    }
    if (!service.serviceArn || !service.taskDefinition) {
      throw incomplete(context, "it has no ARN or task definition");
    }
    return {
      serviceArn: service.serviceArn,
      taskDefinitionArn: service.taskDefinition,
      desiredCount: service.desiredCount ?? 0,
      runningCount: service.runningCount ?? 0,
      pendingCount: service.pendingCount ?? 0,
    };
  }

  async describeTaskDefinition(target: EcsTarget, taskDefinition: string): Promise<TaskDefinition> {
    const context = this.context(target, "ecs:DescribeTaskDefinition", `task definition ${taskDefinition}`);
    const out = await this.call(context, (client, sdk) =>
      client.send(new sdk.DescribeTaskDefinitionCommand({ taskDefinition, include: ["TAGS"] })),
    );
    if (!out.taskDefinition) throw incomplete(context, "the answer held no task definition");
    return toTaskDefinition(out.taskDefinition, out.tags ?? [], context);
  }

  async registerTaskDefinition(target: EcsTarget, base: TaskDefinition, image: string): Promise<TaskDefinition> {
    const input = newRevisionInput(target, base, image);
    const context = this.context(
      target,
      "ecs:RegisterTaskDefinition",
      `a new revision of task definition ${input.family}`,
    );
    if (input.tags) context.permissionHint = "ecs:RegisterTaskDefinition and ecs:TagResource";
    if (input.taskRoleArn || input.executionRoleArn) {
      context.permissionHint = `${context.permissionHint ?? "ecs:RegisterTaskDefinition"} and iam:PassRole on its roles`;
    }
    const out = await this.call(context, (client, sdk) => client.send(new sdk.RegisterTaskDefinitionCommand(input)));
    if (!out.taskDefinition) throw incomplete(context, "the answer held no task definition");
    return toTaskDefinition(out.taskDefinition, out.tags ?? [], context);
  }

  async updateService(
    target: EcsTarget,
    taskDefinitionArn: string,
    strategy: DeploymentStrategy,
    desiredCount?: number,
  ): Promise<void> {
    // The service's own deployment settings that deploybot does not manage (CloudWatch alarms, blue/green
    // lifecycle hooks, task percentages) are read first and sent back, so a deploy never drops them.
    const read = this.context(target, "ecs:DescribeServices", serviceSubject(target));
    const described = await this.call(read, (client, sdk) =>
      client.send(new sdk.DescribeServicesCommand({ cluster: target.cluster, services: [target.service] })),
    );
    const current = described?.services?.find(
      (s) => s.serviceName === target.service || s.serviceArn?.endsWith(`/${target.service}`),
    )?.deploymentConfiguration;
    const kept = {
      ...(current?.alarms ? { alarms: current.alarms } : {}),
      ...(current?.lifecycleHooks?.length ? { lifecycleHooks: current.lifecycleHooks } : {}),
      ...(current?.maximumPercent !== undefined ? { maximumPercent: current.maximumPercent } : {}),
      ...(current?.minimumHealthyPercent !== undefined ? { minimumHealthyPercent: current.minimumHealthyPercent } : {}),
    };
    const context = this.context(target, "ecs:UpdateService", serviceSubject(target));
    await this.call(context, (client, sdk) =>
      client.send(
        new sdk.UpdateServiceCommand({
          cluster: target.cluster,
          service: target.service,
          taskDefinition: taskDefinitionArn,
          ...(desiredCount !== undefined ? { desiredCount } : {}),
          deploymentConfiguration: { ...kept, ...deploymentConfiguration(strategy) },
        }),
      ),
    );
  }

  async scaleService(target: EcsTarget, desiredCount: number): Promise<void> {
    const context = this.context(target, "ecs:UpdateService", serviceSubject(target));
    await this.call(context, (client, sdk) =>
      client.send(new sdk.UpdateServiceCommand({ cluster: target.cluster, service: target.service, desiredCount })),
    );
  }

  async listServiceDeployments(
    target: EcsTarget,
    since?: Date,
  ): Promise<Array<{ arn: string; status: EcsDeploymentStatus }>> {
    const context = this.context(target, "ecs:ListServiceDeployments", `deployments of ${serviceSubject(target)}`);
    const briefs: ServiceDeploymentBrief[] = [];
    let nextToken: string | undefined;
    do {
      const input: ListServiceDeploymentsCommandInput = { service: target.service, cluster: target.cluster };
      if (since) input.createdAt = { after: since };
      if (nextToken) input.nextToken = nextToken;
      const out = await this.call(context, (client, sdk) => client.send(new sdk.ListServiceDeploymentsCommand(input)));
      briefs.push(...(out.serviceDeployments ?? []));
      nextToken = out.nextToken;
    } while (nextToken);

    // ECS does not document the order, so sort here: newest first, as the port promises.
    const time = (b: ServiceDeploymentBrief) => (b.createdAt ?? b.startedAt)?.getTime() ?? 0;
    return briefs
      .filter((b): b is ServiceDeploymentBrief & { serviceDeploymentArn: string } => Boolean(b.serviceDeploymentArn))
      .sort((a, b) => time(b) - time(a))
      .map((b) => ({ arn: b.serviceDeploymentArn, status: toStatus(b.status, context) }));
  }

  async describeServiceDeployment(target: EcsTarget, arn: string): Promise<EcsDeployment> {
    const context = this.context(
      target,
      "ecs:DescribeServiceDeployments",
      `deployment ${arn} of ${serviceSubject(target)}`,
    );
    const out = await this.call(context, (client, sdk) =>
      client.send(new sdk.DescribeServiceDeploymentsCommand({ serviceDeploymentArns: [arn] })),
    );
    const deployment = out.serviceDeployments?.find((d) => d.serviceDeploymentArn === arn);
    if (!deployment) {
      const failure = out.failures?.find((f) => f.arn === arn) ?? out.failures?.[0];
      const reason = failure?.reason ?? "MISSING";
      throw new DeploybotError(
        reason === "MISSING" ? ErrorCode.NotFound : ErrorCode.AwsFailed,
        reason === "MISSING"
          ? `ECS has no ${context.subject}: it may be older than ECS keeps, or belong to another service`
          : `ECS could not describe ${context.subject}: ${reason}${detail(failure?.detail)}`,
      );
    }

    // A service deployment names service revisions, not task definitions; those need one more call.
    const targetRevision = deployment.targetServiceRevision?.arn;
    const sourceRevision = deployment.sourceServiceRevisions?.find((r) => r.arn)?.arn;
    if (!targetRevision) throw incomplete(context, "it names no target service revision");
    const taskDefinitions = await this.revisionTaskDefinitionsOf(
      target,
      [targetRevision, sourceRevision].filter((r): r is string => Boolean(r)),
    );
    const targetTaskDefinitionArn = taskDefinitions.get(targetRevision);
    if (!targetTaskDefinitionArn)
      throw incomplete(context, `service revision ${targetRevision} names no task definition`);

    const result: EcsDeployment = {
      arn,
      status: toStatus(deployment.status, context),
      targetTaskDefinitionArn,
      desiredCount: deployment.targetServiceRevision?.requestedTaskCount ?? 0,
      runningCount: deployment.targetServiceRevision?.runningTaskCount ?? 0,
    };
    const statusReason = deployment.statusReason ?? deployment.rollback?.reason;
    if (statusReason) result.statusReason = statusReason;
    const sourceTaskDefinitionArn = sourceRevision ? taskDefinitions.get(sourceRevision) : undefined;
    if (sourceTaskDefinitionArn) result.sourceTaskDefinitionArn = sourceTaskDefinitionArn;
    if (deployment.startedAt) result.startedAt = deployment.startedAt;
    // A stopped or rolled-back deployment may only carry stoppedAt; either way it is when it ended.
    const finishedAt = deployment.finishedAt ?? deployment.stoppedAt;
    if (finishedAt) result.finishedAt = finishedAt;
    return result;
  }

  async stopServiceDeployment(target: EcsTarget, arn: string): Promise<void> {
    const context = this.context(target, "ecs:StopServiceDeployment", `deployment ${arn} of ${serviceSubject(target)}`);
    await this.call(context, (client, sdk) =>
      client.send(new sdk.StopServiceDeploymentCommand({ serviceDeploymentArn: arn, stopType: "ROLLBACK" })),
    );
  }

  private async revisionTaskDefinitionsOf(target: EcsTarget, revisionArns: string[]): Promise<Map<string, string>> {
    const missing = revisionArns.filter((r) => !this.revisionTaskDefinitions.has(r));
    if (missing.length > 0) {
      const context = this.context(
        target,
        "ecs:DescribeServiceRevisions",
        `service revisions of ${serviceSubject(target)}`,
      );
      const out = await this.call(context, (client, sdk) =>
        client.send(new sdk.DescribeServiceRevisionsCommand({ serviceRevisionArns: missing })),
      );
      for (const revision of out.serviceRevisions ?? []) {
        if (revision.serviceRevisionArn && revision.taskDefinition) {
          this.revisionTaskDefinitions.set(revision.serviceRevisionArn, revision.taskDefinition);
        }
      }
    }
    const found = new Map<string, string>();
    for (const r of revisionArns) {
      const taskDefinition = this.revisionTaskDefinitions.get(r);
      if (taskDefinition) found.set(r, taskDefinition);
    }
    return found;
  }

  private context(target: EcsTarget, action: string, subject: string): CallContext {
    return { target, action, subject };
  }

  /** How a call for `context` fails: at once when retrying cannot help, else after the retries. */
  private failures(context: CallContext): Pick<RetryFailure, "notRetryable" | "exhausted"> {
    return {
      notRetryable: (err) => toDeploybotError(err, context),
      exhausted: (err, attempts, what) =>
        new DeploybotError(
          ErrorCode.AwsFailed,
          `ECS ${what} ${context.action} for ${context.subject} ${attempts} times in a row (last: ${describeError(err)}): try again in a minute`,
          { cause: err, transient: true },
        ),
    };
  }

  /** Sends with exponential backoff on throttling and server errors; everything else is mapped at once. */
  private async call<T>(context: CallContext, send: (client: ECSClient, sdk: EcsSdk) => Promise<T>): Promise<T> {
    const { client, sdk } = await this.client(context.target.region);
    return withRetry(this.retry, () => countAwsErrors(context.action, send(client, sdk)), this.failures(context));
  }
}

/** The deploymentConfiguration deploybot sends with UpdateService: the circuit breaker always rolls back. */
export function deploymentConfiguration(strategy: DeploymentStrategy): SdkDeploymentConfiguration {
  const config: SdkDeploymentConfiguration = {
    deploymentCircuitBreaker: { enable: true, rollback: true },
    strategy: strategy.type,
  };
  switch (strategy.type) {
    case "ROLLING":
      if (strategy.maximumPercent !== undefined) config.maximumPercent = strategy.maximumPercent;
      if (strategy.minimumHealthyPercent !== undefined) config.minimumHealthyPercent = strategy.minimumHealthyPercent;
      break;
    case "BLUE_GREEN":
      config.bakeTimeInMinutes = strategy.bakeTimeMinutes;
      break;
    case "LINEAR":
      config.linearConfiguration = {
        stepPercent: strategy.stepPercent,
        stepBakeTimeInMinutes: strategy.stepBakeMinutes,
      };
      break;
    case "CANARY":
      config.canaryConfiguration = {
        canaryPercent: strategy.canaryPercent,
        canaryBakeTimeInMinutes: strategy.canaryBakeMinutes,
      };
      break;
  }
  return config;
}

function toStatus(status: string | undefined, context: CallContext): EcsDeploymentStatus {
  if (status && STATUSES.has(status)) return status as EcsDeploymentStatus;
  throw new DeploybotError(
    ErrorCode.AwsFailed,
    `ECS reported status ${status ?? "(none)"} for ${context.subject}, which deploybot does not know: deploybot needs updating for it`,
  );
}
