import type { RegisterTaskDefinitionCommandInput, TaskDefinition as SdkTaskDefinition, Tag } from "@aws-sdk/client-ecs";
import { DeploybotError, ErrorCode } from "../../errors.js";
import type { EcsTarget, TaskDefinition } from "../../ports.js";
import { type CallContext, incomplete } from "./ecs-errors.js";

// Task definitions between the SDK and the port: what DescribeTaskDefinition returned, kept whole in `raw`,
// and the RegisterTaskDefinition input that copies it with a new image.

/** What `TaskDefinition.raw` holds for this adapter: the SDK's description, copied by registerTaskDefinition. */
interface RawTaskDefinition {
  taskDefinition: SdkTaskDefinition;
  tags: Tag[];
}

/** The port's view of an SDK task definition, the SDK's own description kept in `raw` for copying. */
export function toTaskDefinition(source: SdkTaskDefinition, tags: Tag[], context: CallContext): TaskDefinition {
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

/** The RegisterTaskDefinition input for a copy of `base` with `image` in the target's container. */
export function newRevisionInput(
  target: EcsTarget,
  base: TaskDefinition,
  image: string,
): RegisterTaskDefinitionCommandInput {
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
  return input;
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
