#!/usr/bin/env node
// deploybot runs its TypeScript sources directly through tsx: no build step between a clone and a run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const { register } = await import("tsx/esm/api");
register();
const { main } = await import("../src/cli.ts");
// Exit explicitly: after a stop (or a failed start) nothing left open, such as a keep-alive socket or a timer,
// may keep a process alive that its supervisor believes has ended.
process.exit(await main(process.argv.slice(2)));
