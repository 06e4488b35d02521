/** What the store keeps besides deployments and incidents: locks, approvals and the audit log. */

export interface Lock {
  service: string;
  environment: string;
  deploymentId: number;
  holder: string;
  since: string;
}

export interface Approval {
  deploymentId: number;
  user: string;
  decision: "approve" | "reject";
  groupName: string | null;
  /** The roles the person held at the moment of the click. */
  roles: string[];
  note: string | null;
  at: string;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  deploymentId: number | null;
  service: string | null;
  environment: string | null;
  detail: Record<string, unknown>;
}
