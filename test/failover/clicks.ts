import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { SimWorld } from "../../src/adapters/sim/world.js";
import { ScaledClock } from "../../src/clock.js";
import { loadConfig } from "../../src/config/load.js";
import type { Deployment } from "../../src/domain/deployment.js";
import { blockActionsBody } from "../../src/local/payloads.js";
import type { StoredMessage } from "../../src/local/slack-api.js";
import { ACTION } from "../../src/slack/actions.js";
import type { Block } from "../../src/slack/blocks.js";
import type { Store } from "../../src/store/index.js";
import { type BotProcess, botEnv, postSigned, SIGNING_SECRET, slashBody, startBot } from "../helpers/bot-process.js";
import { EXAMPLE_CONFIG } from "../helpers/monitor-console.js";
import { responseSink, until } from "./harness.js";

/**
 * Clicks across replicas (issue 12: "a click handled by replica A and another by replica B still give one approval
 * per person and one UpdateService"), end to end: two or three `deploybot sim-replica` processes serve Slack over
 * HTTP on one database and one simulated world, and the test sends them real signed Slack requests.
 *
 * Every round asks for a fresh hotfix deploy to production through replica A: the example config's hotfix rule wants
 * 2 approvers from tech_lead, devops_lead or cto (bob, carol, dave; alice asks). Then, at once:
 * - bob clicks Approve on the card twice, one click to A and one to B;
 * - then carol clicks Approve on B while, at the same moment, on A, either carol clicks again ("approve twice"
 *   rounds, the deciding approval sent twice), or dave, a third approver, approves too ("third approver"), or dave
 *   rejects ("reject"), or alice withdraws her request with the card's Reject ("withdraw").
 * Each round must end with one approval per person in the store and on the card, one "Approved by" note per approver,
 * one UpdateService in the world when the deploy went ahead (none when the reject or withdraw won), and an ephemeral
 * answer for every click that changed nothing. A and B rotate over the processes, so the leader and standbys all
 * serve both sides.
 */
export interface ClickOptions {
  name: string;
  dir: string;
  /** The test's own store on the same database, to read what the bots recorded. */
  store: Store;
  /** The bots' database: a SQLite file, or a PostgreSQL URL. */
  database: { file: string } | { url: string };
  processes: number;
  /** Rounds in which the deciding approval races another approval (the same person's, or a third approver's). */
  approveRounds: number;
  /** Rounds in which the deciding approval races a Reject (by an approver, or the requester withdrawing). */
  rejectRounds: number;
  /** How much faster than real time the simulated clock runs. */
  speed: number;
  leaseTtlMs: number;
}

export type RoundKind = "approve twice" | "third approver" | "reject" | "withdraw";

export interface Click {
  label: string;
  slot: number;
  /** The ephemeral answers the bot sent to this click's response_url. */
  answers: string[];
}

export interface RoundResult {
  round: number;
  kind: RoundKind;
  service: string;
  deployment: number;
  /** The processes A and B were, and which one led when the round ended. */
  a: number;
  b: number;
  leader: number | undefined;
  status: string;
  /** Approvals as the store holds them (user → how many rows), approvers first. */
  approvedBy: string[];
  rejectedBy: string[];
  /** Approvers the card names (Slack mentions in its Approvals section), and its status field. */
  cardApprovers: string[];
  cardStatus: string;
  /** "Approved by …" notes in the card's thread, per approver. */
  notes: string[];
  /** UpdateService calls the world recorded for the round's service. */
  updateServices: number;
  clicks: Click[];
  /** What /deploy answered through A (ephemeral), if anything. */
  deployAnswer: string | undefined;
  problems: string[];
}

