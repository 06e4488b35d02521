import { IllegalTransitionError } from "../errors.js";

/** One named event of a state machine: the states it may start from and the state it leads to. */
export interface EventSpec<S extends string> {
  from: readonly S[];
  to: S;
}

/** A state machine written down in one place: its events, and the transitions they allow. */
export class Machine<S extends string, E extends string> {
  /** Every allowed move, derived from the events: state → states reachable by one event. */
  readonly transitions: Readonly<Record<S, readonly S[]>>;

  constructor(
    readonly name: string,
    readonly states: readonly S[],
    readonly events: Readonly<Record<E, EventSpec<S>>>,
  ) {
    const moves = Object.fromEntries(states.map((s) => [s, [] as S[]])) as Record<S, S[]>;
    for (const spec of Object.values<EventSpec<S>>(events)) {
      for (const from of spec.from) if (!moves[from].includes(spec.to)) moves[from].push(spec.to);
    }
    this.transitions = moves;
  }

  /** The state `event` leads to from `from`; throws IllegalTransitionError when it may not happen there. */
  next(from: S, event: E, subject: string): S {
    const spec = this.events[event];
    if (!spec.from.includes(from)) throw new IllegalTransitionError(from, `${spec.to} (${event})`, subject, this.name);
    return spec.to;
  }

  /** True when `event` may happen in state `from`. */
  can(from: S, event: E): boolean {
    return this.events[event].from.includes(from);
  }

  /** States no event leaves. */
  terminal(): S[] {
    return this.states.filter((s) => this.transitions[s].length === 0);
  }
}
