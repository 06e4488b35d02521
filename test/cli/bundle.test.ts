import { execFile } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
// @ts-expect-error: bin/ is plain JavaScript without declarations.
import { bundleIsFresh } from "../../bin/bundle.js";
import { ROOT } from "../helpers/bot-process.js";

const fresh = bundleIsFresh as (root: string, env?: Record<string, string | undefined>) => boolean;

/** A checkout in a temp dir: src/ (nested), package-lock.json and, if `built` is given, dist/cli.mjs, at times (s). */
function checkout(times: { src: number; nested: number; lock: number; built?: number }): string {
  const root = `${mkdtempSync(join(tmpdir(), "deploybot-bundle-"))}/`;
  mkdirSync(`${root}src/store`, { recursive: true });
  const file = (path: string, at: number) => {
    writeFileSync(`${root}${path}`, "x");
    utimesSync(`${root}${path}`, at, at);
  };
  file("src/cli.ts", times.src);
  file("src/store/index.ts", times.nested);
  file("package-lock.json", times.lock);
  if (times.built !== undefined) {
    mkdirSync(`${root}dist`);
    file("dist/cli.mjs", times.built);
  }
  return root;
}

describe("which code bin/deploybot.js runs", () => {
  it("runs the bundle when it is newer than every source and the lock file", () => {
    expect(fresh(checkout({ src: 100, nested: 100, lock: 100, built: 200 }), {})).toBe(true);
  });

  it("runs the sources when there is no bundle", () => {
    expect(fresh(checkout({ src: 100, nested: 100, lock: 100 }), {})).toBe(false);
  });

  it("runs the sources when any file under src/, however deep, changed after the build", () => {
    expect(fresh(checkout({ src: 300, nested: 100, lock: 100, built: 200 }), {})).toBe(false);
    expect(fresh(checkout({ src: 100, nested: 300, lock: 100, built: 200 }), {})).toBe(false);
  });

  it("runs the sources when the dependencies changed after the build", () => {
    expect(fresh(checkout({ src: 100, nested: 100, lock: 300, built: 200 }), {})).toBe(false);
  });

  it("runs the sources when DEPLOYBOT_FROM_SOURCE=1, however fresh the bundle", () => {
    expect(fresh(checkout({ src: 100, nested: 100, lock: 100, built: 200 }), { DEPLOYBOT_FROM_SOURCE: "1" })).toBe(
      false,
    );
  });
});

describe("the bundle npm install builds", () => {
  it("runs the console end to end as the sources do", async () => {
    // Built outside the checkout (so no other test's `bin/deploybot.js` sees it half written), beside a copy of
    // package.json and the checkout's node_modules, where the bundle's ../package.json and externals resolve.
    const home = mkdtempSync(join(tmpdir(), "deploybot-dist-"));
    try {
      copyFileSync(join(ROOT, "package.json"), join(home, "package.json"));
      symlinkSync(join(ROOT, "node_modules"), join(home, "node_modules"));
      const run = promisify(execFile);
      const env = { PATH: process.env.PATH, HOME: home, LOG_LEVEL: "warn" };
      const probe = `probe=${join(ROOT, "test/cli/bundle-probe.ts")}`;
      await run(process.execPath, ["scripts/build.mjs", "--outdir", join(home, "dist"), "--entry", probe], {
        cwd: ROOT,
        env,
      });
      const script = join(home, "script.txt");
      writeFileSync(script, "/deploy web v2.4.1 to staging\n:advance 5m\n/deploy-status web staging\n");
      const cli = `const { main } = await import(${JSON.stringify(join(home, "dist", "cli.mjs"))});
        process.exit(await main(process.argv.slice(1)));`;
      const args = ["--input-type=module", "-e", cli, "--", "console", "--db", join(home, "d.db"), "--script", script];
      const { stdout } = await run(process.execPath, args, { cwd: ROOT, env, timeout: 60_000 });
      // The deploy reached (the simulated) ECS, and /deploy-status then reads the new version running.
      expect(stdout).toContain("AWS ecs:UpdateService");
      expect(stdout).toMatch(/\*web\* · \*staging\* {2}`v2\.4\.1`/);
      const version = await run(process.execPath, ["--input-type=module", "-e", cli, "--", "--version"], {
        cwd: ROOT,
        env,
      });
      expect(version.stdout).toMatch(/^deploybot \d+\.\d+\.\d+\n$/);
      // The SDKs the adapters load on first use arrive with their exports, as they do from the sources (a CommonJS
      // package bundled as an ES module once came back under `default`: every AWS call and page failed).
      const loaded = await run(process.execPath, [join(home, "dist", "probe.mjs")], { cwd: ROOT, env });
      expect(JSON.parse(loaded.stdout)).toEqual({
        ECSClient: "function",
        DescribeServicesCommand: "function",
        CloudWatchClient: "function",
        GetMetricDataCommand: "function",
        ElasticLoadBalancingV2Client: "function",
        ModifyRuleCommand: "function",
        event: "function",
        api: "function",
      });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }, 90_000);
});

describe("the Dockerfile's install step", () => {
  it("has scripts/ in place before `npm ci`, whose prepare script then finds no src/ to bundle and exits 0", async () => {
    const lines = readFileSync(join(ROOT, "Dockerfile"), "utf8").split("\n");
    const at = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));
    expect(at(/^COPY scripts /)).toBeGreaterThan(-1);
    expect(at(/^COPY scripts /)).toBeLessThan(at(/^RUN .*npm ci/));
    expect(at(/^RUN .*npm ci/)).toBeLessThan(at(/^COPY src /));
    // What that layer holds when npm ci runs `prepare`: package files and scripts/, no src/.
    const layer = mkdtempSync(join(tmpdir(), "deploybot-layer-"));
    try {
      cpSync(join(ROOT, "scripts"), join(layer, "scripts"), { recursive: true });
      copyFileSync(join(ROOT, "package.json"), join(layer, "package.json"));
      const { stdout } = await promisify(execFile)(process.execPath, ["scripts/build.mjs"], { cwd: layer });
      expect(stdout).toContain("no src/ yet, nothing to bundle");
    } finally {
      rmSync(layer, { recursive: true, force: true });
    }
  });
});
