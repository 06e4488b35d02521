import { type Deployment, IN_FLIGHT, STEPPING } from "../domain/deployment.js";
import type { Target } from "../domain/targets.js";
import { anyStepsOf, otherSide, type TrafficState, weightsFor } from "../domain/traffic.js";
import { StepsPart, sideName } from "./steps-common.js";

/**
 * The previous version kept on the other side after a stepped deploy: what a rollback does to traffic (one switch
 * while it is kept), its scale-down once keep_previous is over, and what /status says about it.
 */
export class KeptVersions extends StepsPart {
  /**
   * What a rollback `r` of `deploy` does to traffic. A deploy whose previous version still runs on the other side (in
   * its steps, or after them within keep_previous, with nothing newer started there) is switched back in one call;
   * otherwise the rollback is an ECS rollout in place on the side the deploy runs on. Null on a one-service target.
   */
  async rollbackTraffic(deploy: Deployment | undefined, r: Deployment): Promise<TrafficState | null> {
    const t = deploy?.progress?.traffic;
    if (!deploy || !t) return null;
    const now = this.now().getTime();
    const previous = r.version === deploy.previousVersion || (r.taskDefinition ?? "") === deploy.previousTaskDefinition;
    const kept =
      STEPPING.has(deploy.status) ||
      deploy.status === "deploying" ||
      ((deploy.status === "baking" || deploy.status === "succeeded") &&
        !t.scaledDown &&
        t.keepUntil !== undefined &&
        t.keepUntil !== null &&
        now < Date.parse(t.keepUntil));
    const newer = (await this.d.store.deployments.history(deploy.service, deploy.environment, 20)).some(
      (x) => x.id > deploy.id && x.id !== r.id && x.startedAt !== null,
    );
    const base = { plan: t.plan, stepAt: null, since: null };
    if (t.mode === "steps" && previous && kept && !newer)
      return { ...base, side: otherSide(t.side), mode: "switch", step: 0 };
    // The deploy's version runs on its side; the previous one is gone from the other: roll back where it runs.
    const live = t.mode === "steps" && STEPPING.has(deploy.status) ? otherSide(t.side) : t.side;
    return { ...base, side: live, mode: "in_place", step: -1 };
  }

  /** Records the switch back of rollback `r` (in the caller's transaction): 100% on its side, stickiness off. */
  async switchBack(r: Deployment, traffic: TrafficState): Promise<void> {
    const moved = await this.d.store.deployments.patch(r.id, { progress: { ...r.progress, traffic } }, this.now());
    await this.d.outbox.weights(moved, 0, weightsFor(traffic.plan, traffic.side, 100), { enabled: false });
  }

  /**
   * Scales down the previous version of each stepped target whose keep_previous is over (one intent each), unless a
   * newer deployment has started there since.
   */
  async expireKeeps(): Promise<void> {
    const { store, outbox, lifecycle, config } = this.d;
    const now = this.now();
    for (const [service, svc] of Object.entries(config.services)) {
      for (const [environment, se] of Object.entries(svc.environments)) {
        if (!anyStepsOf(se)) continue;
        const recent = await store.deployments.history(service, environment, 10);
        const d = recent.find((x) => x.startedAt !== null || IN_FLIGHT.has(x.status));
        const t = d?.progress?.traffic;
        if (!d || !t || d.kind !== "deploy" || t.mode !== "steps" || t.scaledDown || !t.keepUntil) continue;
        if (d.status !== "succeeded" && d.status !== "baking") continue;
        if (now.getTime() < Date.parse(t.keepUntil)) continue;
        await outbox.commit(async () => {
          const fresh = await store.deployments.must(d.id);
          const ft = fresh.progress?.traffic;
          if (!ft || ft.scaledDown) return;
          const moved = await store.deployments.patch(
            fresh.id,
            { progress: { ...fresh.progress, traffic: { ...ft, scaledDown: true } } },
            now,
          );
          await lifecycle.audit(moved, "deploybot", "steps.keep_over", { keptUntil: ft.keepUntil });
          await outbox.scale(moved, ft.plan.sides[otherSide(ft.side)], 0);
        });
      }
    }
  }

  /** The previous version a stepped target keeps running (for /status): which, where, until when. */
  async kept(t: Target): Promise<{ version: string; where: string; until: string; deploymentId: number } | null> {
    if (!anyStepsOf(t.settings)) return null;
    const recent = await this.d.store.deployments.history(t.service, t.environment, 10);
    const d = recent.find((x) => x.startedAt !== null || IN_FLIGHT.has(x.status));
    const traffic = d?.progress?.traffic;
    if (!d || !traffic || d.kind !== "deploy" || traffic.mode !== "steps" || traffic.scaledDown || !traffic.keepUntil)
      return null;
    if ((d.status !== "succeeded" && d.status !== "baking") || this.now().getTime() >= Date.parse(traffic.keepUntil))
      return null;
    return {
      version: d.previousVersion ?? "the previous version",
      where: sideName(t, traffic.plan.sides[otherSide(traffic.side)]),
      until: traffic.keepUntil,
      deploymentId: d.id,
    };
  }
}
