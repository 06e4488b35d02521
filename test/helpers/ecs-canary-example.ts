import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { threadId } from "node:worker_threads";
import { parse, stringify } from "yaml";

/** examples/deploybot.yml as it is: web production moves its traffic in deploybot's own steps. */
export const STEPS_EXAMPLE = fileURLToPath(new URL("../../examples/deploybot.yml", import.meta.url));

/** web production's strategy before traffic steps: ECS's own CANARY, 10% for 5 minutes, then the rest. */
export const ECS_CANARY = { type: "CANARY", canary_percent: 10, canary_bake: "5m" } as const;

let written: string | undefined;

/**
 * examples/deploybot.yml with web production on ECS's own CANARY (10% for 5 min, one ECS service behind its target
 * group), as the example was before traffic steps. The suites of the safety loop (deploy, breach, page, rollback, the
 * crash matrix) drive ECS's rollout path on it, which every target without a STEPS strategy still takes; traffic
 * steps have suites of their own on the example as it is. Written once per worker, next to nothing else.
 */
export function ecsCanaryExample(): string {
  if (written) return written;
  const doc = parse(readFileSync(STEPS_EXAMPLE, "utf8")) as {
    services: { web: { environments: { production: Record<string, unknown> } } };
  };
  const production = doc.services.web.environments.production;
  production.strategy = { ...ECS_CANARY };
  production.load_balancer = {
    name: "app/comply360-prod/50dc6c495c0c9188",
    target_group: "targetgroup/comply360-web/73e2d6bc24d8a067",
  };
  const file = join(tmpdir(), `deploybot-ecs-canary-${process.pid}-${threadId}.yml`);
  writeFileSync(file, stringify(doc));
  written = file;
  return file;
}
