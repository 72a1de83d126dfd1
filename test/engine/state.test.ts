import { strict as assert } from "assert";
import { execFile, execFileSync } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import { dump, load } from "js-yaml";
import * as os from "os";
import * as path from "path";
import { GitApp } from "../support/git-app";
import { hostAddress, sh, sshRun, testHost } from "../support/fleet";
import { unpackShipped } from "../../providers/ship";
import { CODE_PROVIDER_PREFIX } from "../../model/shipped-code";
import { outputOf, type CliResult } from "./support/cli";
import { ProjectClone } from "./support/clone";
import { applied, changes } from "./support/diff";
import { PYAPP, hostsConfig, pyService } from "./support/fixtures";
import { currentRelease, releaseDirs, served, wipe } from "./support/host";
import { EngineStack, serviceReleases } from "./support/stack";

/**
 * Issue #30, with the real CLI: fleet's code rides once per stack, in an explicit
 * `pulumi:providers:pulumi-nodejs` resource `fleet-code-<hash>` whose configuration holds every
 * bundle, and each resource is refreshed and deleted with the code its state names.
 *
 * A. The project folder deploys two services; a second checkout elsewhere, with an empty HOME and
 *    another fleet version (its service provider's read and delete throw), refreshes, removes a
 *    service and deploys: the first version's code reads and deletes, the kept service moves to
 *    the second version's provider untouched, the old provider leaves the state. A third checkout
 *    (the first version again) destroys.
 * B. A bundle changed in the state (its sha256 kept) is refused before anything runs on a host.
 *
 * Own root on web1 (/srv/fleet-engine-state) and ports 18791-18793: other engine tests may run.
 */
const HOST = "web1";
const ROOT = "/srv/fleet-engine-state";
const A = "eng-state-a";
const B = "eng-state-b";
const T = "eng-state-t";
const PORTS: Record<string, number> = { [A]: 18791, [B]: 18792, [T]: 18793 };
const RELEASE_TYPE = "pulumi-nodejs:dynamic/fleet:ServiceRelease";
const CODE_PROVIDER_TYPE = "pulumi:providers:pulumi-nodejs";
const SECOND_CLONE_RAN = "the second clone's code ran";
const STATE_LIMIT = 8192;

type Resource = { urn: string; type: string; provider?: string; inputs?: any; outputs?: any };
type Deployment = { resources?: Resource[] };

const nameOf = (r: Resource) => String(r.urn).split("::").pop()!;

/** The fleet-code provider resources of a deployment. */
function codeProviders(deployment: Deployment): Resource[] {
  return (deployment.resources ?? []).filter(
    (r) => r.type === CODE_PROVIDER_TYPE && nameOf(r).startsWith(CODE_PROVIDER_PREFIX),
  );
}

function theCodeProvider(deployment: Deployment): Resource {
  const found = codeProviders(deployment);
  assert.equal(found.length, 1, `one fleet-code provider: ${found.map(nameOf).join(", ")}`);
  return found[0]!;
}

function svc(name: string, repo: string): Record<string, unknown> {
  return pyService({ hosts: [HOST], repo, port: PORTS[name]!, extra: { root: ROOT } });
}

/**
 * A login key of this file's own, authorized for root on web1 while it runs: other engineers'
 * tests log in to web1 at the same time with the inventory's key, so logins are counted by this
 * key's fingerprint (sshd's journal names it), never by user alone.
 */
class LoginKey {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-state-key-"));
  readonly file = path.join(this.dir, "id_ed25519");
  readonly comment = `fleet-state-test-${randomBytes(6).toString("hex")}`;
  fingerprint = "";

  async authorize(): Promise<void> {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", this.comment, "-f", this.file]);
    // "256 SHA256:… comment (ED25519)": the form sshd logs.
    this.fingerprint = execFileSync("ssh-keygen", ["-lf", `${this.file}.pub`], { encoding: "utf8" }).split(" ")[1]!;
    assert.match(this.fingerprint, /^SHA256:/);
    const pub = fs.readFileSync(`${this.file}.pub`, "utf8").trim();
    await sh(HOST, "umask 077; mkdir -p /root/.ssh; cat >> /root/.ssh/authorized_keys", `${pub}\n`);
  }

  /** `fleet:hosts` for web1, logging in with this key. */
  hosts(): Record<string, unknown> {
    const hosts = hostsConfig([HOST]) as Record<string, Record<string, unknown>>;
    return { [HOST]: { ...hosts[HOST], privateKeyFile: this.file } };
  }

