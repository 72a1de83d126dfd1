import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import {
  IMAGE_MARKER,
  generalizeScript,
  imageCheckScript,
  provisionScript,
  PROVISION_DIR,
} from "../../commands/image-provision";
import type { HcloudImageSpec } from "../../providers/image/hcloud-model";
import { hcloudDeps } from "../../providers/image/hcloud-provider";
import type { SshConnection } from "../../transport/connection";
import { closeAll } from "../../transport/ssh";
import { connectionFor, sshRun } from "../support/fleet";
import { ProviderHost, SimulatedResource, makeUrn, secret, withProvider, type Props } from "../support/provider-host";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const hcloudImageProvider = shippedProvider("hcloudImage");

/**
 * The hcloud GoldenImage's pieces that can run for real here: the provision wrapper, generalize
 * and the check on a real test server (web3), through the same upload and SSH the provider uses;
 * and the provider itself in Pulumi's provider host, against a local stand-in for the Hetzner API.
 */

const FIXTURE = path.resolve(__dirname, "..", "fixtures", "images", "provision");
const AGENT_ROOT = "/opt/fleet-image-test/agent";
const SCRATCH = "/tmp/fleet-image-test-generalize";
const HASH = "5eed".padEnd(64, "0");
const GREETING = `it's "quoted" $(not run) \`nor this\` é`;

async function sh(command: string): Promise<string> {
  const r = await sshRun("web3", command);
  if (r.code !== 0) throw new Error(`ssh web3 ${command} → exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

describe("hcloud GoldenImage scripts on a real server (web3)", function () {
  this.timeout(60_000);
  const deps = hcloudDeps({ token: "", apiUrl: "http://127.0.0.1:1" });
  let conn: SshConnection;
  before(() => (conn = connectionFor("web3")));
  const cleanup = () => sh(`rm -rf /opt/fleet-image-test ${SCRATCH} ${PROVISION_DIR} ${IMAGE_MARKER}; true`);

  before(cleanup);
  after(async () => {
    await cleanup();
    await closeAll();
  });

  it("uploads the provision directory and runs its scripts in order with the env; records the image marker; leaves no provision files", async () => {
    await deps.upload(conn, FIXTURE, 30_000);
    assert.equal(await sh(`ls ${PROVISION_DIR} | sort | tr '\\n' ' '`), "10-base.sh 20-agent.sh files");
    const script = provisionScript({
      run: ["10-base.sh", "20-agent.sh"],
      env: { AGENT_ROOT, AGENT_GREETING: GREETING },
      imageName: "agent",
      contentHash: HASH,
    });
    const r = await deps.shell(conn, script, "provision", 30_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ran=10-base\.sh\nran=20-agent\.sh\nprovisioned=1$/m);
    assert.match(
      r.stderr,
      /fleet-phase: provision 10-base\.sh\nbase installed into \/opt\/fleet-image-test\/agent\nfleet-phase: provision 20-agent\.sh\nagent configured\nfleet-phase: record/,
      "each script's output follows its phase, on stderr",
    );
    assert.equal(await sh(`cat ${AGENT_ROOT}/greeting`), GREETING, "hostile env values arrive as data");
    assert.equal(
      await sh(`cat ${AGENT_ROOT}/ready`),
      "agent ready: listen=127.0.0.1:3000",
      "the files beside the scripts were there",
    );
    assert.equal(await sh(`cat ${IMAGE_MARKER}`), `name=agent\nhash=${HASH}`);
    assert.equal(await sh(`test -e ${PROVISION_DIR} && echo left || echo gone`), "gone");
  });

  it("a failing script stops the build with its name, exit code and output; later scripts do not run", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-provision-"));
    fs.writeFileSync(path.join(dir, "10-ok.sh"), "#!/bin/sh\necho fine\n", { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "20-fail.sh"), "#!/bin/sh\necho 'E: Unable to locate package nope' >&2\nexit 7\n", {
      mode: 0o755,
    });
    fs.writeFileSync(path.join(dir, "30-never.sh"), `#!/bin/sh\ntouch /opt/fleet-image-test/never\n`, { mode: 0o755 });
    await deps.upload(conn, dir, 30_000);
    const r = await deps.shell(
      conn,
      provisionScript({ run: ["10-ok.sh", "20-fail.sh", "30-never.sh"], env: {}, imageName: "x", contentHash: HASH }),
      "provision",
      30_000,
    );
    assert.equal(r.code, 7);
    assert.match(
      r.stderr,
      /fleet-phase: provision 20-fail\.sh\nE: Unable to locate package nope\nprovision script 20-fail\.sh failed with exit code 7/,
    );
    assert.equal(r.stdout, "ran=10-ok.sh\n", "stdout carries fleet's facts only");
    assert.equal(await sh("test -e /opt/fleet-image-test/never && echo ran || echo skipped"), "skipped");
    fs.rmSync(dir, { recursive: true });
  });

  it("the validation check runs only on a server made from this very image", async () => {
    const ok = await deps.shell(conn, imageCheckScript(`test -f ${AGENT_ROOT}/ready`, HASH), "validate", 10_000);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /checked=1/);
    const failing = await deps.shell(
      conn,
      imageCheckScript(`systemctl is-active fleet-no-such-agent`, HASH),
      "validate",
      10_000,
    );
    assert.notEqual(failing.code, 0);
    assert.match(failing.stdout, /inactive/);
    const other = await deps.shell(conn, imageCheckScript("true", "f".repeat(64)), "validate", 10_000);
    assert.equal(other.code, 66);
    assert.match(
      other.stderr,
      /this server was not made from image ffffffffffffffff: \/etc\/fleet\/image says name=agent hash=5eed/,
    );
  });

  it("generalize (on a scratch root) drops only the temporary key, empties machine-id, removes the host keys", async () => {
    const temp = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITEMPORARYBUILDKEY fleet-image-build";
    const keep = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOPERATORKEY ops@laptop";
    await sh(
      `mkdir -p ${SCRATCH}/root/.ssh ${SCRATCH}/home/ops/.ssh ${SCRATCH}/etc/ssh && ` +
        `printf '%s\\n%s\\n' '${temp}' '${keep}' > ${SCRATCH}/root/.ssh/authorized_keys && ` +
        `printf '%s\\n' '${temp}' > ${SCRATCH}/home/ops/.ssh/authorized_keys && ` +
        `echo 0123456789abcdef > ${SCRATCH}/etc/machine-id && touch ${SCRATCH}/etc/ssh/ssh_host_ed25519_key ${SCRATCH}/etc/ssh/sshd_config`,
    );
    const r = await deps.shell(conn, generalizeScript(SCRATCH, [temp]), "generalize", 10_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sh(`cat ${SCRATCH}/root/.ssh/authorized_keys`), keep);
    assert.equal(await sh(`wc -c < ${SCRATCH}/home/ops/.ssh/authorized_keys`), "0");
    assert.equal(await sh(`wc -c < ${SCRATCH}/etc/machine-id`), "0");
    assert.equal(await sh(`ls ${SCRATCH}/etc/ssh`), "sshd_config");
  });
});

