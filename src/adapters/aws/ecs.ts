import type {
  DescribeServicesCommandOutput,
  ECSClient,
  ListServiceDeploymentsCommandInput,
  RegisterTaskDefinitionCommandInput,
  DeploymentConfiguration as SdkDeploymentConfiguration,
  TaskDefinition as SdkTaskDefinition,
  ServiceDeploymentBrief,
  Tag,
} from "@aws-sdk/client-ecs";
import { DeploybotError, ErrorCode } from "../../errors.js";
import type {
  DeploymentStrategy,
  EcsDeployment,
  EcsDeploymentStatus,
  EcsPort,
  EcsTarget,
  ServiceState,
  TaskDefinition,
} from "../../ports.js";
import {
  type AwsRetryOptions,
  describeError,
  type RetryFailure,
  type RetrySettings,
  retrySettings,
  shape,
  withoutSdkLogging,
  withRetry,
} from "./retry.js";

type EcsSdk = typeof import("@aws-sdk/client-ecs");
let sdkModule: Promise<EcsSdk> | undefined;
/** The SDK is loaded on the first call, not at start: Slack mode answers sooner, and the console never loads it. */
const loadSdk = (): Promise<EcsSdk> => {
  sdkModule ??= import("@aws-sdk/client-ecs");
  return sdkModule;
};

/** How AwsEcs retries throttling and server errors (see AwsRetryOptions). */
export type AwsEcsRetry = AwsRetryOptions;

/** What `TaskDefinition.raw` holds for this adapter: the SDK's description, copied by registerTaskDefinition. */
interface RawTaskDefinition {
  taskDefinition: SdkTaskDefinition;
  tags: Tag[];
}

