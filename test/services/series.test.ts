import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { findTarget, type Target } from "../../src/domain/targets.js";
import type { Datapoint, MetricSeries } from "../../src/ports.js";
import { SeriesCache, seriesOf } from "../../src/services/series.js";

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

describe("the datapoints the monitor holds", () => {
  const spec = seriesOf(web, guardrail(web, "error rate (rollback)"));
  const MIN = 60_000;
  const T0 = Date.parse("2026-11-24T10:00:00Z");
  const series = (points: Array<[number, number]>): MetricSeries => ({
    id: "s0",
    status: "ok",
    datapoints: points.map(([m, value]) => ({ at: new Date(T0 + m * MIN), value })),
  });
  const values = (ds: readonly Datapoint[]) => ds.map((d) => [(d.at.getTime() - T0) / MIN, d.value]);

  it("returns them oldest first from a given time, a late value replacing the one first returned", () => {
    const cache = new SeriesCache();
    cache.merge(
      spec,
      series([
        [2, 0.5],
        [0, 0.1],
        [1, 0.2],
      ]),
      undefined,
      T0 + 3 * MIN,
    );
    expect(values(cache.points(spec.key, T0))).toEqual([
      [0, 0.1],
      [1, 0.2],
      [2, 0.5],
    ]);
    expect(values(cache.points(spec.key, T0 + MIN))).toEqual([
      [1, 0.2],
      [2, 0.5],
    ]);
    // The next call brings period 2 again with a late correction, and period 3.
    cache.merge(
      spec,
      series([
        [2, 3.2],
        [3, 4],
      ]),
      undefined,
      T0 + 4 * MIN,
    );
    expect(values(cache.points(spec.key, T0))).toEqual([
      [0, 0.1],
      [1, 0.2],
      [2, 3.2],
      [3, 4],
    ]);
  });

  it("shares one list between readers until a call changes it, and drops periods older than the lookback", () => {
    const cache = new SeriesCache();
    cache.merge(
      spec,
      series([
        [0, 1],
        [1, 2],
      ]),
      undefined,
      T0 + 2 * MIN,
    );
    const first = cache.points(spec.key, T0);
    cache.merge(spec, series([[1, 2]]), undefined, T0 + 2 * MIN);
    expect(cache.points(spec.key, T0)).toBe(first);
    const later = T0 + spec.lookbackMs + MIN;
    cache.merge(spec, series([[1, 2]]), undefined, later);
    expect(values(cache.points(spec.key, T0))).toEqual([[1, 2]]);
  });

  it("fills a gap between held periods in order, the later of two values for one period winning, NaN equal to NaN", () => {
    const cache = new SeriesCache();
    const now = T0 + 5 * MIN;
    cache.merge(
      spec,
      series([
        [0, 1],
        [1, Number.NaN],
        [4, 4],
      ]),
      undefined,
      now,
    );
    const held = cache.points(spec.key, T0);
    // NaN again for period 1 is no change: the same list is shared.
    cache.merge(spec, series([[1, Number.NaN]]), undefined, now);
    expect(cache.points(spec.key, T0)).toBe(held);
    cache.merge(
      spec,
      series([
        [2, 2],
        [2, 2.5],
        [3, 3],
      ]),
      undefined,
      now,
    );
    expect(values(cache.points(spec.key, T0))).toEqual([
      [0, 1],
      [1, Number.NaN],
      [2, 2.5],
      [3, 3],
      [4, 4],
    ]);
  });
});
