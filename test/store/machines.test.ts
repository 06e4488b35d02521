import { describe, expect, it } from "vitest";
import {
  DEPLOYMENT_STATUSES,
  type DeploymentEvent,
  deploymentMachine,
  HOLDS_LOCK,
  IN_FLIGHT,
  LIVE,
  PENDING,
  SETTLED,
  STEPPING,
  TERMINAL,
  UNFINISHED,
  WATCHED,
} from "../../src/domain/deployment.js";
import {
  ACTIONABLE,
  ACTIVE,
  blocksSuccess,
  type GuardrailAction,
  INCIDENT_STATES,
  type IncidentEvent,
  incidentMachine,
} from "../../src/domain/incident.js";
import { DeploybotError, ErrorCode, IllegalTransitionError } from "../../src/errors.js";
import type { DeploymentStatus, IncidentState } from "../../src/store/index.js";
import { BACKENDS, deploymentIn, incidentIn, later, T0, thrown, useStores } from "./fixtures.js";

describe.each(BACKENDS)("%s", (backend) => {
  const { store } = useStores(backend);

  // The expected machines are written out by hand from the doc comments in src/domain, never read from the machines.

  const STATUSES: DeploymentStatus[] = [
    "requested",
    "awaiting_approval",
    "approved",
    "denied",
    "rejected",
    "expired",
    "cancelled",
    "deploying",
    "shifting",
    "paused",
    "baking",
    "succeeded",
    "failed",
    "rolling_back",
    "rolled_back",
  ];

  /** Every legal (status, event) → status of a deployment; anything else must be refused. */
  const DEPLOYMENT_MOVES: Array<[DeploymentStatus, DeploymentEvent, DeploymentStatus]> = [
    ["requested", "allow", "approved"],
    ["requested", "ask_approval", "awaiting_approval"],
    ["requested", "deny", "denied"],
    ["requested", "withdraw", "cancelled"],
    ["awaiting_approval", "approve", "approved"],
    ["awaiting_approval", "reject", "rejected"],
    ["awaiting_approval", "withdraw", "cancelled"],
    ["awaiting_approval", "expire", "expired"],
    ["awaiting_approval", "not_started", "failed"],
    ["approved", "start", "deploying"],
    ["approved", "not_started", "failed"],
    ["deploying", "not_started", "failed"],
    ["deploying", "rolled_out", "baking"],
    ["deploying", "succeed", "succeeded"],
    ["deploying", "ecs_failed", "failed"],
    ["deploying", "roll_back", "rolling_back"],
    // Traffic steps: the new side is up and healthy, then step by step (each step's status is shifting).
    ["deploying", "shift", "shifting"],
    ["deploying", "unhealthy", "failed"],
    ["shifting", "advance", "shifting"],
    ["shifting", "hold", "shifting"],
    ["shifting", "pause", "paused"],
    ["paused", "resume", "shifting"],
    ["shifting", "promote", "shifting"],
    ["paused", "promote", "shifting"],
    ["shifting", "rolled_out", "baking"],
    ["shifting", "succeed", "succeeded"],
    ["shifting", "abort", "rolling_back"],
    ["paused", "abort", "rolling_back"],
    ["baking", "succeed", "succeeded"],
    ["baking", "roll_back", "rolling_back"],
    ["succeeded", "roll_back", "rolling_back"],
    ["rolling_back", "rolled_back", "rolled_back"],
    ["rolling_back", "rollback_abandoned", "baking"],
  ];
  const DEPLOYMENT_EVENTS = [...new Set(DEPLOYMENT_MOVES.map(([, event]) => event))];
  const deploymentTarget = (event: DeploymentEvent) =>
    DEPLOYMENT_MOVES.find(([, e]) => e === event)?.[2] as DeploymentStatus;
  const DEPLOYMENT_REFUSED = STATUSES.flatMap((from) =>
    DEPLOYMENT_EVENTS.filter((event) => !DEPLOYMENT_MOVES.some(([f, e]) => f === from && e === event)).map(
      (event) => [from, event, deploymentTarget(event)] as const,
    ),
  );

  /** The statuses that hold the target's lock, and those whose rollout is over, by the comments on the groups. */
  const LOCKING = new Set<DeploymentStatus>(["approved", "deploying", "shifting", "paused", "baking"]);
  const FINISHED = new Set<DeploymentStatus>([
    "denied",
    "rejected",
    "expired",
    "cancelled",
    "failed",
    "rolled_back",
    "succeeded",
  ]);

  describe("the deployment machine as written down here", () => {
    it("covers every status and every event the machine has", () => {
      expect([...STATUSES].sort()).toEqual([...DEPLOYMENT_STATUSES].sort());
      expect([...DEPLOYMENT_EVENTS].sort()).toEqual(Object.keys(deploymentMachine.events).sort());
      expect(DEPLOYMENT_MOVES.length + DEPLOYMENT_REFUSED.length).toBe(STATUSES.length * DEPLOYMENT_EVENTS.length);
    });
  });

  describe("deployments.apply", () => {
    it.each(DEPLOYMENT_MOVES)(
      "moves a deployment from %s on %s to %s, with the fields the event sets",
      async (from, event, to) => {
        const s = await store();
        const before = await deploymentIn(s, from);
        if (LOCKING.has(from))
          expect(await s.locks.acquire("web", "production", before.id, "alice", later(20))).toBeNull();
        const lockBefore = await s.locks.get("web", "production");
        const at = later(30);

        const moved = await s.deployments.apply(before.id, event, at, {
          progress: { detail: "step" },
          cardTs: "1795248000.000100",
        });

        const finishedAt = FINISHED.has(to) ? (before.finishedAt ?? at.toISOString()) : before.finishedAt;
        expect(moved).toEqual({
          ...before,
          status: to,
          updatedAt: at.toISOString(),
          finishedAt,
          progress: { detail: "step" },
          cardTs: "1795248000.000100",
        });
        expect(await s.deployments.get(before.id)).toEqual(moved);
        // Leaving the locking statuses frees the target; moving between them keeps the lock where it was.
        expect(await s.locks.get("web", "production")).toEqual(LOCKING.has(to) ? lockBefore : undefined);
      },
    );

    it.each(DEPLOYMENT_REFUSED)(
      "refuses a deployment in %s the event %s (to %s) and writes nothing",
      async (from, event, to) => {
        const s = await store();
        const before = await deploymentIn(s, from);
        if (LOCKING.has(from))
          expect(await s.locks.acquire("web", "production", before.id, "alice", later(20))).toBeNull();
        const lockBefore = await s.locks.get("web", "production");

        const err = await thrown(() =>
          s.deployments.apply(before.id, event, later(30), { cardTs: "1795248000.000100", progress: { detail: "x" } }),
        );

        expect(err).toBeInstanceOf(IllegalTransitionError);
        expect((err as IllegalTransitionError).code).toBe(ErrorCode.IllegalTransition);
        expect(err.message).toBe(`deployment #${before.id} cannot go from ${from} to ${to} (${event})`);
        expect(await s.deployments.get(before.id)).toEqual(before);
        expect(await s.locks.get("web", "production")).toEqual(lockBefore);
      },
    );

    it("refuses to move a deployment that does not exist", async () => {
      const s = await store();
      const err = await thrown(() => s.deployments.apply(42, "allow", T0));
      expect(err).toBeInstanceOf(DeploybotError);
      expect((err as DeploybotError).code).toBe(ErrorCode.NotFound);
      expect(err.message).toBe("no deployment #42");
    });

    it("keeps the time a succeeded deploy's rollout ended when a rollback later ends it", async () => {
      const s = await store();
      const succeeded = await deploymentIn(s, "succeeded");
      expect(succeeded.finishedAt).toBe(later(3).toISOString());
      await s.deployments.apply(succeeded.id, "roll_back", later(40));
      const rolledBack = await s.deployments.apply(succeeded.id, "rolled_back", later(45));
      expect(rolledBack).toMatchObject({ status: "rolled_back", finishedAt: later(3).toISOString() });
    });

    it("stamps finishedAt on the event that settles a deployment, not before", async () => {
      const s = await store();
      const d = await deploymentIn(s, "baking");
      expect(d.finishedAt).toBeNull();
      expect((await s.deployments.apply(d.id, "succeed", later(50))).finishedAt).toBe(later(50).toISOString());
    });

    it("frees the target when a deploy starts rolling back, so its rollback can take the lock", async () => {
      const s = await store();
      const deploy = await deploymentIn(s, "baking");
      expect(await s.locks.acquire("web", "production", deploy.id, "alice", later(4))).toBeNull();
      const rollback = await s.deployments.create(
        {
          kind: "rollback",
          service: "web",
          environment: "production",
          version: "v1.4.1",
          requestedBy: "bob",
          rollsBack: deploy.id,
        },
        later(10),
      );
      expect((await s.locks.acquire("web", "production", rollback.id, "bob", later(10)))?.deploymentId).toBe(deploy.id);

      await s.deployments.apply(deploy.id, "roll_back", later(11));

      expect(await s.locks.acquire("web", "production", rollback.id, "bob", later(11))).toBeNull();
      expect((await s.locks.get("web", "production"))?.deploymentId).toBe(rollback.id);
    });
  });

  describe("the deployment status groups", () => {
    it.each<[string, ReadonlySet<DeploymentStatus>, DeploymentStatus[]]>([
      ["PENDING (waiting for the gate or approvals)", PENDING, ["requested", "awaiting_approval"]],
      ["HOLDS_LOCK (one at a time per target)", HOLDS_LOCK, ["approved", "deploying", "shifting", "paused", "baking"]],
      [
        "IN_FLIGHT (deploybot still acts on it)",
        IN_FLIGHT,
        ["approved", "deploying", "shifting", "paused", "baking", "rolling_back"],
      ],
      [
        "LIVE (its version runs or is rolling out)",
        LIVE,
        ["deploying", "shifting", "paused", "baking", "succeeded", "rolling_back"],
      ],
      ["WATCHED (guardrails evaluated)", WATCHED, ["deploying", "shifting", "paused", "baking"]],
      ["STEPPING (in its traffic steps)", STEPPING, ["shifting", "paused"]],
      ["UNFINISHED (what /rollback ends)", UNFINISHED, ["deploying", "shifting", "paused", "baking"]],
      ["TERMINAL (no event leaves)", TERMINAL, ["denied", "rejected", "expired", "cancelled", "failed", "rolled_back"]],
      [
        "SETTLED (finishedAt is set)",
        SETTLED,
        ["denied", "rejected", "expired", "cancelled", "failed", "rolled_back", "succeeded"],
      ],
    ])("%s holds exactly the statuses it promises", (_name, group, expected) => {
      expect([...group].sort()).toEqual([...expected].sort());
    });

    it("counts succeeded as settled but not terminal: a rollback may still end it", () => {
      expect(SETTLED.has("succeeded")).toBe(true);
      expect(TERMINAL.has("succeeded")).toBe(false);
      expect(DEPLOYMENT_MOVES.some(([from, event]) => from === "succeeded" && event === "roll_back")).toBe(true);
    });

    it("calls terminal exactly the statuses the table above lets no event leave", () => {
      const left = new Set(DEPLOYMENT_MOVES.map(([from]) => from));
      expect([...TERMINAL].sort()).toEqual(STATUSES.filter((s) => !left.has(s)).sort());
    });
  });

  const STATES: IncidentState[] = [
    "open",
    "rollback_pending",
    "rolling_back",
    "rolled_back",
    "overridden",
    "recovered",
    "closed",
  ];

  /** Every legal (state, event) → state of an incident; anything else must be refused. */
  const INCIDENT_MOVES: Array<[IncidentState, IncidentEvent, IncidentState]> = [
    ["open", "schedule_rollback", "rollback_pending"],
    ["open", "start_rollback", "rolling_back"],
    ["rollback_pending", "start_rollback", "rolling_back"],
    ["overridden", "start_rollback", "rolling_back"],
    ["rolling_back", "rollback_done", "rolled_back"],
    ["rolling_back", "rollback_failed", "open"],
    ["open", "override", "overridden"],
    ["rollback_pending", "override", "overridden"],
    ["open", "recover", "recovered"],
    ["rollback_pending", "recover", "recovered"],
    ["overridden", "recover", "recovered"],
    ["rolled_back", "recover", "recovered"],
    ["recovered", "breach_again", "open"],
    ["open", "close", "closed"],
    ["rollback_pending", "close", "closed"],
    ["overridden", "close", "closed"],
    ["rolled_back", "close", "closed"],
    ["recovered", "close", "closed"],
  ];
  const INCIDENT_EVENTS = [...new Set(INCIDENT_MOVES.map(([, event]) => event))];
  const incidentTarget = (event: IncidentEvent) => INCIDENT_MOVES.find(([, e]) => e === event)?.[2] as IncidentState;
  const INCIDENT_REFUSED = STATES.flatMap((from) =>
    INCIDENT_EVENTS.filter((event) => !INCIDENT_MOVES.some(([f, e]) => f === from && e === event)).map(
      (event) => [from, event, incidentTarget(event)] as const,
    ),
  );

  describe("the incident machine as written down here", () => {
    it("covers every state and every event the machine has", () => {
      expect([...STATES].sort()).toEqual([...INCIDENT_STATES].sort());
      expect([...INCIDENT_EVENTS].sort()).toEqual(Object.keys(incidentMachine.events).sort());
      expect(INCIDENT_MOVES.length + INCIDENT_REFUSED.length).toBe(STATES.length * INCIDENT_EVENTS.length);
    });
  });

  describe("incidents.apply", () => {
    it.each(INCIDENT_MOVES)(
      "moves an incident from %s on %s to %s, with the fields the event sets",
      async (from, event, to) => {
        const s = await store();
        const before = await incidentIn(s, from);

        const moved = await s.incidents.apply(before.id, event, { note: "why", lastSeen: later(9).toISOString() });

        expect(moved).toEqual({ ...before, state: to, note: "why", lastSeen: later(9).toISOString() });
        expect(await s.incidents.byId(before.id)).toEqual(moved);
      },
    );

    it.each(INCIDENT_REFUSED)(
      "refuses an incident in %s the event %s (to %s) and writes nothing",
      async (from, event, to) => {
        const s = await store();
        const before = await incidentIn(s, from);

        const err = await thrown(() => s.incidents.apply(before.id, event, { note: "why", rollbackId: 7 }));

        expect(err).toBeInstanceOf(IllegalTransitionError);
        expect(err.message).toBe(`incident #${before.id} cannot go from ${from} to ${to} (${event})`);
        expect(await s.incidents.byId(before.id)).toEqual(before);
      },
    );

    it("refuses to move an incident that does not exist", async () => {
      const s = await store();
      const err = await thrown(() => s.incidents.apply(42, "recover"));
      expect((err as DeploybotError).code).toBe(ErrorCode.NotFound);
      expect(err.message).toBe("no incident #42");
    });
  });

  describe("which incidents hold a bake open", () => {
    it.each<[string, IncidentState, GuardrailAction, boolean, boolean]>([
      ["an open breach that rolls back", "open", "rollback", false, true],
      ["an open breach that pages", "open", "page", false, true],
      ["a warning (Slack only)", "open", "alert", false, false],
      ["a breach in shadow mode", "open", "rollback", true, false],
      ["a paging breach in shadow mode", "open", "page", true, false],
      ["a breach waiting out its grace period", "rollback_pending", "rollback", false, true],
      ["a breach being rolled back", "rolling_back", "rollback", false, true],
      ["a rolled-back breach waiting for the metric to recover", "rolled_back", "rollback", false, true],
      ["a rolled-back warning", "rolled_back", "alert", false, false],
      ["a shadow breach being rolled back", "rolling_back", "rollback", true, false],
      ["an overridden breach", "overridden", "rollback", false, false],
      ["an overridden paging breach", "overridden", "page", false, false],
      ["a recovered breach", "recovered", "page", false, false],
      ["a closed breach", "closed", "rollback", false, false],
    ])("%s (%s, %s, shadow %s) blocks success: %s", (_what, state, action, shadow, blocks) => {
      expect(blocksSuccess({ state, action, shadow })).toBe(blocks);
    });
  });

  describe("the incident state groups", () => {
    it.each<[string, ReadonlySet<IncidentState>, IncidentState[]]>([
      ["ACTIVE (not resolved)", ACTIVE, ["open", "rollback_pending", "rolling_back", "rolled_back", "overridden"]],
      ["ACTIONABLE (people may act from Slack)", ACTIONABLE, ["open", "rollback_pending", "overridden"]],
    ])("%s holds exactly the states it promises", (_name, group, expected) => {
      expect([...group].sort()).toEqual([...expected].sort());
    });

    it("lets people roll back now from every actionable state", () => {
      for (const state of ACTIONABLE) {
        expect(INCIDENT_MOVES.some(([f, e]) => f === state && e === "start_rollback")).toBe(true);
      }
    });
  });
});
