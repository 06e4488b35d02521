import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { DeploybotError, ErrorCode, IllegalTransitionError } from "../../src/errors.js";
import { type Deployment, type DeploymentStatus, Store } from "../../src/store/index.js";

/** Statuses in which a deployment holds its lock (the runbook's "one deploy at a time"). */
const IN_FLIGHT = new Set<DeploymentStatus>(["approved", "deploying", "baking", "rolling_back"]);

const T0 = new Date("2026-11-24T08:15:00.000Z");
const later = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

const tmp = mkdtempSync(join(tmpdir(), "deploybot-store-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let fileSeq = 0;
const tempDb = () => join(tmp, `store-${++fileSeq}.db`);

const open: Store[] = [];
/** A store that is closed after the test. */
function store(file = ":memory:"): Store {
  const s = new Store(file);
  open.push(s);
  return s;
}
afterEach(() => {
  for (const s of open.splice(0)) if (s.db.open) s.close();
});

const newDeploy = (s: Store, over: { service?: string; environment?: string } = {}): Deployment =>
  s.createDeployment(
    {
      kind: "deploy",
      service: over.service ?? "web",
      environment: over.environment ?? "production",
      version: "v1.4.2",
      requestedBy: "alice",
      reason: "fix login",
      flags: { hotfix: true },
    },
    T0,
  );

/** The moves that bring a new deployment to each status, written out here rather than derived from the table. */
const PATH_TO: Record<DeploymentStatus, DeploymentStatus[]> = {
  requested: [],
  awaiting_approval: ["awaiting_approval"],
  approved: ["approved"],
  denied: ["denied"],
  rejected: ["awaiting_approval", "rejected"],
  expired: ["awaiting_approval", "expired"],
  cancelled: ["cancelled"],
  deploying: ["approved", "deploying"],
  baking: ["approved", "deploying", "baking"],
  succeeded: ["approved", "deploying", "succeeded"],
  failed: ["approved", "failed"],
  rolling_back: ["approved", "deploying", "rolling_back"],
  rolled_back: ["approved", "deploying", "rolled_back"],
};
const ALL = Object.keys(PATH_TO) as DeploymentStatus[];

/** A new deployment moved to `status`, one minute per step; holds the lock when `lock` is set. */
function deploymentIn(s: Store, status: DeploymentStatus, lock = false): Deployment {
  const d = newDeploy(s);
  if (lock) expect(s.acquireLock(d.service, d.environment, d.id, d.requestedBy, T0)).toBeNull();
  let current = d;
  PATH_TO[status].forEach((to, i) => {
    current = s.transition(d.id, to, later(i + 1));
  });
  return current;
}

/** The legal moves of a deployment, from DESIGN and the runbook: anything else is a bug. */
const LEGAL: Array<[DeploymentStatus, DeploymentStatus]> = [
  ["requested", "awaiting_approval"],
  ["requested", "approved"],
  ["requested", "denied"],
  ["requested", "cancelled"],
  ["awaiting_approval", "approved"],
  ["awaiting_approval", "rejected"],
  ["awaiting_approval", "expired"],
  ["awaiting_approval", "cancelled"],
  ["approved", "deploying"],
  ["approved", "failed"],
  ["approved", "cancelled"],
  ["deploying", "baking"],
  ["deploying", "succeeded"],
  ["deploying", "failed"],
  ["deploying", "rolling_back"],
  ["deploying", "rolled_back"],
  ["baking", "succeeded"],
  ["baking", "failed"],
  ["baking", "rolling_back"],
  ["baking", "rolled_back"],
  ["succeeded", "rolled_back"],
  ["rolling_back", "rolled_back"],
  ["rolling_back", "failed"],
];
const isLegal = (from: DeploymentStatus, to: DeploymentStatus) => LEGAL.some(([f, t]) => f === from && t === to);
const ILLEGAL = ALL.flatMap((from) => ALL.filter((to) => !isLegal(from, to)).map((to) => [from, to] as const));

describe("Store migrations", () => {
  it("migrates an empty in-memory db to the current schema version and creates the tables", () => {
    const s = store();
    expect(Store.schemaVersion).toBeGreaterThanOrEqual(1);
    expect(s.db.pragma("user_version", { simple: true })).toBe(Store.schemaVersion);
    const tables = (
      s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{
        name: string;
      }>
    ).map((t) => t.name);
    expect(tables).toEqual(
      expect.arrayContaining(["approvals", "audit", "deployments", "incidents", "kv", "locks", "pages"]),
    );
    const triggers = s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name").all();
    expect(triggers).toEqual([{ name: "audit_no_delete" }, { name: "audit_no_update" }]);
  });

  it("keeps a file in WAL mode", () => {
    const s = store(tempDb());
    expect(s.db.pragma("journal_mode", { simple: true })).toBe("wal");
  });

  it("reopens a file without migrating again and keeps its data", () => {
    const file = tempDb();
    const first = store(file);
    const d = newDeploy(first);
    first.transition(d.id, "approved", later(1));
    first.setKv("sim.world", { clock: "2026-11-24T08:16:00.000Z" });
    first.close();

    // A second run of the first migration would fail on CREATE TABLE; opening must simply work.
    const again = store(file);
    expect(again.db.pragma("user_version", { simple: true })).toBe(Store.schemaVersion);
    expect(again.getDeployment(d.id)).toMatchObject({ status: "approved", version: "v1.4.2", reason: "fix login" });
    expect(again.getKv("sim.world")).toEqual({ clock: "2026-11-24T08:16:00.000Z" });
    expect(newDeploy(again).id).toBe(d.id + 1);
  });

  it("refuses a db written by a newer deploybot and says what to do, without touching it", () => {
    const file = tempDb();
    const raw = new Database(file);
    raw.pragma(`user_version = ${Store.schemaVersion + 1}`);
    raw.close();

    let caught: unknown;
    try {
      store(file);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DeploybotError);
    const message = (caught as Error).message;
    expect(message).toContain(`schema ${Store.schemaVersion + 1}`);
    expect(message).toContain(`this one knows ${Store.schemaVersion}`);
    expect(message).toContain("upgrade deploybot or use another --db file");

    const check = new Database(file, { readonly: true });
    expect(check.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get()).toEqual({ n: 0 });
    expect(check.pragma("user_version", { simple: true })).toBe(Store.schemaVersion + 1);
    check.close();
  });
});

describe("Store deployments", () => {
  it("creates a deployment as requested, with its flags and times", () => {
    const s = store();
    const d = newDeploy(s);
    expect(d).toMatchObject({
      id: 1,
      kind: "deploy",
      service: "web",
      environment: "production",
      version: "v1.4.2",
      requestedBy: "alice",
      reason: "fix login",
      flags: { hotfix: true },
      status: "requested",
      createdAt: T0.toISOString(),
      updatedAt: T0.toISOString(),
      finishedAt: null,
    });
  });

  it.each(LEGAL)("moves a deployment from %s to %s", (from, to) => {
    const s = store();
    const d = deploymentIn(s, from);
    expect(d.status).toBe(from);
    const at = later(30);
    const moved = s.transition(d.id, to, at, { progress: { detail: "step" } });
    expect(moved.status).toBe(to);
    expect(moved.updatedAt).toBe(at.toISOString());
    expect(moved.progress).toEqual({ detail: "step" });
    expect(s.getDeployment(d.id)?.status).toBe(to);
  });

  it.each(ILLEGAL)("refuses to move a deployment from %s to %s and writes nothing", (from, to) => {
    const s = store();
    const before = deploymentIn(s, from, IN_FLIGHT.has(from));
    const lockBefore = s.getLock("web", "production");

    let caught: unknown;
    try {
      s.transition(before.id, to, later(30), { cardTs: "1795248000.000001", progress: { detail: "x" } });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(IllegalTransitionError);
    expect((caught as IllegalTransitionError).code).toBe(ErrorCode.IllegalTransition);
    expect((caught as IllegalTransitionError).code).toBe("deploybot_illegal_transition");
    expect((caught as Error).message).toBe(`deployment ${before.id} cannot go from ${from} to ${to}`);
    expect(s.getDeployment(before.id)).toEqual(before);
    expect(s.getLock("web", "production")).toEqual(lockBefore);
  });

  it("refuses to move a deployment that does not exist", () => {
    const s = store();
    expect(() => s.transition(42, "approved", T0)).toThrow("no deployment #42");
  });

  it.each<[DeploymentStatus, boolean]>([
    ["awaiting_approval", false],
    ["approved", false],
    ["deploying", false],
    ["baking", false],
    ["rolling_back", false],
    ["denied", true],
    ["rejected", true],
    ["expired", true],
    ["cancelled", true],
    ["succeeded", true],
    ["failed", true],
    ["rolled_back", true],
  ])("on reaching %s sets finished_at: %s", (status, finishes) => {
    const s = store();
    const d = deploymentIn(s, status);
    const lastStep = later(PATH_TO[status].length);
    expect(d.finishedAt).toBe(finishes ? lastStep.toISOString() : null);
  });

  it.each<[DeploymentStatus, DeploymentStatus, boolean]>([
    ["approved", "deploying", true],
    ["deploying", "baking", true],
    ["deploying", "rolling_back", true],
    ["approved", "failed", false],
    ["approved", "cancelled", false],
    ["deploying", "succeeded", false],
    ["deploying", "rolled_back", false],
    ["baking", "succeeded", false],
    ["baking", "failed", false],
    ["rolling_back", "rolled_back", false],
    ["rolling_back", "failed", false],
  ])("going from %s to %s keeps the lock: %s", (from, to, kept) => {
    const s = store();
    const d = deploymentIn(s, from, true);
    expect(s.getLock("web", "production")?.deploymentId).toBe(d.id);
    s.transition(d.id, to, later(30));
    const lock = s.getLock("web", "production");
    if (kept) expect(lock?.deploymentId).toBe(d.id);
    else expect(lock).toBeUndefined();
  });

  it("lists a target's history newest first and finds deployments by status", () => {
    const s = store();
    const a = deploymentIn(s, "succeeded");
    const b = deploymentIn(s, "awaiting_approval");
    newDeploy(s, { environment: "staging" });
    expect(s.history("web", "production").map((d) => d.id)).toEqual([b.id, a.id]);
    expect(s.byStatus(["awaiting_approval", "succeeded"]).map((d) => d.id)).toEqual([a.id, b.id]);
    expect(s.byStatus([])).toEqual([]);
  });
});

describe("Store locks", () => {
  it("gives the lock to the first deployment and returns the holder to a second one", () => {
    const s = store();
    const first = newDeploy(s);
    const second = newDeploy(s);
    expect(s.acquireLock("web", "production", first.id, "alice", T0)).toBeNull();

    const held = s.acquireLock("web", "production", second.id, "bob", later(1));
    expect(held).toEqual({
      service: "web",
      environment: "production",
      deploymentId: first.id,
      holder: "alice",
      since: T0.toISOString(),
    });
    expect(s.getLock("web", "production")?.deploymentId).toBe(first.id);
  });

  it("lets the holder take its own lock again, and other targets stay free", () => {
    const s = store();
    const first = newDeploy(s);
    const other = newDeploy(s, { environment: "staging" });
    expect(s.acquireLock("web", "production", first.id, "alice", T0)).toBeNull();
    expect(s.acquireLock("web", "production", first.id, "alice", later(1))).toBeNull();
    expect(s.acquireLock("web", "staging", other.id, "bob", T0)).toBeNull();
    expect(s.getLock("web", "staging")?.holder).toBe("bob");
  });

  it("frees the lock on release so the next deployment can take it", () => {
    const s = store();
    const first = newDeploy(s);
    const second = newDeploy(s);
    s.acquireLock("web", "production", first.id, "alice", T0);
    s.releaseLock(first.id);
    expect(s.getLock("web", "production")).toBeUndefined();
    expect(s.acquireLock("web", "production", second.id, "bob", later(1))).toBeNull();
  });
});

describe("Store approvals", () => {
  const approval = (deploymentId: number, user: string, decision: "approve" | "reject", minute: number) => ({
    deploymentId,
    user,
    decision,
    groupName: "lead",
    roles: ["tech_lead"],
    note: null,
    at: later(minute).toISOString(),
  });

  it("counts the same user once: the first decision stands", () => {
    const s = store();
    const d = deploymentIn(s, "awaiting_approval");
    expect(s.recordApproval(approval(d.id, "bob", "approve", 1))).toBe(true);
    expect(s.recordApproval(approval(d.id, "bob", "approve", 2))).toBe(false);
    expect(s.recordApproval(approval(d.id, "bob", "reject", 3))).toBe(false);
    const recorded = s.approvals(d.id);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ user: "bob", decision: "approve", roles: ["tech_lead"] });
  });

  it("keeps different users' approvals in the order given", () => {
    const s = store();
    const d = deploymentIn(s, "awaiting_approval");
    s.recordApproval(approval(d.id, "bob", "approve", 1));
    s.recordApproval(approval(d.id, "carol", "reject", 2));
    expect(s.approvals(d.id).map((a) => [a.user, a.decision])).toEqual([
      ["bob", "approve"],
      ["carol", "reject"],
    ]);
  });
});

describe("Store audit log", () => {
  const entry = (s: Store, deploymentId: number) =>
    s.audit({
      at: T0,
      actor: "bob",
      action: "approve",
      deploymentId,
      service: "web",
      environment: "production",
      detail: { group: "lead" },
    });

  it("appends entries and reads them back", () => {
    const s = store();
    const d = newDeploy(s);
    entry(s, d.id);
    expect(s.auditLog({ deploymentId: d.id })).toEqual([
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
    ]);
  });

  it.each([
    ["UPDATE", "UPDATE audit SET actor = 'mallory'"],
    ["DELETE", "DELETE FROM audit"],
  ])("refuses %s: the audit log is append-only", (_what, sql) => {
    const s = store();
    entry(s, newDeploy(s).id);
    const before = s.auditLog();
    expect(() => s.db.prepare(sql).run()).toThrow("the audit log is append-only");
    expect(s.auditLog()).toEqual(before);
  });
});
