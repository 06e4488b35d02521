import type { Config, EnvironmentPolicy, ServiceEnvironment } from "../config/schema.js";
import type { DeploymentStrategy, EcsTarget } from "../ports.js";

/** A task definition revision such as `web:25`, as opposed to an image tag. */
export const REVISION_RE = /^[A-Za-z0-9_-]+:\d+$/;

/** One service in one environment, with everything the config says about it. */
export interface Target {
  service: string;
  environment: string;
  settings: ServiceEnvironment;
  policy: EnvironmentPolicy;
  timeZone: string;
  ecs: EcsTarget;
}

/** Looks up a configured service/environment pair; undefined when the service does not run there. */
export function findTarget(config: Config, service: string, environment: string): Target | undefined {
  const settings = config.services[service]?.environments[environment];
  const policy = config.environments[environment];
  if (!settings || !policy) return undefined;
  return { service, environment, settings, policy, timeZone: policy.timezone ?? config.timezone, ecs: settings.ecs };
}

/** Every configured service × environment, in config order. */
export function allTargets(config: Config): Target[] {
  return Object.entries(config.services).flatMap(([service, svc]) =>
    Object.keys(svc.environments).map((env) => findTarget(config, service, env) as Target),
  );
}

export function timeZoneOf(config: Config, environment: string): string {
  return config.environments[environment]?.timezone ?? config.timezone;
}

/** The config's strategy in the port's terms. */
export function strategyOf(settings: ServiceEnvironment): DeploymentStrategy {
  const s = settings.strategy;
  switch (s.type) {
    case "ROLLING":
      return { type: "ROLLING" };
    case "BLUE_GREEN":
      return { type: "BLUE_GREEN", bakeTimeMinutes: Math.round(s.bake_time / 60_000) };
    case "LINEAR":
      return { type: "LINEAR", stepPercent: s.step_percent, stepBakeMinutes: Math.round(s.step_bake / 60_000) };
    case "CANARY":
      return { type: "CANARY", canaryPercent: s.canary_percent, canaryBakeMinutes: Math.round(s.canary_bake / 60_000) };
  }
}

/** The version a task definition runs: the image tag of the configured container. */
export function versionOfImage(image: string): string {
  const name = image.slice(image.lastIndexOf("/") + 1);
  const at = name.indexOf("@");
  if (at >= 0) return name.slice(at + 1, at + 20);
  const colon = name.lastIndexOf(":");
  return colon >= 0 ? name.slice(colon + 1) : "latest";
}

/** The same image with another tag. */
export function imageWithTag(image: string, tag: string): string {
  const slash = image.lastIndexOf("/");
  const name = image.slice(slash + 1).replace(/[:@].*$/, "");
  return `${image.slice(0, slash + 1)}${name}:${tag}`;
}
