import { z } from "zod";
import { parseDuration } from "../clock.js";

/** The pseudo-role held by whoever PagerDuty says is on call right now (checked at the moment of use). */
export const ONCALL = "oncall";

const name = z.string().regex(/^[a-z][a-z0-9_-]*$/, "a lower-case name (letters, digits, - and _)");
const duration = z
  .string()
  .refine((s) => parseDuration(s) !== undefined, "a duration such as 90s, 5m, 2h or 1d")
  .transform((s) => parseDuration(s) as number);
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "a time of day as HH:MM (24 h)");
const timeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, "an IANA time zone such as Africa/Johannesburg or Europe/London");
const isoTime = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), "an ISO date-time such as 2026-12-24T00:00+02:00");
const weekday = z.enum(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);

const user = z.strictObject({
  slack_id: z.string().regex(/^[UW][A-Z0-9]+$/, "a Slack user id such as U024BE7LH"),
  name: z.string().min(1),
  email: z.email().optional(),
});

const role = z.strictObject({
  users: z.array(name).default([]),
  /** Slack user-group handles whose members hold the role too. */
  usergroups: z.array(z.string().regex(/^@?[a-z0-9._-]+$/)).default([]),
});

const approvalGroup = z.strictObject({
  name: z.string().optional(),
  from: z.array(name).min(1),
  count: z.number().int().min(1).default(1),
});
export const approvalRule = z.array(approvalGroup).default([]);

const window = z.strictObject({
  name: z.string().optional(),
  days: z.array(weekday).min(1),
  start: hhmm,
  end: hhmm,
});

const cronExpr = z
  .string()
  .refine((s) => s.trim().split(/\s+/).length === 5, "a five-field cron expression such as '0 17 * * 5'");
const recurringFreeze = z.strictObject({ name: z.string().min(1), start: cronExpr, end: cronExpr });
const datedFreeze = z.strictObject({ name: z.string().min(1), from: isoTime, to: isoTime });
const holidayFreeze = z.strictObject({
  name: z.string().min(1),
  holidays: z.string().regex(/^[A-Z]{2}(-[A-Z0-9]+)?$/, "an ISO country code such as ZA or GB-ENG"),
});
const freeze = z.union([recurringFreeze, datedFreeze, holidayFreeze], {
  error:
    "a freeze: {name, start, end} with cron expressions, {name, from, to} with dates, or {name, holidays: COUNTRY}",
});

/** A rollback replaces every task while keeping full capacity, unless the environment says otherwise. */
export const DEFAULT_ROLLBACK_STRATEGY = {
  type: "ROLLING",
  maximum_percent: 200,
  minimum_healthy_percent: 100,
} as const;

/**
 * ROLLING (ECS replaces tasks, keeping `minimum_healthy_percent` serving) or BLUE_GREEN (the previous version
 * takes all traffic in one switch, no bake). CANARY and LINEAR are refused: a rollback must restore all
 * traffic at once, not leave most of it on the version being rolled back.
 */
const rollbackStrategy = z.discriminatedUnion(
  "type",
  [
    z.strictObject({
      type: z.literal("ROLLING"),
      maximum_percent: z.number().int().min(100).default(DEFAULT_ROLLBACK_STRATEGY.maximum_percent),
      minimum_healthy_percent: z
        .number()
        .int()
        .min(0)
        .max(100)
        .default(DEFAULT_ROLLBACK_STRATEGY.minimum_healthy_percent),
    }),
    z.strictObject({
      type: z.literal("BLUE_GREEN"),
      bake_time: duration
        .refine((ms) => ms === 0, "0: a rollback switches all traffic back at once, without a bake")
        .default(0),
    }),
  ],
  {
    error: (issue) => {
      if (issue.code !== "invalid_union") return undefined;
      const type = (issue.input as { type?: unknown } | undefined)?.type;
      return type === "CANARY" || type === "LINEAR"
        ? `ROLLING or BLUE_GREEN: a rollback must restore all traffic at once, and ${type} would shift it back in steps`
        : "ROLLING or BLUE_GREEN";
    },
  },
);

const environment = z.strictObject({
  timezone: timeZone.optional(),
  windows: z.array(window).default([]),
  freezes: z.array(freeze).default([]),
  approvals: approvalRule,
  // No default: a missing hotfix rule means "the normal rule", never "no approval".
  hotfix_approvals: z.array(approvalGroup).optional(),
  approval_ttl: duration.default(30 * 60_000),
  emergency: z.strictObject({ approvals: approvalRule }).optional(),
  rollback: z
    .strictObject({
      allowed: z.array(name).min(1),
      approvals: approvalRule,
    })
    .optional(),
  override: z.array(name).default([]),
  bake: duration.default(0),
  rollback_grace: duration.default(2 * 60_000),
  /**
   * How often and how long guardrails are checked after the rollout starts, phase by phase (seed 001:
   * every 5 min for 30 min, then every 15 min for 90 min). Without it: every monitor cycle until the bake ends.
   */
  watch: z.array(z.strictObject({ every: duration, for: duration })).optional(),
  /** How a rollback (by hand or by a guardrail) puts the previous version back: all traffic at once, never in steps. */
  rollback_strategy: rollbackStrategy.default(DEFAULT_ROLLBACK_STRATEGY),
});

