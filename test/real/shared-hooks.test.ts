import { strict as assert } from "assert";
import * as crypto from "crypto";
import * as path from "path";
import { shippedProvider } from "../../providers/ship";
import { GitApp } from "../support/git-app";
import { connectionFor, hostAddress, sh, sshRun } from "../support/fleet";
import { ProviderHost, SimulatedResource } from "../support/provider-host";
import { serviceInputs, type ServiceCase } from "../support/service-inputs";

/**
 * `shared:` and hooks on a service (issue 20), on a real server (web1): shared data survives new
 * releases, retention, a rollback and a delete; each hook runs where and when it should, with the
 * FLEET_* variables and the service's environment, and fails the way its docs say.
 */
const HOST = "web1";
const SERVICE = "op-shared";
const PORT = 18962;
const ROOT = "/srv/fleet-test";
const D = `${ROOT}/${SERVICE}`;
/** The hooks append here (outside the service dir, so a delete does not take it). */
const HOOK_LOG = `/tmp/${SERVICE}-hooks.log`;
const PRE_FAIL = `/tmp/${SERVICE}-pre-fail`;
const POST_FAIL = `/tmp/${SERVICE}-post-fail`;

/** One line per hook run: its name and what it saw. */
const record = (hook: string) =>
  `printf '%s\\n' "${hook} svc=$FLEET_SERVICE host=$FLEET_HOST rel=$FLEET_RELEASE prev=$FLEET_PREVIOUS_RELEASE commit=$FLEET_COMMIT user=$(id -un) pwd=$(pwd -P) current=$(readlink ${D}/current) token=$(printf %s "$T_TOKEN" | sha256sum | cut -c1-12)" >> ${HOOK_LOG}`;

