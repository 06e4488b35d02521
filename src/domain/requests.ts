/** What a person asks deploybot for, once the command text is parsed: the services' input, free of Slack. */

export type Severity = "P0" | "P1" | "P2" | "P3";

/** `/deploy SERVICE VERSION ENV [--hotfix] [--canary] [--reason ...] [--emergency ...] [--dry-run]` */
export interface DeployRequest {
  kind: "deploy";
  service: string;
  version: string;
  environment: string;
  hotfix: boolean;
  dryRun: boolean;
  reason: string | null;
  emergency: string | null;
  /** `--canary`: the environment's stepped canary strategy for this one deploy (set only when given). */
  canary?: true;
}

/** `/rollback SERVICE ENV [to VERSION] [--reason ...] [--severity P0-P3]` */
export interface RollbackRequest {
  kind: "rollback";
  service: string;
  environment: string;
  version: string | null;
  reason: string | null;
  severity: Severity | null;
}