  /** Logins this key has made on web1 so far (web1's sshd journal, read with docker exec: no login of its own). */
  logins(): Promise<number> {
    return new Promise((resolve, reject) =>
      execFile(
        "docker",
        ["exec", testHost(HOST).container, "journalctl", "-u", "ssh", "--no-pager", "-q"],
        { encoding: "utf8", maxBuffer: 64 << 20 },
        (err, stdout, stderr) =>
          err
            ? reject(new Error(`docker exec journalctl: ${err.message} ${stderr}`))
            : resolve(
                stdout
                  .split("\n")
                  .filter((l) => l.includes("Accepted publickey for root ") && l.endsWith(` ${this.fingerprint}`))
                  .length,
              ),
      ),
    );
  }

  /** Logins during `during`, after journald has written a late one. */
  async loginsDuring(during: () => Promise<void>): Promise<number> {
    const before = await this.logins();
    await during();
    await new Promise((res) => setTimeout(res, 1000));
    return (await this.logins()) - before;
  }

  async remove(): Promise<void> {
    await sshRun(
      HOST,
      `grep -vF ${this.comment} /root/.ssh/authorized_keys > /root/.ssh/authorized_keys.fstate; ` +
        `cat /root/.ssh/authorized_keys.fstate > /root/.ssh/authorized_keys; rm -f /root/.ssh/authorized_keys.fstate`,
    );
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** What the host has of a service: its unit, its folder, its process, its releases, what it serves. */
async function onHost(name: string) {
  const present = (p: string) => sh(HOST, `test -e ${p} && echo present || echo absent`);
  return {
    unit: await present(`/etc/systemd/system/${name}.service`),
    folder: await present(`${ROOT}/${name}`),
    pid: await sh(HOST, `systemctl show -p MainPID --value ${name} 2>/dev/null || true`),
    active: await sh(HOST, `systemctl is-active ${name} 2>/dev/null || true`),
    current: await currentRelease(HOST, ROOT, name),
    releases: await releaseDirs(HOST, ROOT, name),
    served: await served(hostAddress(HOST), PORTS[name]!),
  };
}

function assertOk(r: CliResult, what: string): void {
  assert.equal(r.code, 0, `${what} exited ${r.code}:\n${outputOf(r).slice(-6000)}`);
}

/** The service provider's read and delete replaced by a throw: another fleet version's code. */
function throwingReadAndDelete(text: string): string {
  const patched = text
    .replace(
      "async read(id: string, props: ServiceState) {",
      `async read(id: string, props: ServiceState) {\n    if (id !== "never") throw new Error(${JSON.stringify(SECOND_CLONE_RAN)});`,
    )
    .replace(
      "async delete(_id: string, props: ServiceState) {",
      `async delete(_id: string, props: ServiceState) {\n    if (_id !== "never") throw new Error(${JSON.stringify(SECOND_CLONE_RAN)});`,
    );
  assert.equal(
    patched.split(SECOND_CLONE_RAN).length - 1,
    2,
    "providers/service/provider.ts no longer has the read and delete this test patches",
  );
  return patched;
}

describe("engine: fleet's code in state (#30), with the real CLI (web1)", function () {
  this.timeout(600_000);
  const key = new LoginKey();

  before(async function () {
    await key.authorize();
  });
  after(async function () {
    await key.remove();
    assert.equal(await sh(HOST, `grep -cF ${key.comment} /root/.ssh/authorized_keys || true`), "0");
  });

  describe("another checkout and another fleet version", function () {
    const stack = new EngineStack();
    const clones: ProjectClone[] = [];
    let appA: GitApp;
    let appB: GitApp;
    let first: Deployment;
    /** A checkout of the first fleet version, copied when it deploys (others may edit the project meanwhile). */
    let third: ProjectClone;

    before(async function () {
      this.timeout(240_000);
      appA = new GitApp(PYAPP);
      appB = new GitApp(PYAPP);
      appB.commit("not the same tree as A", { "b.txt": "b\n" });
      await wipe(HOST, ROOT, [A, B]);
      await stack.create({
        "fleet:hosts": key.hosts(),
        "fleet:services": { [A]: svc(A, appA.dir), [B]: svc(B, appB.dir) },
      });
      third = new ProjectClone();
      clones.push(third);
      await stack.ok("up", "--yes", "--non-interactive");
      first = (await stack.exportState()).deployment;
    });
    after(async function () {
      this.timeout(240_000);
      await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
      await stack.remove();
      await wipe(HOST, ROOT, [A, B]).catch(() => undefined);
      for (const c of clones) c.remove();
      for (const app of [appA, appB]) if (app) fs.rmSync(app.dir, { recursive: true, force: true });
    });

    it("the first deploy's state: each ServiceRelease is at most 8 KiB, and fleet's code is there once", () => {
      const releases = (first.resources ?? []).filter((r) => r.type === RELEASE_TYPE);
      assert.deepEqual(releases.map(nameOf).sort(), [`${A}-release`, `${B}-release`]);
      for (const r of releases) {
        const size = Buffer.byteLength(JSON.stringify(r));
        assert.ok(size <= STATE_LIMIT, `${nameOf(r)}: ${size} bytes in state (limit ${STATE_LIMIT})`);
      }
      const provider = theCodeProvider(first);
      for (const r of releases) assert.match(String(r.provider), new RegExp(`::${nameOf(provider)}::`), nameOf(r));
      // The code itself: in the provider's configuration, nowhere else.
      const packed = String(provider.inputs?.service);
      assert.ok(packed.length > 1000, "the provider carries the service bundle");
      const whole = JSON.stringify(first);
      assert.equal(
        whole.split(packed).length - 1,
        2,
        "the service bundle is in state twice: the provider's inputs and outputs",
      );
    });

    it("a second clone with an empty HOME refreshes, destroys, and deletes a removed service on a stack that the first clone deployed", async () => {
      const oldProvider = nameOf(theCodeProvider(first));
      const before = { a: await onHost(A), b: await onHost(B) };
      for (const [name, h] of Object.entries({ [A]: before.a, [B]: before.b })) {
        assert.equal(h.active, "active", `${name} runs`);
        assert.ok(h.served, `${name} serves`);
      }

      const second = new ProjectClone({ patch: { "providers/service/provider.ts": throwingReadAndDelete } });
      clones.push(second);
      second.takeStackConfig(stack);
      assert.deepEqual(fs.readdirSync(second.home), [], "the second clone's HOME starts empty");

      // refresh: the state's code (the first clone's) reads; the second clone's read would throw.
      let refresh: CliResult | undefined;
      const refreshLogins = await key.loginsDuring(async () => {
        refresh = await second.pulumi(stack, "refresh", "--yes", "--diff", "--non-interactive");
      });
      assertOk(refresh!, "(second clone) pulumi refresh");
      assert.ok(!outputOf(refresh!).includes(SECOND_CLONE_RAN), outputOf(refresh!));
      assert.ok(refreshLogins > 0, "the refresh read the services on web1 (the old code ran)");
      assert.deepEqual(
        changes(applied(refresh!.stdout)).filter((s) => s.type === RELEASE_TYPE),
        [],
        `the refresh found nothing changed:\n${refresh!.stdout}`,
      );
      assert.deepEqual({ a: await onHost(A), b: await onHost(B) }, before, "the refresh changed nothing on web1");
      const refreshed = (await stack.exportState()).deployment;
      assert.equal(nameOf(theCodeProvider(refreshed)), oldProvider, "a refresh keeps the state's code provider");
      // As they were: the same outputs (secrets are encrypted afresh), and what the host serves as live.
      const SECRET_SIG = "4dabf18193072939515e22adb298388d";
      const plainOutputs = (d: Deployment) =>
        Object.fromEntries(
          Object.entries(serviceReleases(d)).map(([k, r]) => [
            k,
            Object.fromEntries(
              Object.entries(r.outputs as Record<string, any>).filter(
                ([p, v]) => p !== "live" && !(v && typeof v === "object" && SECRET_SIG in v),
              ),
            ),
          ]),
        );
      assert.deepEqual(plainOutputs(refreshed), plainOutputs(first), "the refresh recorded the services as they were");
      for (const [name, r] of Object.entries(serviceReleases(refreshed))) {
        assert.deepEqual(
          r.outputs.live,
          { active: "active", healthStatus: "200", release: r.outputs.releaseId },
          `${name}: live, as read`,
        );
      }
      assert.ok(fs.existsSync(path.join(second.home, ".pulumi")), "the second clone's Pulumi home is in its own HOME");

      // B leaves the stack's config in the second clone.
      const file = load(fs.readFileSync(second.stackConfigFile(stack), "utf8")) as {
        config: Record<string, Record<string, unknown>>;
      };
      delete file.config["fleet:services"]![B];
      fs.writeFileSync(second.stackConfigFile(stack), dump(file));

      const preview = await second.pulumi(stack, "preview", "--diff", "--non-interactive");
      assertOk(preview, "(second clone) pulumi preview");
      const planned = changes(preview.stdout);
      const plannedOf = (name: string) => planned.filter((s) => s.name === name).map((s) => s.op);
      assert.deepEqual(plannedOf(`${B}-release`), ["delete"], preview.stdout);
      assert.deepEqual(plannedOf(`${A}-release`), [], `${A} is not changed:\n${preview.stdout}`);
      assert.deepEqual(plannedOf(oldProvider), ["delete"], preview.stdout);
      const newProviders = planned.filter(
        (s) => s.type === CODE_PROVIDER_TYPE && s.name.startsWith(CODE_PROVIDER_PREFIX) && s.op === "create",
      );
      assert.equal(newProviders.length, 1, `a new code provider:\n${preview.stdout}`);
      const newProvider = newProviders[0]!.name;
      assert.notEqual(newProvider, oldProvider, "another fleet version is another code provider");

      const up = await second.pulumi(stack, "up", "--yes", "--non-interactive");
      assertOk(up, "(second clone) pulumi up");
      assert.ok(!outputOf(up).includes(SECOND_CLONE_RAN), outputOf(up));
      const afterUp = { a: await onHost(A), b: await onHost(B) };
      assert.equal(afterUp.b.unit, "absent", `${B}'s unit is gone (the old code's delete ran)`);
      assert.equal(afterUp.b.folder, "absent", `${B}'s folder is gone`);
      assert.equal(afterUp.b.served, undefined, `${B} no longer answers`);
      assert.deepEqual(afterUp.a, before.a, `${A} is untouched: same process (MainPID), release, answer`);

      const moved = (await stack.exportState()).deployment;
      const provider = theCodeProvider(moved);
      assert.equal(nameOf(provider), newProvider, "the state's code provider is the second clone's");
      assert.ok(!JSON.stringify(moved).includes(oldProvider), "the old code provider is gone from the state");
      const releases = serviceReleases(moved);
      assert.deepEqual(Object.keys(releases), [`${A}-release`]);
      assert.match(String(releases[`${A}-release`].provider), new RegExp(`::${newProvider}::`));
      assert.ok(
        unpackShipped(provider.inputs, "service")?.includes(SECOND_CLONE_RAN),
        "the new provider carries the second clone's (patched) service code",
      );

      // A third checkout, the first fleet version: its destroy still runs the state's code, the
      // second clone's, whose delete throws; nothing is removed.
      third.takeStackConfig(stack, second.stackConfigFile(stack)); // the stack's config as it now is: without B
      const refused = await third.pulumi(stack, "destroy", "--yes", "--non-interactive");
      assert.notEqual(refused.code, 0, `the second clone's delete ran and threw:\n${outputOf(refused)}`);
      assert.ok(outputOf(refused).includes(SECOND_CLONE_RAN), outputOf(refused));
      assert.deepEqual(await onHost(A), before.a, `${A} is still there`);

      // Its `up` moves A to its own code (nothing runs on the host), and then destroy removes everything.
      const thirdUp = await third.pulumi(stack, "up", "--yes", "--diff", "--non-interactive");
      assertOk(thirdUp, "(third clone) pulumi up");
      assert.deepEqual(
        changes(applied(thirdUp.stdout))
          .filter((s) => s.type !== CODE_PROVIDER_TYPE && s.type !== "pulumi:pulumi:Stack")
          .map((s) => `${s.op} ${s.name}`),
        [],
        `the third clone's up only changes the code provider:\n${thirdUp.stdout}`,
      );
      assert.deepEqual(await onHost(A), before.a, `${A} is untouched by the move to the third clone's code`);
      const back = (await stack.exportState()).deployment;
      const backProvider = theCodeProvider(back);
      assert.ok(
        !unpackShipped(backProvider.inputs, "service")?.includes(SECOND_CLONE_RAN),
        "the state's service code is the unpatched one again",
      );
      // The same sources in another folder bundle to the same code: the first version's provider, by its hash.
      assert.equal(nameOf(backProvider), oldProvider, "the first fleet version's provider, by its hash");

      const destroy = await third.pulumi(stack, "destroy", "--yes", "--non-interactive");
      assertOk(destroy, "(third clone) pulumi destroy");
      const gone = await onHost(A);
      assert.equal(gone.unit, "absent", `${A}.service`);
      assert.equal(gone.folder, "absent", `${ROOT}/${A}`);
      assert.equal(gone.served, undefined, `${A} no longer answers`);
      assert.deepEqual((await stack.exportState()).deployment.resources ?? [], [], "the state holds nothing");
    });
  });

  describe("a bundle changed in the state", function () {
    const stack = new EngineStack();
    let app: GitApp;
    let originalFile: string | undefined;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-state-export-"));

    before(async function () {
      this.timeout(240_000);
      app = new GitApp(PYAPP);
      await wipe(HOST, ROOT, [T]);
      await stack.create({
        "fleet:hosts": key.hosts(),
        "fleet:services": { [T]: svc(T, app.dir) },
      });
      await stack.ok("up", "--yes", "--non-interactive");
    });
    after(async function () {
      this.timeout(240_000);
      if (originalFile) await stack.pulumi("stack", "import", "--file", originalFile).catch(() => undefined);
      await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
      await stack.remove();
      await wipe(HOST, ROOT, [T]).catch(() => undefined);
      fs.rmSync(tmp, { recursive: true, force: true });
      if (app) fs.rmSync(app.dir, { recursive: true, force: true });
    });

    it("a tampered bundle hash is refused before anything runs on a host", async () => {
      const exported = (await stack.ok("stack", "export")).stdout;
      originalFile = path.join(tmp, "original.json");
      fs.writeFileSync(originalFile, exported);
      const state = JSON.parse(exported) as { deployment: Deployment };
      const provider = theCodeProvider(state.deployment);
      const packed = String(provider.inputs.service);
      assert.equal(provider.outputs.service, packed, "the provider's outputs carry the same bundle");
      const sha = String(provider.inputs.serviceSha256);
      assert.match(sha, /^[0-9a-f]{64}$/);
      // One character of the packed code, in the middle (still base64), in inputs and outputs.
      const at = Math.floor(packed.length / 2);
      const tampered = packed.slice(0, at) + (packed[at] === "A" ? "B" : "A") + packed.slice(at + 1);
      assert.notEqual(tampered, packed);
      provider.inputs.service = tampered;
      provider.outputs.service = tampered;
      assert.equal(provider.inputs.serviceSha256, sha, "the sha256 is kept");
      const tamperedFile = path.join(tmp, "tampered.json");
      fs.writeFileSync(tamperedFile, JSON.stringify(state, null, 2));
      const imported = await stack.pulumi("stack", "import", "--file", tamperedFile);
      assertOk(imported, "pulumi stack import (tampered)");
      assert.equal(
        theCodeProvider((await stack.exportState()).deployment).inputs.service,
        tampered,
        "the state now holds the tampered bundle",
      );

      const before = await onHost(T);
      assert.equal(before.active, "active");
      assert.ok(before.served, `${T} serves`);
      for (const command of [
        ["refresh", "--yes", "--non-interactive"],
        ["destroy", "--yes", "--non-interactive"],
      ]) {
        let r: CliResult | undefined;
        const logins = await key.loginsDuring(async () => {
          r = await stack.pulumi(...command);
        });
        const out = outputOf(r!);
        assert.notEqual(r!.code, 0, `pulumi ${command[0]} must fail:\n${out}`);
        assert.match(out, /the code of this service resource does not match its sha256/, out);
        assert.ok(!out.includes(tampered), "the output does not dump the code");
        assert.equal(logins, 0, `SSH logins on web1 during the refused ${command[0]}`);
      }
      assert.deepEqual(await onHost(T), before, `${T} is untouched: same process (MainPID), unit, releases, answer`);
      const still = (await stack.exportState()).deployment;
      assert.deepEqual(Object.keys(serviceReleases(still)), [`${T}-release`], "the state still holds the service");

      // The original state back: the same commands work again.
      assertOk(await stack.pulumi("stack", "import", "--file", originalFile), "pulumi stack import (original)");
      let refresh: CliResult | undefined;
      const logins = await key.loginsDuring(async () => {
        refresh = await stack.pulumi("refresh", "--yes", "--non-interactive");
      });
      assertOk(refresh!, "pulumi refresh (original state)");
      assert.ok(logins > 0, "the refresh of the original state reads the service on web1 (the login count sees fleet)");
      assertOk(await stack.pulumi("destroy", "--yes", "--non-interactive"), "pulumi destroy (original state)");
      const gone = await onHost(T);
      assert.equal(gone.unit, "absent");
      assert.equal(gone.folder, "absent");
      assert.equal(gone.served, undefined);
    });
  });
});
