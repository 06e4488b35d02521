import type { SqlDriver } from "./driver.js";

/** A lease as the database holds it: who holds it, since which epoch, and until when (ISO). */
export interface Lease {
  name: string;
  holder: string;
  /** Moves up by one each time the lease changes hands (or is taken again after it expired): the fencing token. */
  epoch: number;
  expiresAt: string;
}

/** What acquireOrRenew found: `held` when the caller holds the lease now; `lease` is the row as it stands. */
export interface LeaseClaim {
  held: boolean;
  lease: Lease;
}

interface LeaseRow {
  name: string;
  holder: string;
  epoch: number;
  expires_at: string;
}

const toLease = (r: LeaseRow): Lease => ({
  name: r.name,
  holder: r.holder,
  epoch: Number(r.epoch),
  expiresAt: r.expires_at,
});

/**
 * Named leases with an epoch (the leader lease: who runs the scheduled jobs). A lease is taken when it is free or
 * expired, with the epoch moved up; renewed only by its holder while it is unexpired. Every effect's transaction asks
 * `holds` with the epoch it was granted, so a holder that lost the lease, even one that does not know it yet, writes
 * nothing more in its name.
 */
export class LeaseRepo {
  constructor(private readonly db: SqlDriver) {}

  /**
   * In one transaction: takes the lease when nobody holds it or it expired (epoch + 1), renews it when `holder` holds
   * it and it has not expired (same epoch), else leaves it to its holder. Expiry is `now + ttlMs`.
   */
  async acquireOrRenew(name: string, holder: string, now: Date, ttlMs: number): Promise<LeaseClaim> {
    const at = now.toISOString();
    const until = new Date(now.getTime() + ttlMs).toISOString();
    return this.db.tx(async () => {
      const row = await this.db.get<LeaseRow>(
        `SELECT name, holder, epoch, expires_at FROM leases WHERE name = ?${this.db.forUpdate}`,
        [name],
      );
      if (!row) {
        // Two first starts at once: one inserts, the other changes nothing and is told who won on its next turn.
        const inserted = await this.db.run(
          "INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?, ?, 1, ?) ON CONFLICT (name) DO NOTHING",
          [name, holder, until],
        );
        const lease = { name, holder, epoch: 1, expiresAt: until };
        return inserted === 1 ? { held: true, lease } : { held: false, lease: { ...lease, holder: "", epoch: 0 } };
      }
      if (row.holder === holder && row.expires_at > at) {
        await this.db.run("UPDATE leases SET expires_at = ? WHERE name = ?", [until, name]);
        return { held: true, lease: { ...toLease(row), expiresAt: until } };
      }
      if (row.expires_at <= at) {
        const epoch = Number(row.epoch) + 1;
        await this.db.run("UPDATE leases SET holder = ?, epoch = ?, expires_at = ? WHERE name = ?", [
          holder,
          epoch,
          until,
          name,
        ]);
        return { held: true, lease: { name, holder, epoch, expiresAt: until } };
      }
      return { held: false, lease: toLease(row) };
    });
  }

  /**
   * Whether `holder` still holds the lease at `epoch` and it has not expired at `now`. Asked inside a transaction,
   * the answer stands for the whole transaction (SQLite's write lock; PostgreSQL's serializable isolation).
   */
  async holds(name: string, holder: string, epoch: number, now: Date): Promise<boolean> {
    const row = await this.db.get<{ one: number }>(
      "SELECT 1 AS one FROM leases WHERE name = ? AND holder = ? AND epoch = ? AND expires_at > ?",
      [name, holder, epoch, now.toISOString()],
    );
    return row !== undefined;
  }

  /** Gives the lease up (a clean stop), so that a standby takes it on its next turn instead of at expiry. */
  async release(name: string, holder: string, epoch: number, now: Date): Promise<boolean> {
    const changed = await this.db.run(
      "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND epoch = ? AND expires_at > ?",
      [now.toISOString(), name, holder, epoch, now.toISOString()],
    );
    return changed === 1;
  }

  async get(name: string): Promise<Lease | undefined> {
    const row = await this.db.get<LeaseRow>("SELECT name, holder, epoch, expires_at FROM leases WHERE name = ?", [
      name,
    ]);
    return row ? toLease(row) : undefined;
  }
}
