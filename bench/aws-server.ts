/**
 * The benchmark's AWS: a child process that answers the real SDK clients' requests in each service's wire
 * protocol, so serialising, signing, HTTP and parsing run as they do against AWS. CloudWatch speaks JSON 1.0
 * (`x-amz-target: GraniteServiceVersion20100801.*`, `application/x-amz-json-1.0`, timestamps as epoch seconds),
 * ECS JSON 1.1 (`AmazonEC2ContainerServiceV20141113.*`, `application/x-amz-json-1.1`). Every answer is derived
 * from the request (healthy metrics, a service that runs revision 2 of its task definition, deployments in
 * progress), so any number of services needs no set-up. It also plays Slack's Web API under /api/ (every
 * method answers ok), for a bot whose SLACK_API_URL points here. The parent asks for counters over IPC.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const ACCOUNT = "123456789012";
/** CloudWatch publishes a period this long after it ends (ALB and ECS metrics arrive 1-3 min late). */
const PUBLISH_LAG_S = 60;

export interface AwsCounters {
  /** Requests per API action, e.g. "GetMetricData", "DescribeServices". */
  calls: Record<string, number>;
  metricDataQueries: number;
  /** MetricDataQueries that name a metric (MetricStat): the "metrics requested" CloudWatch bills. */
  metricStats: number;
  expressions: number;
  /** Series returned (ReturnData true) and their datapoints. */
  seriesReturned: number;
  datapoints: number;
  bytesIn: number;
  bytesOut: number;
}

export type AwsServerRequest = { kind: "url" } | { kind: "counters"; reset?: boolean };
export type AwsServerReply = { kind: "url"; url: string } | { kind: "counters"; counters: AwsCounters };

const zero = (): AwsCounters => ({
  calls: {},
  metricDataQueries: 0,
  metricStats: 0,
  expressions: 0,
  seriesReturned: 0,
  datapoints: 0,
  bytesIn: 0,
  bytesOut: 0,
});
let counters = zero();

interface Query {
  Id?: string;
  Expression?: string;
  Period?: number;
  ReturnData?: boolean;
  MetricStat?: { Metric?: { MetricName?: string }; Period?: number; Stat?: string };
}

/** A healthy reading per metric: nothing breaches, so the monitor's steady state is what is measured. */
function healthyValue(q: Query): number {
  if (q.Expression) return q.Expression.includes("FILL(") ? 0.083 : 1;
  switch (q.MetricStat?.Metric?.MetricName) {
    case "RequestCount":
      return 1200;
    case "HTTPCode_Target_5XX_Count":
      return 1;
    case "TargetResponseTime":
      return 0.18;
    case "HealthyHostCount":
      return 4;
    case "CPUUtilization":
      return 35;
    case "MemoryUtilization":
      return 48;
    case "ConnectionPoolUtilization":
      return 35;
    case "DiskUsedPercent":
      return 41;
    default:
      return 1;
  }
}

/** Timestamps (epoch seconds) of the periods in [start, end) that CloudWatch has published by `end`. */
const timestampCache = new Map<string, string>();
function timestamps(start: number, end: number, period: number): { json: string; count: number } {
  const key = `${start}/${end}/${period}`;
  let json = timestampCache.get(key);
  if (json === undefined) {
    const list: number[] = [];
    for (let t = Math.ceil(start / period) * period; t + period + PUBLISH_LAG_S <= end; t += period) list.push(t);
    json = JSON.stringify(list);
    if (timestampCache.size > 1000) timestampCache.clear();
    timestampCache.set(key, json);
  }
  return { json, count: json === "[]" ? 0 : json.split(",").length };
}

function getMetricData(input: {
  MetricDataQueries?: Query[];
  StartTime?: number;
  EndTime?: number;
}): string | { status: number; type: string; message: string } {
  const queries = input.MetricDataQueries ?? [];
  if (queries.length > 500)
    return { status: 400, type: "ValidationError", message: "The collection MetricDataQueries must not exceed 500" };
  counters.metricDataQueries += queries.length;
  const start = Number(input.StartTime);
  const end = Number(input.EndTime);
  const parts: string[] = [];
  for (const q of queries) {
    if (q.MetricStat) counters.metricStats++;
    else counters.expressions++;
    if (q.ReturnData === false) continue;
    const period = q.MetricStat?.Period ?? q.Period ?? 60;
    const ts = timestamps(start, end, period);
    const value = healthyValue(q);
    counters.seriesReturned++;
    counters.datapoints += ts.count;
    const values = ts.count === 0 ? "[]" : `[${new Array(ts.count).fill(value).join(",")}]`;
    parts.push(
      `{"Id":${JSON.stringify(q.Id)},"Label":${JSON.stringify(q.MetricStat?.Metric?.MetricName ?? q.Id)},"Timestamps":${ts.json},"Values":${values},"StatusCode":"Complete"}`,
    );
  }
  return `{"MetricDataResults":[${parts.join(",")}],"Messages":[]}`;
}

