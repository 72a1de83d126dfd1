import { strict as assert } from "assert";
import { parseFleetConfig } from "../../config/schema";
import { deploySelectionProblem, knownReleases, planAction, type ActionContext } from "../../dashboard/actions";
import {
  admit,
  csrfProblem,
  hostAllowed,
  isLoopback,
  listenOf,
  sameSecret,
  servingOf,
  TOKEN_COOKIE,
  type Listen,
} from "../../dashboard/auth";
import { ageText, cellOf, parseDeployLine } from "../../dashboard/cells";
import { liveSinceOf } from "../../dashboard/data";
import { barsOf, deployLogScript } from "../../dashboard/deploy-log";
import { Html, fleetTable } from "../../dashboard/html";
import { ActionMutex, busyMessage } from "../../dashboard/mutex";
import type { HistoryEntry, ServiceRelease } from "../../rollback/history";
import type { StatusRow } from "../../status/collect";

/** The dashboard's decisions (issue 21): cells, the action mutex, token and CSRF checks, input checks. */

const row = (over: Partial<StatusRow> = {}): StatusRow => ({
  service: "api",
  host: "web1",
  release: "abc123def456",
  commit: "abc123def456",
  active: "active",
  health: "200",
  lastDeploy: "2026-12-03T10:00:00.000Z root 000000000000 -> abc123def456 ok 4.210s",
  note: "",
  ...over,
});
const NOW = Date.parse("2026-12-03T12:00:00Z") / 1000;

function release(resource: string, releaseId: string): ServiceRelease {
  return {
    urn: `urn:pulumi:s::fleet::x::${resource}-release`,
    service: resource.split("@")[0]!,
    resource,
    hostName: resource.split("@")[1],
    address: "127.0.0.11",
    releaseId,
    commit: releaseId,
    retainedReleases: [releaseId],
  };
}
function entry(
  version: number,
  releases: ServiceRelease[],
  result = "succeeded",
  startTime = 1000 * version,
): HistoryEntry {
  return {
    version,
    storedVersion: 0,
    file: "",
    checkpointFile: "",
    startTime,
    endTime: startTime + 5,
    kind: "update",
    result,
    gitHead: undefined,
    message: "",
    releases: Object.fromEntries(releases.map((r) => [r.urn, r])),
  };
}

describe("dashboard: a fleet cell from its status row", () => {
  it("parses a deploy.log line, and refuses other shapes", () => {
    assert.deepEqual(
      parseDeployLine("2026-12-03T10:00:00.000Z root a -> b rolled-back 12.003s health: 500 from /api/health"),
      {
        time: "2026-12-03T10:00:00.000Z",
        who: "root",
        from: "a",
        to: "b",
        result: "rolled-back",
        seconds: 12.003,
        note: "health: 500 from /api/health",
      },
    );
    assert.equal(parseDeployLine("2026-12-03T10:00:00.000Z root  -> b ok 1.000s")?.from, ""); // a first deploy
    assert.equal(parseDeployLine("garbage"), undefined);
  });

  it("healthy: release, commit, age (from the history, else the deploy line) and a green state", () => {
    const c = cellOf({ row: row(), stateRelease: "abc123def456", now: NOW });
    assert.equal(c.state, "ok");
    assert.equal(c.age, "2h");
    assert.deepEqual(c.evidence, []);
    assert.equal(cellOf({ row: row(), liveSince: NOW - 90, now: NOW }).age, "1m");
  });

  it("a failed last deploy (rolled back) is failed, with the deploy.log line as evidence, though the old release serves", () => {
    const c = cellOf({
      row: row({
        lastDeploy: "2026-12-03T11:00:00.000Z root abc123def456 -> bad000000000 rolled-back 9.1s health 500",
      }),
      now: NOW,
    });
    assert.equal(c.state, "failed");
    assert.deepEqual(c.evidence, ["abc123def456 -> bad000000000 rolled-back after 9.1s: health 500"]);
  });

  it("down beats failed; a lock is deploying; an unreadable host is not read; not deployed is absent", () => {
    assert.equal(cellOf({ row: row({ health: "500" }), now: NOW }).state, "down");
    assert.equal(cellOf({ row: row({ active: "failed" }), now: NOW }).state, "down");
    const locked = cellOf({ row: row({ note: "deploying now: pid=12 by ci" }), now: NOW });
    assert.equal(locked.state, "deploying");
    assert.equal(locked.lock, "pid=12 by ci");
    assert.equal(cellOf({ row: row({ note: "unreachable: timeout" }), now: NOW }).state, "unreachable");
    assert.equal(cellOf({ row: row({ note: "not deployed", release: "" }), now: NOW }).state, "absent");
  });

  it("drift: the live release differs from the state's, or the refresh preview proposes changes", () => {
    const d = cellOf({ row: row(), stateRelease: "fff000000000", now: NOW });
    assert.equal(d.state, "drift");
    assert.deepEqual(d.evidence, ["live abc123def456, state fff000000000"]);
    assert.equal(cellOf({ row: row(), refreshDrift: true, now: NOW }).state, "drift");
    // A worse state stays, with the drift as more evidence.
    const down = cellOf({ row: row({ health: "500" }), stateRelease: "fff000000000", now: NOW });
    assert.equal(down.state, "down");
    assert.equal(down.evidence.length, 2);
  });

  it("ages read as s, m, h, d", () => {
    assert.deepEqual([ageText(5), ageText(125), ageText(7300), ageText(200000)], ["5s", "2m", "2h", "2d"]);
  });

  it("live since: the oldest update of the latest run of that release on that resource", () => {
    const h = [entry(1, [release("api", "a")]), entry(2, [release("api", "b")]), entry(3, [release("api", "b")])];
    assert.equal(liveSinceOf(h, "api", "b"), 2000);
    assert.equal(liveSinceOf(h, "api", "a"), undefined);
  });
});

