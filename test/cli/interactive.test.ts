import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { runConsole } from "../../src/local/run.js";
import { ROOT } from "../helpers/bot-process.js";

const tmp = mkdtempSync(join(tmpdir(), "deploybot-interactive-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** What a terminal would show: the text, with readline's cursor movements taken out. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are the point
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");

/** The interactive console on a fake terminal: type keys, read the screen. */
function terminal(history: string) {
  const input = new PassThrough();
  let screen = "";
  const output = new Writable({
    write(chunk, _enc, done) {
      screen += chunk.toString();
      done();
    },
  });
  const run = runConsole({
    configFile: join(ROOT, "examples/deploybot.yml"),
    dbFile: ":memory:",
    at: "2026-11-21T10:00:00+02:00",
    logger: pino({ level: "silent" }),
    json: false,
    interactive: true,
    input,
    output,
    history,
  });
  return {
    run,
    screen: () => plain(screen),
    /** Types `keys` and waits until the screen shows `until`. */
    async type(keys: string, until: RegExp) {
      input.write(keys);
      for (let i = 0; i < 500 && !until.test(plain(screen)); i++) await new Promise((r) => setTimeout(r, 10));
      expect(plain(screen)).toMatch(until);
    },
  };
}

describe("the interactive console", () => {
  it("shows a prompt, echoes what is typed, recalls the last line with the up arrow and keeps it in the history file", async () => {
    const history = join(tmp, "history");
    writeFileSync(history, ":advance 1m\n");
    const t = terminal(history);
    await t.type("", /alice in #deploys> $/);
    await t.type("/status web production\r", /\(only alice sees this\).*\n[\s\S]*alice in #deploys> $/);
    expect(t.screen()).toContain("alice in #deploys> /status web production");
    expect(t.screen()).toContain("Weekend freeze until Mon 23 Nov 09:00 SAST");

    // Up arrow: the line just typed comes back, and Enter runs it again.
    await t.type("\x1b[A", /alice in #deploys> \/status web production$/);
    await t.type("\r", /(\(only alice sees this\)[\s\S]*){2}alice in #deploys> $/);
    // Twice up: the line from an earlier session's history file.
    await t.type(":as bob\r", /bob in #deploys> $/);
    await t.type("\x1b[A\x1b[A\x1b[A", /bob in #deploys> :advance 1m$/);
    await t.type("\x15:quit\r", /:quit/);
    expect(await t.run).toEqual({});

    expect(readFileSync(history, "utf8")).toBe(":advance 1m\n/status web production\n:as bob\n:quit\n");
  });
});