/** "arn:aws:ecs:af-south-1:123:service-deployment/cluster/service/id" → its region, cluster, service and id. */
function parseArn(arn: string): { region: string; cluster: string; service: string; id: string } {
  const [, , , region = "af-south-1", , resource = ""] = arn.split(":");
  const [, cluster = "cluster", service = "service", id = "1"] = resource.split("/");
  return { region, cluster, service, id };
}

const taskDefinitionArn = (region: string, family: string, revision: number) =>
  `arn:aws:ecs:${region}:${ACCOUNT}:task-definition/${family}:${revision}`;

function ecs(action: string, input: Record<string, unknown>, region: string): unknown {
  const now = Date.now() / 1000;
  switch (action) {
    case "DescribeServices": {
      const cluster = String(input.cluster ?? "default");
      const services = (input.services as string[] | undefined) ?? [];
      return {
        services: services.map((name) => ({
          serviceArn: `arn:aws:ecs:${region}:${ACCOUNT}:service/${cluster}/${name}`,
          serviceName: name,
          clusterArn: `arn:aws:ecs:${region}:${ACCOUNT}:cluster/${cluster}`,
          status: "ACTIVE",
          desiredCount: 4,
          runningCount: 4,
          pendingCount: 0,
          launchType: "FARGATE",
          taskDefinition: taskDefinitionArn(region, name, 2),
          deploymentConfiguration: {
            deploymentCircuitBreaker: { enable: true, rollback: true },
            maximumPercent: 200,
            minimumHealthyPercent: 100,
          },
          createdAt: now - 86_400 * 90,
        })),
        failures: [],
      };
    }
    case "DescribeTaskDefinition": {
      // "web:2", "arn:...:task-definition/web:2" or a family: the family names the container and its image.
      const ref = String(input.taskDefinition ?? "");
      const tail = ref.slice(ref.lastIndexOf("/") + 1);
      const [family = "app", rev] = tail.split(":");
      const revision = rev ? Number(rev) : 2;
      return {
        taskDefinition: {
          taskDefinitionArn: taskDefinitionArn(region, family, revision),
          family,
          revision,
          status: "ACTIVE",
          networkMode: "awsvpc",
          requiresCompatibilities: ["FARGATE"],
          cpu: "512",
          memory: "1024",
          containerDefinitions: [
            {
              name: family,
              image: `${ACCOUNT}.dkr.ecr.${region}.amazonaws.com/${family}:v1.4.${revision}`,
              essential: true,
              portMappings: [{ containerPort: 8080, protocol: "tcp" }],
            },
          ],
          registeredAt: now - 86_400,
        },
        tags: [],
      };
    }
    case "ListServiceDeployments": {
      const cluster = String(input.cluster ?? "default");
      const service = String(input.service ?? "service");
      return {
        serviceDeployments: [
          {
            serviceDeploymentArn: `arn:aws:ecs:${region}:${ACCOUNT}:service-deployment/${cluster}/${service}/latest`,
            serviceArn: `arn:aws:ecs:${region}:${ACCOUNT}:service/${cluster}/${service}`,
            clusterArn: `arn:aws:ecs:${region}:${ACCOUNT}:cluster/${cluster}`,
            status: "IN_PROGRESS",
            createdAt: now - 300,
            startedAt: now - 300,
            targetServiceRevisionArn: `arn:aws:ecs:${region}:${ACCOUNT}:service-revision/${cluster}/${service}/2`,
          },
        ],
      };
    }
    case "DescribeServiceDeployments": {
      const arns = (input.serviceDeploymentArns as string[] | undefined) ?? [];
      return {
        serviceDeployments: arns.map((arn) => {
          const a = parseArn(arn);
          const revision = (r: number) =>
            `arn:aws:ecs:${a.region}:${ACCOUNT}:service-revision/${a.cluster}/${a.service}/${r}`;
          // Half the tasks of the new revision are up: in progress, and the same reading every tick.
          return {
            serviceDeploymentArn: arn,
            serviceArn: `arn:aws:ecs:${a.region}:${ACCOUNT}:service/${a.cluster}/${a.service}`,
            clusterArn: `arn:aws:ecs:${a.region}:${ACCOUNT}:cluster/${a.cluster}`,
            createdAt: now - 300,
            startedAt: now - 300,
            updatedAt: now - 5,
            status: "IN_PROGRESS",
            sourceServiceRevisions: [{ arn: revision(1), requestedTaskCount: 4, runningTaskCount: 2 }],
            targetServiceRevision: {
              arn: revision(2),
              requestedTaskCount: 4,
              runningTaskCount: 2,
              pendingTaskCount: 2,
            },
            deploymentConfiguration: { deploymentCircuitBreaker: { enable: true, rollback: true } },
          };
        }),
        failures: [],
      };
    }
    case "DescribeServiceRevisions": {
      const arns = (input.serviceRevisionArns as string[] | undefined) ?? [];
      return {
        serviceRevisions: arns.map((arn) => {
          const a = parseArn(arn);
          return {
            serviceRevisionArn: arn,
            serviceArn: `arn:aws:ecs:${a.region}:${ACCOUNT}:service/${a.cluster}/${a.service}`,
            clusterArn: `arn:aws:ecs:${a.region}:${ACCOUNT}:cluster/${a.cluster}`,
            taskDefinition: taskDefinitionArn(a.region, a.service, Number(a.id) || 2),
            createdAt: now - 300,
          };
        }),
        failures: [],
      };
    }
    default:
      return undefined;
  }
}

