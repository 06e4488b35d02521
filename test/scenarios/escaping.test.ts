import { afterEach, describe, expect, it } from "vitest";
import { type Scenario, scenario } from "../helpers/scenario.js";

/** What someone might type to mention everyone, forge a link or ping a person through deploybot's messages. */
const HOSTILE = "<!channel> and <!here> please <https://evil.example/x|approve here> for <@U0FRANK01>";
const RAW = ["<!channel>", "<!here>", "<https://evil.example", "<@U0FRANK01>"];

/** Everything the bot sent to Slack's Web API and response_url, as Slack received it (before any rendering). */
function sentToSlack(t: Scenario): string {
  return JSON.stringify(t.con.slack.calls.map((c) => c.args));
}

describe("what people type is escaped wherever deploybot repeats it (issue 10 §3)", () => {
  let t: Scenario | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  it("escapes a deploy's reason on every edit of its card and in its thread", async () => {
    t = await scenario("2026-11-24T10:15:00+02:00");
    await t.run(":as alice", `/deploy web v1.4.2 to staging --reason "${HOSTILE}"`, ":advance 15m");
    const sent = sentToSlack(t);
    for (const raw of RAW) expect(sent).not.toContain(raw);
    expect(sent).toContain("&lt;!channel&gt;");
    expect(sent).toContain("&lt;https://evil.example/x|approve here&gt;");
  });

  it("escapes an emergency's reason in #incidents and on the card", async () => {
    t = await scenario("2026-11-28T15:00:00+02:00");
    await t.run(":as alice", `/deploy web v1.4.3 to production --emergency "${HOSTILE}"`, ":as dave", ":click Approve");
    const sent = sentToSlack(t);
    expect(sent).toContain("Emergency deploy #1");
    for (const raw of RAW) expect(sent).not.toContain(raw);
  });

  it("escapes a rollback's reason in the confirmation, the report, and the PagerDuty summary", async () => {
    t = await scenario("2026-11-24T10:15:00+02:00");
    await t.run(":as alice", "/deploy web v1.4.2 to staging", ":advance 15m");
    await t.run(
      ":as carol",
      `/rollback web staging --severity P1 --reason "${HOSTILE}"`,
      ":click Roll back",
      ":advance 10m",
    );
    const sent = sentToSlack(t);
    expect(sent).toContain("Rolled back *web staging*");
    for (const raw of RAW) expect(sent).not.toContain(raw);
    const pages = t.events.filter((e) => e.kind === "page");
    expect(pages.map((p) => p.action)).toEqual(["trigger", "resolve"]);
    for (const raw of RAW) expect(pages[0]?.summary).not.toContain(raw);
    expect(pages[0]?.summary).toContain("&lt;!channel&gt;");
  });
});