describe("shared files and hooks (real server, web1)", function () {
  this.timeout(300_000);
  const secret = `tok-${crypto.randomBytes(8).toString("hex")}`;
  const tokenHash = crypto.createHash("sha256").update(secret).digest("hex").slice(0, 12);
  let provider: ProviderHost;
  let app: GitApp;
  let resource: SimulatedResource;

  const service = (over: Partial<ServiceCase> = {}): ServiceCase => ({
    name: SERVICE,
    connection: connectionFor(HOST),
    root: ROOT,
    runAs: "deploy",
    source: { git: app.dir },
    start: "python3 app.py",
    env: { APP_HOST: hostAddress(HOST), APP_PORT: String(PORT) },
    secretEnv: { T_TOKEN: secret },
    health: { url: `http://${hostAddress(HOST)}:${PORT}/api/health`, timeout: "10s" },
    keepReleases: 2,
    shared: { dirs: ["data/uploads"], files: { "config/extra.ini": "greeting=hello\n" } },
    hooks: {
      preSwitch: `${record("pre-switch")}; test ! -f ${PRE_FAIL} || { echo "pre-switch refused"; exit 9; }`,
      postDeploy: `${record("post-deploy")}; test ! -f ${POST_FAIL} || { echo "post-deploy broke: token $T_TOKEN"; exit 4; }`,
      postRollback: record("post-rollback"),
    },
    ...over,
  });
  const up = (over: Partial<ServiceCase> = {}) => resource.up(serviceInputs(service(over)));
  const releaseOf = () => String(resource.state!.outputs["releaseId"]);
  /** The hook log's lines since the last call, and the log emptied. */
  const hookLines = async () => {
    const text = await sh(HOST, `cat ${HOOK_LOG} 2>/dev/null; rm -f ${HOOK_LOG}`);
    return text.split("\n").filter(Boolean);
  };
  const serving = () => sh(HOST, `readlink ${D}/current`);

  before(async () => {
    provider = await ProviderHost.start();
    app = new GitApp(path.resolve(__dirname, "..", "fixtures", "apps", "pyapp"));
    resource = new SimulatedResource(provider, shippedProvider("service"), { name: SERVICE });
    await sshRun(HOST, `rm -rf ${D} ${HOOK_LOG} ${PRE_FAIL} ${POST_FAIL}`);
  });

  after(async () => {
    await resource.destroy().catch(() => undefined);
    await sshRun(HOST, `rm -rf ${D} ${HOOK_LOG} ${PRE_FAIL} ${POST_FAIL}`).catch(() => undefined);
    await provider.stop();
  });

  it("the first deploy creates the shared entries (a file with its content), owned by the service's user, linked into the release; hooks run in order with their environment", async () => {
    // The repo has a placeholder where the shared dir goes: the link replaces it.
    app.commit("placeholder", { "data/uploads/.keep": "" });
    await up();
    const rel = releaseOf();
    assert.equal(await sh(HOST, `readlink ${D}/releases/${rel}/data/uploads`), `${D}/shared/data/uploads`);
    assert.equal(await sh(HOST, `readlink ${D}/releases/${rel}/config/extra.ini`), `${D}/shared/config/extra.ini`);
    assert.equal(await sh(HOST, `cat ${D}/current/config/extra.ini`), "greeting=hello");
    assert.equal(await sh(HOST, `stat -c %U ${D}/shared/data/uploads ${D}/shared/config/extra.ini`), "deploy\ndeploy");
    assert.equal(await sh(HOST, `ls -A ${D}/shared/data/uploads`), "", "created empty (the placeholder is not copied)");
    const lines = await hookLines();
    const commit = String(resource.state!.outputs["commit"]);
    assert.deepEqual(lines, [
      `pre-switch svc=${SERVICE} host=${hostAddress(HOST)} rel=${rel} prev= commit=${commit} user=deploy pwd=${D}/releases/${rel} current= token=${tokenHash}`,
      `post-deploy svc=${SERVICE} host=${hostAddress(HOST)} rel=${rel} prev= commit=${commit} user=deploy pwd=${D}/releases/${rel} current=releases/${rel} token=${tokenHash}`,
    ]);
  });

  it("shared data survives 3 more deploys (retention pruning the oldest), a content change in config, and a rollback", async () => {
    const first = releaseOf();
    await sh(
      HOST,
      `runuser -u deploy -- sh -c 'echo photo > ${D}/current/data/uploads/a.jpg; echo greeting=edited > ${D}/current/config/extra.ini'`,
    );
    const releases: string[] = [first];
    for (const n of [1, 2, 3]) {
      app.commit(`v${n}`, { "VERSION.txt": `v${n}\n` });
      // A new initial content in config never overwrites the file that exists.
      await up({ shared: { dirs: ["data/uploads"], files: { "config/extra.ini": `greeting=v${n}\n` } } });
      releases.push(releaseOf());
    }
    const kept = (await sh(HOST, `ls ${D}/releases`)).split("\n");
    assert.ok(!kept.includes(first), `the first release was pruned: ${kept.join(" ")}`);
    assert.equal(kept.length, 2, kept.join(" "));
    assert.equal(await sh(HOST, `cat ${D}/current/data/uploads/a.jpg`), "photo");
    assert.equal(await sh(HOST, `cat ${D}/current/config/extra.ini`), "greeting=edited");
    const lines = await hookLines();
    assert.equal(lines.filter((l) => l.startsWith("pre-switch")).length, 3);
    assert.match(lines.at(-1)!, new RegExp(`^post-deploy .* rel=${releases[3]} prev=${releases[2]} `));

    // A rollback (a pin to the previous release): postRollback runs instead of postDeploy.
    const previous = releases[2]!;
    const previousCommit = await sh(HOST, `cat ${D}/releases/${previous}/REVISION`);
    await up({ pin: { releaseId: previous, commit: previousCommit } });
    assert.equal(await serving(), `releases/${previous}`);
    assert.equal(await sh(HOST, `cat ${D}/current/data/uploads/a.jpg`), "photo");
    const back = await hookLines();
    assert.equal(back.length, 2, back.join("\n"));
    assert.match(back[0]!, /^pre-switch /);
    assert.match(
      back[1]!,
      new RegExp(`^post-rollback .* rel=${previous} prev=${releases[3]} commit=${previousCommit} `),
    );
  });

  it("a failing preSwitch means no switch: the deploy fails naming the hook and its exit, the old release serves", async () => {
    const before = await serving();
    await sh(HOST, `touch ${PRE_FAIL}`);
    app.commit("v4", { "VERSION.txt": "v4\n" });
    await assert.rejects(up(), (err: Error) => {
      assert.match(err.message, /failed in its pre-switch phase before serving it/);
      assert.match(err.message, /the serving release \(\S+\) was not touched/);
      assert.match(err.message, /pre-switch refused/);
      assert.match(err.message, /the preSwitch hook failed \(exit 9\): nothing was switched/);
      return true;
    });
    assert.equal(await serving(), before);
    const lines = await hookLines();
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0]!, /^pre-switch /);
    await sh(HOST, `rm -f ${PRE_FAIL}`);
  });

  it("a failing postDeploy warns with its exit code and output tail (secret redacted), and the release stays deployed", async () => {
    await sh(HOST, `touch ${POST_FAIL}`);
    await up();
    const rel = releaseOf();
    assert.equal(await serving(), `releases/${rel}`);
    const logs = provider.logs();
    assert.match(logs, /warning: .*service "op-shared": its postDeploy hook failed \(exit 4\)/);
    assert.match(logs, /post-deploy broke: token \[secret\]/);
    assert.ok(!logs.includes(secret), "the secret is not in the warning");
    assert.match(await sh(HOST, `tail -n 1 ${D}/deploy.log`), /postDeploy hook failed \(exit 4\)/);
    await hookLines();
  });

  it("postDeploy with rollbackOnFailure: the release is rolled back, postRollback runs in the restored release", async () => {
    const before = await serving();
    const failed = (over: Partial<ServiceCase>) =>
      up({
        ...over,
        hooks: {
          ...service().hooks!,
          postDeploy: { run: service().hooks!.postDeploy as string, rollbackOnFailure: true },
        },
      });
    app.commit("v5", { "VERSION.txt": "v5\n" });
    await assert.rejects(failed({}), (err: Error) => {
      assert.match(err.message, /post-deploy/);
      assert.match(err.message, /rolled back to \S+ \(previous release restored\)/);
      return true;
    });
    assert.equal(await serving(), before);
    const lines = await hookLines();
    assert.deepEqual(
      lines.map((l) => l.split(" ")[0]),
      ["pre-switch", "post-deploy", "post-rollback"],
      lines.join("\n"),
    );
    assert.match(lines[2]!, new RegExp(`rel=${before.replace("releases/", "")} prev=\\S+ .* pwd=${D}/${before} `));
    await sh(HOST, `rm -f ${POST_FAIL}`);
  });

  it("a failed health gate rolls back and runs postRollback; the shared data is still there", async () => {
    const before = await serving();
    app.commit("broken", { "mode.txt": "unhealthy\n" });
    await assert.rejects(up(), /failed its health gate/);
    assert.equal(await serving(), before);
    const lines = await hookLines();
    assert.deepEqual(
      lines.map((l) => l.split(" ")[0]),
      ["pre-switch", "post-rollback"],
      lines.join("\n"),
    );
    assert.equal(await sh(HOST, `cat ${D}/current/data/uploads/a.jpg`), "photo");
    app.commit("fixed", { "mode.txt": null });
  });

  it("a postDeploy that outlives the step timeout warns naming the timeout; its processes are stopped, the lock is released, the release stays", async () => {
    app.commit("v6", { "VERSION.txt": "v6\n" });
    // A distinctive sleep, so that what is left of it on the host can be found by its argv.
    const hung = { ...service().hooks!, postDeploy: `${record("post-deploy")}; sleep 617` };
    const started = Date.now();
    await up({ hooks: hung, stepTimeout: "6s" });
    const took = Date.now() - started;
    const rel = releaseOf();
    assert.equal(await serving(), `releases/${rel}`);
    assert.ok(took < 60_000, `the deploy ended after the hook's timeout, not the sleep (${took} ms)`);
    assert.match(
      provider.logs(),
      /warning: .*service "op-shared": its postDeploy hook did not run to its end: .*timed out after 6000 ms/,
    );
    assert.match(await sh(HOST, `tail -n 1 ${D}/deploy.log`), new RegExp(`-> ${rel} ok .*postDeploy hook failed`));
    assert.equal(await sh(HOST, `pgrep -fx 'sleep 617' | wc -l`), "0", "the hook's sleep was stopped");
    assert.equal(await sh(HOST, `test -e ${D}/.lock && echo held || echo free`), "free");
    assert.deepEqual(
      (await hookLines()).map((l) => l.split(" ")[0]),
      ["pre-switch", "post-deploy"],
    );
  });

  it("delete keeps the shared data (and says so), but not fleet's env file; a new deploy finds it; deleteSharedOnDestroy removes it", async () => {
    await resource.destroy();
    assert.equal(await sh(HOST, `ls -A ${D}`), "shared");
    assert.equal(await sh(HOST, `ls -A ${D}/shared | sort`), "config\ndata");
    assert.match(
      provider.logs(),
      /its shared files stay in \/srv\/fleet-test\/op-shared\/shared \(set deleteSharedOnDestroy: true/,
    );
    await up({ deleteSharedOnDestroy: true });
    assert.equal(await sh(HOST, `cat ${D}/current/data/uploads/a.jpg`), "photo");
    await resource.destroy();
    assert.equal(await sh(HOST, `test -e ${D} && echo exists || echo gone`), "gone");
  });
});
