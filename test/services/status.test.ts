import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { ManualClock } from "../../src/clock.js";
import { parseConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import type { EcsPort, EcsTarget, ServiceState, TaskDefinition } from "../../src/ports.js";
import { OVERVIEW_LIMIT, StatusService } from "../../src/services/status.js";
import { header } from "../../src/slack/blocks.js";
import { footer, overviewBlocks } from "../../src/slack/status.js";
import { Store } from "../../src/store/index.js";

/** The example config with `extra` more services (svc001...), each in production like web. */
function configWith(extra: number): Config {
  const raw = parse(readFileSync(new URL("../../examples/deploybot.yml", import.meta.url), "utf8"), {
    maxAliasCount: 10_000,
  }) as Record<string, unknown>;
  const services = raw.services as Record<string, { environments: Record<string, Record<string, unknown>> }>;
  const web = services.web?.environments.production as Record<string, unknown>;
  for (let i = 1; i <= extra; i++) {
    const name = `svc${String(i).padStart(3, "0")}`;
    services[name] = {
      environments: {
        production: { ...web, ecs: { cluster: "c", service: name, container: name, region: "af-south-1" } },
      },
    };
  }
  return parseConfig(stringify(raw, { aliasDuplicateObjects: false }), "examples/deploybot.yml + services");
}

/** ECS that runs revision 2 everywhere and counts what it is asked. */
class CountingEcs implements Partial<EcsPort> {
  readonly described: string[] = [];
  async describeService(t: EcsTarget): Promise<ServiceState> {
    this.described.push(`${t.service}/${t.cluster}`);
    return {
      serviceArn: `arn:${t.service}`,
      taskDefinitionArn: `${t.service}:2`,
      desiredCount: 2,
      runningCount: 2,
      pendingCount: 0,
    };
  }
  async describeTaskDefinition(t: EcsTarget, arn: string): Promise<TaskDefinition> {
    return { arn, family: t.service, revision: 2, containers: [{ name: t.container, image: `${t.service}:v2` }] };
  }
}

async function statusOf(config: Config) {
  const store = Store.sqlite(":memory:");
  const ecs = new CountingEcs();
  const clock = new ManualClock("2026-11-24T08:30:00Z");
  const status = new StatusService({ config, store, ecs: ecs as unknown as EcsPort, clock });
  return { store, ecs, clock, status };
}

async function deployInFlight(store: Store, service: string, at: Date) {
  const d = await store.deployments.create(
    { kind: "deploy", service, environment: "production", version: "v3", requestedBy: "alice" },
    at,
  );
  await store.deployments.apply(d.id, "allow", at);
  await store.locks.acquire(service, "production", d.id, "alice", at);
  return store.deployments.apply(d.id, "start", at, { startedAt: at.toISOString() });
}

describe("the /status overview", () => {
  it("lists every target of a small config in config order, with its lock and what is in flight", async () => {
    const { store, status, clock } = await statusOf(configWith(0));
    const d = await deployInFlight(store, "api", clock.now());
    const o = await status.overview();
    expect(o.targets.map((t) => `${t.service}/${t.environment}`)).toEqual([
      "web/staging",
      "web/production",
      "api/staging",
      "api/production",
    ]);
    expect(o.notListed).toBe(0);
    const api = o.targets[3];
    expect(api?.inFlight?.id).toBe(d.id);
    expect(api?.lock?.deploymentId).toBe(d.id);
    expect(api?.version).toBe("v2");
    expect(o.targets[1]?.inFlight).toBeNull();
  });

  it("lists at most a Slack message's worth of targets, busy ones first, and reads ECS only for those", async () => {
    const { store, status, ecs, clock } = await statusOf(configWith(60));
    await deployInFlight(store, "svc060", clock.now());
    const o = await status.overview();
    expect(o.targets).toHaveLength(OVERVIEW_LIMIT);
    expect(o.notListed).toBe(64 - OVERVIEW_LIMIT);
    expect(o.busyNotListed).toBe(0);
    // The busy target is listed even though 63 come before it in the config, and the order stays the config's.
    expect(o.targets.map((t) => t.service)).toContain("svc060");
    expect(o.targets.at(-1)?.service).toBe("svc060");
    expect(ecs.described).toHaveLength(OVERVIEW_LIMIT);

    // Rendered as the reply is: within Slack's 50 blocks per message, saying what it left out and how to see it.
    const blocks = [
      header("deploybot status"),
      ...overviewBlocks(o, clock.now(), (n) => n, "/deploy-status"),
      ...footer(clock.now(), "/deploy-status"),
    ];
    expect(blocks.length).toBeLessThanOrEqual(50);
    expect(JSON.stringify(blocks.at(-2))).toContain("…and 19 more: `/deploy-status SERVICE` shows one service.");
  });
});
