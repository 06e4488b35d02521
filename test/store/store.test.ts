import { describe, expect, it } from "vitest";
import { DeploybotError, ErrorCode } from "../../src/errors.js";
import type { Approval, Incident, IncidentState, Store } from "../../src/store/index.js";
import {
  BACKENDS,
  deploymentIn,
  INCIDENT_PATH,
  incidentIn,
  later,
  newDeploy,
  newIncident,
  T0,
  thrown,
  useStores,
} from "./fixtures.js";

describe.each(BACKENDS)("%s", (backend) => {
  const { store } = useStores(backend);

  const newRollback = (s: Store, rollsBack: number | null, at = later(10)) =>
    s.deployments.create(
      {
        kind: "rollback",
        service: "web",
        environment: "production",
        version: "v1.4.1",
        requestedBy: "bob",
        reason: "5xx above 2%",
        flags: { automatic: true },
        rollsBack,
        previousVersion: "v1.4.2",
      },
      at,
    );

  describe("deployments", () => {
    it("creates a deployment as requested, with its flags and times", async () => {
      const s = await store();
      const d = await newDeploy(s, { taskDefinition: "web:42", previousVersion: "v1.4.1" });
      expect(d).toEqual({
        id: 1,
        kind: "deploy",
        service: "web",
        environment: "production",
        version: "v1.4.2",
        taskDefinition: "web:42",
        previousVersion: "v1.4.1",
        previousTaskDefinition: null,
        requestedBy: "alice",
        reason: "fix login",
        flags: { hotfix: true },
        rollsBack: null,
        status: "requested",
        decision: null,
        approvalRule: null,
        expiresAt: null,
        ecsDeploymentArn: null,
        progress: null,
        cardChannel: null,
        cardTs: null,
        createdAt: T0.toISOString(),
        updatedAt: T0.toISOString(),
        finishedAt: null,
        startedAt: null,
      });
      expect(await s.deployments.get(d.id)).toEqual(d);
      expect(await s.deployments.must(d.id)).toEqual(d);
    });

    it("records the deploy a rollback rolls back and finds a deploy's rollbacks newest first", async () => {
      const s = await store();
      const deploy = await newDeploy(s);
      const other = await newDeploy(s);
      const first = await newRollback(s, deploy.id, later(10));
      await newRollback(s, other.id, later(11));
      const second = await newRollback(s, deploy.id, later(12));
      await newRollback(s, null, later(13));

      expect(first).toMatchObject({ kind: "rollback", rollsBack: deploy.id, flags: { automatic: true } });
      expect((await s.deployments.rollbacksOf(deploy.id)).map((d) => d.id)).toEqual([second.id, first.id]);
      expect(await s.deployments.rollbacksOf(first.id)).toEqual([]);
    });

    it("returns undefined for a deployment that does not exist, and must() says which", async () => {
      const s = await store();
      expect(await s.deployments.get(42)).toBeUndefined();
      const err = await thrown(() => s.deployments.must(42));
      expect(err).toBeInstanceOf(DeploybotError);
      expect((err as DeploybotError).code).toBe(ErrorCode.NotFound);
      expect(err.message).toBe("no deployment #42");
    });

    it("lists a target's history newest first, up to the limit, without other targets", async () => {
      const s = await store();
      const a = await deploymentIn(s, "succeeded");
      const b = await deploymentIn(s, "awaiting_approval");
      await newDeploy(s, { environment: "staging" });
      await newDeploy(s, { service: "api" });
      const c = await newDeploy(s);
      expect((await s.deployments.history("web", "production")).map((d) => d.id)).toEqual([c.id, b.id, a.id]);
      expect((await s.deployments.history("web", "production", 2)).map((d) => d.id)).toEqual([c.id, b.id]);
      expect(await s.deployments.history("web", "dev")).toEqual([]);
    });

    it("finds deployments by status oldest first, of one kind when asked", async () => {
      const s = await store();
      const a = await deploymentIn(s, "succeeded");
      const b = await deploymentIn(s, "awaiting_approval");
      await deploymentIn(s, "failed");
      const r = await newRollback(s, a.id);
      await s.deployments.apply(r.id, "allow", later(11));
      await s.deployments.apply(r.id, "start", later(12));
      await s.deployments.apply(r.id, "succeed", later(13));

      expect((await s.deployments.byStatus(["awaiting_approval", "succeeded"])).map((d) => d.id)).toEqual([
        a.id,
        b.id,
        r.id,
      ]);
      expect((await s.deployments.byStatus(new Set(["succeeded"] as const), "rollback")).map((d) => d.id)).toEqual([
        r.id,
      ]);
      expect((await s.deployments.byStatus(["succeeded"], "deploy")).map((d) => d.id)).toEqual([a.id]);
      expect(await s.deployments.byStatus([])).toEqual([]);
    });

    it("finds a target's newest deployment in some statuses, of one kind when asked", async () => {
      const s = await store();
      await deploymentIn(s, "succeeded");
      const newer = await deploymentIn(s, "succeeded");
      await deploymentIn(s, "baking");
      await deploymentIn(s, "succeeded", { environment: "staging" });
      const r = await newRollback(s, newer.id);

      expect((await s.deployments.latestOf("web", "production", ["succeeded"]))?.id).toBe(newer.id);
      expect((await s.deployments.latestOf("web", "production", ["succeeded", "requested"]))?.id).toBe(r.id);
      expect((await s.deployments.latestOf("web", "production", ["succeeded", "requested"], "deploy"))?.id).toBe(
        newer.id,
      );
      expect(await s.deployments.latestOf("web", "production", ["rolled_back"])).toBeUndefined();
    });

    it("finds the deploys that succeeded with a rollout started since a time, oldest first", async () => {
      const s = await store();
      const started = async (minutes: number | null, status: "succeeded" | "baking" = "succeeded") => {
        const d = await deploymentIn(s, status);
        return minutes === null ? d : s.deployments.patch(d.id, { startedAt: later(minutes).toISOString() }, later(20));
      };
      await started(59);
      const atTheHour = await started(60);
      const after = await started(75);
      await started(null);
      await started(70, "baking");
      const r = await newRollback(s, atTheHour.id);
      for (const event of ["allow", "start", "succeed"] as const) await s.deployments.apply(r.id, event, later(80));
      await s.deployments.patch(r.id, { startedAt: later(80).toISOString() }, later(80));

      expect((await s.deployments.succeededSince(later(60))).map((d) => d.id)).toEqual([atTheHour.id, after.id]);
      expect(await s.deployments.succeededSince(later(76))).toEqual([]);
    });

    it("patches fields without touching the status, and clears a JSON field with null", async () => {
      const s = await store();
      const d = await deploymentIn(s, "deploying");
      await s.deployments.patch(
        d.id,
        { decision: { outcome: "allow", reasons: ["in window"], bypassed: [] } },
        later(5),
      );

      const patched = await s.deployments.patch(
        d.id,
        {
          progress: { running: 2, desired: 4 },
          cardChannel: "C-DEPLOYS",
          ecsDeploymentArn: "arn:aws:ecs:eu-west-1:1:service-deployment/web/abc",
          flags: { hotfix: true, viaStop: false },
          decision: null,
        },
        later(6),
      );

      expect(patched).toEqual({
        ...d,
        progress: { running: 2, desired: 4 },
        cardChannel: "C-DEPLOYS",
        ecsDeploymentArn: "arn:aws:ecs:eu-west-1:1:service-deployment/web/abc",
        flags: { hotfix: true, viaStop: false },
        decision: null,
        updatedAt: later(6).toISOString(),
      });
    });

    it("refuses to patch a deployment that does not exist", async () => {
      const s = await store();
      const err = await thrown(() => s.deployments.patch(42, { cardTs: "1" }, T0));
      expect((err as DeploybotError).code).toBe(ErrorCode.NotFound);
      expect(err.message).toBe("no deployment #42");
    });
  });

  describe("locks", () => {
    it("gives the lock to the first deployment and returns the holder to a second one", async () => {
      const s = await store();
      const first = await newDeploy(s);
      const second = await newDeploy(s);
      expect(await s.locks.acquire("web", "production", first.id, "alice", T0)).toBeNull();

      const held = await s.locks.acquire("web", "production", second.id, "bob", later(1));

      const lock = {
        service: "web",
        environment: "production",
        deploymentId: first.id,
        holder: "alice",
        since: T0.toISOString(),
      };
      expect(held).toEqual(lock);
      expect(await s.locks.get("web", "production")).toEqual(lock);
    });

    it("lets the holder take its own lock again, and leaves other targets free", async () => {
      const s = await store();
      const first = await newDeploy(s);
      const other = await newDeploy(s, { environment: "staging" });
      expect(await s.locks.acquire("web", "production", first.id, "alice", T0)).toBeNull();
      expect(await s.locks.acquire("web", "production", first.id, "alice", later(1))).toBeNull();
      expect(await s.locks.get("web", "staging")).toBeUndefined();
      expect(await s.locks.acquire("web", "staging", other.id, "bob", T0)).toBeNull();
      expect((await s.locks.get("web", "staging"))?.holder).toBe("bob");
      expect((await s.locks.get("web", "production"))?.deploymentId).toBe(first.id);
    });

    it("frees the lock on release so the next deployment can take it", async () => {
      const s = await store();
      const first = await newDeploy(s);
      const second = await newDeploy(s);
      await s.locks.acquire("web", "production", first.id, "alice", T0);
      await s.locks.release(second.id);
      expect((await s.locks.get("web", "production"))?.deploymentId).toBe(first.id);

      await s.locks.release(first.id);

      expect(await s.locks.get("web", "production")).toBeUndefined();
      expect(await s.locks.acquire("web", "production", second.id, "bob", later(1))).toBeNull();
      expect((await s.locks.get("web", "production"))?.deploymentId).toBe(second.id);
    });
  });

  describe("approvals", () => {
    const approval = (
      deploymentId: number,
      user: string,
      decision: "approve" | "reject",
      minute: number,
    ): Approval => ({
      deploymentId,
      user,
      decision,
      groupName: "lead",
      roles: ["tech_lead"],
      note: null,
      at: later(minute).toISOString(),
    });

    it("counts the same person once: the first decision stands", async () => {
      const s = await store();
      const d = await deploymentIn(s, "awaiting_approval");
      expect(await s.approvals.record(approval(d.id, "bob", "approve", 1))).toBe(true);
      expect(await s.approvals.record(approval(d.id, "bob", "approve", 2))).toBe(false);
      expect(await s.approvals.record(approval(d.id, "bob", "reject", 3))).toBe(false);
      expect(await s.approvals.of(d.id)).toEqual([approval(d.id, "bob", "approve", 1)]);
    });

    it("lets the same person decide on another deployment", async () => {
      const s = await store();
      const a = await deploymentIn(s, "awaiting_approval");
      const b = await deploymentIn(s, "awaiting_approval");
      expect(await s.approvals.record(approval(a.id, "bob", "approve", 1))).toBe(true);
      expect(await s.approvals.record(approval(b.id, "bob", "reject", 2))).toBe(true);
      expect((await s.approvals.of(b.id)).map((x) => x.decision)).toEqual(["reject"]);
    });

    it("keeps different people's decisions in the order given, even when they carry the same time", async () => {
      const s = await store();
      const d = await deploymentIn(s, "awaiting_approval");
      await s.approvals.record(approval(d.id, "zoe", "approve", 1));
      await s.approvals.record(approval(d.id, "carol", "reject", 1));
      await s.approvals.record(approval(d.id, "bob", "approve", 1));
      await s.approvals.record(approval(d.id, "amy", "approve", 2));
      expect((await s.approvals.of(d.id)).map((a) => [a.user, a.decision])).toEqual([
        ["zoe", "approve"],
        ["carol", "reject"],
        ["bob", "approve"],
        ["amy", "approve"],
      ]);
    });
  });

  describe("the audit log", () => {
    const append = (s: Store, deploymentId: number | null, action = "approve") =>
      s.audit.append({
        at: T0,
        actor: "bob",
        action,
        deploymentId,
        service: "web",
        environment: "production",
        detail: { group: "lead" },
      });

    it("appends entries and reads them back", async () => {
      const s = await store();
      const d = await newDeploy(s);
      await append(s, d.id);
      await s.audit.append({
        at: later(1),
        actor: "deploybot",
        action: "tick",
        deploymentId: null,
        service: null,
        environment: null,
      });
      expect(await s.audit.list()).toEqual([
        {
          id: 1,
          at: T0.toISOString(),
          actor: "bob",
          action: "approve",
          deploymentId: d.id,
          service: "web",
          environment: "production",
          detail: { group: "lead" },
        },
        {
          id: 2,
          at: later(1).toISOString(),
          actor: "deploybot",
          action: "tick",
          deploymentId: null,
          service: null,
          environment: null,
          detail: {},
        },
      ]);
    });

    it("reads back one deployment's entries, up to a limit", async () => {
      const s = await store();
      const a = await newDeploy(s);
      const b = await newDeploy(s);
      await append(s, a.id, "request");
      await append(s, b.id, "request");
      await append(s, a.id, "approve");
      await append(s, a.id, "deploy");
      expect((await s.audit.list({ deploymentId: a.id })).map((e) => e.action)).toEqual([
        "request",
        "approve",
        "deploy",
      ]);
      expect((await s.audit.list({ deploymentId: a.id, limit: 2 })).map((e) => e.action)).toEqual([
        "request",
        "approve",
      ]);
    });

    it.each([
      ["UPDATE", "UPDATE audit SET actor = 'mallory'"],
      ["DELETE", "DELETE FROM audit"],
    ])("refuses %s: the audit log is append-only", async (_what, sql) => {
      const s = await store();
      await append(s, (await newDeploy(s)).id);
      const before = await s.audit.list();
      await expect(s.driver.run(sql)).rejects.toThrow("the audit log is append-only");
      expect(await s.audit.list()).toEqual(before);
    });
  });

  describe("kv", () => {
    it("keeps JSON values by key and overwrites them", async () => {
      const s = await store();
      expect(await s.kv.get("baseline:web")).toBeUndefined();
      await s.kv.set("baseline:web", { p99: 310, errors: [0.1, 0.2] });
      await s.kv.set("other", "x");
      expect(await s.kv.get("baseline:web")).toEqual({ p99: 310, errors: [0.1, 0.2] });
      await s.kv.set("baseline:web", { p99: 280 });
      expect(await s.kv.get("baseline:web")).toEqual({ p99: 280 });
      expect(await s.kv.get("other")).toBe("x");
    });
  });

  describe("guardrail checks", () => {
    it("counts the conclusive verdicts of each guardrail and not the inconclusive ones", async () => {
      const s = await store();
      const d = await newDeploy(s);
      const other = await newDeploy(s);
      await s.checks.record(d.id, "errors", "ok", later(1));
      await s.checks.record(d.id, "errors", "inconclusive", later(2));
      await s.checks.record(d.id, "errors", "breaching", later(3));
      await s.checks.record(d.id, "latency", "inconclusive", later(1));
      await s.checks.record(d.id, "latency", "inconclusive", later(2));
      await s.checks.record(other.id, "errors", "ok", later(1));

      expect(await s.checks.of(d.id)).toEqual(
        new Map([
          ["errors", { verdicts: 2, lastConclusiveAt: later(3).toISOString() }],
          ["latency", { verdicts: 0, lastConclusiveAt: null }],
        ]),
      );
      expect(await s.checks.of(other.id)).toEqual(
        new Map([["errors", { verdicts: 1, lastConclusiveAt: later(1).toISOString() }]]),
      );
      expect(await s.checks.of(42)).toEqual(new Map());
      // What a traffic step's analysis reads: each guardrail's very last verdict, conclusive or not.
      expect(await s.checks.latest(d.id)).toEqual(
        new Map([
          [
            "errors",
            { lastStatus: "breaching", lastAt: later(3).toISOString(), lastConclusiveAt: later(3).toISOString() },
          ],
          ["latency", { lastStatus: "inconclusive", lastAt: later(2).toISOString(), lastConclusiveAt: null }],
        ]),
      );
    });

    it("records a cycle's verdicts in bulk as one at a time would, beyond one statement's worth of rows", async () => {
      const s = await store();
      const d = await newDeploy(s);
      // 230 guardrails: two full statements of 100 rows and 30 single rows; every third one inconclusive.
      const verdicts = Array.from({ length: 230 }, (_, i) => ({
        deploymentId: d.id,
        guardrail: `g${i}`,
        status: i % 3 === 0 ? "inconclusive" : i % 3 === 1 ? "ok" : "breaching",
      }));
      await s.checks.recordMany(verdicts, later(1));
      await s.checks.recordMany(verdicts.slice(0, 150), later(2));

      const counts = await s.checks.of(d.id);
      expect(counts.size).toBe(230);
      expect(counts.get("g0")).toEqual({ verdicts: 0, lastConclusiveAt: null });
      expect(counts.get("g1")).toEqual({ verdicts: 2, lastConclusiveAt: later(2).toISOString() });
      expect(counts.get("g149")).toEqual({ verdicts: 2, lastConclusiveAt: later(2).toISOString() });
      expect(counts.get("g150")).toEqual({ verdicts: 0, lastConclusiveAt: null });
      expect(counts.get("g229")).toEqual({ verdicts: 1, lastConclusiveAt: later(1).toISOString() });
    });
  });

  describe("seen requests", () => {
    it("says true the first time a request is seen and false for a replay", async () => {
      const s = await store();
      expect(await s.requests.firstSeen("trigger-1", T0, later(-60))).toBe(true);
      expect(await s.requests.firstSeen("trigger-1", later(1), later(-59))).toBe(false);
      expect(await s.requests.firstSeen("trigger-2", later(1), later(-59))).toBe(true);
    });

    it("forgets keys older than the horizon, so they count as new again", async () => {
      const s = await store();
      await s.requests.firstSeen("old", T0, later(-60));
      await s.requests.firstSeen("recent", later(50), later(-10));

      expect(await s.requests.firstSeen("new", later(90), later(30))).toBe(true);

      expect(await s.requests.firstSeen("recent", later(91), later(30))).toBe(false);
      expect(await s.requests.firstSeen("old", later(92), later(30))).toBe(true);
    });

    it("drops old keys every 10 s at most, not on every request (an old key kept a few seconds longer stays a replay)", async () => {
      const s = await store();
      const sec = (n: number) => new Date(T0.getTime() + n * 1000);
      await s.requests.firstSeen("a", sec(0), sec(-600));
      // 5 s later "a" is past the horizon given, but nothing was dropped yet.
      expect(await s.requests.firstSeen("a", sec(5), sec(1))).toBe(false);
      // At 10 s the old keys go.
      expect(await s.requests.firstSeen("b", sec(10), sec(1))).toBe(true);
      expect(await s.requests.firstSeen("a", sec(11), sec(1))).toBe(true);
    });
  });

  describe("incidents", () => {
    it("opens an incident with its first episode and nothing decided yet", async () => {
      const s = await store();
      const d = await newDeploy(s);
      const opened = await s.incidents.open(
        newIncident(d.id, { state: "rollback_pending", rollbackAt: later(5).toISOString(), pageKey: "web-1-errors" }),
      );
      expect(opened).toEqual({
        id: 1,
        deploymentId: d.id,
        guardrail: "error-rate",
        severity: "critical",
        action: "rollback",
        shadow: false,
        state: "rollback_pending",
        episode: 1,
        firstSeen: T0.toISOString(),
        lastSeen: T0.toISOString(),
        resolvedAt: null,
        rollbackAt: later(5).toISOString(),
        rollbackId: null,
        overriddenBy: null,
        acknowledgedBy: null,
        pageKey: "web-1-errors",
        note: null,
        channel: null,
        ts: null,
        detail: {
          reason: "5xx rate 3.1% is above 2%",
          observed: 3.1,
          values: [1.2, 3.1],
          unit: "percent",
          threshold: "> 2%",
        },
      });
      expect(await s.incidents.byId(1)).toEqual(opened);
      expect(await s.incidents.must(1)).toEqual(opened);
      expect(await s.incidents.get(d.id, "error-rate")).toEqual(opened);
    });

    it("opens one incident per deployment and guardrail: a second open returns undefined and changes nothing", async () => {
      const s = await store();
      const d = await newDeploy(s);
      const first = await s.incidents.open(newIncident(d.id));
      expect(
        await s.incidents.open(newIncident(d.id, { at: later(5), shadow: true, severity: "warning" })),
      ).toBeUndefined();
      expect(await s.incidents.of(d.id)).toEqual([first]);
      expect(await s.incidents.open(newIncident(d.id, { guardrail: "latency" }))).toMatchObject({
        guardrail: "latency",
      });
    });

    it("finds nothing for an unknown incident, and must() says which", async () => {
      const s = await store();
      expect(await s.incidents.byId(42)).toBeUndefined();
      expect(await s.incidents.get(42, "error-rate")).toBeUndefined();
      const err = await thrown(() => s.incidents.must(42));
      expect((err as DeploybotError).code).toBe(ErrorCode.NotFound);
      expect(err.message).toBe("no incident #42");
    });

    it("lists a deployment's incidents oldest first", async () => {
      const s = await store();
      const a = await newDeploy(s);
      const b = await newDeploy(s);
      const x = await s.incidents.open(newIncident(a.id, { guardrail: "latency" }));
      await s.incidents.open(newIncident(b.id));
      const y = await s.incidents.open(newIncident(a.id, { guardrail: "errors" }));
      expect((await s.incidents.of(a.id)).map((i) => i.id)).toEqual([x?.id, y?.id]);
      expect(await s.incidents.of(42)).toEqual([]);
    });

    it("reads the incidents of more deployments than one query may bind", async () => {
      const s = await store();
      const ids: number[] = [];
      await s.tx(async () => {
        for (let n = 0; n < 1203; n++) {
          const d = await newDeploy(s);
          ids.push(d.id);
          if (n % 2 === 0) await s.incidents.open(newIncident(d.id));
        }
      });

      const found = await s.incidents.ofDeployments(ids);

      expect(found).toHaveLength(602);
      expect(found.map((i) => i.deploymentId)).toEqual(ids.filter((_, n) => n % 2 === 0));
      expect(await s.incidents.ofDeployments([])).toEqual([]);
    });

    it("finds incidents in some states, oldest first", async () => {
      const s = await store();
      const open = await incidentIn(s, "open");
      const pending = await incidentIn(s, "rollback_pending");
      await incidentIn(s, "recovered");
      const rolling = await incidentIn(s, "rolling_back");
      expect((await s.incidents.inStates(["rolling_back", "open"])).map((i) => i.id)).toEqual([open.id, rolling.id]);
      expect((await s.incidents.inStates(new Set(["rollback_pending"] as const))).map((i) => i.id)).toEqual([
        pending.id,
      ]);
      expect(await s.incidents.inStates(["closed"])).toEqual([]);
    });

    it("finds the unresolved incidents of one service in one environment", async () => {
      const s = await store();
      const d = await newDeploy(s);
      const staging = await newDeploy(s, { environment: "staging" });
      const api = await newDeploy(s, { service: "api" });
      for (const state of Object.keys(INCIDENT_PATH) as IncidentState[]) {
        let i = (await s.incidents.open(newIncident(d.id, { guardrail: state }))) as Incident;
        for (const event of INCIDENT_PATH[state]) i = await s.incidents.apply(i.id, event);
      }
      await s.incidents.open(newIncident(staging.id));
      await s.incidents.open(newIncident(api.id));

      expect((await s.incidents.activeOf("web", "production")).map((i) => i.guardrail)).toEqual([
        "open",
        "rollback_pending",
        "rolling_back",
        "rolled_back",
        "overridden",
      ]);
      expect((await s.incidents.activeOf("api", "production")).map((i) => i.deploymentId)).toEqual([api.id]);
      expect(await s.incidents.activeOf("web", "dev")).toEqual([]);
    });

    it("patches fields other than the state", async () => {
      const s = await store();
      const i = await incidentIn(s, "rollback_pending");
      const detail = {
        reason: "5xx rate 4% is above 2%",
        observed: 4,
        values: [3.1, 4],
        unit: "percent" as const,
        threshold: "> 2%",
      };

      const patched = await s.incidents.patch(i.id, {
        lastSeen: later(3).toISOString(),
        channel: "C-INC",
        ts: "1795248000.000002",
        acknowledgedBy: "dave",
        episode: 2,
        detail,
      });

      expect(patched).toEqual({
        ...i,
        lastSeen: later(3).toISOString(),
        channel: "C-INC",
        ts: "1795248000.000002",
        acknowledgedBy: "dave",
        episode: 2,
        detail,
      });
      expect(await s.incidents.byId(i.id)).toEqual(patched);
    });
  });
});