export const PRESETS = ["error_rate", "p95_latency", "p99_latency", "healthy_hosts", "cpu", "memory"] as const;
const customMetric = z.strictObject({
  namespace: z.string().min(1),
  name: z.string().min(1),
  dimensions: z.record(z.string(), z.string()).default({}),
  stat: z.string().default("Average"),
});
const mathMetric = z.strictObject({ expression: z.string().min(1), label: z.string().optional() });

/** How late CloudWatch may publish a period before it counts as missing (ALB and ECS metrics arrive 1-3 min after). */
export const DEFAULT_MAX_LAG_MS = 3 * 60_000;

/** "50%" → 0.5: how much worse than before the deploy a metric must get to be blamed on it. */
const relativePercent = z
  // A bare 50 is read as text, so that it is refused with the same "50%" hint as any other typo.
  .preprocess(
    (v) => (typeof v === "number" ? String(v) : v),
    z.string().regex(/^\d+(\.\d+)?\s*%$/, "a percentage such as 50%"),
  )
  .transform((s) => Number.parseFloat(s) / 100);

export const guardrail = z.strictObject({
  name: z.string().min(1),
  metric: z.union([z.enum(PRESETS), customMetric, mathMetric], {
    error: `one of the presets (${PRESETS.join(", ")}), {namespace, name, dimensions, stat} or {expression}`,
  }),
  threshold: z
    .string()
    .regex(
      /^(>=?|<=?)\s*\d+(\.\d+)?\s*(%|ms|s|x baseline)?$/,
      "a comparison such as '> 1%', '> 2s', '> 500ms', '< 2' or '> 10x baseline'",
    ),
  for: duration.default(5 * 60_000),
  datapoints: z
    .string()
    .regex(/^\d+ of \d+$/, "'M of N', e.g. '3 of 5'")
    .optional(),
  period: duration.default(60_000),
  min_requests: z.number().int().min(0).optional(),
  missing_data: z.enum(["missing", "breaching", "notBreaching"]).default("missing"),
  /** The pre-deploy window: the baseline of "x baseline" thresholds and the "before" of already_breaching. */
  baseline: duration.default(30 * 60_000),
  /**
   * How late CloudWatch may publish a period: a period newer than this with no datapoint is "not yet
   * published" (never breaching), and the guardrail judges the newest periods CloudWatch has published.
   */
  max_lag: duration.default(DEFAULT_MAX_LAG_MS),
  /**
   * When the metric was already over the threshold before the deploy: `compare` (default) blames the deploy
   * only when it is worse than before by more than `worse_by`; `judge` applies the plain threshold anyway.
   */
  already_breaching: z.enum(["compare", "judge"]).default("compare"),
  /** How much worse than before the deploy counts as "clearly worse" under already_breaching: compare (default 50%). */
  worse_by: relativePercent.default(0.5),
  severity: z.enum(["warning", "critical"]).default("warning"),
  action: z.enum(["alert", "page", "rollback"]).default("alert"),
  shadow: z.boolean().default(false),
  /**
   * During traffic steps, `stable` judges the new target group against the stable one over the same minutes (the
   * baseline of "x baseline" thresholds, and the "before" of already_breaching) instead of the pre-deploy window.
   */
  compare_with: z.enum(["pre_deploy", "stable"]).default("pre_deploy"),
});

