import { afterEach, describe, expect, it } from "vitest";
import type { ConsoleReceiver } from "../../src/local/receiver.js";
import { type Scenario, scenario } from "../helpers/scenario.js";

let s: Scenario | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

/** alice's deploy, approved by bob and rolling out: in flight, holding the lock, in the history. */
async function deployInFlight(): Promise<Scenario> {
  s = await scenario("2026-11-24T10:15:00+02:00");
  await s.run(
    '/deploy web v1.4.2 to production --reason "<!channel> approve <https://evil.example/x|here> <@U0DAVE001>"',
    ":as bob",
    ":click Approve",
  );
  return s;
}

/** Everything Slack received in the newest record of `kind`, as JSON: text and blocks. */
function lastRaw(sc: Scenario, kind: string): string {
  const r = sc.con.slack.records.filter((x) => x.kind === kind).at(-1);
  expect(r).toBeDefined();
  return JSON.stringify(r);
}

describe("mentions in /status and App Home", () => {
  it("mention people by Slack id, which Slack resolves, never by config name", async () => {
    const sc = await deployInFlight();
    await sc.run("/status web production");
    const raw = lastRaw(sc, "ephemeral");
    expect(raw).toContain("by <@U0ALICE01>");
    expect(raw).toMatch(/locked by #1 \(<@U0ALICE01>\)/);
    expect(raw).not.toMatch(/<@[a-z]/);
  });

  it("shows a reason in the history as text: no @channel, no disguised link, no mention", async () => {
    const sc = await deployInFlight();
    await sc.run("/status history web production");
    const raw = lastRaw(sc, "ephemeral");
    expect(raw).toContain("&lt;!channel&gt; approve &lt;https://evil.example/x|here&gt; &lt;@U0DAVE001&gt;");
    expect(raw).not.toContain("<!channel>");
    expect(raw).not.toContain("<https://evil.example");
  });

  it("App Home mentions by Slack id too", async () => {
    const sc = await deployInFlight();
    const receiver = (sc.con as unknown as { receiver: ConsoleReceiver }).receiver;
    await receiver.dispatch({
      type: "event_callback",
      team_id: "T0LOCAL",
      api_app_id: "A0DEPLOYBOT",
      event_id: "Ev0HOME1",
      event: { type: "app_home_opened", user: "U0BOB0001", channel: "D0BOB", tab: "home", event_ts: "1.1" },
    });
    await sc.con.services.idle();
    // The view as the bot sent it (the Slack-like server records views.publish without its blocks).
    const raw = String(sc.con.slack.calls.filter((c) => c.method === "views.publish").at(-1)?.args.view);
    expect(raw).toContain("by <@U0ALICE01>");
    expect(raw).toContain("`/deploy-status help`");
    expect(raw).not.toMatch(/<@[a-z]/);
  });
});

describe("a refusal that quotes what was typed", () => {
  it.each([
    ["an unknown service", "/deploy <!channel> v1.4.2 to production"],
    ["a word that is not a version", "/deploy web <!here> to production"],
    ["an unexpected word", "/status web production <https://evil.example/x|approve> <@U0DAVE001>"],
    ["an unknown flag", "/deploy web v1.4.2 to production --<!everyone>"],
  ])("shows %s as text, never as a mention or a link", async (_what, line) => {
    s = await scenario("2026-11-24T10:15:00+02:00");
    await s.run(line);
    const raw = lastRaw(s, "ephemeral");
    expect(raw).toMatch(/&lt;(!channel|!here|https:\/\/evil|!everyone)/);
    expect(raw).not.toMatch(/<(!channel|!here|!everyone|https:\/\/evil|@U0DAVE001)/);
  });
});
