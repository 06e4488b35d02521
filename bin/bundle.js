// Whether dist/ (the bundle scripts/build.mjs makes) may run instead of the sources: only while it is newer than
// every file under src/ and than package-lock.json, so an edit or an upgrade is never hidden behind a stale build.
import { readdirSync, statSync } from "node:fs";

/** Modification time of a file, 0 when it is missing. */
function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Newest modification time of the files under a directory, 0 when it is missing. */
function newest(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let latest = 0;
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    latest = Math.max(latest, e.isDirectory() ? newest(path) : mtime(path));
  }
  return latest;
}

/** `root` ends with a slash. DEPLOYBOT_FROM_SOURCE=1 in `env` always says no. */
export function bundleIsFresh(root, env = process.env) {
  if (env.DEPLOYBOT_FROM_SOURCE === "1") return false;
  const built = mtime(`${root}dist/cli.mjs`);
  return built > 0 && newest(`${root}src`) <= built && mtime(`${root}package-lock.json`) <= built;
}
