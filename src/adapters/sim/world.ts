import type { Clock } from "../../clock.js";
import type { Config } from "../../config/schema.js";
import type { EcsDeployment, TaskDefinition } from "../../ports.js";
/** Where the world keeps its state between runs: a synchronous key-value table. */
export interface WorldKv {
  get<T>(key: string): T | undefined;
  set(key: string, value: unknown): void;
}

/** What the simulated adapters report as they are called: the console prints these as `aws` and `page` lines. */
export type SimEvent =
  | { kind: "aws"; api: "ecs" | "cloudwatch" | "elbv2"; op: string; input: Record<string, unknown> }
  | {
      kind: "page";
      action: "trigger" | "acknowledge" | "resolve";
      dedupKey: string;
      severity: string;
      summary: string;
    };

interface SimService {
  region: string;
  cluster: string;
  service: string;
  container: string;
  taskDefinitionArn: string;
  desiredCount: number;
  deployments: Array<
    Omit<EcsDeployment, "startedAt" | "finishedAt"> & {
      startedAt: string;
      finishedAt?: string;
      failAt?: string;
      rollbackAt?: string;
    }
  >;
}

interface WorldState {
  services: Record<string, SimService>;
  taskDefinitions: Record<string, Omit<TaskDefinition, "raw">>;
  failNext: string[];
  /** Metric value changes per `service/environment/metric`, in time order. */
  metrics: Record<string, Array<{ at: string; value: number }>>;
  onCall: string | null;
  pagerdutyReachable: boolean;
  clock: string;
  nextId: number;
}

export const SIM_ACCOUNT = "123456789012";

/**
 * The simulated AWS and PagerDuty world behind the console and the scenario tests: ECS services and
 * task definitions, metric values, who is on call. It is kept in the store's kv table, so a console
 * started again on the same db file carries on where the last run stopped.
 */
export class SimWorld {
  private state: WorldState;
  private listeners: Array<(e: SimEvent) => void> = [];

  constructor(
    readonly config: Config,
    readonly clock: Clock,
    private readonly store?: WorldKv,
  ) {
    const saved = store?.get<WorldState>("sim.world");
    this.state = saved ?? this.fresh(config.simulation.oncall ?? null);
    this.save();
  }

  /** The simulated time the world was last saved at (the console resumes from it). */
  get savedClock(): Date | undefined {
    return this.store?.get<WorldState>("sim.world") ? new Date(this.state.clock) : undefined;
  }

  private fresh(onCall: string | null): WorldState {
    const state: WorldState = {
      services: {},
      taskDefinitions: {},
      failNext: [],
      metrics: {},
      onCall,
      pagerdutyReachable: true,
      clock: this.clock.now().toISOString(),
      nextId: 1,
    };
    for (const [svcName, svc] of Object.entries(this.config.services)) {
      for (const [envName, se] of Object.entries(svc.environments)) {
        const family = `${se.ecs.cluster}-${se.ecs.service}`;
        const arn = `arn:aws:ecs:${se.ecs.region}:${SIM_ACCOUNT}:task-definition/${family}:1`;
        state.taskDefinitions[arn] = {
          arn,
          family,
          revision: 1,
          containers: [
            {
              name: se.ecs.container,
              image: `${SIM_ACCOUNT}.dkr.ecr.${se.ecs.region}.amazonaws.com/${svcName}:${this.config.simulation.initial_version}`,
            },
          ],
        };
        state.services[this.key(se.ecs.cluster, se.ecs.service)] = {
          region: se.ecs.region,
          cluster: se.ecs.cluster,
          service: se.ecs.service,
          container: se.ecs.container,
          taskDefinitionArn: arn,
          desiredCount: envName === "production" ? 4 : 2,
          deployments: [],
        };
      }
    }
    return state;
  }

  key(cluster: string, service: string): string {
    return `${cluster}/${service}`;
  }

  onEvent(listener: (e: SimEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  emit(e: SimEvent): void {
    for (const l of this.listeners) l(e);
  }

  /** Mutates the state and persists it in one step. */
  update<T>(fn: (s: WorldState) => T): T {
    const out = fn(this.state);
    this.save();
    return out;
  }

  read(): Readonly<WorldState> {
    return this.state;
  }

  save(): void {
    this.state.clock = this.clock.now().toISOString();
    this.store?.set("sim.world", this.state);
  }

  nextId(): number {
    return this.update((s) => s.nextId++);
  }

  /** `:metric SERVICE ENV NAME VALUE`: from now on the metric reads VALUE. */
  setMetric(service: string, environment: string, metric: string, value: number): void {
    const at = this.clock.now().toISOString();
    this.update((s) => {
      const list = s.metrics[`${service}/${environment}/${metric}`] ?? [];
      list.push({ at, value });
      s.metrics[`${service}/${environment}/${metric}`] = list;
    });
  }

  /** The metric's value at `at` (the latest change at or before it), or the default reading. */
  metricAt(service: string, environment: string, metric: string, at: Date): number | undefined {
    const list = this.state.metrics[`${service}/${environment}/${metric}`] ?? [];
    let value: number | undefined;
    for (const change of list) if (Date.parse(change.at) <= at.getTime()) value = change.value;
    return value ?? DEFAULT_METRICS[metric];
  }

  /** `:fail SERVICE ENV`: the next deployment of that ECS service fails to stabilise. */
  failNext(cluster: string, service: string): void {
    this.update((s) => {
      s.failNext.push(this.key(cluster, service));
    });
  }

  setOnCall(user: string | null): void {
    this.update((s) => {
      s.onCall = user;
    });
  }

  setPagerDutyReachable(reachable: boolean): void {
    this.update((s) => {
      s.pagerdutyReachable = reachable;
    });
  }
}

/** What a healthy simulated service reads when nobody has set a value. */
export const DEFAULT_METRICS: Record<string, number> = {
  error_rate: 0.1,
  request_count: 1200,
  p95_latency: 0.35,
  p99_latency: 0.8,
  healthy_hosts: 4,
  cpu: 35,
  memory: 55,
};
