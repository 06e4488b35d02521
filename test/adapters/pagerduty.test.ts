import type { APIParameters, APIResponse } from "@pagerduty/pdjs/build/src/api.js";
import type { EventParameters, EventResponse } from "@pagerduty/pdjs/build/src/events.js";
import { describe, expect, it, vi } from "vitest";
import { PagerDutyAdapter } from "../../src/adapters/pagerduty.js";
import { DeploybotError, ErrorCode } from "../../src/errors.js";
import type { PageEvent } from "../../src/ports.js";

const ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345";
const API_TOKEN = "u+T0kenT0kenT0ken12";

/** What pdjs resolves with: a fetch Response carrying the parsed body as `data`. */
function pdResponse(status: number, data: unknown): APIResponse & EventResponse {
  const response = new Response(JSON.stringify(data), { status });
  return Object.assign(response, { data, resource: null, response });
}

function fakeEvent(status = 202, data: unknown = { status: "success", message: "Event processed" }) {
  return vi.fn<(params: EventParameters) => Promise<EventResponse>>(async () => pdResponse(status, data));
}

function fakeApi(...pages: Array<() => Promise<APIResponse>>) {
  const fn = vi.fn<(params: APIParameters) => Promise<APIResponse>>();
  for (const page of pages) fn.mockImplementationOnce(page);
  return fn;
}

function adapter(opts: { event?: ReturnType<typeof fakeEvent>; api?: ReturnType<typeof fakeApi>; server?: string }) {
  return new PagerDutyAdapter({ routingKey: ROUTING_KEY, apiToken: API_TOKEN, ...opts });
}

/** One entry of GET /oncalls?include[]=users as PagerDuty's REST API v2 returns it. */
function onCall(schedule: string, level: number, name: string, email: string, policy = "PT20YPA") {
  return {
    escalation_policy: { id: policy, type: "escalation_policy_reference", summary: "Comply360 production" },
    escalation_level: level,
    schedule: { id: schedule, type: "schedule_reference", summary: "Comply360 ops" },
    user: { id: `P${name.slice(0, 5).toUpperCase()}`, type: "user", name, summary: name, email, time_zone: "UTC" },
    start: "2025-11-24T07:00:00Z",
    end: "2025-12-01T07:00:00Z",
  };
}

function page(oncalls: unknown[], offset: number, more: boolean) {
  return async () => pdResponse(200, { oncalls, limit: 100, offset, more, total: null });
}

const trigger: PageEvent = {
  action: "trigger",
  dedupKey: "deploybot/web/production/d-42/error_rate",
  severity: "critical",
  summary: "web production: error_rate 3.2% > 1% for 5 min after deploy v1.4.2",
  source: "deploybot",
  customDetails: { deployment: "d-42", version: "v1.4.2", value: 3.2 },
  links: [{ href: "https://slack.example/archives/C1/p1", text: "Incident thread" }],
};