interface ApiCall {
  readonly method: string;
  readonly path: string;
}

describe("HcloudImage provider in Pulumi's provider host, against a stand-in Hetzner API", function () {
  this.timeout(60_000);
  let host: ProviderHost;
  let api: http.Server;
  const calls: ApiCall[] = [];
  const snapshots = [
    { id: 1, labels: { "fleet.io/image": "agent" } },
    { id: 2, labels: { "fleet.io/image": "agent" } },
  ];

  before(async () => {
    api = http.createServer((req, res) => {
      const url = new URL(req.url!, "http://x");
      calls.push({ method: req.method!, path: url.pathname });
      const reply = (status: number, json: unknown) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(json));
      };
      req.resume();
      req.on("end", () => {
        if (req.method === "POST" && url.pathname === "/v1/ssh_keys") return reply(201, { ssh_key: { id: 77 } });
        if (req.method === "POST" && url.pathname === "/v1/servers")
          return reply(403, { error: { code: "resource_limit_exceeded", message: "server limit reached" } });
        if (req.method === "GET" && url.pathname === "/v1/images")
          return reply(200, { images: snapshots, meta: { pagination: { next_page: null } } });
        if (req.method === "GET" && url.pathname === "/v1/servers")
          return reply(200, { servers: [{ image: { id: 2 } }], meta: { pagination: { next_page: null } } });
        return reply(
          req.method === "DELETE" ? 204 : 404,
          req.method === "DELETE" ? {} : { error: { code: "not_found", message: "gone" } },
        );
      });
    });
    await new Promise<void>((resolve) => api.listen(18611, "127.0.0.1", resolve));
    host = await ProviderHost.start();
  });
  after(async () => {
    await host?.stop();
    await new Promise<void>((resolve) => api.close(() => resolve()));
  });
  beforeEach(() => {
    calls.length = 0;
  });

  const spec = (): Props =>
    ({
      name: "agent",
      baseImage: "debian-12",
      serverType: "cx22",
      location: "fsn1",
      provisionDir: FIXTURE,
      run: ["10-base.sh", "20-agent.sh"],
      env: {},
      manifest: {},
      contentHash: HASH,
      commit: "",
      labels: {},
      check: "true",
      checkTimeoutMs: 10_000,
      keep: 2,
      stepTimeoutMs: 10_000,
      token: secret("api-token-secret"),
      apiUrl: "http://127.0.0.1:18611/v1",
      sshPort: 22,
    }) satisfies Record<keyof HcloudImageSpec, unknown>;

  it("a builder that cannot be created fails the update with Hetzner's reason, and the temporary key is removed", async () => {
    const resource = new SimulatedResource(host, hcloudImageProvider, {
      name: "agent-snapshot",
      additionalSecretOutputs: ["token"],
    });
    await assert.rejects(
      resource.up(spec()),
      /POST \/servers failed: HTTP 403 resource_limit_exceeded: server limit reached/,
    );
    assert.deepEqual(
      calls.map((c) => `${c.method} ${c.path}`),
      ["POST /v1/ssh_keys", "POST /v1/servers", "DELETE /v1/ssh_keys/77"],
    );
    assert.equal(resource.state, undefined, "nothing was recorded");
  });

  it("refresh notices a snapshot deleted behind fleet's back; destroy deletes snapshots except one a server uses", async () => {
    const state = { ...spec(), imageId: "1", previousImageId: "", history: ["1"], builtAt: "", pruned: [] };
    const props = await withProvider(hcloudImageProvider, state);
    const urn = makeUrn("agent-snapshot");
    const read = await host.read("1", props, props, urn);
    assert.equal(read.outputs["contentHash"], "missing-in-hetzner-cloud");
    calls.length = 0;
    await host.delete("1", props, props, urn);
    assert.ok(calls.some((c) => c.method === "DELETE" && c.path === "/v1/images/1"));
    assert.ok(
      !calls.some((c) => c.method === "DELETE" && c.path === "/v1/images/2"),
      "snapshot 2 is in use by a server",
    );
  });
});
