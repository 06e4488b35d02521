// Built into a bundle by test/cli/bundle.test.ts, as scripts/build.mjs builds the CLI: loads each SDK the adapters
// load lazily and prints the type of what they use, so a bundle that wraps a package's exports differently fails.
import { loadCloudWatchSdk } from "../../src/adapters/aws/cloudwatch.js";
import { loadEcsSdk } from "../../src/adapters/aws/ecs.js";
import { loadElbSdk } from "../../src/adapters/aws/elbv2.js";
import { loadPdjs } from "../../src/adapters/pagerduty.js";

const [ecs, cloudwatch, elb, pdjs] = await Promise.all([loadEcsSdk(), loadCloudWatchSdk(), loadElbSdk(), loadPdjs()]);
const client = new ecs.ECSClient({ region: "af-south-1" });
client.destroy();
console.log(
  JSON.stringify({
    ECSClient: typeof ecs.ECSClient,
    DescribeServicesCommand: typeof ecs.DescribeServicesCommand,
    CloudWatchClient: typeof cloudwatch.CloudWatchClient,
    GetMetricDataCommand: typeof cloudwatch.GetMetricDataCommand,
    ElasticLoadBalancingV2Client: typeof elb.ElasticLoadBalancingV2Client,
    ModifyRuleCommand: typeof elb.ModifyRuleCommand,
    event: typeof pdjs.event,
    api: typeof pdjs.api,
  }),
);