/** The action (for IAM messages) and the thing acted on (for every message) of one ECS call. */
interface CallContext {
  action: string;
  subject: string;
  target: EcsTarget;
  /** The action AccessDenied most likely means, when it is not `action` (e.g. tagging on register). */
  permissionHint?: string;
}

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
  private readonly clients = new Map<string, ECSClient>();
  private readonly createClient: ((region: string) => ECSClient) | undefined;
  private readonly retry: RetrySettings;
  /** describeService callers of this turn, per region and cluster, waiting to be sent as one DescribeServices. */
  private readonly describing = new Map<string, DescribeWaiter[]>();
  /** Service revisions never change, so their task definitions are looked up once. */
  private readonly revisionTaskDefinitions = new Map<string, string>();

  constructor(createClient?: (region: string) => ECSClient, retry: AwsEcsRetry = {}) {
    this.createClient = createClient;
    this.retry = retrySettings(retry);
  }

  async describeService(target: EcsTarget): Promise<ServiceState> {
    const context = this.context(target, "ecs:DescribeServices", serviceSubject(target));
    const { out, alone } = await this.describeTogether(context);
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
    const raw = base.raw;
    if (!isRawTaskDefinition(raw)) {
      throw new DeploybotError(
        ErrorCode.AwsFailed,
        `task definition ${base.family}:${base.revision} carries no ECS description to copy: describe it with this adapter before registering a new revision`,
      );
    }
    const source = raw.taskDefinition;
    const containers = source.containerDefinitions ?? [];
    if (!containers.some((c) => c.name === target.container)) {
      throw new DeploybotError(
        ErrorCode.NotFound,
        `container ${target.container} is not in task definition ${base.family}:${base.revision} (it has ${
          containers.map((c) => c.name).join(", ") || "no containers"
        }): check ecs.container for ECS service ${target.service} in the config`,
      );
    }
    const input: RegisterTaskDefinitionCommandInput = {
      family: source.family ?? base.family,
      containerDefinitions: containers.map((c) => (c.name === target.container ? { ...c, image } : c)),
    };
    copyDefined(input, source, [
      "taskRoleArn",
      "executionRoleArn",
      "networkMode",
      "volumes",
      "placementConstraints",
      "requiresCompatibilities",
      "cpu",
      "memory",
      "pidMode",
      "ipcMode",
      "proxyConfiguration",
      "inferenceAccelerators",
      "ephemeralStorage",
      "runtimePlatform",
      "enableFaultInjection",
    ]);
    if (raw.tags.length > 0) input.tags = raw.tags;

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

  async updateService(target: EcsTarget, taskDefinitionArn: string, strategy: DeploymentStrategy): Promise<void> {
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
          deploymentConfiguration: { ...kept, ...deploymentConfiguration(strategy) },
        }),
      ),
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

  private async client(region: string): Promise<{ client: ECSClient; sdk: EcsSdk }> {
    const sdk = await loadSdk();
    let client = this.clients.get(region);
    if (!client) {
      // The SDK's own retries are turned off so that maxAttempts means what it says (4, not 4 x 3 calls).
      client = withoutSdkLogging(this.createClient?.(region) ?? new sdk.ECSClient({ region, maxAttempts: 1 }));
      this.clients.set(region, client);
    }
    return { client, sdk };
  }

  /**
   * DescribeServices for this service together with the others of its region and cluster asked for in the same
   * turn of the event loop (a /status overview asks for dozens at once): one call per 10 services, as ECS allows,
   * instead of one each. Each caller gets the whole answer and picks its own service (`alone` when it was the only
   * one asked), and a failed call fails each caller with its own message.
   */
  private describeTogether(context: CallContext): Promise<{ out: DescribeServicesCommandOutput; alone: boolean }> {
    const { region, cluster } = context.target;
    const key = `${region}\u0000${cluster}`;
    return new Promise((resolve, reject) => {
      let waiting = this.describing.get(key);
      if (!waiting) {
        waiting = [];
        this.describing.set(key, waiting);
        queueMicrotask(() => {
          this.describing.delete(key);
          this.sendDescribes(region, cluster, waiting as DescribeWaiter[]);
        });
      }
      waiting.push({ context, resolve, reject });
    });
  }

  private sendDescribes(region: string, cluster: string, waiting: DescribeWaiter[]): void {
    const services = [...new Set(waiting.map((w) => w.context.target.service))];
    for (let i = 0; i < services.length; i += DESCRIBE_SERVICES_MAX) {
      const batch = new Set(services.slice(i, i + DESCRIBE_SERVICES_MAX));
      const callers = waiting.filter((w) => batch.has(w.context.target.service));
      this.client(region)
        .then(({ client, sdk }) =>
          withRetry(this.retry, () => client.send(new sdk.DescribeServicesCommand({ cluster, services: [...batch] })), {
            notRetryable: (err) => new CallFailure(err),
            exhausted: (err, attempts, what) => new CallFailure(err, { attempts, what }),
          }),
        )
        .then(
          (out) => {
            for (const w of callers) w.resolve({ out, alone: services.length === 1 });
          },
          (err: unknown) => {
            for (const w of callers)
              w.reject(err instanceof CallFailure ? err.for(w.context, (c) => this.failures(c)) : err);
          },
        );
    }
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
    return withRetry(this.retry, () => send(client, sdk), this.failures(context));
  }
}

/** DescribeServices takes at most 10 services a call. */
const DESCRIBE_SERVICES_MAX = 10;

interface DescribeWaiter {
  context: CallContext;
  resolve: (answer: { out: DescribeServicesCommandOutput; alone: boolean }) => void;
  reject: (err: unknown) => void;
}

/** A call shared by several callers failed: each caller's error is worded for its own service. */
class CallFailure extends Error {
  constructor(
    readonly original: unknown,
    readonly exhausted?: { attempts: number; what: string },
  ) {
    super(describeError(original));
  }

