import type { Datapoint, MetricQuery, MetricSeries, MetricsPort } from "../ports.js";
import type { SimWorld } from "./world.js";

/** Simulated CloudWatch: every series reads the value `:metric` last set (or a healthy default), one point per period. */
export class SimCloudWatch implements MetricsPort {
  /** GetMetricData calls made, for tests and benchmarks. */
  calls = 0;
  constructor(private readonly world: SimWorld) {}

  async getMetricData(queries: MetricQuery[], start: Date, end: Date): Promise<MetricSeries[]> {
    for (let i = 0; i < queries.length; i += 500) {
      this.calls++;
      this.world.emit({
        kind: "aws",
        api: "cloudwatch",
        op: "GetMetricData",
        input: {
          StartTime: start.toISOString(),
          EndTime: end.toISOString(),
          MetricDataQueries: queries.slice(i, i + 500).map((q) => q.id),
        },
      });
    }
    return queries.map((q) => {
      const periodMs = q.periodSeconds * 1000;
      const datapoints: Datapoint[] = [];
      const first = Math.ceil(start.getTime() / periodMs) * periodMs;
      for (let t = first; t < end.getTime(); t += periodMs) {
        const value = this.world.metricAt(q.service, q.environment, q.metricName, new Date(t));
        if (value !== undefined && !Number.isNaN(value)) datapoints.push({ at: new Date(t), value });
      }
      return { id: q.id, status: "ok", datapoints };
    });
  }
}
