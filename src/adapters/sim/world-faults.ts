import { DeploybotError, ErrorCode } from "../../errors.js";
import type { SimApi, SimEvent, SimRefusal, SimSystem } from "./world-state.js";
import { WorldStore } from "./world-store.js";

/**
 * The simulated world's events and faults: who listens to what the world does (the console prints it), and the
 * throttles, outages, CloudWatch lag and crashes the console injected, which every simulated call passes through.
 */
export class WorldFaults extends WorldStore {
  private listeners: Array<(e: SimEvent) => void> = [];

  onEvent(listener: (e: SimEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  emit(e: SimEvent): void {
    if (this.dead) return;
    for (const l of this.listeners) l(e);
  }

  // --- Faults -------------------------------------------------------------------------------------------

  /** `:throttle API OP COUNT`: the next COUNT calls of that operation fail as throttled. */
  throttle(api: SimApi, op: string, count: number): void {
    this.update((s) => {
      if (count > 0) s.faults.throttle[`${api}:${op}`] = count;
      else delete s.faults.throttle[`${api}:${op}`];
    });
  }

  /** `:down SYSTEM DURATION`: the system fails every call until now + ms (simulated time). */
  down(system: SimSystem, ms: number): void {
    const until = new Date(this.clock.now().getTime() + ms).toISOString();
    this.update((s) => {
      s.faults.down[system] = until;
    });
  }

  /** `:crash-after API:OP`: the bot dies right after its next call of that operation returns. */
  crashAfter(api: SimApi, op: string): void {
    this.update((s) => {
      if (!s.faults.crashAfter.includes(`${api}:${op}`)) s.faults.crashAfter.push(`${api}:${op}`);
    });
  }

  /** `:lag DURATION`: CloudWatch publishes each datapoint this long after its period ends. */
  setLag(ms: number): void {
    this.update((s) => {
      s.faults.lagMs = ms;
    });
  }

  /** The faults in force now (down windows that ended are left out). */
  faults(): {
    throttle: Record<string, number>;
    down: Partial<Record<SimSystem, string>>;
    crashAfter: string[];
    lagMs: number;
  } {
    const now = this.clock.now().getTime();
    const f = this.read().faults;
    const down = Object.fromEntries(Object.entries(f.down).filter(([, until]) => Date.parse(until as string) > now));
    return { throttle: { ...f.throttle }, down, crashAfter: [...f.crashAfter], lagMs: f.lagMs };
  }

  /**
   * Decides whether the system takes a call: a dead world throws; a system that is down refuses it; a
   * throttled operation refuses it and uses up one of its throttled calls. Undefined means the call goes ahead.
   */
  refusal(api: SimApi, op: string): SimRefusal | undefined {
    this.assertAlive(`${api} ${op}`);
    this.refresh();
    const f = this.state.faults;
    const until = api === "pagerduty" || api === "slack" || api === "cloudwatch" ? f.down[api] : undefined;
    if (until && this.clock.now().getTime() < Date.parse(until)) {
      const code =
        api === "pagerduty" ? "ECONNRESET" : api === "slack" ? "service_unavailable" : "InternalServiceError";
      return { kind: "down", code, until };
    }
    const key = `${api}:${op}`;
    // Checked first without writing; then taken in one transaction, so two processes never take the same one.
    const throttled =
      (f.throttle[key] ?? 0) > 0 &&
      this.update((s) => {
        const left = s.faults.throttle[key] ?? 0;
        if (left > 1) s.faults.throttle[key] = left - 1;
        else delete s.faults.throttle[key];
        return left > 0;
      });
    if (!throttled) return undefined;
    const code = api === "ecs" ? "ThrottlingException" : api === "slack" ? "ratelimited" : "Throttling";
    return { kind: "throttled", code };
  }

  /**
   * The gate of every simulated AWS or PagerDuty call: refused calls throw the transient error the real
   * adapter raises for them (AWS ones are printed with their `error`); accepted AWS calls are printed.
   */
  admit(api: Exclude<SimApi, "slack">, op: string, input: Record<string, unknown>, print = true): void {
    const refused = this.refusal(api, op);
    if (api !== "pagerduty" && print)
      this.emit({ kind: "aws", api, op, input, ...(refused ? { error: refused.code } : {}) });
    if (!refused) return;
    if (api === "pagerduty") {
      throw new DeploybotError(
        ErrorCode.PagerDutyFailed,
        refused.kind === "down"
          ? `PagerDuty could not be reached for ${op} (${refused.code}: simulated outage until ${refused.until}): try again shortly`
          : `PagerDuty rate-limited ${op} (HTTP 429): try again shortly`,
        { transient: true },
      );
    }
    const vendor = api === "ecs" ? "ECS" : api === "cloudwatch" ? "CloudWatch" : "Elastic Load Balancing";
    const message =
      refused.kind === "throttled"
        ? `${vendor} throttled ${op} (${refused.code}: Rate exceeded): try again in a moment`
        : `${vendor} ${op} failed with HTTP 500 (${refused.code}: simulated outage until ${refused.until}): try again shortly`;
    throw new DeploybotError(ErrorCode.AwsFailed, message, { transient: true });
  }

  /** Uses up a `:crash-after` for this call if one is set; true when the bot must die right after the call. */
  takeCrash(api: SimApi, op: string): boolean {
    if (this.dead) return false;
    const key = `${api}:${op}`;
    if (!this.read().faults.crashAfter.includes(key)) return false;
    return this.update((s) => {
      const armed = s.faults.crashAfter.includes(key);
      s.faults.crashAfter = s.faults.crashAfter.filter((k) => k !== key);
      return armed;
    });
  }

  /** Called right after a call took effect and was written: the bot dies here if `:crash-after` named it. */
  completed(api: SimApi, op: string): void {
    if (this.takeCrash(api, op)) this.crash();
  }
}
