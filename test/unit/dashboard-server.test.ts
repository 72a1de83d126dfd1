import { strict as assert } from "assert";
import * as http from "http";
import { parseFleetConfig } from "../../config/schema";
import { TOKEN_COOKIE, type Listen } from "../../dashboard/auth";
import { Dashboard } from "../../dashboard/server";

/**
 * The dashboard's server over real HTTP, with an empty fleet (nothing to reach over SSH) and no
 * history: admission, CSRF, confirmation and input problems, and redaction of what a request
 * echoes. The actions themselves run in test/engine/dashboard.test.ts.
 */
const SECRET = "hunter2-dashboard-secret";

async function serve(listen: Listen, token = ""): Promise<{ d: Dashboard; url: string }> {
  const d = new Dashboard({
    listen,
    token,
    where: { stack: "t", project: "fleet", backendDir: undefined },
    cwd: "/nonexistent",
    env: {},
    loadConfig: () => ({ cfg: parseFleetConfig({ hosts: {}, services: {} }), secrets: [SECRET], unreadableHosts: {} }),
  });
  return { d, url: await d.listen() };
}

const form = (body: Record<string, string>, headers: Record<string, string> = {}) => ({
  method: "POST",
  body: new URLSearchParams(body).toString(),
  redirect: "manual" as const,
  headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
});

describe("dashboard: the server over HTTP (empty fleet)", function () {
  this.timeout(20_000);

  it("loopback: the views answer; a POST needs the page's CSRF token; bad input is a 400 naming it; a good one asks first", async () => {
    const { d, url } = await serve({ host: "127.0.0.1", port: 18984, tokenRequired: false });
    try {
      for (const p of ["", "history", "actions", "static/htmx.min.js", "static/dashboard.js"])
        assert.equal((await fetch(`${url}${p}`)).status, 200, p);
      const page = await (await fetch(`${url}actions`)).text();
      assert.ok(page.includes(`name="csrf" value="${d.csrf}"`));
      assert.equal((await fetch(`${url}actions`, form({ action: "deploy", confirm: "yes" }))).status, 403);
      const unknown = await fetch(
        `${url}actions`,
        form({ action: "pin", service: SECRET, release: "r", csrf: d.csrf }),
      );
      assert.equal(unknown.status, 400);
      const text = await unknown.text();
      assert.match(text, /unknown service &quot;\[secret\]&quot;/);
      assert.ok(!text.includes(SECRET), "what a request echoes is redacted too");
      const badHost = await fetch(
        `${url}actions`,
        form({ action: "deploy", hosts: "web9", csrf: d.csrf, confirm: "yes" }),
      );
      assert.equal(badHost.status, 400);
      assert.match(await badHost.text(), /unknown host &quot;web9&quot;: the stack&#39;s hosts are none\./);
      const confirm = await fetch(`${url}actions`, form({ action: "deploy", csrf: d.csrf }));
      assert.equal(confirm.status, 200);
      assert.match(
        await confirm.text(),
        /Deploy stack t \(npm run deploy: checks, then pulumi up\)\?.*name="confirm" value="yes"/s,
      );
      assert.equal(d.runner.list().length, 0, "nothing ran");
      // fetch sets Host itself: a rebound name needs a plain request.
      const rebound = await new Promise<number>((resolve, reject) =>
        http
          .get({ host: "127.0.0.1", port: 18984, path: "/", headers: { Host: "evil.example:18984" } }, (r) => {
            r.resume();
            resolve(r.statusCode ?? 0);
          })
          .on("error", reject),
      );
      assert.equal(rebound, 421);
    } finally {
      await d.close();
    }
  });

  it("--listen: 401 without the token; ?token= sets an HttpOnly cookie and leaves the address; the cookie or a bearer admits", async () => {
    const { d, url } = await serve({ host: "127.0.0.1", port: 18985, tokenRequired: true }, "tok-123");
    try {
      const none = await fetch(url);
      assert.equal(none.status, 401);
      assert.match(await none.text(), /needs its token/);
      assert.equal((await fetch(`${url}history?token=nope`)).status, 401);
      const first = await fetch(`${url}history?token=tok-123`, { redirect: "manual" });
      assert.equal(first.status, 303);
      assert.equal(first.headers.get("location"), "/history");
      assert.match(
        first.headers.get("set-cookie") ?? "",
        new RegExp(`^${TOKEN_COOKIE}=tok-123; HttpOnly; SameSite=Strict`),
      );
      assert.equal((await fetch(`${url}history`, { headers: { Cookie: `${TOKEN_COOKIE}=tok-123` } })).status, 200);
      assert.equal((await fetch(url, { headers: { Authorization: "Bearer tok-123" } })).status, 200);
      // Admitted, but a POST still needs the CSRF token.
      const post = await fetch(
        `${url}actions`,
        form({ action: "deploy", confirm: "yes" }, { Authorization: "Bearer tok-123" }),
      );
      assert.equal(post.status, 403);
    } finally {
      await d.close();
    }
  });
});
