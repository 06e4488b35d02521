import type { SimApi, SimSystem, SimWorld } from "../adapters/sim/world.js";
import { parseDuration } from "../clock.js";

/** The console's fault directives: the simulated world as hostile as the real one (DESIGN §6). */
export const FAULT_DIRECTIVES = [":throttle", ":down", ":crash-after", ":lag"] as const;

/** The operations of each simulated API that a fault can name; slack takes any well-formed method name. */
const KNOWN_OPS: Partial<Record<SimApi, readonly string[]>> = {
  ecs: [
    "DescribeServices",
    "DescribeTaskDefinition",
    "RegisterTaskDefinition",
    "UpdateService",
    "ListServiceDeployments",
    "DescribeServiceDeployments",
    "DescribeServiceRevisions",
    "StopServiceDeployment",
  ],
  cloudwatch: ["GetMetricData"],
  elbv2: ["DescribeRules", "ModifyRule", "DescribeListeners", "ModifyListener", "DescribeTargetHealth"],
  pagerduty: ["trigger", "acknowledge", "resolve", "onCalls"],
};
const OP_SHAPE: Partial<Record<SimApi, { re: RegExp; example: string }>> = {
  slack: { re: /^[a-z]+(\.[a-zA-Z]+)+$/, example: "chat.update" },
};

/** The canonical name of `op` for `api` (case-insensitive for known operations); throws with the choices. */
function operation(api: SimApi, op: string | undefined, directive: string): string {
  const known = KNOWN_OPS[api];
  if (known) {
    const found = known.find((k) => k.toLowerCase() === (op ?? "").toLowerCase());
    if (found) return found;
    throw new Error(`${directive}: ${api} has no operation ${op ?? "(none)"}; use one of ${known.join(", ")}`);
  }
  const shape = OP_SHAPE[api];
  if (shape && op && shape.re.test(op)) return op;
  throw new Error(`${directive}: ${op ?? "(none)"} is not a ${api} operation such as ${shape?.example ?? "?"}`);
}

function apiOf(text: string | undefined, allowed: readonly SimApi[], directive: string, usage: string): SimApi {
  const api = (text ?? "").toLowerCase() as SimApi;
  if (allowed.includes(api)) return api;
  throw new Error(`${directive} needs ${usage}; API is one of ${allowed.join(", ")}`);
}

/**
 * Applies `:throttle API OP COUNT`, `:down SYSTEM DURATION`, `:crash-after API:OP` or `:lag DURATION` to the
 * world; a line that is not well formed throws an error that says how to write it, and changes nothing.
 */
export function applyFaultDirective(world: SimWorld, name: string, args: string[]): void {
  switch (name) {
    case ":throttle": {
      const usage = "API OP COUNT, e.g. :throttle ecs UpdateService 6 or :throttle slack chat.update 2";
      if (args.length !== 3) throw new Error(`:throttle needs ${usage}`);
      const api = apiOf(args[0], ["ecs", "cloudwatch", "elbv2", "slack"], ":throttle", usage);
      const op = operation(api, args[1], ":throttle");
      const count = Number(args[2]);
      if (!Number.isInteger(count) || count < 0) throw new Error(`:throttle needs a COUNT of calls such as 6`);
      world.throttle(api, op, count);
      return;
    }
    case ":down": {
      const usage = "SYSTEM DURATION, e.g. :down pagerduty 10m";
      const system = (args[0] ?? "").toLowerCase();
      if (args.length !== 2 || !["pagerduty", "slack", "cloudwatch"].includes(system)) {
        throw new Error(`:down needs ${usage}; SYSTEM is pagerduty, slack or cloudwatch`);
      }
      const ms = parseDuration(args[1] ?? "");
      if (ms === undefined || ms <= 0) throw new Error(`:down needs a duration such as 90s, 5m or 2h`);
      world.down(system as SimSystem, ms);
      return;
    }
    case ":crash-after": {
      const usage = "API:OP, e.g. :crash-after ecs:UpdateService or :crash-after slack:chat.postMessage";
      const [apiText, ...rest] = (args.length === 1 ? (args[0] as string) : "").split(":");
      if (args.length !== 1 || rest.length === 0) throw new Error(`:crash-after needs ${usage}`);
      const api = apiOf(apiText, ["ecs", "cloudwatch", "elbv2", "pagerduty", "slack"], ":crash-after", usage);
      world.crashAfter(api, operation(api, rest.join(":"), ":crash-after"));
      return;
    }
    case ":lag": {
      const text = args[0] ?? "";
      const ms = /^0+$/.test(text) ? 0 : parseDuration(text);
      if (args.length !== 1 || ms === undefined || ms < 0)
        throw new Error(`:lag needs a duration such as 0, 90s or 5m (how late CloudWatch publishes a datapoint)`);
      world.setLag(ms);
      return;
    }
    default:
      throw new Error(`${name} is not a fault directive`);
  }
}
