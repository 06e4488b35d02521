/** Every Slack action id deploybot's buttons carry, in one place: the markup and the listeners both read these. */
export const ACTION = {
  /** The deploy card's buttons. */
  approve: "deploy_approve",
  reject: "deploy_reject",
  /** A deploy card's traffic-step buttons. */
  stepsPromote: "deploy_steps_promote",
  stepsPause: "deploy_steps_pause",
  stepsResume: "deploy_steps_resume",
  stepsAbort: "deploy_steps_abort",
  /** The /rollback confirmation. */
  rollbackConfirm: "rollback_confirm",
  rollbackCancel: "rollback_cancel",
  /** A guardrail breach in #incidents. */
  incidentRollbackNow: "incident_rollback_now",
  incidentContinue: "incident_continue",
  incidentAcknowledge: "incident_ack",
} as const;
