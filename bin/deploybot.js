#!/usr/bin/env node
// deploybot runs the bundle in dist/ (made by `npm install` or `npm run build`, scripts/build.mjs) while it is newer
// than every source file, and otherwise its TypeScript sources directly through tsx: an edit to src/ takes effect at
// the next start either way. DEPLOYBOT_FROM_SOURCE=1 always runs the sources.
import { fileURLToPath } from "node:url";
import { bundleIsFresh } from "./bundle.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

let main;
if (bundleIsFresh(fileURLToPath(new URL("..", import.meta.url)))) ({ main } = await import("../dist/cli.mjs"));
else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../src/cli.ts"));
}
// Exit explicitly: after a stop (or a failed start) nothing left open, such as a keep-alive socket or a timer,
// may keep a process alive that its supervisor believes has ended.
process.exit(await main(process.argv.slice(2)));
