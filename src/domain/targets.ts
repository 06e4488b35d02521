import type { Config, EnvironmentPolicy, ServiceEnvironment } from "../config/schema.js";
import type { EcsTarget } from "../ports.js";

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
