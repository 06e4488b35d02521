import type { Clock } from "../clock.js";
import type { Config } from "../config/schema.js";
import { pagesTotal } from "../ops/metrics.js";
import type { PagerPort } from "../ports.js";
import { escapeMrkdwn as esc } from "../slack/blocks.js";
import type { Store } from "../store/index.js";
import type { Outbox } from "./outbox.js";
import type { EffectHandler } from "./reconciler.js";

/**
 * PagerDuty's side of the outbox. A resend is safe: PagerDuty folds events with the same dedup key into one
 * incident, and the intent's key makes each action once per key and episode on deploybot's side.
 */
export function pageHandler(d: {
  pager: PagerPort;
  store: Store;
  clock: Clock;
  config: Config;
  outbox: Outbox;
}): EffectHandler<"page"> {
  return {
    async perform(i) {
      const { event } = i.effect;
      await d.pager.sendEvent(event);
      pagesTotal.inc({ action: event.action });
      return {
        result: { action: event.action, dedupKey: event.dedupKey },
        record: async () => {
          await d.store.audit.append({
            at: d.clock.now(),
            actor: "deploybot",
            action: `page.${event.action}`,
            deploymentId: i.deploymentId,
            service: null,
            environment: null,
            detail: { dedupKey: event.dedupKey, intent: i.id },
          });
        },
      };
    },
    // A trigger is wanted while its incident is open: once the metric recovered (resolvedAt is cleared when it
    // breaches again), paging someone for it would wake them for nothing.
    async unwanted(i) {
      if (i.effect.event.action !== "trigger" || !i.incidentId) return null;
      const incident = await d.store.incidents.byId(i.incidentId);
      return incident?.resolvedAt ? "the guardrail recovered before PagerDuty could take the page" : null;
    },
    async abandoned(i, reason) {
      const text = `:warning: Could not ${i.effect.event.action} the PagerDuty incident ${i.effect.event.dedupKey}: ${esc(reason)}`;
      const incident = i.incidentId ? await d.store.incidents.byId(i.incidentId) : undefined;
      if (incident) await d.outbox.noteOnIncident(incident, text);
      else await d.outbox.post(d.config.channels.incidents, text);
    },
  };
}
