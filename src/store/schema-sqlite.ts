/**
 * The schema of deploybot's store on SQLite. Tables: deployments (with kind deploy or rollback), approvals,
 * locks, the append-only audit log, incidents, intents (the outbox), guardrail_checks, leases, seen_requests, kv.
 */

/** SQLite migrations: index i moves the schema from user_version i to i + 1. Never edit a shipped one. */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('deploy', 'rollback')),
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    version TEXT NOT NULL,
    task_definition TEXT,
    previous_version TEXT,
    previous_task_definition TEXT,
    requested_by TEXT NOT NULL,
    reason TEXT,
    flags TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    decision TEXT,
    approval_rule TEXT,
    expires_at TEXT,
    ecs_deployment_arn TEXT,
    progress TEXT,
    card_channel TEXT,
    card_ts TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT
  );
  CREATE INDEX deployments_target ON deployments (service, environment, id);
  CREATE INDEX deployments_status ON deployments (status);

  CREATE TABLE approvals (
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    user TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    group_name TEXT,
    roles TEXT NOT NULL DEFAULT '[]',
    note TEXT,
    at TEXT NOT NULL,
    PRIMARY KEY (deployment_id, user)
  );

  CREATE TABLE locks (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    holder TEXT NOT NULL,
    since TEXT NOT NULL,
    PRIMARY KEY (service, environment)
  );

  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    deployment_id INTEGER,
    service TEXT,
    environment TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX audit_deployment ON audit (deployment_id);
  CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

  CREATE TABLE incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    guardrail TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    resolved_at TEXT,
    channel TEXT,
    ts TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    UNIQUE (deployment_id, guardrail)
  );

  CREATE TABLE pages (
    dedup_key TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('trigger', 'acknowledge', 'resolve')),
    severity TEXT,
    summary TEXT,
    status TEXT NOT NULL CHECK (status IN ('intended', 'sent', 'failed')),
    at TEXT NOT NULL,
    PRIMARY KEY (dedup_key, action)
  );

  CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  `
  ALTER TABLE deployments ADD COLUMN started_at TEXT;
  `,
  `
  -- Incidents: an explicit state (see src/domain/incident.ts) instead of flags in the detail JSON.
  CREATE TABLE incidents_v3 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id INTEGER NOT NULL REFERENCES deployments (id),
    guardrail TEXT NOT NULL,
    severity TEXT NOT NULL,
    action TEXT NOT NULL,
    shadow INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    episode INTEGER NOT NULL DEFAULT 1,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    resolved_at TEXT,
    rollback_at TEXT,
    rollback_id INTEGER,
    overridden_by TEXT,
    acknowledged_by TEXT,
    page_key TEXT,
    note TEXT,
    channel TEXT,
    ts TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    UNIQUE (deployment_id, guardrail)
  );
  INSERT INTO incidents_v3 (id, deployment_id, guardrail, severity, action, shadow, state, episode, first_seen, last_seen,
    resolved_at, rollback_at, rollback_id, overridden_by, acknowledged_by, page_key, note, channel, ts, detail)
  SELECT i.id, i.deployment_id, i.guardrail, i.severity,
    COALESCE(json_extract(i.detail, '$.action'), 'alert'),
    CASE WHEN json_extract(i.detail, '$.shadow') THEN 1 ELSE 0 END,
    CASE
      WHEN i.status = 'recovered' THEN 'recovered'
      WHEN json_extract(i.detail, '$.rollbackId') IS NOT NULL THEN
        CASE (SELECT r.status FROM deployments r WHERE r.id = json_extract(i.detail, '$.rollbackId'))
          WHEN 'succeeded' THEN 'rolled_back'
          -- A rollback that ended without succeeding leaves the breach to people again, as rollback_failed does.
          WHEN 'failed' THEN 'open' WHEN 'cancelled' THEN 'open' WHEN 'rejected' THEN 'open'
          WHEN 'expired' THEN 'open' WHEN 'denied' THEN 'open'
          ELSE 'rolling_back' END
      WHEN json_extract(i.detail, '$.overriddenBy') IS NOT NULL THEN 'overridden'
      WHEN json_extract(i.detail, '$.rollbackAt') IS NOT NULL AND json_extract(i.detail, '$.rollbackSkipped') IS NULL
        THEN 'rollback_pending'
      ELSE 'open'
    END,
    1, i.first_seen, i.last_seen, i.resolved_at,
    json_extract(i.detail, '$.rollbackAt'),
    CASE WHEN (SELECT r.status FROM deployments r WHERE r.id = json_extract(i.detail, '$.rollbackId'))
      IN ('failed', 'cancelled', 'rejected', 'expired', 'denied') THEN NULL ELSE json_extract(i.detail, '$.rollbackId') END,
    json_extract(i.detail, '$.overriddenBy'), json_extract(i.detail, '$.acknowledgedBy'),
    json_extract(i.detail, '$.pageKey'), json_extract(i.detail, '$.rollbackSkipped'), i.channel, i.ts,
    json_object('reason', COALESCE(json_extract(i.detail, '$.reason'), ''), 'observed', json_extract(i.detail, '$.observed'),
      'values', json(COALESCE(json_extract(i.detail, '$.values'), '[]')), 'unit', COALESCE(json_extract(i.detail, '$.unit'), 'count'),
      'threshold', COALESCE(json_extract(i.detail, '$.threshold'), ''))
  FROM incidents i;
  DROP TABLE incidents;
  ALTER TABLE incidents_v3 RENAME TO incidents;
  CREATE INDEX incidents_state ON incidents (state, id);
  CREATE INDEX incidents_deployment ON incidents (deployment_id);

  -- The outbox: every outside effect, written with the state change that needs it, performed by the reconciler.
  CREATE TABLE intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    lane TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'done', 'abandoned')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL,
    last_error TEXT,
    depends_on INTEGER REFERENCES intents (id),
    deployment_id INTEGER,
    incident_id INTEGER,
    created_at TEXT NOT NULL,
    done_at TEXT,
    result TEXT
  );
  CREATE INDEX intents_open ON intents (status, lane, id);
  CREATE INDEX intents_deployment ON intents (deployment_id, kind);
  CREATE INDEX intents_incident ON intents (incident_id, kind);
  -- Pages the previous version intended but never saw accepted are sent again by the reconciler.
  INSERT INTO intents (key, kind, lane, payload, status, attempts, next_at, created_at)
  SELECT 'migrated:' || p.dedup_key || ':' || p.action, 'page', 'pagerduty:' || p.dedup_key,
    json_object('kind', 'page', 'event', json_object('action', p.action, 'dedupKey', p.dedup_key,
      'severity', COALESCE(p.severity, 'error'), 'summary', COALESCE(p.summary, ''), 'source', 'deploybot')),
    'open', 0, p.at, p.at
  FROM pages p WHERE p.status != 'sent';
  DROP TABLE pages;

  -- Which guardrails of a deployment have produced a verdict, so a bake never ends "verified" on no data.
  CREATE TABLE guardrail_checks (
    deployment_id INTEGER NOT NULL,
    guardrail TEXT NOT NULL,
    verdicts INTEGER NOT NULL DEFAULT 0,
    last_status TEXT,
    last_at TEXT,
    PRIMARY KEY (deployment_id, guardrail)
  );

  -- The leader lease: who runs the scheduled jobs, and the epoch that fences a deposed leader.
  CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    expires_at TEXT NOT NULL
  );

  -- Slack requests already handled (trigger_id or a hash of the signed body), so a replay acts once.
  CREATE TABLE seen_requests (
    key TEXT PRIMARY KEY,
    at TEXT NOT NULL
  );
  CREATE INDEX seen_requests_at ON seen_requests (at);

  -- The deploy a rollback rolls back, as a column (it was a flag) so it can be looked up.
  ALTER TABLE deployments ADD COLUMN rolls_back INTEGER REFERENCES deployments (id);
  UPDATE deployments SET rolls_back = json_extract(flags, '$.rollsBack'), flags = json_remove(flags, '$.rollsBack')
    WHERE json_extract(flags, '$.rollsBack') IS NOT NULL;
  CREATE INDEX deployments_rolls_back ON deployments (rolls_back);

  -- Approvals keep the order they were given in (two clicks can carry the same time).
  ALTER TABLE approvals ADD COLUMN seq INTEGER;
  UPDATE approvals SET seq = rowid;

  DROP INDEX deployments_status;
  CREATE INDEX deployments_status ON deployments (status, kind, started_at);
  `,
  `
  -- When each guardrail last reached a verdict: a bake is verified by recent data, not by one early reading.
  ALTER TABLE guardrail_checks ADD COLUMN last_conclusive_at TEXT;
  UPDATE guardrail_checks SET last_conclusive_at = last_at WHERE last_status IN ('ok', 'breaching');
  `,
  `
  -- A target's deployments in given statuses (what is in flight on web production?) without reading its history.
  CREATE INDEX deployments_target_status ON deployments (service, environment, status);
  `,
];
