import type { Datapoint, MetricQuery, MetricSeries, MetricsPort } from "../../ports.js";
import { requestSeriesId } from "../../ports.js";
import type { SimWorld } from "./world.js";

/**
 * Simulated CloudWatch: every series reads the service's metric as its load balancer would see it (each
 * version's value mixed by its share of the traffic, see SimWorld.metricAt), one point per period stamped at
 * the period's start, published `:lag` after the period ends; an `error_rate` query also returns its request
 * counts, as the real adapter does. `:down cloudwatch` answers 500s, `:throttle cloudwatch GetMetricData` throttles.
 */
export class SimCloudWatch implements MetricsPort {
  /** GetMetricData calls made, for tests and benchmarks. */
  calls = 0;
  /** Emit an `aws` event per call (off for benchmarks). */
  verbose = true;
  constructor(private readonly world: SimWorld) {}

  async getMetricData(queries: MetricQuery[], start: Date, end: Date): Promise<MetricSeries[]> {
    let batches = 0;
    for (let i = 0; i < queries.length; i += 500) {
      this.calls++;
      batches++;
      this.world.admit(
        "cloudwatch",
        "GetMetricData",
        {
          StartTime: start.toISOString(),
          EndTime: end.toISOString(),
          MetricDataQueries: queries
            .slice(i, i + 500)
            .map((q) => `${q.id}: ${q.service} ${q.environment} ${q.metricName}${this.groupOf(q)}`),
        },
        this.verbose,
      );
    }
    const published = this.world.clock.now().getTime() - this.world.faults().lagMs;
    const series = (id: string, q: MetricQuery, metric: string): MetricSeries => {
      const periodMs = q.periodSeconds * 1000;
      const datapoints: Datapoint[] = [];
      for (let t = Math.ceil(start.getTime() / periodMs) * periodMs; t < end.getTime(); t += periodMs) {
        // A datapoint exists once its period has ended and CloudWatch has published it.
        if (t + periodMs > published) break;
        const value = this.world.metricAt(q.service, q.environment, metric, new Date(t), q.context.targetGroup);
        if (value !== undefined && !Number.isNaN(value)) datapoints.push({ at: new Date(t), value });
      }
      return { id, status: "ok", datapoints };
    };
    const out = queries.flatMap((q) =>
      "preset" in q.spec && q.spec.preset === "error_rate"
        ? [series(q.id, q, q.metricName), series(requestSeriesId(q.id), q, "request_count")]
        : [series(q.id, q, q.metricName)],
    );
    for (let b = 0; b < batches; b++) this.world.completed("cloudwatch", "GetMetricData");
    return out;
  }

  /** " targetgroup/web-green/…" for a query of one side's target group (traffic steps), else nothing. */
  private groupOf(q: MetricQuery): string {
    const tg = q.context.targetGroup;
    if (!tg || !this.world.read().elb?.targetGroups[tg]) return "";
    return ` ${tg.slice(tg.indexOf(":targetgroup/") + 1)}`;
  }
}