const SERVICE = (n: number) => `api${String(n).padStart(2, "0")}`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What a click that changed nothing may be told: each names why (the policy's refusal, or where the deploy is). */
const NOTHING_CHANGED = [
  /^You have already approved this; an approval counts once\.$/,
  /^This request is already (deploying|rejected|cancelled); nothing changed\.$/,
];

/**
 * The example config with its production environment as written (windows, freezes, the approval rules, the hotfix
 * rule of 2 approvers) and its `api` service's production target, once per round as api01, api02, ... (one deploy
 * holds a service's lock until it settles, so every round needs a service of its own). Guardrails are left out:
 * nothing here breaches, and the monitor would only take the two cores from the processes under test.
 */
export function writeClicksConfig(dir: string, services: number): string {
  const doc = parse(readFileSync(EXAMPLE_CONFIG, "utf8")) as {
    services: { api: { environments: { production: Record<string, unknown> } } };
  } & Record<string, unknown>;
  const environments = doc.environments as { production: Record<string, unknown> };
  const api = doc.services.api.environments.production as {
    ecs: Record<string, unknown>;
    load_balancer: Record<string, unknown>;
    guardrails?: unknown;
  };
  const { guardrails: _, ...target } = api;
  const out = {
    timezone: doc.timezone,
    users: doc.users,
    roles: doc.roles,
    channels: doc.channels,
    pagerduty: doc.pagerduty,
    monitor: doc.monitor,
    environments: { production: environments.production },
    services: Object.fromEntries(
      Array.from({ length: services }, (_, i) => {
        const name = SERVICE(i + 1);
        return [
          name,
          {
            environments: {
              production: {
                ...target,
                ecs: { ...target.ecs, service: name },
                load_balancer: {
                  ...target.load_balancer,
                  target_group: `targetgroup/comply360-${name}/5b1e6a3a1f0c2d11`,
                },
              },
            },
          },
        ];
      }),
    ),
    simulation: doc.simulation,
  };
  const file = join(dir, "clicks.yml");
  writeFileSync(file, stringify(out));
  return file;
}

interface Slot {
  bot: BotProcess;
  port: number;
  pid: number;
}

/** Runs the rounds and returns one result per round; every process is killed at the end. */
export async function runClickRounds(o: ClickOptions): Promise<RoundResult[]> {
  const rounds = o.approveRounds + o.rejectRounds;
  const configFile = writeClicksConfig(o.dir, rounds);
  const config = loadConfig(configFile);
  const worldFile = join(o.dir, "clicks-world.sim");
  // Tuesday 10:30 in Johannesburg: inside production's Tue/Wed 10:00-12:00 window, for 90 simulated minutes.
  const clock = new ScaledClock({ simulated: "2026-11-24T08:30:00.000Z", real: Date.now(), speed: o.speed });
  const world = new SimWorld(config, clock, { file: worldFile });
  world.setTimeline(clock.timeline);
  const sink = await responseSink();
  const slackId = (name: string) => config.users[name]?.slack_id as string;

  const env = botEnv({
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    DEPLOYBOT_LEASE_TTL: `${o.leaseTtlMs}ms`,
    LOG_LEVEL: "info",
    ...("url" in o.database ? { DEPLOYBOT_DATABASE_URL: o.database.url } : {}),
  });
  const dbFile = "file" in o.database ? o.database.file : join(o.dir, "unused.db");
  const bots: BotProcess[] = [];
  let trigger = 0;
  const answersAt = (path: string) =>
    sink.received
      .filter((r) => r.path === path)
      .map((r) => String((JSON.parse(r.body) as { text?: unknown }).text ?? ""));

  try {
    for (let i = 0; i < o.processes; i++)
      bots.push(startBot(["sim-replica", "--config", configFile, "--db", dbFile, "--world", worldFile], env, 300_000));
    const slots: Slot[] = await Promise.all(
      bots.map(async (bot) => ({
        bot,
        port: Number((await bot.logLine(/listening for Slack/)).port),
        pid: bot.child.pid as number,
      })),
    );
    const leaderSlot = async (): Promise<number | undefined> => {
      const lease = await o.store.leases.get("leader");
      if (!lease || Date.parse(lease.expiresAt) <= Date.now()) return undefined;
      const pid = Number(lease.holder.split(":").at(-2));
      const i = slots.findIndex((s) => s.pid === pid);
      return i >= 0 ? i : undefined;
    };
    await until("a leader", 10_000, leaderSlot);

    const results: RoundResult[] = [];
    for (let r = 1; r <= rounds; r++) {
      const kind: RoundKind =
        r <= o.approveRounds
          ? r % 2 === 1
            ? "approve twice"
            : "third approver"
          : (r - o.approveRounds) % 2 === 1
            ? "reject"
            : "withdraw";
      const service = SERVICE(r);
      const a = (r - 1) % o.processes;
      const b = r % o.processes;
      const portOf = (slot: number) => (slots[slot] as Slot).port;

      // 1. alice asks through A.
      const deployPath = `/response/deploy/${r}`;
      const status = await postSigned(
        portOf(a),
        slashBody({
          command: "/deploy",
          text: `${service} v2.0.${r} to production --hotfix --reason "round ${r}"`,
          user_id: slackId("alice"),
          user_name: "alice",
          response_url: `${sink.url}/deploy/${r}`,
          trigger_id: `${++trigger}.clicks`,
        }),
      );
      if (status !== 200) throw new Error(`round ${r}: /deploy answered HTTP ${status}`);
      const asked = await until(`round ${r}: the card of ${service} is up`, 10_000, async () => {
        const [d] = await o.store.deployments.history(service, "production", 1);
        if (d && d.status !== "awaiting_approval") throw new Error(`round ${r}: ${service} is ${d.status}`);
        return d?.cardTs ? d : undefined;
      });
      const card = () =>
        world.slackMessages().find((m) => m.channelId === asked.cardChannel && m.ts === asked.cardTs) as
          | StoredMessage
          | undefined;
      const message = card();
      if (!message) throw new Error(`round ${r}: the card of deploy #${asked.id} is not in the world`);
      const clickBody = (user: string, actionId: string, path: string) => {
        const block = (message.blocks as Block[]).find(
          (bl) =>
            bl.type === "actions" &&
            ((bl.elements as Array<Record<string, unknown>>) ?? []).some((e) => e.action_id === actionId),
        );
        const button = ((block?.elements as Array<Record<string, unknown>>) ?? []).find(
          (e) => e.action_id === actionId,
        );
        if (!block || !button) throw new Error(`round ${r}: the card has no ${actionId} button`);
        return new URLSearchParams({
          payload: JSON.stringify(
            blockActionsBody({
              found: { message, button, blockId: String(block.block_id ?? "") },
              user: { id: slackId(user), name: user },
              responseUrl: `${sink.url}/click/${r}/${path}`,
              triggerId: `${++trigger}.clicks`,
              now: clock.now(),
            }),
          ),
        }).toString();
      };
      const clicks: Click[] = [];
      const click = async (slot: number, user: string, actionId: string, label: string): Promise<void> => {
        const c: Click = { label, slot, answers: [] };
        clicks.push(c);
        const code = await postSigned(portOf(slot), clickBody(user, actionId, label.replace(/\W+/g, "-")));
        if (code !== 200) throw new Error(`round ${r}: ${label} answered HTTP ${code}`);
      };
      const pathOf = (c: Click) => `/response/click/${r}/${c.label.replace(/\W+/g, "-")}`;
      const approvals = async () => o.store.approvals.of(asked.id);

      // 2. bob approves twice at once, on A and on B; one of the two is told it changed nothing.
      await Promise.all([
        click(a, "bob", ACTION.approve, "bob approves on A"),
        click(b, "bob", ACTION.approve, "bob approves on B"),
      ]);
      const bobs = clicks.slice(0, 2);
      await until(`round ${r}: bob's approval counted and his other click answered`, 2_000, async () =>
        (await approvals()).some((x) => x.user === "bob") && bobs.some((c) => answersAt(pathOf(c)).length > 0)
          ? true
          : undefined,
      ).catch(() => undefined);

      // 3. The deciding approval on B, and at the same moment another click on A.
      const race =
        kind === "approve twice"
          ? (["carol", ACTION.approve, "carol approves on A"] as const)
          : kind === "third approver"
            ? (["dave", ACTION.approve, "dave approves on A"] as const)
            : kind === "reject"
              ? (["dave", ACTION.reject, "dave rejects on A"] as const)
              : (["alice", ACTION.reject, "alice withdraws on A"] as const);
      await Promise.all([
        click(b, "carol", ACTION.approve, "carol approves on B"),
        click(a, race[0], race[1], race[2]),
      ]);
      const racers = clicks.slice(2);
      // Generous: on PostgreSQL the racing transactions conflict and run again (with backoff) before one wins.
      const settled = await until(`round ${r}: deploy #${asked.id} settles`, 15_000, async () => {
        const d = (await o.store.deployments.get(asked.id)) as Deployment;
        if (d.status === "awaiting_approval") return undefined;
        const open = (await o.store.intents.about({ deploymentId: asked.id })).filter((i) => i.status === "open");
        if (open.length > 0) return undefined;
        if (racers.every((c) => answersAt(pathOf(c)).length === 0)) return undefined;
        return d;
      }).catch(async () => (await o.store.deployments.get(asked.id)) as Deployment);

      const all = await approvals();
      results.push({
        round: r,
        kind,
        service,
        deployment: asked.id,
        a,
        b,
        leader: await leaderSlot(),
        status: settled.status,
        approvedBy: all.filter((x) => x.decision === "approve").map((x) => x.user),
        rejectedBy: all.filter((x) => x.decision === "reject").map((x) => x.user),
        cardApprovers: [],
        cardStatus: "",
        notes: [],
        updateServices: 0,
        clicks,
        deployAnswer: answersAt(deployPath)[0],
        problems: [],
      });
    }

    // Late duplicates would show now: let every process run a while longer (leader's reconciler and ticks), then
    // count from the world and read every card as Slack shows it.
    await sleep(Math.max(1_000, 2 * o.leaseTtlMs));
    const state = world.read();
    const messages = world.slackMessages();
    const nameOf = (id: string) => Object.entries(config.users).find(([, u]) => u.slack_id === id)?.[0] ?? id;
    for (const res of results) {
      const svc = state.services[`comply360-prod/${res.service}`];
      res.updateServices = (svc?.deployments ?? []).filter(
        (d) => d.targetTaskDefinitionArn !== svc?.initialTaskDefinitionArn,
      ).length;
      const d = (await o.store.deployments.get(res.deployment)) as Deployment;
      res.status = d.status;
      // The approvals as they are now, with the status above: both read once every process has settled.
      const all = await o.store.approvals.of(res.deployment);
      res.approvedBy = all.filter((x) => x.decision === "approve").map((x) => x.user);
      res.rejectedBy = all.filter((x) => x.decision === "reject").map((x) => x.user);
      const card = messages.find((m) => m.channelId === d.cardChannel && m.ts === d.cardTs);
      const texts = ((card?.blocks ?? []) as Block[]).map((bl) => {
        const t = bl.text as { text?: string } | undefined;
        const f = bl.fields as Array<{ text?: string }> | undefined;
        return [t?.text ?? "", ...(f ?? []).map((x) => x.text ?? "")].join("\n");
      });
      const approvalsText = texts.find((t) => t.startsWith("*Approvals*")) ?? "";
      // The groups' lines (":white_check_mark: 2 from tech_lead or devops_lead or cto: @bob, @carol"), not "Rejected by".
      res.cardApprovers = approvalsText
        .split("\n")
        .filter((l) => l.startsWith(":white_check_mark:") || l.startsWith(":white_circle:"))
        .flatMap((l) => [...l.matchAll(/<@(U[A-Z0-9]+)>/g)].map((m) => nameOf(m[1] as string)));
      res.cardStatus = (/\*Status\*\n([^\n]*)/.exec(texts.join("\n"))?.[1] ?? "").replace(/^:[a-z_]+: /, "");
      res.notes = messages
        .filter((m) => m.threadTs === d.cardTs && m.channelId === d.cardChannel)
        .flatMap((m) => [...m.text.matchAll(/^Approved by <@(U[A-Z0-9]+)>\./g)].map((x) => nameOf(x[1] as string)));
      for (const c of res.clicks) c.answers = answersAt(`/response/click/${res.round}/${c.label.replace(/\W+/g, "-")}`);
      res.problems = check(res);
    }
    return results;
  } finally {
    for (const bot of bots) if (bot.child.exitCode === null && bot.child.signalCode === null) bot.child.kill("SIGTERM");
    await Promise.race([Promise.all(bots.map((b) => b.exited)), sleep(5_000)]);
    for (const bot of bots) if (bot.child.exitCode === null && bot.child.signalCode === null) bot.child.kill("SIGKILL");
    await Promise.all(bots.map((b) => b.exited));
    world.kill();
    await sink.close();
  }
}

/** What is wrong with a round, if anything: each line one broken promise. */
function check(r: RoundResult): string[] {
  const problems: string[] = [];
  const went = r.status === "deploying" || r.status === "baking";
  const ended = r.status === (r.kind === "withdraw" ? "cancelled" : "rejected");
  const once = (names: string[]) => new Set(names).size === names.length;
  if (!once(r.approvedBy)) problems.push(`an approval counted twice in the store: ${r.approvedBy.join(", ")}`);
  if (!once(r.cardApprovers)) problems.push(`an approver twice on the card: ${r.cardApprovers.join(", ")}`);
  if (!once(r.notes)) problems.push(`"Approved by" noted twice: ${r.notes.join(", ")}`);
  if (!r.approvedBy.includes("bob")) problems.push("bob's approval was lost");
  // The card went up (the clicks were made on it), so /deploy has nothing to add, through a standby too: a standby
  // waits for the leader's next pass rather than report the card as not taken yet.
  if (r.deployAnswer !== undefined) problems.push(`/deploy answered ${JSON.stringify(r.deployAnswer)}`);
  if ([...r.cardApprovers].sort().join() !== [...r.approvedBy].sort().join())
    problems.push(`the card names ${r.cardApprovers.join(", ")}, the store ${r.approvedBy.join(", ")}`);
  if ([...r.notes].sort().join() !== [...r.approvedBy].sort().join())
    problems.push(`notes for ${r.notes.join(", ")}, approvals by ${r.approvedBy.join(", ")}`);
  if (went) {
    if (r.approvedBy.length !== 2) problems.push(`started with ${r.approvedBy.length} approvals`);
    if (r.updateServices !== 1) problems.push(`${r.updateServices} UpdateService calls for one deploy`);
    if (!/^(Deploying|Baking)/.test(r.cardStatus)) problems.push(`the card says ${r.cardStatus}`);
  } else if (ended && r.kind !== "approve twice" && r.kind !== "third approver") {
    if (r.approvedBy.length !== 1) problems.push(`${r.status} with ${r.approvedBy.length} approvals`);
    if (r.updateServices !== 0) problems.push(`${r.updateServices} UpdateService calls for a ${r.status} deploy`);
    if (!r.cardStatus.startsWith(r.status === "cancelled" ? "Cancelled" : "Rejected"))
      problems.push(`the card says ${r.cardStatus}`);
  } else {
    problems.push(`ended ${r.status}`);
  }
  // Every click that changed nothing is told so, once; a click that counted is answered by the card alone.
  const bobs = r.clicks.slice(0, 2);
  const racers = r.clicks.slice(2);
  for (const [pair, what] of [
    [bobs, "bob's two approvals"],
    [racers, "the race"],
  ] as const) {
    const answered = pair.filter((c) => c.answers.length > 0);
    if (answered.length !== 1)
      problems.push(
        `${answered.length} of ${what} answered: ${pair.map((c) => `${c.label}: ${c.answers.join(" | ") || "(nothing)"}`).join("; ")}`,
      );
    for (const c of answered)
      if (c.answers.length !== 1 || !NOTHING_CHANGED.some((re) => re.test(c.answers[0] as string)))
        problems.push(`${c.label} was answered ${JSON.stringify(c.answers)}`);
  }
  return problems;
}

/** One summary line, and a line per round. */
export function clicksReport(name: string, results: RoundResult[]): string {
  const held = results.filter((r) => r.problems.length === 0).length;
  const updates = results.reduce((n, r) => n + r.updateServices, 0);
  const started = results.filter((r) => r.status === "deploying" || r.status === "baking").length;
  const approvals = results.reduce((n, r) => n + r.approvedBy.length, 0);
  const clicks = results.reduce((n, r) => n + r.clicks.length, 0);
  const answered = results.reduce((n, r) => n + r.clicks.filter((c) => c.answers.length > 0).length, 0);
  const outcomes = new Map<string, number>();
  for (const r of results) outcomes.set(`${r.kind}→${r.status}`, (outcomes.get(`${r.kind}→${r.status}`) ?? 0) + 1);
  // What the clicks that changed nothing were told, and what /deploy answered through the leader and a standby.
  const told = new Map<string, number>();
  for (const r of results)
    for (const c of r.clicks)
      for (const t of c.answers) told.set(t.replace(/#\d+/, "#N"), (told.get(t.replace(/#\d+/, "#N")) ?? 0) + 1);
  const deployAnswers = new Map<string, number>();
  for (const r of results) {
    const k = `through the ${r.a === r.leader ? "leader" : "standby"}: ${r.deployAnswer ? `"${r.deployAnswer.replace(/#\d+/, "#N").slice(0, 60)}…"` : "nothing"}`;
    deployAnswers.set(k, (deployAnswers.get(k) ?? 0) + 1);
  }
  const lines = [
    `${name}: ${results.length} rounds, ${held} held; ${clicks} clicks, ${approvals} approvals counted, ${answered} clicks told they changed nothing; ${started} deploys started with ${updates} UpdateService calls; outcomes: ${[...outcomes].map(([k, n]) => `${n} ${k}`).join(", ")}`,
    `  told: ${[...told].map(([t, n]) => `${n}× "${t}"`).join(", ")}`,
    `  /deploy answered ${[...deployAnswers].map(([t, n]) => `${n}× ${t}`).join("; ")}`,
    "round kind            service deploy A→B leader status     approvals (store | card | notes)     UpdateService answered held",
  ];
  for (const r of results) {
    const answeredBy = r.clicks
      .filter((c) => c.answers.length > 0)
      .map((c) => c.label.replace(/ on /, "@").replace(/ (approves|rejects|withdraws)/, ""))
      .join(",");
    lines.push(
      `${String(r.round).padStart(5)} ${r.kind.padEnd(15)} ${r.service.padEnd(7)} ${`#${r.deployment}`.padStart(6)} ${`${r.a}→${r.b}`.padEnd(4)} ${String(r.leader ?? "-").padStart(6)} ${r.status.padEnd(10)} ${`${r.approvedBy.join(",")} | ${r.cardApprovers.join(",")} | ${r.notes.join(",")}`.padEnd(36)} ${String(r.updateServices).padStart(13)} ${answeredBy.padEnd(8)} ${r.problems.length ? `NO: ${r.problems.join("; ")}` : "yes"}`,
    );
  }
  return lines.join("\n");
}
