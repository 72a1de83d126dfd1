import { strict as assert } from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import {
  DRIFT_EXIT,
  driftCommand,
  driftedResources,
  driftEvent,
  driftSummary,
  driftTargets,
  driftVerdict,
} from "../../decisions/drift";
import { notificationBody, summary } from "../../decisions/notify";

const ROOT = path.resolve(__dirname, "..", "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");

/**
 * `pulumi preview --refresh --expect-no-changes --diff --stack prod` after someone switched
 * aether-core back by hand on the Pi and deleted sinesi-frontend's unit: laid out as the CLI's
 * diff display prints steps (`<symbol> <type>: (<op>)`, then `[id=…]`, `[urn=…]`, the property
 * diff), with the `Resources:` counts and the error --expect-no-changes ends with.
 */
const DRIFTED = `Previewing update (prod):
  pulumi:pulumi:Stack: (same)
    [urn=urn:pulumi:prod::fleet::pulumi:pulumi:Stack::fleet-prod]
      fleet:index:Host: (same)
        [urn=urn:pulumi:prod::fleet::fleet:index:Host::aether-pi]
      fleet:index:Service: (same)
        [urn=urn:pulumi:prod::fleet::fleet:index:Service::aether-core]
        ~ pulumi-nodejs:dynamic/fleet:ServiceRelease: (update)
            [id=aether-core]
            [urn=urn:pulumi:prod::fleet::fleet:index:Service$pulumi-nodejs:dynamic/fleet:ServiceRelease::aether-core-release]
            [provider=urn:pulumi:prod::fleet::pulumi:providers:pulumi-nodejs::default]
          ~ liveReleaseId: "2e4c0a9f17b3" => "8c41d07aa2f9"
      fleet:index:Service: (same)
        [urn=urn:pulumi:prod::fleet::fleet:index:Service::sinesi-frontend]
        +-pulumi-nodejs:dynamic/fleet:ServiceRelease: (replace)
            [id=sinesi-frontend]
            [urn=urn:pulumi:prod::fleet::fleet:index:Service$pulumi-nodejs:dynamic/fleet:ServiceRelease::sinesi-frontend-release]
            [provider=urn:pulumi:prod::fleet::pulumi:providers:pulumi-nodejs::default]
          ~ unitName: "fleet-sinesi-frontend.service" => "fleet-sinesi-frontend.service"
        pulumi-nodejs:dynamic/fleet:ServiceRelease: (same)
            [id=sinesi-backend]
            [urn=urn:pulumi:prod::fleet::fleet:index:Service$pulumi-nodejs:dynamic/fleet:ServiceRelease::sinesi-backend-release]
Resources:
    ~ 1 to update
    +-1 to replace
    2 changes. 9 unchanged

Duration: 7s

error: no changes were expected but changes were proposed
`;

const CLEAN = `Previewing update (prod):
  pulumi:pulumi:Stack: (same)
    [urn=urn:pulumi:prod::fleet::pulumi:pulumi:Stack::fleet-prod]
Resources:
    11 unchanged

Duration: 5s
`;