  for(context: CallContext, failures: (c: CallContext) => Pick<RetryFailure, "notRetryable" | "exhausted">): Error {
    const f = failures(context);
    return this.exhausted
      ? f.exhausted(this.original, this.exhausted.attempts, this.exhausted.what)
      : f.notRetryable(this.original);
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

function toTaskDefinition(source: SdkTaskDefinition, tags: Tag[], context: CallContext): TaskDefinition {
  if (!source.taskDefinitionArn || !source.family || source.revision === undefined) {
    throw incomplete(context, "the task definition has no ARN, family or revision");
  }
  const raw: RawTaskDefinition = { taskDefinition: source, tags };
  return {
    arn: source.taskDefinitionArn,
    family: source.family,
    revision: source.revision,
    containers: (source.containerDefinitions ?? []).map((c) => ({ name: c.name ?? "", image: c.image ?? "" })),
    raw,
  };
}

function isRawTaskDefinition(raw: unknown): raw is RawTaskDefinition {
  if (typeof raw !== "object" || raw === null) return false;
  const { taskDefinition, tags } = raw as Partial<RawTaskDefinition>;
  return typeof taskDefinition === "object" && taskDefinition !== null && Array.isArray(tags);
}

/** Copies the named fields that are set, so the input sent holds no `undefined` keys. */
function copyDefined<K extends keyof RegisterTaskDefinitionCommandInput & keyof SdkTaskDefinition>(
  into: RegisterTaskDefinitionCommandInput,
  from: SdkTaskDefinition,
  keys: K[],
): void {
  for (const key of keys) {
    const value = from[key];
    if (value !== undefined && value !== null) {
      (into as Record<K, unknown>)[key] = value;
    }
  }
}

function toStatus(status: string | undefined, context: CallContext): EcsDeploymentStatus {
  if (status && STATUSES.has(status)) return status as EcsDeploymentStatus;
  throw new DeploybotError(
    ErrorCode.AwsFailed,
    `ECS reported status ${status ?? "(none)"} for ${context.subject}, which deploybot does not know: deploybot needs updating for it`,
  );
}

function serviceSubject(target: EcsTarget): string {
  return `ECS service ${target.service} in cluster ${target.cluster} (${target.region})`;
}

function configHint(target: EcsTarget): string {
  return `check the ecs block (region ${target.region}, cluster ${target.cluster}, service ${target.service}) of this service's environment in the config`;
}

function serviceNotFound(target: EcsTarget, why: string): DeploybotError {
  const state = why === "INACTIVE" ? "is INACTIVE (deleted)" : "not found";
  return new DeploybotError(
    ErrorCode.NotFound,
    `ECS service ${target.service} ${state} in cluster ${target.cluster} (${target.region}): ${configHint(target)}`,
  );
}

function incomplete(context: CallContext, what: string): DeploybotError {
  return new DeploybotError(
    ErrorCode.AwsFailed,
    `ECS answered ${context.action} for ${context.subject}, but ${what}: try again, and report it if it persists`,
  );
}

function detail(text: string | undefined): string {
  return text ? ` (${text})` : "";
}

/** Turns one SDK error into a DeploybotError that says what failed and what to change. */
function toDeploybotError(err: unknown, context: CallContext): DeploybotError {
  if (err instanceof DeploybotError) return err;
  const e = shape(err);
  const aws = e.message ? ` AWS said: ${e.message}` : "";
  const { target, action, subject } = context;
  const fail = (code: ErrorCode, message: string) => new DeploybotError(code, message, { cause: err });
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
    case "CredentialsProviderError":
      return fail(
        ErrorCode.AwsFailed,
        `deploybot found no AWS credentials to call ${action}: run it with an IAM role or set AWS_PROFILE / AWS_ACCESS_KEY_ID.${aws}`,
      );
    case "ExpiredTokenException":
    case "UnrecognizedClientException":
    case "InvalidSignatureException":
      return fail(
        ErrorCode.AwsFailed,
        `AWS did not accept deploybot's credentials for ${action} (${e.name}): refresh them or check the IAM role.${aws}`,
      );
    default:
      return fail(ErrorCode.AwsFailed, `ECS ${action} failed for ${subject}: ${describeError(err)}`);
  }
}
