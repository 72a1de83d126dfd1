import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import * as http from "http";
import type { AddressInfo } from "net";
import * as path from "path";
import { GitApp } from "../support/git-app";
import { connectionFor } from "../support/fleet";
import { ProviderHost, SimulatedResource, secret } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");

/** A webhook receiver on loopback that records what it is sent. */
async function receiver(): Promise<{ url: string; received: Record<string, unknown>[]; close: () => Promise<void> }> {
  const received: Record<string, unknown>[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString("utf8")));
    req.on("end", () => {
      received.push({ path: req.url, ...JSON.parse(body) });
      res.writeHead(req.url?.includes("fail") ? 500 : 200).end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, received, close: () => new Promise((r) => server.close(() => r())) };
}

describe("deploy notifications (real server, receiver on loopback)", function () {
  this.timeout(120_000);

  it("announce success and automatic rollback with the evidence; a failing target only warns", async () => {
    const hook = await receiver();
    const host = await ProviderHost.start();
    try {
      const app = new GitApp(path.resolve(__dirname, "..", "fixtures", "apps", "pyapp"));
      const conn = connectionFor("web1");
      const port = 18350;
      const token = "SECRET-TOKEN-4711";
      const inputs = () => ({
        ...serviceInputs({
          name: "notified",
          connection: conn,
          root: "/srv/fleet-test",
          source: { git: app.dir },
          start: "python3 app.py",
          env: { APP_HOST: conn.host, APP_PORT: String(port) },
          health: {
            url: `http://${conn.host}:${port}/api/health`,
            version: { url: `http://${conn.host}:${port}/api/version` },
            timeout: "4s",
          },
        }),
        notify: secret([
          { kind: "webhook", url: `${hook.url}/hook?token=${token}` },
          { kind: "slack", url: `${hook.url}/slack`, events: ["rollback", "critical"] },
          { kind: "discord", url: `${hook.url}/fail-discord?token=${token}` },
        ]),
      });
      const resource = new SimulatedResource(host, serviceProvider, {
        name: "notified",
        additionalSecretOutputs: ["connection", "secretEnv", "notify"],
      });
      await resource.up(inputs());
      const first = app.head();
      const ok = hook.received.find((r) => String(r["path"]).startsWith("/hook") && r["event"] === "success")!;
      assert.ok(ok, JSON.stringify(hook.received));
      assert.equal(ok["service"], "notified");
      assert.equal(ok["host"], "127.0.0.11");
      assert.equal(ok["to"], first.slice(0, 12));
      assert.equal(ok["commit"], first);
      assert.ok((ok["durationMs"] as number) > 0);
      assert.ok(!hook.received.some((r) => r["path"] === "/slack"), "slack only wants rollbacks and criticals");
      assert.match(
        await host.waitForLog("discord notification"),
        /warning: discord notification for notified failed: HTTP 500/,
      );
      assert.ok(!host.logs().includes(token), "the failing URL's token is redacted from the warning");

      app.commit("break", { "mode.txt": "unhealthy\n" });
      await assert.rejects(resource.up(inputs()), /failed its health gate/);
      const rolled = hook.received.find((r) => r["event"] === "rollback" && String(r["path"]).startsWith("/hook"))!;
      assert.ok(rolled);
      assert.equal(rolled["from"], first.slice(0, 12));
      assert.match(String(rolled["message"]), /HTTP 500[\s\S]*Rolled back automatically/);
      const slack = hook.received.find((r) => r["path"] === "/slack")!;
      assert.match(String(slack["text"]), /^⚠️ deploy failed, rolled back: notified on 127\.0\.0\.11/);
      assert.ok(
        !JSON.stringify(hook.received.map(({ path: _p, ...body }) => body)).includes(token),
        "no token in any payload",
      );
      assert.ok(!resource.plainStateJson().includes(token), "notify targets are secret in state");
      await resource.destroy();
    } finally {
      await host.stop();
      await hook.close();
    }
  });
});