/** An Elastic Load Balancing ARN of one kind (targetgroup, listener, listener-rule), as ModifyRule needs it. */
const elbArn = (kind: "targetgroup" | "listener" | "listener-rule", example: string) =>
  z
    .string()
    .regex(
      new RegExp(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z]{2}(-[a-z]+)+-\\d:\\d{12}:${kind}/.+$`),
      `a ${kind} ARN such as ${example}`,
    );
const TARGET_GROUP_ARN = "arn:aws:elasticloadbalancing:af-south-1:123456789012:targetgroup/web-green/6d0ecf831eec9f09";
export const targetGroupArn = elbArn("targetgroup", TARGET_GROUP_ARN);

/** One step of a STEPS strategy: the share of traffic on the new version, and how long it is judged there. */
const trafficStep = z.strictObject({
  weight: z.number().int().min(1).max(100),
  pause: duration.optional(),
});

/**
 * deploybot's own progressive delivery: the new version is deployed to the idle one of two ECS services (blue and
 * green, each behind its own target group), then the ALB listener rule's (or listener's default) forward weights
 * move to it step by step, each step judged by the guardrails on the new target group's own metrics.
 */
export const stepsStrategy = z.strictObject({
  type: z.literal("STEPS"),
  steps: z.array(trafficStep).min(1),
  /** How long the previous version keeps running after 100%: a /rollback within it is one weight switch. */
  keep_previous: duration.default(24 * 3_600_000),
  /** How long a step may stay inconclusive (too few requests, late data) before it pauses for a person. */
  max_inconclusive: duration.default(15 * 60_000),
  /** The second side: its ECS service (in `ecs.cluster` unless another cluster is named) and its target group. */
  green: z.strictObject({
    cluster: z.string().min(1).optional(),
    service: z.string().min(1),
    target_group: targetGroupArn,
  }),
  /** Where the weights are set: a listener rule's forward action (ModifyRule) or a listener's default action (ModifyListener). */
  listener_rule: elbArn(
    "listener-rule",
    "arn:aws:elasticloadbalancing:af-south-1:123456789012:listener-rule/app/comply360-prod/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee",
  ).optional(),
  listener: elbArn(
    "listener",
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:listener/app/shop-prod/4d5e6f7a8b9c0d1e/f2f7dc8efc522ab2",
  ).optional(),
  /** Target group stickiness while traffic is split (TargetGroupStickinessConfig); off unless set. */
  stickiness: duration.optional(),
});

const serviceEnvironment = z.strictObject({
  ecs: z.strictObject({
    cluster: z.string().min(1),
    service: z.string().min(1),
    container: z.string().min(1),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "an AWS region such as af-south-1"),
  }),
  strategy: z
    .discriminatedUnion("type", [
      z.strictObject({ type: z.literal("ROLLING") }),
      z.strictObject({ type: z.literal("BLUE_GREEN"), bake_time: duration.default(0) }),
      z.strictObject({ type: z.literal("LINEAR"), step_percent: z.number().min(3).max(100), step_bake: duration }),
      z.strictObject({
        type: z.literal("CANARY"),
        canary_percent: z.number().min(0.1).max(100),
        canary_bake: duration,
      }),
      stepsStrategy,
    ])
    .default({ type: "ROLLING" }),
  /** The STEPS strategy `/deploy … --canary` chooses for one deploy (seed 002: "for high-risk changes"). */
  canary: stepsStrategy.extend({ type: z.literal("STEPS").default("STEPS") }).optional(),
  load_balancer: z.strictObject({ name: z.string().min(1), target_group: z.string().min(1) }).optional(),
  guardrails: z.array(guardrail).default([]),
});

const service = z.strictObject({
  description: z.string().optional(),
  environments: z.record(name, serviceEnvironment),
});

export const configSchema = z.strictObject({
  timezone: timeZone.default("UTC"),
  users: z.record(name, user),
  roles: z.record(name, role).default({}),
  channels: z.strictObject({ deploys: z.string().min(2), incidents: z.string().min(2) }),
  pagerduty: z
    .strictObject({
      routing_key_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "the NAME of an environment variable"),
      api_token_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "the NAME of an environment variable"),
      server: z.string().default("api.pagerduty.com"),
      schedules: z.array(z.string().min(1)).min(1),
      max_escalation_level: z.number().int().min(1).default(1),
      cache: duration.default(60_000),
    })
    .optional(),
  /** interval: how often guardrails are read; it must divide a minute (in seconds) or an hour (in minutes). */
  monitor: z.strictObject({ interval: duration.default(60_000) }).default({ interval: 60_000 }),
  environments: z.record(name, environment),
  services: z.record(name, service),
  /** The local console's simulated world (ignored when connected to Slack and AWS). */
  simulation: z
    .strictObject({
      oncall: name.optional(),
      initial_version: z.string().default("v1.4.0"),
      /** Healthy readings of the simulated metrics by name (custom metrics included); built-in ones have defaults. */
      metrics: z.record(z.string(), z.number()).optional(),
    })
    .default({ initial_version: "v1.4.0" }),
});

export type Config = z.output<typeof configSchema>;
export type EnvironmentPolicy = z.output<typeof environment>;
export type ServiceEnvironment = z.output<typeof serviceEnvironment>;
export type Guardrail = z.output<typeof guardrail>;
export type ApprovalRule = z.output<typeof approvalRule>;
export type Freeze = z.output<typeof freeze>;
export type DeployWindow = z.output<typeof window>;
export type Strategy = ServiceEnvironment["strategy"];
export type StepsStrategy = z.output<typeof stepsStrategy>;
export type RollbackStrategy = EnvironmentPolicy["rollback_strategy"];
