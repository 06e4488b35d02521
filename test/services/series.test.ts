import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { findTarget, type Target } from "../../src/domain/targets.js";
import { seriesOf } from "../../src/services/series.js";

const config = loadConfig(fileURLToPath(new URL("../../examples/deploybot.yml", import.meta.url)));
const web = findTarget(config, "web", "production") as Target;
const api = findTarget(config, "api", "production") as Target;
const guardrail = (t: Target, name: string) => {
  const g = t.settings.guardrails.find((x) => x.name === name);
  if (!g) throw new Error(`no guardrail ${name}`);
  return g;
};

describe("the series a guardrail reads", () => {
  it("is one series for every service whose guardrails read the same custom metric (the shared database pool)", () => {
    const pool = "database connection pool exhausted";
    expect(seriesOf(web, guardrail(web, pool)).key).toBe(seriesOf(api, guardrail(api, pool)).key);
  });

  it("is one per target for presets, whose dimensions are the target's own service and load balancer", () => {
    for (const name of ["error rate (rollback)", "CPU (warning)", "service down"])
      expect(seriesOf(web, guardrail(web, name)).key).not.toBe(seriesOf(api, guardrail(api, name)).key);
  });

  it("is shared by two guardrails of one target on one metric and period (error rate at two thresholds)", () => {
    expect(seriesOf(web, guardrail(web, "error rate (rollback)")).key).toBe(
      seriesOf(web, guardrail(web, "error rate (warning)")).key,
    );
  });
});
