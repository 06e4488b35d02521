import { EventEmitter } from "node:events";
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { EXIT, installCrashHandlers } from "../../src/cli.js";

function harness() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const proc = new EventEmitter();
  const exits: number[] = [];
  installCrashHandlers(pino({ level: "info" }, sink), proc as unknown as NodeJS.Process, (code) => exits.push(code));
  return { lines, proc, exits };
}

describe("the process-level crash handlers", () => {
  it("logs an unhandled rejection and carries on", () => {
    const h = harness();
    h.proc.emit("unhandledRejection", new Error("a promise nobody awaited"));
    expect(h.exits).toEqual([]);
    expect(h.lines).toMatchObject([
      {
        level: 50,
        msg: "unhandled promise rejection (the process carries on)",
        err: { message: "a promise nobody awaited" },
      },
    ]);
  });

  it("logs an uncaught exception and exits 70 for the supervisor to restart deploybot", () => {
    const h = harness();
    h.proc.emit("uncaughtException", new TypeError("Cannot read properties of null"));
    expect(h.exits).toEqual([EXIT.bug]);
    expect(EXIT.bug).toBe(70);
    expect(h.lines).toMatchObject([
      { level: 60, msg: "uncaught exception: exiting for the supervisor to restart deploybot" },
    ]);
  });
});