describe("dashboard: one action at a time", () => {
  it("a second acquire is refused naming the holder, who started it and since when; release frees it once", () => {
    const m = new ActionMutex();
    const first = m.acquire({ id: "1", action: "deploy", by: "ana via 127.0.0.1", since: 0 });
    assert.ok(first.ok);
    const second = m.acquire({ id: "2", action: "rollback to update 1", by: "bo", since: 5 });
    assert.ok(!second.ok);
    assert.equal(second.holder.action, "deploy");
    assert.equal(
      busyMessage(second.holder, 12_000),
      'busy: "deploy" is running (started by ana via 127.0.0.1 at 1970-01-01T00:00:00.000Z, 12s ago); wait for it to end, then try again. Nothing was started.',
    );
    first.release();
    const third = m.acquire({ id: "3", action: "preview", by: "bo", since: 20 });
    assert.ok(third.ok);
    first.release(); // a stale release does not free the new holder
    assert.equal(m.holder?.id, "3");
  });
});

describe("dashboard: who may use it", () => {
  it("--listen needs a token; the default and --port are loopback without one; bad values are named", () => {
    assert.deepEqual(listenOf(undefined, undefined), { host: "127.0.0.1", port: 8377, tokenRequired: false });
    assert.deepEqual(listenOf(undefined, "18970"), { host: "127.0.0.1", port: 18970, tokenRequired: false });
    assert.deepEqual(listenOf("127.0.0.1:18971", undefined), { host: "127.0.0.1", port: 18971, tokenRequired: true });
    assert.deepEqual(listenOf("[::1]:80", undefined), { host: "::1", port: 80, tokenRequired: true });
    assert.match(listenOf("0.0.0.0", undefined) as string, /--listen takes <addr:port>/);
    assert.match(listenOf(undefined, "70000") as string, /not a port/);
    assert.match(listenOf("a:1", "2") as string, /not both/);
  });

  it("off loopback: the token as a bearer, the cookie, or ?token= (which sets the cookie); nothing else", () => {
    const l: Listen = { host: "0.0.0.0", port: 1, tokenRequired: true };
    assert.deepEqual(admit(l, "t0ken", { authorization: "Bearer t0ken" }), { ok: true, setCookie: false });
    assert.deepEqual(admit(l, "t0ken", { cookie: `a=b; ${TOKEN_COOKIE}=t0ken` }), { ok: true, setCookie: false });
    assert.deepEqual(admit(l, "t0ken", { queryToken: "t0ken" }), { ok: true, setCookie: true });
    assert.match((admit(l, "t0ken", {}) as { why: string }).why, /needs its token/);
    assert.match((admit(l, "t0ken", { queryToken: "t0keN" }) as { why: string }).why, /token is wrong/);
    assert.ok(admit({ ...l, tokenRequired: false }, "", {}).ok);
    assert.equal(sameSecret("", ""), false);
  });

  it("on loopback, only a loopback Host (a rebound name is refused)", () => {
    const l: Listen = { host: "127.0.0.1", port: 18970, tokenRequired: false };
    assert.ok(hostAllowed(l, "127.0.0.1:18970"));
    assert.ok(hostAllowed(l, "localhost:18970"));
    assert.ok(!hostAllowed(l, "evil.example:18970"));
    assert.ok(!hostAllowed(l, undefined));
  });

  it("off loopback only over TLS: the listen address and the TLS flags decide plain, tls or refuse", () => {
    const at = (addr: string) => listenOf(addr, undefined) as Listen;
    const both = { cert: "c.pem", key: "k.pem" };
    for (const addr of ["127.0.0.1:1", "127.0.0.2:1", "127.255.255.254:1", "[::1]:1", "[::ffff:127.0.0.1]:1"]) {
      assert.ok(isLoopback(at(addr).host), addr);
      assert.deepEqual(servingOf(at(addr), {}), { kind: "plain" }, addr);
      assert.deepEqual(servingOf(at(addr), both), { kind: "tls", cert: "c.pem", key: "k.pem" }, addr);
    }
    assert.deepEqual(servingOf(listenOf(undefined, undefined) as Listen, {}), { kind: "plain" }, "the default");
    for (const addr of [
      "0.0.0.0:8377",
      "10.0.0.5:1",
      "128.0.0.1:1",
      "[::]:1",
      "[fe80::1]:1",
      "localhost:1",
      "pi.lan:1",
    ]) {
      assert.ok(!isLoopback(at(addr).host), addr);
      const refused = servingOf(at(addr), {});
      assert.equal(refused.kind, "refuse", addr);
      assert.match(
        (refused as { why: string }).why,
        /^--listen \S+ is off loopback, where plain HTTP would send the token and its cookie in clear: give --tls-cert <file> --tls-key <file> /,
      );
      assert.deepEqual(servingOf(at(addr), both), { kind: "tls", cert: "c.pem", key: "k.pem" }, addr);
    }
    assert.match((servingOf(at("[::]:8377"), {}) as { why: string }).why, /^--listen \[::\]:8377 is off loopback/);
    for (const one of [{ cert: "c.pem" }, { key: "k.pem" }])
      assert.deepEqual(servingOf(at("127.0.0.1:1"), one), {
        kind: "refuse",
        why: `give both --tls-cert <file> and --tls-key <file>, not only ${one.cert ? "--tls-cert" : "--tls-key"}`,
      });
  });

  it("CSRF: the form's token, from this dashboard's origin", () => {
    assert.equal(csrfProblem("c", { csrf: "c", origin: "http://127.0.0.1:1", host: "127.0.0.1:1" }), undefined);
    assert.equal(csrfProblem("c", { csrf: "c" }), undefined);
    assert.match(csrfProblem("c", { csrf: undefined })!, /CSRF token is missing or stale/);
    assert.match(csrfProblem("c", { csrf: "d" })!, /CSRF token/);
    assert.match(
      csrfProblem("c", { csrf: "c", origin: "http://evil.example", host: "127.0.0.1:1" })!,
      /came from http:\/\/evil\.example/,
    );
    assert.match(csrfProblem("c", { csrf: "c", origin: "null", host: "127.0.0.1:1" })!, /opaque origin/);
    // Over HTTPS the page's origin is https://…, and http://… is another origin.
    assert.equal(csrfProblem("c", { csrf: "c", origin: "https://h:1", host: "h:1", scheme: "https" }), undefined);
    assert.match(
      csrfProblem("c", { csrf: "c", origin: "http://h:1", host: "h:1", scheme: "https" })!,
      /came from http:\/\/h:1, not from this dashboard \(https:\/\/h:1\)/,
    );
  });
});

