import { strict as assert } from "assert";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { chromium, type Browser, type Page } from "playwright-core";
import { GitApp } from "../support/git-app";
import { hostAddress, sh } from "../support/fleet";
import { killGroup, PROJECT_DIR, start, type Started } from "./support/cli";
import { ROOT, PYAPP, hostsConfig, pyService } from "./support/fixtures";
import { currentRelease, deployLog, served, wipe } from "./support/host";
import { EngineStack } from "./support/stack";

/**
 * `npm run dashboard` (issue 21) in a real browser (Debian's chromium, driven by playwright-core),
 * against the real test servers and the real CLI: a stack of two services (eng-db-a on web1,
 * eng-db-b on web2), one with a `pulumi config set --secret` value its app prints at start.
 * Deploys and rollbacks are started from the page and checked on the hosts. Screenshots go to
 * test-results/dashboard/; FLEET_REFRESH_DOCS=1 refreshes docs/dashboard.png (the README's).
 */
const A = "eng-db-a";
const B = "eng-db-b";
const HOSTS = ["web1", "web2"] as const;
const PORTS = { a: 18970, b: 18971, dashboard: 18980, listen: 18981 };
const SHOTS = path.join(PROJECT_DIR, "test-results", "dashboard");

/** The pyapp, printing the secret at start (so that its journal carries it, for the logs view). */
function appPrintingSecret(): string {
  const source = fs.readFileSync(path.join(PYAPP, "app.py"), "utf8");
  const patched = source.replace(
    "ThreadingHTTPServer((HOST, PORT)",
    `print("token=" + os.environ.get("API_TOKEN", ""), flush=True)\nThreadingHTTPServer((HOST, PORT)`,
  );
  assert.notEqual(patched, source, "the pyapp's app.py still has the line this test patches");
  return patched;
}

