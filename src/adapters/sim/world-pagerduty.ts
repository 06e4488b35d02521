import type { SimPage, WorldState } from "./world-state.js";

// PagerDuty inside the simulated world: Events API v2 events folded into alerts by dedup key.

/** How many accepted events the world keeps. */
const MAX_PAGES = 1000;

/** A PagerDuty event as the simulated adapter sends it. */
export type SimPageEvent = { action: SimPage["action"]; dedupKey: string; severity: string; summary: string };

/**
 * Applies one accepted PagerDuty event to its dedup key, as PagerDuty does: a trigger opens an incident
 * unless the key's alert is already open (then it is deduplicated); acknowledge and resolve act on an open
 * alert and are deduplicated no-ops otherwise. Returns the event as recorded.
 */
export function applyPage(pd: WorldState["pagerduty"], event: SimPageEvent, at: string): SimPage {
  const alert = pd.alerts[event.dedupKey];
  const open = alert !== undefined && alert.status !== "resolved";
  const record: SimPage = { at, ...event, deduplicated: false };
  switch (event.action) {
    case "trigger":
      if (open) {
        record.deduplicated = true;
        record.incident = alert.incident;
      } else {
        record.incident = pd.nextIncident++;
        pd.alerts[event.dedupKey] = {
          status: "triggered",
          incident: record.incident,
          summary: event.summary,
          since: at,
        };
      }
      break;
    case "acknowledge":
      if (open && alert.status === "triggered") {
        alert.status = "acknowledged";
        alert.since = at;
      } else record.deduplicated = true;
      if (alert) record.incident = alert.incident;
      break;
    case "resolve":
      if (open) {
        alert.status = "resolved";
        alert.since = at;
      } else record.deduplicated = true;
      if (alert) record.incident = alert.incident;
      break;
  }
  pd.events.push(record);
  if (pd.events.length > MAX_PAGES) pd.events.splice(0, pd.events.length - MAX_PAGES);
  return record;
}
