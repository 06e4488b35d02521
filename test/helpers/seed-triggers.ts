import type { Config, Guardrail } from "../../src/config/schema.js";

/** The name the simulated CloudWatch knows a metric by: a preset's own, a custom metric's name, an expression's label. */
export function simName(g: Guardrail): string {
  const m = g.metric;
  return typeof m === "string" ? m : "expression" in m ? (m.label ?? g.name) : m.name;
}

export interface SeedTrigger {
  seed: string;
  file: string;
  service: string;
  metric: string;
  threshold: string;
  action: "rollback" | "page" | "alert";
  period?: number;
  for?: number;
}

/**
 * Every rollback trigger (and the alerts beside them) that a seed runbook names, where a metric can express it:
 * the example config, the service, the metric by the name the simulated CloudWatch knows it by (see simName),
 * the threshold and the action. seeds.test.ts checks each is configured; seed-triggers.test.ts makes each breach.
 */
export const SEED_TRIGGERS: SeedTrigger[] = [
  // seed 000 §5.1 and §6.2
  {
    seed: "000 error rate",
    file: "deploybot.yml",
    service: "web",
    metric: "error_rate",
    threshold: "> 1%",
    action: "rollback",
    for: 300_000,
  },
  {
    seed: "000 p95",
    file: "deploybot.yml",
    service: "web",
    metric: "p95_latency",
    threshold: "> 2s",
    action: "rollback",
  },
  {
    seed: "000 service down",
    file: "deploybot.yml",
    service: "api",
    metric: "healthy_hosts",
    threshold: "< 1",
    action: "rollback",
  },
  {
    seed: "000 pool exhausted",
    file: "deploybot.yml",
    service: "web",
    metric: "ConnectionPoolUtilization",
    threshold: ">= 100%",
    action: "page",
  },
  {
    seed: "000 disk",
    file: "deploybot.yml",
    service: "web",
    metric: "DiskUsedPercent",
    threshold: "> 90%",
    action: "page",
  },
  // seed 001
  {
    seed: "001 10x normal",
    file: "complinist.yml",
    service: "portal",
    metric: "error_rate",
    threshold: "> 10x baseline",
    action: "rollback",
  },
  {
    seed: "001 not accessible",
    file: "complinist.yml",
    service: "portal",
    metric: "healthy_hosts",
    threshold: "< 1",
    action: "rollback",
  },
  // seed 002
  {
    seed: "002 service down",
    file: "tickettoken.yml",
    service: "compliance",
    metric: "healthy_hosts",
    threshold: "< 1",
    action: "rollback",
  },
  {
    seed: "002 error rate",
    file: "tickettoken.yml",
    service: "compliance",
    metric: "error_rate",
    threshold: "> 5%",
    action: "rollback",
  },
  {
    seed: "002 database",
    file: "tickettoken.yml",
    service: "compliance",
    metric: "DatabaseConnectionFailures",
    threshold: "> 0",
    action: "rollback",
  },
  {
    seed: "002 redis",
    file: "tickettoken.yml",
    service: "compliance",
    metric: "RedisConnectionErrors",
    threshold: "> 0",
    action: "rollback",
  },
  {
    seed: "002 restarts",
    file: "tickettoken.yml",
    service: "compliance",
    metric: "RestartCount",
    threshold: "> 3",
    action: "alert",
    period: 600_000,
    for: 600_000,
  },
  // seed 003
  {
    seed: "003 p95",
    file: "multitenant.yml",
    service: "api",
    metric: "p95_latency",
    threshold: "> 500ms",
    action: "rollback",
  },
  {
    seed: "003 error rate",
    file: "multitenant.yml",
    service: "api",
    metric: "error_rate",
    threshold: "> 1%",
    action: "rollback",
  },
  { seed: "003 CPU", file: "multitenant.yml", service: "api", metric: "cpu", threshold: "> 90%", action: "rollback" },
  {
    seed: "003 memory",
    file: "multitenant.yml",
    service: "api",
    metric: "memory",
    threshold: "> 90%",
    action: "rollback",
  },
  {
    seed: "003 pool",
    file: "multitenant.yml",
    service: "api",
    metric: "PoolUtilization",
    threshold: "> 95%",
    action: "rollback",
  },
  {
    seed: "003 auth failures",
    file: "multitenant.yml",
    service: "api",
    metric: "LoginFailures",
    threshold: "> 5x baseline",
    action: "rollback",
  },
  {
    seed: "003 unauthorized",
    file: "multitenant.yml",
    service: "api",
    metric: "AccessDenied",
    threshold: "> 5x baseline",
    action: "rollback",
  },
  {
    seed: "003 audit log",
    file: "multitenant.yml",
    service: "api",
    metric: "WriteFailures",
    threshold: "> 0",
    action: "rollback",
  },
  // seed 004
  {
    seed: "004 frontend error rate",
    file: "ecommerce.yml",
    service: "frontend",
    metric: "error_rate",
    threshold: "> 5%",
    action: "rollback",
    for: 300_000,
  },
  {
    seed: "004 frontend response",
    file: "ecommerce.yml",
    service: "frontend",
    metric: "TargetResponseTime",
    threshold: "> 2s",
    action: "rollback",
  },
  {
    seed: "004 backend error rate",
    file: "ecommerce.yml",
    service: "backend",
    metric: "error_rate",
    threshold: "> 5%",
    action: "rollback",
    for: 300_000,
  },
  {
    seed: "004 backend response",
    file: "ecommerce.yml",
    service: "backend",
    metric: "TargetResponseTime",
    threshold: "> 2s",
    action: "rollback",
  },
  {
    seed: "004 DB errors",
    file: "ecommerce.yml",
    service: "backend",
    metric: "Errors",
    threshold: "> 10",
    action: "rollback",
    period: 60_000,
  },
  {
    seed: "004 payments",
    file: "ecommerce.yml",
    service: "backend",
    metric: "FailureRate",
    threshold: "> 5%",
    action: "rollback",
  },
];

/** The one guardrail of a trigger's example config that implements it. */
export function triggerGuardrail(config: Config, t: SeedTrigger): Guardrail {
  const list = config.services[t.service]?.environments.production?.guardrails ?? [];
  const found = list.filter((g) => simName(g) === t.metric && g.threshold === t.threshold && g.action === t.action);
  if (found.length !== 1)
    throw new Error(`${t.file} ${t.service} production: ${found.length} guardrails for ${t.metric} ${t.threshold}`);
  return found[0] as Guardrail;
}
