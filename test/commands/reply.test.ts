import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { afterAck } from "../../src/commands/reply.js";

function gate() {
  let open = () => {};
  const shut = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { shut, open };
}

describe("afterAck", () => {
  it("runs the slow parts of at most two commands at once, and the others in order as slots free up", async () => {
    const gates = Array.from({ length: 6 }, gate);
    const started: number[] = [];
    let running = 0;
    let most = 0;
    const all = gates.map((g, i) =>
      afterAck(async () => {
        started.push(i);
        most = Math.max(most, ++running);
        await g.shut;
        running--;
        return i;
      }),
    );
    await sleep(5);
    expect(started).toEqual([0, 1]);
    gates[1]?.open();
    await sleep(5);
    expect(started).toEqual([0, 1, 2]);
    for (const g of gates) g.open();
    expect(await Promise.all(all)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(most).toBe(2);
  });

  it("frees the slot of a command that failed, and passes its error on", async () => {
    const failures = Array.from({ length: 4 }, () =>
      afterAck(async () => {
        throw new Error("ECS is down");
      }),
    );
    for (const f of failures) await expect(f).rejects.toThrow("ECS is down");
    expect(await afterAck(async () => "still runs")).toBe("still runs");
  });
});