/** The region a SigV4 request was signed for: Credential=AKID/date/REGION/service/aws4_request. */
function regionOf(req: IncomingMessage): string {
  return /Credential=[^/]+\/\d+\/([^/]+)\//.exec(String(req.headers.authorization ?? ""))?.[1] ?? "us-east-1";
}

function reply(res: ServerResponse, status: number, contentType: string, body: string): void {
  counters.bytesOut += Buffer.byteLength(body);
  res.writeHead(status, { "content-type": contentType, "x-amzn-requestid": "bench" });
  res.end(body);
}

function awsError(res: ServerResponse, contentType: string, status: number, type: string, message: string): void {
  reply(res, status, contentType, JSON.stringify({ __type: type, message }));
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const raw = Buffer.concat(chunks);
    counters.bytesIn += raw.length;
    if (req.url?.startsWith("/api/")) {
      // Slack's Web API: auth.test names the bot; every other method just succeeds.
      const method = req.url.slice(5).split("?")[0] ?? "";
      counters.calls[`slack:${method}`] = (counters.calls[`slack:${method}`] ?? 0) + 1;
      const body =
        method === "auth.test"
          ? {
              ok: true,
              url: "https://bench.slack.com/",
              team: "bench",
              user: "deploybot",
              team_id: "T0LOCAL",
              user_id: "U0DEPLOYBOT",
              bot_id: "B0DEPLOYBOT",
            }
          : { ok: true, channel: "CDEPLOYS", ts: `${Date.now() / 1000}` };
      reply(res, 200, "application/json", JSON.stringify(body));
      return;
    }
    const target = String(req.headers["x-amz-target"] ?? "");
    const contentType = String(req.headers["content-type"] ?? "application/x-amz-json-1.1");
    const [prefix = "", action = ""] = target.split(".");
    counters.calls[action] = (counters.calls[action] ?? 0) + 1;
    let input: Record<string, unknown>;
    try {
      input = raw.length ? (JSON.parse(raw.toString("utf8")) as Record<string, unknown>) : {};
    } catch {
      awsError(res, contentType, 400, "SerializationException", "the body is not JSON");
      return;
    }
    if (prefix === "GraniteServiceVersion20100801" && contentType === "application/x-amz-json-1.0") {
      if (action !== "GetMetricData") {
        awsError(res, contentType, 400, "UnknownOperationException", `${action} is not answered by the bench`);
        return;
      }
      const out = getMetricData(input as Parameters<typeof getMetricData>[0]);
      if (typeof out === "string") reply(res, 200, contentType, out);
      else awsError(res, contentType, out.status, out.type, out.message);
      return;
    }
    if (prefix === "AmazonEC2ContainerServiceV20141113" && contentType === "application/x-amz-json-1.1") {
      const out = ecs(action, input, regionOf(req));
      if (out === undefined)
        awsError(res, contentType, 400, "UnknownOperationException", `${action} is not answered by the bench`);
      else reply(res, 200, contentType, JSON.stringify(out));
      return;
    }
    awsError(res, contentType, 400, "UnknownOperationException", `unexpected target ${target} (${contentType})`);
  });
});
server.keepAliveTimeout = 60_000;

const ready = new Promise<string>((resolve) =>
  server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
);

process.on("message", async (msg: AwsServerRequest) => {
  if (msg.kind === "url") process.send?.({ kind: "url", url: await ready } satisfies AwsServerReply);
  else if (msg.kind === "counters") {
    process.send?.({ kind: "counters", counters } satisfies AwsServerReply);
    if (msg.reset) counters = zero();
  }
});
process.on("disconnect", () => process.exit(0));
