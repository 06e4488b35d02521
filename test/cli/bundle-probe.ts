// Built into a bundle by test/cli/bundle.test.ts, as scripts/build.mjs builds the CLI: loads each SDK the adapters
// load lazily and prints the type of what they use, so a bundle that wraps a package's exports differently fails.
import { loadCloudWatchSdk } from "../../src/adapters/aws/cloudwatch.js";
import { loadEcsSdk } from "../../src/adapters/aws/ecs.js";
import { loadPdjs } from "../../src/adapters/pagerduty.js";

const [ecs, cloudwatch, pdjs] = await Promise.all([loadEcsSdk(), loadCloudWatchSdk(), loadPdjs()]);
const client = new ecs.ECSClient({ region: "af-south-1" });
client.destroy();
console.log(
  JSON.stringify({
    ECSClient: typeof ecs.ECSClient,
    DescribeServicesCommand: typeof ecs.DescribeServicesCommand,
    CloudWatchClient: typeof cloudwatch.CloudWatchClient,
    GetMetricDataCommand: typeof cloudwatch.GetMetricDataCommand,
    event: typeof pdjs.event,
    api: typeof pdjs.api,
  }),
);