describe("PagerDutyAdapter.sendEvent", () => {
  it("sends a trigger to events.pagerduty.com with summary, source, severity, custom details and links", async () => {
    const event = fakeEvent();

    await adapter({ event }).sendEvent(trigger);

    expect(event).toHaveBeenCalledTimes(1);
    expect(event.mock.calls[0]?.[0]).toStrictEqual({
      server: "events.pagerduty.com",
      data: {
        routing_key: ROUTING_KEY,
        event_action: "trigger",
        dedup_key: "deploybot/web/production/d-42/error_rate",
        payload: {
          summary: "web production: error_rate 3.2% > 1% for 5 min after deploy v1.4.2",
          source: "deploybot",
          severity: "critical",
          custom_details: { deployment: "d-42", version: "v1.4.2", value: 3.2 },
        },
        links: [{ href: "https://slack.example/archives/C1/p1", text: "Incident thread" }],
      },
      requestTimeout: 0,
      signal: expect.any(AbortSignal),
    });
  });

  it.each(["acknowledge", "resolve"] as const)(
    "sends %s with only the routing key, the action and the dedup key",
    async (action) => {
      const event = fakeEvent();

      await adapter({ event }).sendEvent({ ...trigger, action });

      expect(event.mock.calls[0]?.[0]).toStrictEqual({
        server: "events.pagerduty.com",
        data: { routing_key: ROUTING_KEY, event_action: action, dedup_key: "deploybot/web/production/d-42/error_rate" },
        requestTimeout: 0,
        signal: expect.any(AbortSignal),
      });
    },
  );

  it("leaves out custom_details and links when the event has none", async () => {
    const event = fakeEvent();

    await adapter({ event }).sendEvent({
      action: "trigger",
      dedupKey: "k",
      severity: "warning",
      summary: "s",
      source: "deploybot",
      links: [],
    });

    expect(event.mock.calls[0]?.[0].data).toStrictEqual({
      routing_key: ROUTING_KEY,
      event_action: "trigger",
      dedup_key: "k",
      payload: { summary: "s", source: "deploybot", severity: "warning" },
    });
  });

  it("cuts a summary longer than 1024 characters to 1024, ending in an ellipsis", async () => {
    const event = fakeEvent();

    await adapter({ event }).sendEvent({ ...trigger, summary: "x".repeat(1030) });

    expect(event.mock.calls[0]?.[0].data.payload.summary).toBe(`${"x".repeat(1023)}…`);
  });

  it("keeps a summary of exactly 1024 characters as it is", async () => {
    const event = fakeEvent();

    await adapter({ event }).sendEvent({ ...trigger, summary: "y".repeat(1024) });

    expect(event.mock.calls[0]?.[0].data.payload.summary).toBe("y".repeat(1024));
  });

  it("sends events to events.eu.pagerduty.com when the server is api.eu.pagerduty.com", async () => {
    const event = fakeEvent();

    await adapter({ event, server: "api.eu.pagerduty.com" }).sendEvent(trigger);

    expect(event.mock.calls[0]?.[0].server).toBe("events.eu.pagerduty.com");
  });

  it("throws PagerDutyFailed with PagerDuty's reasons on a 400 and never the routing key", async () => {
    const event = fakeEvent(400, {
      status: "invalid event",
      message: "Event object is invalid",
      errors: [`'${ROUTING_KEY}' is not a valid routing key`],
    });

    const err = await adapter({ event })
      .sendEvent(trigger)
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(DeploybotError);
    expect((err as DeploybotError).code).toBe(ErrorCode.PagerDutyFailed);
    expect((err as DeploybotError).message).toBe(
      "PagerDuty refused the trigger event for deploybot/web/production/d-42/error_rate: HTTP 400 " +
        "(Event object is invalid; '[redacted]' is not a valid routing key); check the PagerDuty routing (integration) key and the event",
    );
  });

  it("throws PagerDutyFailed on a 429 and says to send it again later", async () => {
    const event = fakeEvent(429, {
      status: "throttle event",
      message: "Requests for this service are arriving too quickly.",
    });

    await expect(adapter({ event }).sendEvent(trigger)).rejects.toThrow(/HTTP 429 .*send it again later/);
  });

  it("keeps the routing key out of the message and the cause when the request itself fails", async () => {
    const event = vi.fn<(params: EventParameters) => Promise<EventResponse>>(async (params) => {
      throw new Error(`request failed, body ${JSON.stringify(params.data)}`);
    });

    const err = (await adapter({ event })
      .sendEvent(trigger)
      .catch((e: unknown) => e)) as DeploybotError;

    expect(err.code).toBe(ErrorCode.PagerDutyFailed);
    expect(err.message).toMatch(/^Sending the trigger event for .* to PagerDuty failed: request failed/);
    expect(err.message).not.toContain(ROUTING_KEY);
    const cause = err.cause as Error;
    expect(cause.message).toContain("[redacted]");
    expect(`${cause.message} ${cause.stack}`).not.toContain(ROUTING_KEY);
  });

  it("gives up after timeoutMs when PagerDuty does not answer", async () => {
    const event = vi.fn<(params: EventParameters) => Promise<EventResponse>>(
      (params) =>
        new Promise((_, reject) =>
          params.signal?.addEventListener("abort", () => reject(params.signal?.reason), { once: true }),
        ),
    );
    const pd = new PagerDutyAdapter({ routingKey: ROUTING_KEY, apiToken: API_TOKEN, timeoutMs: 20, event });

    await expect(pd.sendEvent(trigger)).rejects.toThrow("to PagerDuty failed: no answer within 20 ms");
  });
});

