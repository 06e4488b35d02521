#!/usr/bin/env node
// deploybot runs its TypeScript sources directly through tsx: no build step between a clone and a run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const { register } = await import("tsx/esm/api");
register();
const { main } = await import("../src/cli.ts");
process.exitCode = await main(process.argv.slice(2));
