import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/bot-process.js";

interface Statement {
  Sid: string;
  Effect: "Allow" | "Deny";
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string>>;
}
const policy = JSON.parse(readFileSync(join(ROOT, "docs/iam-policy.json"), "utf8")) as {
  Version: string;
  Statement: Statement[];
};
const list = (x: string | string[]) => (Array.isArray(x) ? x : [x]);
const allowed = policy.Statement.filter((s) => s.Effect === "Allow").flatMap((s) => list(s.Action));

/** The SDK client package each adapter imports, as the IAM service prefix. */
const SERVICE: Record<string, string> = {
  "@aws-sdk/client-ecs": "ecs",
  "@aws-sdk/client-cloudwatch": "cloudwatch",
  "@aws-sdk/client-elastic-load-balancing-v2": "elasticloadbalancing",
};

/**
 * Every AWS action the code can cause: `new XCommand(` or `new sdk.XCommand(` (the SDK loaded on first use) in
 * src/adapters/aws/*.ts (as service:X, the service from
 * the file's SDK import), and the actions the adapters name in their permission hints (ecs:TagResource and
 * iam:PassRole ride along with RegisterTaskDefinition).
 */
/** The actions found from `new …Command(` alone, so the test can show that part of the scan works. */
const fromCommands = new Set<string>();

function actionsInCode(): Map<string, string> {
  const dir = join(ROOT, "src/adapters/aws");
  const found = new Map<string, string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
    const text = readFileSync(join(dir, file), "utf8");
    const client = Object.keys(SERVICE).find((pkg) => text.includes(`from "${pkg}"`));
    for (const m of text.matchAll(/\bnew (?:[a-z]\w*\.)?([A-Z][A-Za-z]+)Command\(/g)) {
      if (!client) throw new Error(`${file} sends ${m[1]}Command but imports no known SDK client: add it to SERVICE`);
      found.set(`${SERVICE[client]}:${m[1]}`, file);
      fromCommands.add(`${SERVICE[client]}:${m[1]}`);
    }
    for (const m of text.matchAll(/"[^"\n]*"|`[^`\n]*`/g)) {
      for (const a of m[0].matchAll(/\b((?:ecs|iam|cloudwatch|elasticloadbalancing):[A-Z][A-Za-z]+)\b/g))
        found.set(a[1] as string, file);
    }
  }
  return found;
}

const matches = (pattern: string, action: string) =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`, "i").test(action);

describe("docs/iam-policy.json", () => {
  const code = actionsInCode();

  it("finds what the adapters send (the scan itself works)", () => {
    for (const a of [
      "ecs:UpdateService",
      "ecs:StopServiceDeployment",
      "cloudwatch:GetMetricData",
      "ecs:TagResource",
      "iam:PassRole",
      "elasticloadbalancing:ModifyRule",
      "elasticloadbalancing:ModifyListener",
      "elasticloadbalancing:DescribeTargetHealth",
    ]) {
      expect(code.has(a), a).toBe(true);
    }
    // The commands themselves, not only the actions the adapters name in their messages.
    for (const a of [
      "ecs:UpdateService",
      "ecs:DescribeServices",
      "ecs:RegisterTaskDefinition",
      "cloudwatch:GetMetricData",
      "elasticloadbalancing:ModifyRule",
      "elasticloadbalancing:ModifyListener",
    ])
      expect(fromCommands.has(a), a).toBe(true);
  });

  it("allows every AWS action the code can send", () => {
    const missing = [...code.keys()].filter((a) => !allowed.some((p) => matches(p, a)));
    expect(missing).toEqual([]);
  });

  it("allows nothing the code does not send, and no wildcard action", () => {
    expect(allowed.filter((a) => a.includes("*"))).toEqual([]);
    expect(allowed.filter((a) => !code.has(a))).toEqual([]);
  });

  it("scopes every action that supports resource-level permissions to resources, not *", () => {
    const unscoped = new Set([
      "ecs:DescribeTaskDefinition",
      "ecs:RegisterTaskDefinition",
      "cloudwatch:GetMetricData",
      // Elastic Load Balancing's Describe calls take no resource-level permissions.
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeTargetHealth",
    ]);
    for (const s of policy.Statement) {
      if (list(s.Resource).includes("*"))
        expect(
          list(s.Action).filter((a) => !unscoped.has(a)),
          s.Sid,
        ).toEqual([]);
    }
  });

  it("lets ECS tasks, and only them, receive the roles it passes, and tags only on register", () => {
    const pass = policy.Statement.find((s) => list(s.Action).includes("iam:PassRole"));
    expect(pass?.Condition).toEqual({ StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } });
    const tag = policy.Statement.find((s) => list(s.Action).includes("ecs:TagResource"));
    expect(tag?.Condition).toEqual({ StringEquals: { "ecs:CreateAction": "RegisterTaskDefinition" } });
  });

  it("lists the same actions as the README", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    for (const a of allowed) expect(readme).toContain(`\`${a}\``);
  });
});
