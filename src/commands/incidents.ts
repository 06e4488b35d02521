import type { App } from "@slack/bolt";
import type { Services } from "../services/index.js";
import { ACTION } from "../slack/actions.js";
import { onButton } from "./listener.js";

/** The buttons of a guardrail breach in #incidents: Roll back now, Continue anyway, Acknowledge. */
export function register(app: App, services: Services): void {
  const { incidents } = services;
  onButton(app, services, ACTION.incidentRollbackNow, "an incident", (id, p) => incidents.rollbackNow(id, p));
  onButton(app, services, ACTION.incidentContinue, "an incident", (id, p) => incidents.continueAnyway(id, p));
  onButton(app, services, ACTION.incidentAcknowledge, "an incident", (id, p) => incidents.acknowledge(id, p));
}