describe("dashboard: an action's input, checked before anything runs", () => {
  const history = [entry(1, [release("api", "r1"), release("web@h1", "w1")]), entry(2, [release("api", "r2")])];
  const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
  const host = (n: number) => ({ address: `127.0.0.${n}`, privateKeyFile: "/k", hostKey: key });
  const svc = (where: { host: string } | { hosts: string[] }) => ({
    ...where,
    source: { path: "." },
    start: "true",
    health: { url: "http://127.0.0.1:1/h" },
  });
  const cfg = parseFleetConfig({
    hosts: { h1: host(11), h2: host(12) },
    services: { api: svc({ host: "h1" }), web: svc({ hosts: ["h1", "h2"] }) },
  });
  const ctx: ActionContext = {
    stack: "prod",
    cwd: "/p",
    services: ["api", "web"],
    history,
    selectionProblem: deploySelectionProblem(cfg, "prod", "fleet"),
  };

  it("each action is its operator command's own command line", () => {
    const argv = (form: Record<string, string>) => {
      const p = planAction(form, ctx);
      assert.ok(p.ok, JSON.stringify(p));
      return p.plan.argv;
    };
    assert.deepEqual(argv({ action: "deploy" }), ["deploy", "--stack", "prod", "--cwd", "/p"]);
    assert.deepEqual(argv({ action: "rollback", version: "1" }), ["rollback", "1", "--stack", "prod", "--cwd", "/p"]);
    assert.deepEqual(argv({ action: "pin", service: "web", release: "w1" }), [
      "rollback",
      "--service",
      "web",
      "w1",
      "--stack",
      "prod",
      "--cwd",
      "/p",
    ]);
    assert.deepEqual(argv({ action: "preview" }), [
      "pulumi",
      "preview",
      "--diff",
      "--stack",
      "prod",
      "--non-interactive",
    ]);
    assert.deepEqual(argv({ action: "refresh" }).slice(0, 4), [
      "pulumi",
      "preview",
      "--refresh",
      "--expect-no-changes",
    ]);
  });

  it("a deploy of some hosts or services is npm run deploy -- --hosts/--services; blank fields mean all", () => {
    const plan = (form: Record<string, string>) => {
      const p = planAction({ action: "deploy", ...form }, ctx);
      assert.ok(p.ok, JSON.stringify(p));
      return p.plan;
    };
    assert.deepEqual(plan({ hosts: "h2" }).argv, ["deploy", "--hosts", "h2", "--stack", "prod", "--cwd", "/p"]);
    assert.deepEqual(plan({ hosts: " h1 , h2 ", services: "web" }).argv, [
      "deploy",
      "--hosts",
      "h1,h2",
      "--services",
      "web",
      "--stack",
      "prod",
      "--cwd",
      "/p",
    ]);
    assert.equal(plan({ services: "api" }).label, "deploy (services api)");
    assert.match(plan({ hosts: "h2" }).confirm, /^Deploy only hosts h2 of stack prod \(npm run deploy --hosts h2: /);
    assert.deepEqual(plan({ hosts: "", services: "  " }).argv, ["deploy", "--stack", "prod", "--cwd", "/p"]);
    assert.equal(plan({ hosts: "" }).label, "deploy");
  });

  it("bad input is a problem naming what is wrong and what exists", () => {
    const problem = (form: Record<string, string>, c = ctx) => {
      const p = planAction(form, c);
      assert.ok(!p.ok);
      assert.match(p.problem, /Nothing was run\.$/);
      return p.problem;
    };
    assert.match(
      problem({ action: "destroy" }),
      /unknown action "destroy": the actions are preview, refresh, deploy, rollback, pin/,
    );
    assert.match(problem({ action: "rollback", version: "3" }), /not one of the stack's updates \(1 to 2\)/);
    assert.match(problem({ action: "rollback", version: "1; rm -rf /" }), /not one of/);
    assert.match(problem({ action: "rollback", version: "0" }), /not one of/);
    assert.match(problem({ action: "rollback", version: "1" }, { ...ctx, history: undefined }), /file backend/);
    assert.match(
      problem({ action: "pin", service: "db", release: "r1" }),
      /unknown service "db": the stack's services are api, web/,
    );
    assert.match(problem({ action: "pin", service: "api", release: "--yes" }), /not a release id/);
    assert.match(problem({ action: "pin", service: "api", release: "zzz" }), /never ran release zzz .*known: r2, r1/);
    assert.match(
      problem({ action: "deploy", hosts: "h1,nope" }),
      /unknown host "nope": the stack's hosts are h1, h2\. Name one/,
    );
    assert.match(
      problem({ action: "deploy", services: "db" }),
      /unknown service "db": the stack's services are api, web/,
    );
    assert.match(
      problem({ action: "deploy", hosts: "h2", services: "api" }),
      /service "api" runs on h1: none of --hosts h2/,
    );
    assert.match(problem({ action: "deploy", hosts: " , " }), /--hosts names no host\. Give one or more of h1, h2/);
  });

  it("known releases: every release of the service in the history, newest first", () => {
    assert.deepEqual(knownReleases(history, "api"), ["r2", "r1"]);
    assert.deepEqual(knownReleases(history, "web"), ["w1"]);
  });
});

describe("dashboard: the page", () => {
  it("redacts secret values before escaping them, in every cell", () => {
    const h = new Html(["s3cr3t-value&<x>"], "csrf");
    const html = fleetTable(
      h,
      [{ service: "api", host: "web1", cell: cellOf({ row: row({ lastDeploy: "x s3cr3t-value&<x> y" }), now: NOW }) }],
      ["web1", "web2"],
    );
    assert.ok(!html.includes("s3cr3t"), html);
    assert.ok(html.includes("x [secret] y"), html);
    assert.ok(html.includes('<td class="none"></td>'), "a host the service does not run on is blank");
    assert.equal(h.text(`<a href="x">'&`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;");
  });

  it("the chart's bars: every parseable deploy.log line, oldest first, failed ones marked", () => {
    const bars = barsOf([
      { service: "api", host: "web1", lines: ["2026-12-03T11:00:00.000Z r a -> b rolled-back 9.5s x", "junk"] },
      { service: "api", host: "web2", lines: ["2026-12-03T10:00:00.000Z r - -> a ok 3.0s"] },
    ]);
    assert.deepEqual(
      bars.map((b) => [b.where, b.seconds, b.ok]),
      [
        ["api@web2", 3, true],
        ["api@web1", 9.5, false],
      ],
    );
    assert.equal(
      deployLogScript("/srv/f'x", "api", 30),
      "tail -n 30 '/srv/f'\\''x/api/deploy.log' 2>/dev/null || true\n",
    );
  });
});