/** `npm run dashboard -- <args>` started in the project folder; resolves with its URL once it listens. */
async function dashboard(
  env: NodeJS.ProcessEnv,
  args: string[],
): Promise<{ url: string; proc: Started; out: () => string }> {
  const proc = start(process.execPath, [path.join(PROJECT_DIR, "build", "launch.js"), "dashboard", ...args], {
    env,
    timeoutMs: 1_800_000,
  });
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    proc.child.stdout!.on("data", (d: Buffer) => {
      out += d.toString("utf8");
      const m = /dashboard: stack \S+ at (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.child.stderr!.on("data", (d: Buffer) => (out += d.toString("utf8")));
    void proc.done.then((r) => reject(new Error(`the dashboard exited ${r.code}:\n${out}`)));
  });
  return { url, proc, out: () => out };
}

describe("engine: npm run dashboard in a browser, with the real CLI (web1, web2)", function () {
  this.timeout(300_000);
  const stack = new EngineStack();
  const secret = `db-secret-${randomBytes(8).toString("hex")}`;
  let a: GitApp;
  let b: GitApp;
  let browser: Browser;
  let page: Page;
  let url: string;
  let proc: Started;
  /** Every HTML page and event stream the browser received, searched for the secret. */
  const seen: string[] = [];
  /** Update 1's releases. */
  let first: { a: string; b: string };

  const cellOf = async (service: string, host: string) => {
    const td = page.locator(`td.cell[data-service="${service}"][data-host="${host}"]`);
    return {
      state: await td.getAttribute("data-state"),
      release: await td.getAttribute("data-release"),
      text: await td.innerText(),
    };
  };
  const shot = async (name: string) => {
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };
  const fleet = async () => {
    await page.goto(url);
    seen.push(await page.content());
  };
  /** Submits an action's form on the actions page, confirms it, and waits for its exit code. */
  const act = async (action: string, fill: Record<string, string> = {}): Promise<number> => {
    await page.goto(`${url}actions`);
    const form = page.locator(`form.action:has(input[name="action"][value="${action}"])`);
    for (const [name, value] of Object.entries(fill)) {
      const field = form.locator(`[name="${name}"]`);
      if ((await field.evaluate((e) => e.tagName)) === "SELECT") await field.selectOption(value);
      else await field.fill(value);
    }
    await form.locator("button").click();
    await page.waitForSelector("p.confirm");
    seen.push(await page.content());
    await page.click("#confirm");
    await page.waitForURL(/\/actions\/[0-9a-f]{12}$/);
    await page.waitForSelector("#status[data-code]:not([data-code=''])", { timeout: 280_000 });
    seen.push(await page.content());
    const code = Number(await page.getAttribute("#status", "data-code"));
    // The stream again, whole (the action has ended, so it ends too).
    seen.push(await page.evaluate(async (u) => (await fetch(u)).text(), `${page.url()}/events`));
    return code;
  };
  const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1];

  before(async function () {
    this.timeout(240_000);
    a = new GitApp(PYAPP);
    b = new GitApp(PYAPP);
    a.commit("prints its token", { "app.py": appPrintingSecret() });
    await Promise.all(HOSTS.map((h) => wipe(h, ROOT, [A, B])));
    await stack.create({
      "fleet:hosts": hostsConfig(HOSTS),
      "fleet:services": {
        [A]: pyService({ hosts: ["web1"], repo: a.dir, port: PORTS.a }),
        [B]: pyService({ hosts: ["web2"], repo: b.dir, port: PORTS.b, healthTimeout: "4s" }),
      },
    });
    await stack.ok("config", "set", "--secret", "--path", `fleet:secretEnv.${A}.API_TOKEN`, secret);
    await stack.ok("up", "--yes", "--non-interactive");
    first = { a: a.head().slice(0, 12), b: b.head().slice(0, 12) };
    a.commit("a 2", { "n.txt": "2\n" });
    await stack.ok("up", "--yes", "--non-interactive");
    ({ url, proc } = await dashboard(stack.env, ["--stack", stack.name, "--port", String(PORTS.dashboard)]));
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--disable-background-networking"],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  });
  after(async function () {
    this.timeout(180_000);
    await browser?.close().catch(() => undefined);
    if (proc) killGroup(proc.pgid, "SIGTERM");
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    await Promise.all(HOSTS.map((h) => wipe(h, ROOT, [A, B]).catch(() => undefined)));
  });

  it("the fleet view shows each service's serving release on its host, healthy, with its commit and last deploy line", async () => {
    await fleet();
    const cellA = await cellOf(A, "web1");
    const cellB = await cellOf(B, "web2");
    assert.deepEqual([cellA.state, cellA.release], ["ok", a.head().slice(0, 12)], cellA.text);
    assert.deepEqual([cellB.state, cellB.release], ["ok", first.b], cellB.text);
    assert.equal((await served(hostAddress("web1"), PORTS.a))?.release, a.head().slice(0, 12));
    assert.ok(cellA.text.includes((await deployLog("web1", ROOT, A)).pop()!), cellA.text);
    assert.equal(
      await page.locator(`td.cell[data-service="${A}"][data-host="web2"]`).count(),
      0,
      "a does not run on web2",
    );
    await shot("fleet");
  });

  it("a deploy started from the page (POST, confirmed) switches the service on its host", async () => {
    const next = b.commit("b 2", { "n.txt": "2\n" }).slice(0, 12);
    assert.equal(await act("deploy"), 0, await page.innerText("#output"));
    assert.match(await page.innerText("#output"), /^\$ npm run deploy -- --stack /m);
    assert.equal((await served(hostAddress("web2"), PORTS.b))?.release, next);
    assert.equal(await currentRelease("web2", ROOT, B), next);
    await fleet();
    assert.equal((await cellOf(B, "web2")).release, next);
  });

  it("a deploy of some services or hosts from the page (--services, --hosts) changes only what it names", async () => {
    const serving = b.head().slice(0, 12);
    const next = b.commit("b 3", { "n.txt": "3\n" }).slice(0, 12);
    assert.equal(await act("deploy", { services: A }), 0, await page.innerText("#output"));
    assert.match(await page.innerText("#output"), new RegExp(`^\\$ npm run deploy -- --services ${A} --stack `, "m"));
    assert.match(await page.innerText("#output"), new RegExp(`^deploy: only [^\\n]*Service ${A}\\b`, "m"));
    assert.equal((await served(hostAddress("web2"), PORTS.b))?.release, serving, "eng-db-b was left alone");
    assert.equal(await currentRelease("web2", ROOT, B), serving);
    assert.equal(await act("deploy", { hosts: "web2" }), 0, await page.innerText("#output"));
    assert.equal((await served(hostAddress("web2"), PORTS.b))?.release, next);
  });

  it("one action at a time: a second is refused naming the running one, who started it and since when", async () => {
    await page.goto(`${url}actions`);
    const csrf = csrfOf(await page.content())!;
    const post = (body: string) =>
      page.evaluate(async (b) => {
        const r = await fetch("/actions", {
          method: "POST",
          body: b,
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
        });
        return { status: r.status, url: r.url, text: await r.text() };
      }, body);
    const started = await post(`action=preview&confirm=yes&csrf=${csrf}`);
    assert.match(started.url, /\/actions\/[0-9a-f]{12}$/, started.text);
    const refused = await post(`action=deploy&confirm=yes&csrf=${csrf}`);
    assert.equal(refused.status, 409, refused.text);
    assert.match(refused.text, /busy: &quot;preview&quot; is running \(started by \S+ via 127\.0\.0\.1 at 20\d\d-/);
    seen.push(refused.text);
    await page.goto(started.url);
    await page.waitForSelector("#status[data-code]:not([data-code=''])", { timeout: 120_000 });
    assert.equal(await page.getAttribute("#status", "data-code"), "0", await page.innerText("#output"));
    assert.match(await page.innerText("#output"), /eng-db|Resources:/);
  });

  it("a broken release (its health gate fails) shows as failed, with the deploy.log line as evidence", async () => {
    const good = b.head().slice(0, 12);
    const bad = b.commit("unhealthy", { "mode.txt": "unhealthy\n" }).slice(0, 12);
    assert.equal(await act("deploy"), 4, await page.innerText("#output"));
    assert.match(await page.innerText("#output"), /failed its health gate/);
    await fleet();
    const cell = await cellOf(B, "web2");
    assert.equal(cell.state, "failed", cell.text);
    assert.equal(cell.release, good, "the old release serves again");
    assert.ok(cell.text.includes(`${good} -> ${bad} rolled-back after`), cell.text);
    await shot("failed");
    if (process.env["FLEET_REFRESH_DOCS"] === "1")
      fs.copyFileSync(path.join(SHOTS, "failed.png"), path.join(PROJECT_DIR, "docs", "dashboard.png"));
    await page.goto(`${url}history`);
    seen.push(await page.content());
    assert.equal((await page.locator("svg.chart rect.bad").count()) > 0, true, "the chart shows the failed deploy");
    assert.equal(await page.locator("table.history tr.r-failed").count(), 1);
    await shot("history");
  });

  it("a rollback from the page restores update N's releases on every host", async () => {
    assert.equal(await act("rollback", { version: "1" }), 0, await page.innerText("#output"));
    assert.equal((await served(hostAddress("web1"), PORTS.a))?.release, first.a);
    assert.equal((await served(hostAddress("web2"), PORTS.b))?.release, first.b);
    await fleet();
    assert.equal((await cellOf(A, "web1")).release, first.a);
    assert.equal((await cellOf(B, "web2")).release, first.b);
  });

  it("pinning one service from the page (a release the history knows) switches it on its host", async () => {
    const second = a.head().slice(0, 12);
    // Pinning one service keeps the others' pins (eng-db-b stays on update 1's release); its
    // source is made healthy anyway, for the deploys after an unpin.
    b.commit("healthy again", { "mode.txt": null });
    assert.equal(await act("pin", { service: A, release: second }), 0, await page.innerText("#output"));
    assert.match(
      await page.innerText("#output"),
      new RegExp(`^\\$ npm run rollback -- --service ${A} ${second} `, "m"),
    );
    assert.equal((await served(hostAddress("web1"), PORTS.a))?.release, second);
    assert.equal(await currentRelease("web1", ROOT, A), second);
  });

  it("a manual switch on the host shows as drift; the refresh preview started from the page names the resource", async () => {
    const second = a.head().slice(0, 12);
    await sh(
      "web1",
      `ln -sfn releases/${first.a} ${ROOT}/${A}/current.engine && mv -T ${ROOT}/${A}/current.engine ${ROOT}/${A}/current`,
    );
    await fleet();
    const cell = await cellOf(A, "web1");
    assert.equal(cell.state, "drift", cell.text);
    assert.ok(cell.text.includes(`live ${first.a}, state ${second}`), cell.text);
    assert.notEqual(await act("refresh"), 0, await page.innerText("#output"));
    await fleet();
    assert.match(await page.innerText("main"), new RegExp(`proposes changes to: [^\\n]*${A}-release`));
    assert.ok((await cellOf(A, "web1")).text.includes("the refresh preview proposes changes"));
    assert.equal((await cellOf(B, "web2")).state, "ok");
    await shot("drift");
  });

  it("bad input gets a clear error on the page, and nothing runs", async () => {
    const before = await deployLog("web1", ROOT, A);
    await page.goto(`${url}actions`);
    await page.locator('form.action:has(input[value="rollback"]) input[name="version"]').fill("99");
    await page.locator('form.action:has(input[value="rollback"]) button').click();
    await page.waitForSelector("#problem");
    assert.match(
      await page.innerText("#problem"),
      /"99" is not one of the stack's updates \(1 to \d+\)\. Nothing was run\./,
    );
    await page.goto(`${url}actions`);
    await page.locator('form.action:has(input[value="pin"]) input[name="release"]').fill("not-a-release");
    await page.locator('form.action:has(input[value="pin"]) button').click();
    await page.waitForSelector("#problem");
    assert.match(await page.innerText("#problem"), /never ran release not-a-release/);
    assert.deepEqual(await deployLog("web1", ROOT, A), before);
  });

  it("CSRF: a POST without the page's token, or from another origin, is refused and nothing runs", async () => {
    const before = await deployLog("web2", ROOT, B);
    const html = await (await fetch(`${url}actions`)).text();
    const csrf = csrfOf(html)!;
    const post = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${url}actions`, {
        method: "POST",
        body,
        redirect: "manual",
        headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
      });
    for (const [body, headers, why] of [
      ["action=deploy&confirm=yes", {}, /CSRF token is missing or stale/],
      ["action=deploy&confirm=yes&csrf=forged", {}, /CSRF token is missing or stale/],
      [`action=deploy&confirm=yes&csrf=${csrf}`, { Origin: "http://evil.example" }, /came from http:\/\/evil\.example/],
    ] as const) {
      const r = await post(body, headers);
      assert.equal(r.status, 403);
      assert.match(await r.text(), why);
    }
    assert.deepEqual(await deployLog("web2", ROOT, B), before, "no deploy ran");
  });

  it("the logs view streams the service's journal with the secret redacted", async () => {
    await page.goto(`${url}logs?service=${A}`);
    await page.locator("#output", { hasText: "token=" }).waitFor({ timeout: 60_000 });
    const text = await page.innerText("#output");
    assert.match(text, /token=\[secret\]/, text);
    seen.push(await page.content(), text);
  });

  it("a secret value never appears in a page or an event stream", async () => {
    for (const p of ["", "fleet", "history", "actions"]) seen.push(await (await fetch(`${url}${p}`)).text());
    assert.ok(seen.length > 10, `pages seen: ${seen.length}`);
    for (const text of seen) assert.ok(!text.includes(secret), "the secret reached the page");
    assert.ok(
      seen.some((t) => t.includes("[secret]")),
      "the secret was there to redact",
    );
  });

  it("off loopback (--listen) the token is required: printed at start, then kept in a cookie", async () => {
    const env = { ...stack.env, FLEET_DASHBOARD_TOKEN: "" };
    const other = await dashboard(env, ["--stack", stack.name, "--listen", `127.0.0.1:${PORTS.listen}`]);
    try {
      const token = /\?token=(\S+)/.exec(other.out())?.[1];
      assert.ok(token, other.out());
      const bare = `http://127.0.0.1:${PORTS.listen}/`;
      const none = await fetch(bare);
      assert.equal(none.status, 401);
      assert.match(await none.text(), /needs its token/);
      const wrong = await fetch(`${bare}?token=wrong`);
      assert.equal(wrong.status, 401);
      assert.equal((await fetch(`${bare}actions`, { headers: { Authorization: `Bearer ${token}` } })).status, 200);
      const p = await browser.newPage();
      await p.goto(`${bare}?token=${token}`);
      assert.equal(new URL(p.url()).search, "", "the token leaves the address bar");
      assert.equal(await p.locator(`td.cell[data-service="${A}"]`).count(), 1);
      await p.goto(`${bare}history`);
      assert.equal(await p.locator("table.history").count(), 1, "the cookie carries the token");
      await p.close();
    } finally {
      killGroup(other.proc.pgid, "SIGTERM");
    }
  });
});
