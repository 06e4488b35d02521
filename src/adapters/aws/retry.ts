import { setTimeout as delay } from "node:timers/promises";

/** How an AWS adapter retries throttling and server errors; every field is optional. */
export interface AwsRetryOptions {
  /** Calls made in all before giving up on throttling or server errors (default 4). */
  maxAttempts?: number;
  /** Wait before the second attempt; doubles after each further failure (default 250 ms). */
  baseDelayMs?: number;
  /** Injected so tests do not wait. */
  sleep?: (ms: number) => Promise<void>;
}

/** AwsRetryOptions with the defaults filled in, as `withRetry` takes them. */
export type RetrySettings = Required<AwsRetryOptions>;

/** Fills in the defaults: 4 attempts (at least 1), 250 ms base delay, a real timer. */
export function retrySettings(options: AwsRetryOptions = {}): RetrySettings {
  return {
    maxAttempts: Math.max(1, options.maxAttempts ?? 4),
    baseDelayMs: options.baseDelayMs ?? 250,
    sleep: options.sleep ?? ((ms) => delay(ms).then(() => undefined)),
  };
}

/** Error names that mean "slow down" in one AWS service or another (ECS, CloudWatch, EC2-style APIs). */
const THROTTLING_NAMES: ReadonlySet<string> = new Set([
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
]);
/** Error names of server-side failures that may succeed when asked again. */
const TRANSIENT_NAMES: ReadonlySet<string> = new Set([
  "ServerException",
  "InternalServiceFault",
  "InternalServiceError",
  "InternalFailure",
  "ServiceUnavailable",
  "TimeoutError",
]);
/** Node network error codes that may succeed when asked again. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set(["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE", "EAI_AGAIN"]);

/** The fields of an AWS SDK v3 error (or a Node network error) that deploybot reads. */
export interface AwsErrorShape {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: string;
  $retryable?: { throttling?: boolean };
}

/** Reads anything thrown as an AwsErrorShape; a non-object becomes its string as the message. */
export function shape(err: unknown): AwsErrorShape {
  return typeof err === "object" && err !== null ? (err as AwsErrorShape) : { message: String(err) };
}

/**
 * True when AWS asked deploybot to slow down (by error name, HTTP 429 or the SDK's throttling flag). Some names
 * mean throttling in one service only: CloudWatch's LimitExceededException is a rate limit, ECS's is a quota
 * that no retry will lift, so each adapter passes its own extra names.
 */
export function isThrottling(err: unknown, extraNames: ReadonlySet<string> = NONE): boolean {
  const e = shape(err);
  const name = e.name ?? "";
  return (
    THROTTLING_NAMES.has(name) ||
    extraNames.has(name) ||
    e.$metadata?.httpStatusCode === 429 ||
    e.$retryable?.throttling === true
  );
}

const NONE: ReadonlySet<string> = new Set();

/** True for throttling, transient server errors (by name or 500/502/503/504 server faults) and network errors. */
export function isRetryable(err: unknown, extraThrottling: ReadonlySet<string> = NONE): boolean {
  if (isThrottling(err, extraThrottling)) return true;
  const e = shape(err);
  const status = e.$metadata?.httpStatusCode ?? 0;
  return (
    TRANSIENT_NAMES.has(e.name ?? "") ||
    TRANSIENT_CODES.has(e.code ?? "") ||
    (e.$fault === "server" && [500, 502, 503, 504].includes(status))
  );
}

/** "Name: message", or whichever of the two the error has, for messages. */
export function describeError(err: unknown): string {
  const e = shape(err);
  return e.name && e.message ? `${e.name}: ${e.message}` : (e.message ?? e.name ?? "unknown error");
}

/** How an adapter words the two ways `withRetry` gives up. */
export interface RetryFailure {
  /** The error to throw at once for an error not worth retrying. */
  notRetryable: (err: unknown) => Error;
  /** The error to throw after `attempts` retryable failures; `what` is "throttled" or "failed with a server error on". */
  exhausted: (err: unknown, attempts: number, what: string) => Error;
  /** Error names that mean throttling in this adapter's service only. */
  throttling?: ReadonlySet<string>;
}

/** Calls `send` until it succeeds, waiting baseDelayMs × 2^(n−1) after the n-th retryable failure, up to maxAttempts calls. */
export async function withRetry<T>(retry: RetrySettings, send: () => Promise<T>, fail: RetryFailure): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (!isRetryable(err, fail.throttling)) throw fail.notRetryable(err);
      if (attempt >= retry.maxAttempts) {
        throw fail.exhausted(
          err,
          attempt,
          isThrottling(err, fail.throttling) ? "throttled" : "failed with a server error on",
        );
      }
      await retry.sleep(retry.baseDelayMs * 2 ** (attempt - 1));
    }
  }
}

/**
 * Removes the SDK's logger middleware from a client. deploybot gives the SDK no logger, yet that middleware still
 * walks every request and response through the operation's schema to mask sensitive fields before handing them to
 * the no-op logger: at 1,000 watched deploys that is megabytes a monitor cycle walked for nothing.
 */
/**
 * One SDK client per region, made on first use: the SDK loaded by `load`, the client from `createClient` (tests) or
 * `make`, which turns the SDK's own retries off (so maxAttempts means what it says: 4 calls, not 4 x 3), and without
 * the SDK's logger middleware.
 */
export function regionalClients<Sdk, Client>(
  load: () => Promise<Sdk>,
  make: (sdk: Sdk, region: string) => Client,
  createClient?: (region: string) => Client,
): (region: string) => Promise<{ client: Client; sdk: Sdk }> {
  const clients = new Map<string, Client>();
  return async (region) => {
    const sdk = await load();
    let client = clients.get(region);
    if (!client) {
      client = withoutSdkLogging(createClient?.(region) ?? make(sdk, region));
      clients.set(region, client);
    }
    return { client, sdk };
  };
}

export function withoutSdkLogging<T>(client: T): T {
  (client as { middlewareStack?: { remove?: (name: string) => boolean } }).middlewareStack?.remove?.(
    "loggerMiddleware",
  );
  return client;
}

/** AWS error names that mean the credentials are not accepted (expired, unknown, or signed wrong). */
const REFUSED_CREDENTIALS = new Set([
  "ExpiredTokenException",
  "ExpiredToken",
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
]);

/** What to tell the operator when deploybot's AWS credentials are missing or refused for `action`; else undefined. */
export function credentialsProblem(name: string | undefined, action: string): string | undefined {
  if (name === "CredentialsProviderError")
    return `deploybot found no AWS credentials to call ${action}: run it with an IAM role or set AWS_PROFILE / AWS_ACCESS_KEY_ID.`;
  if (name && REFUSED_CREDENTIALS.has(name))
    return `AWS did not accept deploybot's credentials for ${action} (${name}): refresh them or check the IAM role.`;
  return undefined;
}
