import type { DescribeServicesCommandOutput, ECSClient } from "@aws-sdk/client-ecs";
import { countAwsErrors } from "../../ops/metrics.js";
import type { CallContext } from "./ecs-errors.js";
import { describeError, type RetryFailure, type RetrySettings, withRetry } from "./retry.js";

/** DescribeServices takes at most 10 services a call. */
const DESCRIBE_SERVICES_MAX = 10;

type EcsSdk = typeof import("@aws-sdk/client-ecs");
type Failures = (c: CallContext) => Pick<RetryFailure, "notRetryable" | "exhausted">;

interface Waiter {
  context: CallContext;
  resolve: (answer: { out: DescribeServicesCommandOutput; alone: boolean }) => void;
  reject: (err: unknown) => void;
}

/**
 * DescribeServices for a service together with the others of its region and cluster asked for in the same turn of
 * the event loop (a /status overview asks for dozens at once): one call per 10 services, as ECS allows, instead of
 * one each. Each caller gets the whole answer and picks its own service (`alone` when it was the only one asked),
 * and a failed call fails each caller with its own message.
 */
export class DescribeBatcher {
  private readonly waiting = new Map<string, Waiter[]>();

  constructor(
    private readonly client: (region: string) => Promise<{ client: ECSClient; sdk: EcsSdk }>,
    private readonly retry: RetrySettings,
    private readonly failures: Failures,
  ) {}

  describe(context: CallContext): Promise<{ out: DescribeServicesCommandOutput; alone: boolean }> {
    const { region, cluster } = context.target;
    const key = `${region}\u0000${cluster}`;
    return new Promise((resolve, reject) => {
      let waiting = this.waiting.get(key);
      if (!waiting) {
        waiting = [];
        this.waiting.set(key, waiting);
        queueMicrotask(() => {
          this.waiting.delete(key);
          this.send(region, cluster, waiting as Waiter[]);
        });
      }
      waiting.push({ context, resolve, reject });
    });
  }

  private send(region: string, cluster: string, waiting: Waiter[]): void {
    const services = [...new Set(waiting.map((w) => w.context.target.service))];
    for (let i = 0; i < services.length; i += DESCRIBE_SERVICES_MAX) {
      const batch = new Set(services.slice(i, i + DESCRIBE_SERVICES_MAX));
      const callers = waiting.filter((w) => batch.has(w.context.target.service));
      this.client(region)
        .then(({ client, sdk }) =>
          withRetry(
            this.retry,
            () =>
              countAwsErrors(
                "ecs:DescribeServices",
                client.send(new sdk.DescribeServicesCommand({ cluster, services: [...batch] })),
              ),
            {
              notRetryable: (err) => new CallFailure(err),
              exhausted: (err, attempts, what) => new CallFailure(err, { attempts, what }),
            },
          ),
        )
        .then(
          (out) => {
            for (const w of callers) w.resolve({ out, alone: services.length === 1 });
          },
          (err: unknown) => {
            for (const w of callers) w.reject(err instanceof CallFailure ? err.for(w.context, this.failures) : err);
          },
        );
    }
  }
}

/** A call shared by several callers failed: each caller's error is worded for its own service. */
class CallFailure extends Error {
  constructor(
    readonly original: unknown,
    readonly exhausted?: { attempts: number; what: string },
  ) {
    super(describeError(original));
  }

  for(context: CallContext, failures: Failures): Error {
    const f = failures(context);
    return this.exhausted
      ? f.exhausted(this.original, this.exhausted.attempts, this.exhausted.what)
      : f.notRetryable(this.original);
  }
}