describe("drift: pulumi preview --refresh --expect-no-changes, and who hears about it", function () {
  this.timeout(60_000);

  it("runs the preview with refresh, no changes expected, the diff display and no prompts", () => {
    assert.deepEqual(driftCommand("prod"), [
      "preview",
      "--refresh",
      "--expect-no-changes",
      "--stack",
      "prod",
      "--non-interactive",
      "--diff",
    ]);
  });

  it("the verdict: 0 in sync, the CLI's no-changes error is drift, anything else a failed check", () => {
    assert.deepEqual(driftVerdict(0, CLEAN), { kind: "clean" });
    assert.deepEqual(driftVerdict(255, DRIFTED), { kind: "drift" }, "older CLIs: exit 255 + the message");
    assert.deepEqual(driftVerdict(7, "error: no changes were expected for preview but changes were proposed"), {
      kind: "drift",
    });
    assert.deepEqual(driftVerdict(7, ""), { kind: "drift" }, "newer CLIs: ExitNoChanges = 7");
    assert.deepEqual(driftVerdict(255, "error: failed to load checkpoint: blob (code=NotFound)"), { kind: "error" });
    assert.deepEqual(driftVerdict(1, "error: Running program failed: fleet configuration is invalid"), {
      kind: "error",
    });
    assert.deepEqual(DRIFT_EXIT, { clean: 0, drift: 1, error: 2 });
  });

  it("a new fleet version alone (its code provider created, the old one deleted) is not drift; with a host's change it is", () => {
    const step = (sym: string, op: string, name: string, type = "pulumi:providers:pulumi-nodejs") =>
      `    ${sym} ${type}: (${op})\n        [urn=urn:pulumi:prod::fleet::${type}::${name}]\n`;
    const codeOnly =
      step("+", "create", "fleet-code-0123456789ab") +
      step("-", "delete", "fleet-code-ba9876543210") +
      "error: no changes were expected but changes were proposed\n";
    assert.deepEqual(driftVerdict(7, codeOnly), { kind: "clean" });
    assert.deepEqual(
      driftVerdict(7, step("~", "update", "web-release", "pulumi-nodejs:dynamic/fleet:ServiceRelease") + codeOnly),
      { kind: "drift" },
    );
    assert.deepEqual(driftVerdict(7, step("+", "create", "my-own-provider")), { kind: "drift" }, "not fleet's");
  });

  it("driftSummary lists the resources that differ, by name and type, not the unchanged ones", () => {
    assert.deepEqual(driftedResources(DRIFTED), [
      { op: "update", type: "pulumi-nodejs:dynamic/fleet:ServiceRelease", name: "aether-core-release" },
      { op: "replace", type: "pulumi-nodejs:dynamic/fleet:ServiceRelease", name: "sinesi-frontend-release" },
    ]);
    assert.equal(
      driftSummary(DRIFTED),
      [
        "2 resources differ from the live state:",
        "  update   aether-core-release (pulumi-nodejs:dynamic/fleet:ServiceRelease)",
        "  replace  sinesi-frontend-release (pulumi-nodejs:dynamic/fleet:ServiceRelease)",
      ].join("\n"),
    );
    assert.deepEqual(driftedResources(CLEAN), []);
  });

  it("reads coloured output and Pulumi's raw colour markup the same way", () => {
    const ansi = DRIFTED.replace(/~ pulumi-nodejs/, "\x1b[38;5;3m~ pulumi-nodejs").replace(
      /\(update\)/,
      "(update)\x1b[0m",
    );
    assert.deepEqual(driftedResources(ansi), driftedResources(DRIFTED));
    const markup = `<{%reset%}>    <{%fg 3%}>~ hcloud:index/firewall:Firewall: (update)<{%reset%}>\n<{%reset%}>        [urn=urn:pulumi:prod::fleet::fleet:index:Host$hcloud:index/firewall:Firewall::edge-fw]<{%reset%}>\n`;
    assert.deepEqual(driftedResources(markup), [
      { op: "update", type: "hcloud:index/firewall:Firewall", name: "edge-fw" },
    ]);
  });

  it("refresh steps are listed only when nothing else is; no URN falls back to the type", () => {
    const refreshOnly = `    ~ pulumi-nodejs:dynamic/fleet:HostKey: (refresh)\n        [urn=urn:pulumi:prod::fleet::pulumi-nodejs:dynamic/fleet:HostKey::pi-key]\n`;
    assert.equal(
      driftSummary(refreshOnly),
      "1 resource differs from the live state:\n  refresh  pi-key (pulumi-nodejs:dynamic/fleet:HostKey)",
    );
    assert.deepEqual(
      driftedResources(refreshOnly + DRIFTED).map((r) => r.name),
      ["aether-core-release", "sinesi-frontend-release"],
    );
    assert.deepEqual(driftedResources("  - hcloud:index/server:Server: (delete)\n"), [
      { op: "delete", type: "hcloud:index/server:Server", name: "hcloud:index/server:Server" },
    ]);
  });

  it("without step lines, the summary falls back to the CLI's counts", () => {
    const progress = "Previewing update (prod):\nResources:\n    ~ 2 to update\n    - 1 to delete\n    8 unchanged\n";
    assert.equal(
      driftSummary(progress),
      "the live state differs: 2 to update, 1 to delete (see the job's log for the diff)",
    );
    assert.match(driftSummary("error: no changes were expected but changes were proposed"), /listed no resources/);
  });

  it("the event: a failure from service drift on (stack), with the stack and the list", () => {
    const e = driftEvent("prod", driftSummary(DRIFTED), 7200);
    assert.equal(e.event, "failure");
    assert.equal(e.service, "drift");
    assert.equal(e.host, "(stack)");
    assert.match(e.message, /^drift on stack prod: 2 resources differ/);
    assert.match(e.message, /aether-core-release/);
    const text = summary(e, 4000);
    assert.match(text, /drift on \(stack\), prod → live state differs \(7\.2 s\)/);
    assert.deepEqual(Object.keys(notificationBody({ kind: "slack", url: "u" }, e)!), ["text"]);
    assert.equal(notificationBody({ kind: "slack", url: "u", events: ["rollback"] }, e), undefined);
  });

  it("targets: unfiltered ones always, filtered ones when one of their services drifted", () => {
    const drifted = driftedResources(DRIFTED);
    const targets = driftTargets(
      [
        { kind: "slack", url: "https://s" },
        { kind: "discord", url: "https://d", services: ["aether-core"] },
        { kind: "webhook", url: "https://w", services: ["sinesi-backend"] },
        { kind: "telegram", url: "https://t", chatId: "1", services: ["sinesi-frontend"] },
      ],
      drifted,
    );
    assert.deepEqual(
      targets.map((t) => t.url),
      ["https://s", "https://d", "https://t"],
    );
    assert.ok(
      targets.every((t) => !("services" in t)),
      "services is config, not a NotifyTarget field",
    );
    assert.equal(
      driftTargets(
        [{ kind: "slack", url: "u", services: ["api"] }],
        [{ op: "update", type: "t", name: "api@pi-release" }],
      ).length,
      1,
    );
  });

  describe("npm run drift (scripts/drift.ts) against a fake pulumi and a webhook", () => {
    let server: http.Server;
    let received: Record<string, unknown>[] = [];
    let url = "";
    before(async () => {
      server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (d: Buffer) => (body += d.toString("utf8")));
        req.on("end", () => {
          received.push(JSON.parse(body) as Record<string, unknown>);
          res.end("ok");
        });
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    });
    after(() => server.close());
    beforeEach(() => (received = []));

    function run(previewOutput: string, previewStatus: number, secretEnv = {}, notify?: unknown) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-drift-"));
      const bin = path.join(dir, "bin");
      fs.mkdirSync(bin);
      fs.writeFileSync(path.join(dir, "preview.txt"), previewOutput);
      fs.writeFileSync(
        path.join(bin, "pulumi"),
        `#!/bin/sh\necho "$@" >> "${dir}/calls"\ncase "$1" in\n  config) exit 1;;\n  preview) cat "${dir}/preview.txt"; exit ${previewStatus};;\n  *) exit 99;;\nesac\n`,
        { mode: 0o755 },
      );
      const stack = {
        config: {
          "fleet:hosts": { pi: { address: "127.0.0.1", hostKey: "SHA256:x", privateKeyFile: "/k" } },
          "fleet:services": {
            "aether-core": {
              host: "pi",
              source: { path: "." },
              start: "true",
              health: { url: "http://127.0.0.1:1/h" },
            },
          },
          "fleet:secretEnv": secretEnv,
          "fleet:notify": notify ?? [{ kind: "webhook", url }],
        },
      };
      fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), JSON.stringify(stack));
      return new Promise<{ status: number; stdout: string; stderr: string; calls: string }>((resolve) => {
        const child = spawn(TSX, [path.join(ROOT, "scripts", "drift.ts"), "--stack", "prod"], {
          cwd: dir,
          env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}`, FLEET_PULUMI_BIN_DIR: bin },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
        child.on("close", (status) =>
          resolve({
            status: status ?? -1,
            stdout,
            stderr,
            calls: fs.existsSync(path.join(dir, "calls")) ? fs.readFileSync(path.join(dir, "calls"), "utf8") : "",
          }),
        );
      });
    }

    it("drift: exit 1, and the webhook gets the list of what differs", async () => {
      const r = await run(DRIFTED, 255);
      assert.equal(r.status, 1, r.stderr);
      assert.match(
        r.calls,
        /^preview --refresh --expect-no-changes --stack prod --non-interactive --diff( --client=127\.0\.0\.1:\d+)?$/m,
      );
      assert.equal(received.length, 1);
      assert.equal(received[0]!["event"], "failure");
      assert.equal(received[0]!["service"], "drift");
      assert.equal(received[0]!["host"], "(stack)");
      assert.match(
        String(received[0]!["message"]),
        /aether-core-release \(pulumi-nodejs:dynamic\/fleet:ServiceRelease\)/,
      );
      assert.match(String(received[0]!["text"]), /sinesi-frontend-release/);
    });

    it("no drift: exit 0 and no notification", async () => {
      const r = await run(CLEAN, 0);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /matches its live state/);
      assert.equal(received.length, 0);
    });

    it("a failed preview: exit 2 and no notification (drift is unknown)", async () => {
      const r = await run("error: failed to decrypt: incorrect passphrase\n", 255);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /the preview of stack prod failed \(exit 255\); drift is unknown/);
      assert.equal(received.length, 0);
    });

    it("a secret value in the preview output never reaches the notification", async () => {
      const leaky = DRIFTED.replace("aether-core-release]", "aether-core-release-hunter2-token-value]");
      const r = await run(leaky, 7, { "aether-core": { API_TOKEN: "hunter2-token-value" } });
      assert.equal(r.status, 1, r.stderr);
      assert.equal(received.length, 1);
      assert.doesNotMatch(JSON.stringify(received[0]), /hunter2-token-value/);
      assert.match(String(received[0]!["message"]), /aether-core-release-\[secret\]/);
    });

    it("a notify URL only the CLI can decrypt: exit 6 naming the secret and what to do; no preview", async () => {
      const r = await run(DRIFTED, 255, {}, [{ kind: "webhook", url: { secure: "v1:AAAA:abcd" } }]);
      assert.equal(r.status, 6, r.stderr);
      assert.match(r.stderr, /^drift: fleet:notify\[0\]\.url is a secret, and only its ciphertext is in /m);
      assert.match(r.stderr, /PULUMI_CONFIG_PASSPHRASE/);
      assert.doesNotMatch(r.calls, /preview/);
      assert.equal(received.length, 0);
    });
  });
});
