import { strict as assert } from "assert";
import { GitApp } from "../support/git-app";
import { hostAddress, sh } from "../support/fleet";
import { outputOf } from "./support/cli";
import { applied, changedProperties, changes, resourceCounts } from "./support/diff";
import { ROOT, PYAPP, hostsConfig, pyService } from "./support/fixtures";
import { currentRelease, releaseDirs, served, sshLogins, wipe } from "./support/host";
import { EngineStack, serviceReleases } from "./support/stack";

/**
 * The real Pulumi CLI (`npm run pulumi -- …`) on a stack of two services on web1, one cycle that
 * builds on itself: preview of a new stack, the first `up`, a no-op preview, a commit previewed
 * and deployed, a manual switch on the host found by refresh and by `npm run drift`, destroy.
 */
const HOST = "web1";
const A = "eng-pd-a";
const B = "eng-pd-b";
const PORTS: Record<string, number> = { [A]: 18701, [B]: 18702 };
const RELEASE_TYPE = "pulumi-nodejs:dynamic/fleet:ServiceRelease";

describe("engine: preview, deploy, drift and destroy with the real CLI (web1)", function () {
  this.timeout(240_000);
  const stack = new EngineStack();
  let appA: GitApp;
  let appB: GitApp;
  let address: string;
  let first: string;

  before(async function () {
    this.timeout(120_000);
    address = hostAddress(HOST);
    appA = new GitApp(PYAPP);
    appB = new GitApp(PYAPP);
    appB.commit("not the same tree as A", { "b.txt": "b\n" }); // distinct releases, even in the same second
    await wipe(HOST, ROOT, [A, B]);
    await stack.create({
      "fleet:hosts": hostsConfig([HOST]),
      "fleet:services": {
        [A]: pyService({ hosts: [HOST], repo: appA.dir, port: PORTS[A] }),
        [B]: pyService({ hosts: [HOST], repo: appB.dir, port: PORTS[B] }),
      },
    });
  });
  after(async function () {
    this.timeout(120_000);
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    await wipe(HOST, ROOT, [A, B]).catch(() => undefined);
  });

  it("a new stack previews as creates, and nothing is deployed", async () => {
    const r = await stack.pulumi("preview", "--diff", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    const planned = changes(r.stdout);
    const releases = planned.filter((s) => s.type === RELEASE_TYPE);
    assert.deepEqual(releases.map((s) => `${s.op} ${s.name}`).sort(), [`create ${A}-release`, `create ${B}-release`]);
    assert.ok(
      planned.every((s) => s.op === "create"),
      `only creates: ${planned.map((s) => s.op).join(", ")}`,
    );
    // The stack, 2 services, their releases, the host, and the provider that carries fleet's code.
    assert.equal(resourceCounts(r.stdout)["to create"], 7, r.stdout);
    const a = releases.find((s) => s.name === `${A}-release`)!;
    assert.ok(
      a.lines.some((l) => new RegExp(`^\\s+releaseId\\s*: "${appA.head().slice(0, 12)}"$`).test(l)),
      a.lines.join("\n"),
    );
    assert.equal(await sh(HOST, `test -e ${ROOT} && echo present || echo absent`), "absent");
  });

  it("pulumi up --yes deploys, and the stack outputs are what the host serves", async () => {
    const loginsBefore = await sshLogins(HOST);
    const r = await stack.pulumi("up", "--yes", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    // The login counter sees fleet's connection (the no-op case below relies on it).
    assert.ok((await sshLogins(HOST)) > loginsBefore, "the deploy logged in to web1");
    const outputs = (await stack.outputs())["services"];
    for (const [name, app] of [
      [A, appA],
      [B, appB],
    ] as const) {
      const out = outputs[name];
      assert.equal(out.commit, app.head(), `${name}: output commit`);
      assert.equal(out.releaseId, app.head().slice(0, 12), `${name}: output release`);
      assert.equal(out.host, address);
      assert.equal(out.path, `${ROOT}/${name}/releases/${out.releaseId}`);
      assert.deepEqual(await served(address, PORTS[name]), { commit: out.commit, release: out.releaseId });
      assert.equal(await currentRelease(HOST, ROOT, name), out.releaseId, `${name}: current on the host`);
      assert.equal(await sh(HOST, `cat ${out.path}/REVISION`), out.commit);
    }
    first = outputs[A].releaseId;
  });

  it("a no-op preview shows no changes and opens no SSH connection", async () => {
    const before = await sshLogins(HOST);
    const r = await stack.pulumi("preview", "--diff", "--expect-no-changes", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    assert.deepEqual(changes(r.stdout), [], r.stdout);
    assert.deepEqual(resourceCounts(r.stdout), { unchanged: 7 });
    await new Promise((res) => setTimeout(res, 1000)); // journald's write of a late login
    assert.equal((await sshLogins(HOST)) - before, 0, "logins on web1 during the no-op preview");
  });

  it("after a commit to one service, preview --diff names only it, old → new release", async () => {
    const commit = appA.commit("a change", { "change.txt": "1\n" });
    const r = await stack.pulumi("preview", "--diff", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    const planned = changes(r.stdout);
    assert.deepEqual(
      planned.map((s) => `${s.op} ${s.name}`),
      [`update ${A}-release`],
      r.stdout,
    );
    const props = changedProperties(planned[0]!);
    assert.equal(props["releaseId"], `"${first}" => "${commit.slice(0, 12)}"`);
    assert.deepEqual(Object.keys(props).sort(), ["commit", "releaseId", "source"], r.stdout);
    assert.deepEqual(resourceCounts(r.stdout), { "to update": 1, unchanged: 6 });
    assert.ok(!r.stdout.includes(`${B}-release`), `${B} is not in the diff`);
  });

  it("pulumi up deploys that commit; the other service keeps running untouched", async () => {
    const pidB = await sh(HOST, `systemctl show -p MainPID --value ${B}`);
    const r = await stack.pulumi("up", "--yes", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    assert.equal((await served(address, PORTS[A]))?.commit, appA.head());
    assert.equal(await sh(HOST, `systemctl show -p MainPID --value ${B}`), pidB, `${B} was not restarted`);
    assert.deepEqual(await releaseDirs(HOST, ROOT, A), [first, appA.head().slice(0, 12)].sort());
  });

  it("npm run drift reports a manual switch of `current` on the host", async () => {
    await sh(
      HOST,
      `ln -sfn releases/${first} ${ROOT}/${A}/current.engine && mv -T ${ROOT}/${A}/current.engine ${ROOT}/${A}/current`,
    );
    const r = await stack.npm("drift", "--stack", stack.name);
    assert.equal(r.code, 1, `exit 1 (drift), got ${r.code}:\n${outputOf(r)}`);
    assert.match(outputOf(r), new RegExp(`${A}-release`));
    assert.ok(!outputOf(r).includes(`update  ${B}-release`), `${B} is not reported`);
  });

  it("pulumi refresh records the switch as drift of that service only (live), and up puts it back", async () => {
    const now = appA.head().slice(0, 12);
    const r = await stack.pulumi("refresh", "--yes", "--diff", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    const drifted = changes(applied(r.stdout)).filter((s) => s.type === RELEASE_TYPE);
    assert.deepEqual(
      drifted.map((s) => `${s.op} ${s.name}`),
      [`update ${A}-release`],
      r.stdout,
    );
    assert.ok(
      Object.keys(changedProperties(drifted[0]!)).some((k) => k.startsWith("live")),
      r.stdout,
    );
    const state = serviceReleases((await stack.exportState()).deployment);
    // Deployed stays the last release a confirmed gate passed; what `current` points at is live.
    assert.equal(state[`${A}-release`].outputs.releaseId, now, "the state keeps the verified release as deployed");
    assert.equal(state[`${A}-release`].outputs.live.release, first, "and records what the host serves as live");
    const preview = await stack.pulumi("preview", "--diff", "--non-interactive");
    assert.equal(preview.code, 0, outputOf(preview));
    assert.deepEqual(
      changes(preview.stdout).map((s) => `${s.op} ${s.name}`),
      [`update ${A}-release`],
      `the drift makes the next up deploy (and gate) it again:\n${preview.stdout}`,
    );
    const up = await stack.pulumi("up", "--yes", "--non-interactive");
    assert.equal(up.code, 0, outputOf(up));
    assert.equal(await currentRelease(HOST, ROOT, A), now);
    assert.equal((await served(address, PORTS[A]))?.commit, appA.head());
  });

  it("pulumi destroy --yes removes the units and the directories", async () => {
    const r = await stack.pulumi("destroy", "--yes", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    for (const name of [A, B]) {
      assert.equal(await sh(HOST, `test -e ${ROOT}/${name} && echo present || echo absent`), "absent", name);
      assert.equal(
        await sh(HOST, `test -e /etc/systemd/system/${name}.service && echo present || echo absent`),
        "absent",
        `${name}.service`,
      );
      assert.notEqual(await sh(HOST, `systemctl is-active ${name} || true`), "active");
      assert.equal(await served(address, PORTS[name]), undefined, `${name} no longer answers`);
    }
    assert.deepEqual((await stack.exportState()).deployment.resources ?? [], [], "the state holds nothing");
  });
});