describe("PagerDutyAdapter configuration", () => {
  it("refuses a server that is not a PagerDuty API host and says what is allowed", () => {
    expect(() => adapter({ server: "events.eu.pagerduty.com" })).toThrow(
      expect.objectContaining({
        code: ErrorCode.ConfigInvalid,
        message: expect.stringContaining("use api.pagerduty.com or api.eu.pagerduty.com"),
      }),
    );
  });

  it("accepts the server written as a URL", async () => {
    const event = fakeEvent();

    await adapter({ event, server: "https://api.eu.pagerduty.com/" }).sendEvent(trigger);

    expect(event.mock.calls[0]?.[0].server).toBe("events.eu.pagerduty.com");
  });
});

describe("PagerDutyAdapter.onCalls", () => {
  it("asks GET /oncalls for the schedules with users included and returns names and emails", async () => {
    const api = fakeApi(page([onCall("PC360OPS", 1, "Thandi Nkosi", "thandi@comply360.example")], 0, false));

    const entries = await adapter({ api }).onCalls(["PC360OPS", "PC360DB"], 2);

    expect(api.mock.calls[0]?.[0]).toStrictEqual({
      endpoint: "oncalls",
      method: "GET",
      server: "api.pagerduty.com",
      token: API_TOKEN,
      tokenType: "token",
      queryParameters: {
        "schedule_ids[]": ["PC360OPS", "PC360DB"],
        "include[]": ["users"],
        limit: "100",
        offset: "0",
      },
      requestTimeout: 0,
      signal: expect.any(AbortSignal),
    });
    expect(entries).toStrictEqual([
      { scheduleId: "PC360OPS", escalationLevel: 1, userName: "Thandi Nkosi", userEmail: "thandi@comply360.example" },
    ]);
  });

  it("asks api.eu.pagerduty.com when the server is the EU one", async () => {
    const api = fakeApi(page([], 0, false));

    await adapter({ api, server: "api.eu.pagerduty.com" }).onCalls(["PC360OPS"], 1);

    expect(api.mock.calls[0]?.[0].server).toBe("api.eu.pagerduty.com");
  });

  it("follows the pages with offset until PagerDuty says there are no more", async () => {
    const first = Array.from({ length: 100 }, (_, i) => onCall("PC360OPS", 1, `User ${i}`, `user${i}@example.com`));
    const api = fakeApi(
      page(first, 0, true),
      page([onCall("PC360OPS", 1, "Last One", "last@example.com")], 100, false),
    );

    const entries = await adapter({ api }).onCalls(["PC360OPS"], 1);

    expect(api).toHaveBeenCalledTimes(2);
    expect(api.mock.calls.map((c) => c[0].queryParameters?.offset)).toEqual(["0", "100"]);
    expect(api.mock.calls[1]?.[0].queryParameters?.["schedule_ids[]"]).toEqual(["PC360OPS"]);
    expect(entries).toHaveLength(101);
    expect(entries.at(-1)?.userEmail).toBe("last@example.com");
  });

  it("keeps escalation levels up to maxLevel and drops the higher ones", async () => {
    const api = fakeApi(
      page(
        [
          onCall("PC360OPS", 1, "Thandi Nkosi", "thandi@example.com"),
          onCall("PC360OPS", 2, "Pieter Botha", "pieter@example.com"),
          onCall("PC360OPS", 3, "Lerato Dlamini", "lerato@example.com"),
        ],
        0,
        false,
      ),
    );

    const entries = await adapter({ api }).onCalls(["PC360OPS"], 2);

    expect(entries.map((e) => [e.userName, e.escalationLevel])).toEqual([
      ["Thandi Nkosi", 1],
      ["Pieter Botha", 2],
    ]);
  });

  it("lists a person once per schedule and level even when several escalation policies use the schedule", async () => {
    const api = fakeApi(
      page(
        [
          onCall("PC360OPS", 1, "Thandi Nkosi", "thandi@example.com", "PT20YPA"),
          onCall("PC360OPS", 1, "Thandi Nkosi", "Thandi@Example.com", "PBACKUP"),
        ],
        0,
        false,
      ),
    );

    expect(await adapter({ api }).onCalls(["PC360OPS"], 1)).toHaveLength(1);
  });

  it("skips entries of schedules it did not ask for and entries without a user email", async () => {
    const noEmail = { ...onCall("PC360OPS", 1, "Ghost", "x"), user: { id: "PGHOST", type: "user_reference" } };
    const api = fakeApi(
      page([onCall("POTHER", 1, "Other Team", "other@example.com"), noEmail, { ...noEmail, schedule: null }], 0, false),
    );

    expect(await adapter({ api }).onCalls(["PC360OPS"], 1)).toEqual([]);
  });

  it("returns nobody without calling PagerDuty when no schedules are configured", async () => {
    const api = fakeApi();

    expect(await adapter({ api }).onCalls([], 1)).toEqual([]);
    expect(api).not.toHaveBeenCalled();
  });

  const failures: Array<[string, () => Promise<APIResponse>, string]> = [
    [
      "the network fails",
      async () => {
        throw new Error(`connect ECONNREFUSED, Authorization: Token token=${API_TOKEN}`);
      },
      "GET /oncalls failed: connect ECONNREFUSED, Authorization: Token token=[redacted]",
    ],
    [
      "the token is refused (401)",
      async () => pdResponse(401, { error: { message: "Authentication failed", code: 2006 } }),
      "GET /oncalls answered HTTP 401 (Authentication failed); the PagerDuty API token was refused, set a valid REST API key",
    ],
    [
      "PagerDuty has an outage (503)",
      async () => pdResponse(503, { error: { message: "Service Unavailable" } }),
      "GET /oncalls answered HTTP 503 (Service Unavailable); PagerDuty is having trouble, try again later",
    ],
    [
      "a proxy answers 502 with an HTML page (pdjs rejects with the response)",
      async () => {
        throw new Response("<html>Bad Gateway</html>", { status: 502 });
      },
      "GET /oncalls answered HTTP 502; PagerDuty is having trouble, try again later",
    ],
    [
      "the answer has no oncalls list",
      async () => pdResponse(200, { users: [] }),
      "GET /oncalls answered without an oncalls list",
    ],
    [
      "PagerDuty says there is more but sends an empty page",
      page([], 0, true),
      "GET /oncalls said there is more but sent nothing",
    ],
  ];

  it.each(failures)("says PagerDuty could not be checked when %s, without the token", async (_, answer, why) => {
    const api = fakeApi(answer);

    const err = (await adapter({ api })
      .onCalls(["PC360OPS"], 1)
      .catch((e: unknown) => e)) as DeploybotError;

    expect(err).toBeInstanceOf(DeploybotError);
    expect(err.code).toBe(ErrorCode.PagerDutyFailed);
    expect(err.message).toBe(`PagerDuty could not be checked: ${why}`);
    expect(`${err.message} ${String(err.cause)} ${(err.cause as Error | undefined)?.stack}`).not.toContain(API_TOKEN);
  });

  it("fails rather than paging forever when PagerDuty always says there is more", async () => {
    const api = vi.fn<(params: APIParameters) => Promise<APIResponse>>(async (params) =>
      pdResponse(200, {
        oncalls: [onCall("PC360OPS", 1, "Loop", "loop@example.com")],
        offset: Number(params.queryParameters?.offset),
        limit: 100,
        more: true,
      }),
    );

    await expect(adapter({ api }).onCalls(["PC360OPS"], 1)).rejects.toThrow(
      "PagerDuty could not be checked: GET /oncalls had more than 50 pages",
    );
    expect(api).toHaveBeenCalledTimes(50);
  });
});
