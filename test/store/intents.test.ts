import { describe, expect, it } from "vitest";
import type { Effect, Intent } from "../../src/domain/effects.js";
import type { Store } from "../../src/store/index.js";
import type { NewIntent } from "../../src/store/intents.js";
import { BACKENDS, later, T0, useStores } from "./fixtures.js";

describe.each(BACKENDS)("%s", (backend) => {
  const { store } = useStores(backend);

  let seq = 0;
  /** An intent in `lane` recorded at `minute`, with a fresh key unless one is given. */
  const intent = (lane: string, minute: number, over: Partial<NewIntent> = {}): NewIntent => ({
    key: `note:${++seq}`,
    effect: { kind: "slack.post", channel: lane, text: `post ${seq}` },
    lane,
    at: later(minute),
    ...over,
  });
  const add = (s: Store, lane: string, minute: number, over: Partial<NewIntent> = {}) =>
    s.intents.add(intent(lane, minute, over));
  const keys = (intents: Intent[]) => intents.map((i) => i.key);

  describe("recording intents", () => {
    it("records an open intent, due when it was recorded", async () => {
      const s = await store();
      const effect: Effect = { kind: "slack.card", deploymentId: 7 };
      const recorded = await s.intents.add({
        key: "slack.card:7:1",
        effect,
        lane: "slack:C-DEPLOYS",
        at: T0,
        deploymentId: 7,
      });
      expect(recorded).toEqual({
        id: 1,
        key: "slack.card:7:1",
        effect,
        lane: "slack:C-DEPLOYS",
        status: "open",
        attempts: 0,
        nextAt: T0.toISOString(),
        lastError: null,
        dependsOn: null,
        deploymentId: 7,
        incidentId: null,
        createdAt: T0.toISOString(),
        doneAt: null,
        result: null,
      });
      expect(await s.intents.byId(1)).toEqual(recorded);
      expect(await s.intents.byKey("slack.card:7:1")).toEqual(recorded);
      expect(await s.intents.byKey("nope")).toBeUndefined();
    });

    it("returns the intent already recorded under a key instead of adding a second one", async () => {
      const s = await store();
      const first = await add(s, "slack:C1", 0, { key: "report:9" });
      await s.intents.attempt(first.id);

      const again = await add(s, "slack:C2", 5, {
        key: "report:9",
        effect: { kind: "slack.post", channel: "C2", text: "other" },
      });

      expect(again).toEqual({ ...first, attempts: 1 });
      expect(await s.intents.open()).toHaveLength(1);
    });

    it("returns a done intent for its key rather than opening it again", async () => {
      const s = await store();
      const first = await add(s, "ecs:web/production", 0, { key: "ecs.rollout:3" });
      await s.intents.done(first.id, later(1), { arn: "arn:1" });

      const again = await add(s, "ecs:web/production", 2, { key: "ecs.rollout:3" });

      expect(again).toMatchObject({ id: first.id, status: "done", result: { arn: "arn:1" } });
      expect(await s.intents.open()).toEqual([]);
    });

    it("keeps what it depends on and what it is about", async () => {
      const s = await store();
      const stop = await add(s, "ecs:web/production", 0, { deploymentId: 4 });
      const rollout = await add(s, "ecs:web/production", 0, { dependsOn: stop.id, deploymentId: 5, incidentId: 9 });
      expect(await s.intents.byId(rollout.id)).toMatchObject({ dependsOn: stop.id, deploymentId: 5, incidentId: 9 });
    });
  });

  describe("intents.due", () => {
    it("returns open intents due by now, oldest first, and not those due later", async () => {
      const s = await store();
      const a = await add(s, "slack:C1", 1);
      const b = await add(s, "slack:C2", 3);
      const c = await add(s, "slack:C3", 10);
      expect(keys(await s.intents.due(later(0)))).toEqual([]);
      expect(keys(await s.intents.due(later(3)))).toEqual([a.key, b.key]);
      expect(keys(await s.intents.due(later(10)))).toEqual([a.key, b.key, c.key]);
    });

    it("holds a lane's later intents behind an older open one, even one not due yet, and no other lane", async () => {
      const s = await store();
      const head = await add(s, "pagerduty:web-1", 1);
      await s.intents.retry(head.id, later(60), "PagerDuty answered 503");
      const behind = await add(s, "pagerduty:web-1", 2);
      const otherLane = await add(s, "pagerduty:web-2", 3);

      expect(keys(await s.intents.due(later(5)))).toEqual([otherLane.key]);

      await s.intents.done(head.id, later(6));
      expect(keys(await s.intents.due(later(6)))).toEqual([behind.key, otherLane.key]);
    });

    it("does not hold a lane behind intents that are done or abandoned", async () => {
      const s = await store();
      const done = await add(s, "slack:C1", 1);
      const abandoned = await add(s, "slack:C1", 2);
      const next = await add(s, "slack:C1", 3);
      await s.intents.done(done.id, later(4));
      await s.intents.abandon(abandoned.id, later(4), "the channel is archived");
      expect(keys(await s.intents.due(later(5)))).toEqual([next.key]);
    });

    it("returns only a lane's head, and at most `limit` intents", async () => {
      const s = await store();
      const heads = [];
      for (let n = 0; n < 4; n++) {
        heads.push(await add(s, `slack:C${n}`, n));
        await add(s, `slack:C${n}`, n);
      }
      expect(keys(await s.intents.due(later(10)))).toEqual(keys(heads));
      expect(keys(await s.intents.due(later(10), 2))).toEqual(keys(heads.slice(0, 2)));
    });
  });

  describe("delivering an intent", () => {
    it("counts attempts before the call", async () => {
      const s = await store();
      const i = await add(s, "slack:C1", 0);
      await s.intents.attempt(i.id);
      await s.intents.attempt(i.id);
      expect(await s.intents.byId(i.id)).toEqual({ ...i, attempts: 2 });
    });

    it("retries later: the next attempt time and the error are kept, still open", async () => {
      const s = await store();
      const i = await add(s, "slack:C1", 0);
      await s.intents.attempt(i.id);
      await s.intents.retry(i.id, later(5), `ratelimited ${"x".repeat(3000)}`);
      const retried = await s.intents.byId(i.id);
      expect(retried).toEqual({ ...i, attempts: 1, nextAt: later(5).toISOString(), lastError: retried?.lastError });
      expect(retried?.lastError).toBe(`ratelimited ${"x".repeat(3000)}`.slice(0, 2000));
      expect(await s.intents.due(later(4))).toEqual([]);
      expect(keys(await s.intents.due(later(5)))).toEqual([i.key]);
    });

    it("marks it done with the world's answer and clears the last error", async () => {
      const s = await store();
      const i = await add(s, "slack:C1", 0);
      await s.intents.attempt(i.id);
      await s.intents.retry(i.id, later(1), "timeout");
      await s.intents.attempt(i.id);
      await s.intents.done(i.id, later(2), { ts: "1795248000.000003" });
      expect(await s.intents.byId(i.id)).toEqual({
        ...i,
        status: "done",
        attempts: 2,
        nextAt: later(1).toISOString(),
        lastError: null,
        doneAt: later(2).toISOString(),
        result: { ts: "1795248000.000003" },
      });
      expect(await s.intents.open()).toEqual([]);
    });

    it("abandons it with the reason as its result and last error", async () => {
      const s = await store();
      const i = await add(s, "slack:C1", 0);
      await s.intents.abandon(i.id, later(3), "the channel is archived");
      expect(await s.intents.byId(i.id)).toEqual({
        ...i,
        status: "abandoned",
        lastError: "the channel is archived",
        doneAt: later(3).toISOString(),
        result: { abandoned: "the channel is archived" },
      });
    });

    it.each([
      ["done", "done"],
      ["done", "retry"],
      ["done", "abandon"],
      ["done", "attempt"],
      ["abandoned", "done"],
      ["abandoned", "retry"],
      ["abandoned", "abandon"],
      ["abandoned", "attempt"],
    ] as const)("changes nothing on a %s intent when asked to %s", async (status, op) => {
      const s = await store();
      const i = await add(s, "slack:C1", 0);
      if (status === "done") await s.intents.done(i.id, later(1), { ts: "1" });
      else await s.intents.abandon(i.id, later(1), "gone");
      const before = await s.intents.byId(i.id);

      if (op === "done") await s.intents.done(i.id, later(9), { ts: "2" });
      if (op === "retry") await s.intents.retry(i.id, later(9), "again");
      if (op === "abandon") await s.intents.abandon(i.id, later(9), "other reason");
      if (op === "attempt") await s.intents.attempt(i.id);

      expect(before?.status).toBe(status);
      expect(await s.intents.byId(i.id)).toEqual(before);
    });
  });

  describe("reading the outbox", () => {
    it("finds the newest open intent of a kind about a deployment or an incident (the one a change coalesces into)", async () => {
      const s = await store();
      const card = { kind: "slack.card", deploymentId: 1 } as const;
      const sent = await add(s, "slack:C1", 0, { effect: card, deploymentId: 1 });
      await s.intents.done(sent.id, later(1));
      await add(s, "slack:C1", 1, { deploymentId: 1 });
      await add(s, "slack:C1", 1, { effect: { kind: "slack.card", deploymentId: 2 }, deploymentId: 2 });
      await add(s, "slack:C1", 2, { effect: card, deploymentId: 1 });
      const open = await add(s, "slack:C1", 3, { effect: card, deploymentId: 1 });
      const incident = await add(s, "slack:C2", 2, {
        effect: { kind: "slack.incident", incidentId: 1 },
        incidentId: 1,
      });

      expect((await s.intents.openOf("slack.card", { deploymentId: 1 }))?.id).toBe(open.id);
      expect((await s.intents.openOf("slack.incident", { incidentId: 1 }))?.id).toBe(incident.id);
      expect(await s.intents.openOf("slack.incident", { deploymentId: 1 })).toBeUndefined();
      expect(await s.intents.openOf("slack.card", { incidentId: 1 })).toBeUndefined();
    });

    it("lists every intent about a subject oldest first, done ones included", async () => {
      const s = await store();
      const a = await add(s, "slack:C1", 0, { deploymentId: 1 });
      await add(s, "slack:C1", 0, { deploymentId: 2 });
      const b = await add(s, "ecs:web/production", 1, { deploymentId: 1, incidentId: 3 });
      await s.intents.done(a.id, later(2));
      expect(keys(await s.intents.about({ deploymentId: 1 }))).toEqual([a.key, b.key]);
      expect(keys(await s.intents.about({ incidentId: 3 }))).toEqual([b.key]);
      expect(await s.intents.about({ incidentId: 1 })).toEqual([]);
    });

    it("lists the open intents oldest first", async () => {
      const s = await store();
      const a = await add(s, "slack:C1", 5);
      const b = await add(s, "slack:C2", 0);
      const c = await add(s, "slack:C3", 1);
      await s.intents.abandon(b.id, later(6), "gone");
      expect(keys(await s.intents.open())).toEqual([a.key, c.key]);
    });

    it("says when the earliest open intent is next due, and nothing when none is open", async () => {
      const s = await store();
      expect(await s.intents.nextDueAt()).toBeUndefined();
      const early = await add(s, "slack:C1", 1);
      await add(s, "slack:C2", 7);
      const late = await add(s, "slack:C3", 3);
      await s.intents.retry(late.id, later(30), "busy");
      expect(await s.intents.nextDueAt()).toEqual(later(1));
      await s.intents.done(early.id, later(2));
      expect(await s.intents.nextDueAt()).toEqual(later(7));
    });
  });
});
