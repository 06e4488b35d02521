import type { SimSlackMessage } from "../adapters/sim/world.js";
import type { Block } from "../slack/blocks.js";

/** Block Kit blocks, sent as an array (JSON body) or as a JSON string (form body); [] for anything else. */
export function asBlocks(value: unknown): Block[] {
  if (typeof value === "string") {
    try {
      return JSON.parse(value) as Block[];
    } catch {
      return [];
    }
  }
  return Array.isArray(value) ? (value as Block[]) : [];
}

/** Slack's message metadata, sent as an object (JSON body) or as a JSON string (form body). */
export function asMetadata(value: unknown): SimSlackMessage["metadata"] | undefined {
  let v = value;
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      return undefined;
    }
  }
  if (typeof v !== "object" || v === null) return undefined;
  const { event_type, event_payload } = v as { event_type?: unknown; event_payload?: unknown };
  if (typeof event_type !== "string") return undefined;
  return {
    event_type,
    event_payload:
      typeof event_payload === "object" && event_payload !== null ? (event_payload as Record<string, unknown>) : {},
  };
}

/** A Web API boolean argument, sent as true, "true", "1" or 1. */
export function truthy(value: unknown): boolean {
  return value === true || value === "true" || value === "1" || value === 1;
}

/** A message ts as a string that sorts in time order ("1764000000.000123" → "001764000000.000123"). */
export function tsKey(ts: string): string {
  const [secs = "0", frac = ""] = ts.split(".");
  return `${secs.padStart(12, "0")}.${frac.padEnd(6, "0").slice(0, 6)}`;
}

/** The arguments of a Web API call, from a JSON or a form-encoded body. */
export function parseBody(raw: string, contentType: string): Record<string, unknown> {
  if (!raw) return {};
  if (contentType.includes("application/json")) return JSON.parse(raw) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) out[k] = v;
  return out;
}
