import { strict as assert } from "assert";
import * as fs from "fs";
import { CODE_LOADER_MARK, CODE_PROVIDER_PREFIX } from "../../model/shipped-code";
import { GitApp } from "../support/git-app";
import { hostAddress, sh } from "../support/fleet";
import { outputOf, PROJECT_DIR, type CliResult } from "./support/cli";
import { applied, changedProperties, changes, resourceCounts, steps } from "./support/diff";
import { ROOT, PYAPP, hostsConfig, pyService } from "./support/fixtures";
import { currentRelease, deployLog, releaseDirs, served, wipe } from "./support/host";
import { LegacyCheckout, useConfigOf } from "./support/legacy";
import { EngineStack, serviceReleases } from "./support/stack";

/**
 * The upgrade to fleet's code-once state (docs/state.md), with the real CLI, on state the older
 * fleet wrote. Until 06b9c0c every dynamic resource carried the whole provider in its
 * `__provider` (inputs and outputs) under Pulumi's default `pulumi-nodejs` provider; now the code
 * rides once in an explicit provider resource `fleet-code-<hash>` and `__provider` is a small
 * loader. The engine does not replace a resource whose provider goes from the default to an
 * explicit one when the new provider has no DiffConfig (step_generator's providerChanged, and the
 * plugin's unimplemented DiffConfig), and providers/code-move.ts makes the first `pulumi up` an
 * update that runs nothing on the hosts. Two services (web1, web2) deployed twice by the older
 * fleet, then refreshed, previewed, updated and rolled back to the older fleet's first update by
 * this one: no replace, no restart, and the state in the new format.
 */
const LEGACY_COMMIT = "06b9c0c7f32fe98d7fe0a81739487dce2ca1e450";
const ABSENT = "the legacy-format fleet (06b9c0c) is not in this clone's history: a shallow clone cannot run this test";
const A = "eng-mig-a";
const B = "eng-mig-b";
const HOSTS = ["web1", "web2"] as const;
const RELEASE_TYPE = "pulumi-nodejs:dynamic/fleet:ServiceRelease";
const DYNAMIC_PREFIX = "pulumi-nodejs:dynamic/fleet:";
const HOST_TYPE = "fleet:index:Host";
const NODEJS_PROVIDER_TYPE = "pulumi:providers:pulumi-nodejs";

interface Svc {
  readonly name: string;
  readonly host: (typeof HOSTS)[number];
  readonly port: number;
  app: GitApp;
}

/** The resource's name (the URN's last part). */
const nameOf = (r: { urn: string }): string => String(r.urn).split("::").pop()!;
/** The provider resource a resource's `provider` reference names (`<urn>::<id>`): its name. */
const providerNameOf = (ref: string): string => ref.split("::").slice(-2)[0]!;

describe("engine: state written by the older fleet (06b9c0c) moves to code-once state with the real CLI (web1, web2)", function () {
  this.timeout(300_000);
  const stack = new EngineStack();
  const services: Svc[] = [
    { name: A, host: "web1", port: 18781, app: undefined as unknown as GitApp },
    { name: B, host: "web2", port: 18782, app: undefined as unknown as GitApp },
  ];
  let legacy: LegacyCheckout | undefined;
  /** Each legacy update's commit, per service. */
  const commits: Record<string, string>[] = [];
  /** Each service's MainPID after the older fleet's second update. */
  const pids: Record<string, string> = {};
  /** Each service's deploy.log length after the older fleet's second update. */
  const logs: Record<string, number> = {};
  let migration: CliResult | undefined;

  const mainPid = (s: Svc) => sh(s.host, `systemctl show -p MainPID --value ${s.name}`);
  const legacyOk = async (...args: string[]): Promise<CliResult> => {
    const r = await legacy!.pulumi(stack, ...args);
    if (r.code !== 0)
      throw new Error(`legacy fleet: pulumi ${args.join(" ")} exited ${r.code}:\n${outputOf(r).slice(-6000)}`);
    return r;
  };

  before(async function () {
    this.timeout(600_000);
    legacy = LegacyCheckout.create(LEGACY_COMMIT, ABSENT);
    for (const s of services) s.app = new GitApp(PYAPP);
    services[1]!.app.commit("not the same tree as A", { "b.txt": "b\n" });
    await Promise.all(services.map((s) => wipe(s.host, ROOT, [s.name])));
    await stack.create({
      "fleet:hosts": hostsConfig(HOSTS),
      "fleet:services": Object.fromEntries(
        services.map((s) => [s.name, pyService({ hosts: [s.host], repo: s.app.dir, port: s.port })]),
      ),
    });
    useConfigOf(stack, PROJECT_DIR, legacy.dir);
    for (let i = 0; i < 2; i++) {
      if (i > 0) for (const s of services) s.app.commit(`${s.name} ${i}`, { "n.txt": `${i}\n` });
      await legacyOk("up", "--yes", "--non-interactive");
      commits.push(Object.fromEntries(services.map((s) => [s.name, s.app.head()])));
    }
    for (const s of services) {
      pids[s.name] = await mainPid(s);
      logs[s.name] = (await deployLog(s.host, ROOT, s.name)).length;
    }
    // From here on the current fleet runs the stack, from the project folder.
    useConfigOf(stack, legacy.dir, PROJECT_DIR);
  });
  after(async function () {
    this.timeout(300_000);
    await stack.pulumi("destroy", "--yes", "--non-interactive").catch(() => undefined);
    await stack.remove();
    await Promise.all(services.map((s) => wipe(s.host, ROOT, [s.name]).catch(() => undefined)));
    legacy?.remove();
    for (const s of services) if (s.app) fs.rmSync(s.app.dir, { recursive: true, force: true });
  });

  it("the older fleet deployed both services twice, in the old state format (the whole provider in each __provider, the default provider)", async () => {
    for (const s of services) {
      assert.equal(
        (await served(hostAddress(s.host), s.port))?.commit,
        commits[1]![s.name],
        `${s.name} serves update 2`,
      );
      assert.equal((await releaseDirs(s.host, ROOT, s.name)).length, 2, `${s.name} keeps both releases`);
      assert.match(pids[s.name]!, /^[1-9]\d*$/, `${s.name} runs`);
    }
    const exported = JSON.parse((await legacyOk("stack", "export")).stdout) as { deployment: { resources?: any[] } };
    const releases = serviceReleases(exported.deployment);
    assert.deepEqual(Object.keys(releases).sort(), [`${A}-release`, `${B}-release`]);
    for (const [name, r] of Object.entries(releases)) {
      for (const side of ["inputs", "outputs"] as const) {
        const text = r[side]["__provider"];
        assert.equal(typeof text, "string", `${name}: ${side}.__provider`);
        assert.ok(text.length > 20 * 1024, `${name}: ${side}.__provider is ${text.length} bytes, the whole provider`);
        assert.ok(!text.startsWith(CODE_LOADER_MARK), `${name}: ${side}.__provider is not the loader`);
      }
      assert.equal(providerNameOf(r.provider), "default", `${name} is managed by the default provider: ${r.provider}`);
    }
    const resources = exported.deployment.resources ?? [];
    assert.ok(
      !resources.some((r) => nameOf(r).startsWith(CODE_PROVIDER_PREFIX)),
      `no ${CODE_PROVIDER_PREFIX} provider: ${resources.map((r) => r.urn).join("\n")}`,
    );
  });

  it("the current fleet: pulumi refresh --yes reads the older fleet's state", async () => {
    const r = await stack.pulumi("refresh", "--yes", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    for (const s of services) assert.equal(await mainPid(s), pids[s.name], `${s.name} was not restarted`);
  });

  it("pulumi preview --diff plans no replace and no delete of any ServiceRelease or Host", async () => {
    const r = await stack.pulumi("preview", "--diff", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    const planned = changes(r.stdout);
    const ours = planned.filter((s) => s.type.startsWith(DYNAMIC_PREFIX) || s.type === HOST_TYPE);
    for (const step of ours) {
      assert.ok(!/replace|delete|discard/.test(step.op), `${step.op} ${step.type} ${step.name}:\n${r.stdout}`);
    }
    assert.ok(
      !planned.some((s) => /replace/.test(s.op)),
      `no replace at all: ${planned.map((s) => `${s.op} ${s.name}`)}`,
    );
    assert.ok(
      !Object.keys(resourceCounts(r.stdout)).some((k) => /replace/.test(k)),
      JSON.stringify(resourceCounts(r.stdout)),
    );
    // The new code provider is created; each release moves over as an update.
    assert.ok(
      planned.some((s) => s.type === NODEJS_PROVIDER_TYPE && s.op === "create"),
      `the ${CODE_PROVIDER_PREFIX} provider is created:\n${r.stdout}`,
    );
    assert.deepEqual(
      ours.map((s) => `${s.op} ${s.name}`).sort(),
      [`update ${A}-release`, `update ${B}-release`],
      r.stdout,
    );
    // What the update is: the provider reference, default → fleet-code-…; no property the
    // service sees changes (the display hides `__provider`).
    for (const step of ours.filter((s) => s.type === RELEASE_TYPE)) {
      assert.ok(
        step.lines.some((l) =>
          /^\s*\[provider: \S+::pulumi:providers:pulumi-nodejs::default::\S+ => \S+::pulumi:providers:pulumi-nodejs::fleet-code-\S+\]$/.test(
            l,
          ),
        ),
        `${step.name}: the provider moves from the default to ${CODE_PROVIDER_PREFIX}…:\n${step.lines.join("\n")}`,
      );
      assert.deepEqual(changedProperties(step), {}, `${step.name}: no property changes:\n${step.lines.join("\n")}`);
    }
  });

  it("pulumi up --yes moves the state over: no replace, no restart, nothing run on the hosts", async () => {
    const r = await stack.pulumi("up", "--yes", "--diff", "--non-interactive");
    migration = r;
    assert.equal(r.code, 0, outputOf(r));
    const done = steps(applied(r.stdout));
    assert.ok(done.length > 0, `the update's steps are displayed:\n${r.stdout}`);
    assert.ok(!steps(r.stdout).some((s) => /replace/.test(s.op)), `no replace step:\n${r.stdout}`);
    const counts = resourceCounts(applied(r.stdout));
    assert.ok(!Object.keys(counts).some((k) => /replace/.test(k)), JSON.stringify(counts));
    const ours = done.filter((s) => s.type.startsWith(DYNAMIC_PREFIX) || s.type === HOST_TYPE);
    assert.deepEqual(
      ours.map((s) => `${s.op} ${s.name}`).sort(),
      [`update ${A}-release`, `update ${B}-release`],
      r.stdout,
    );
    for (const s of services) {
      assert.equal(await mainPid(s), pids[s.name], `${s.name}: the same MainPID (not restarted)`);
      assert.equal(
        (await deployLog(s.host, ROOT, s.name)).length,
        logs[s.name],
        `${s.name}: no deploy.log line (nothing deployed)`,
      );
      assert.equal(await currentRelease(s.host, ROOT, s.name), commits[1]![s.name]!.slice(0, 12), s.name);
      assert.deepEqual(
        await served(hostAddress(s.host), s.port),
        { commit: commits[1]![s.name], release: commits[1]![s.name]!.slice(0, 12) },
        `${s.name} still serves update 2`,
      );
    }
  });

  it("the state is in the new format: a small loader in each resource, the code in one fleet-code provider, no default provider", async () => {
    assert.ok(migration, "the migration ran");
    const resources = (await stack.exportState()).deployment.resources ?? [];
    const releases = serviceReleases({ resources });
    assert.deepEqual(Object.keys(releases).sort(), [`${A}-release`, `${B}-release`]);
    for (const [name, r] of Object.entries(releases)) {
      const bytes = Buffer.byteLength(JSON.stringify(r));
      const sizes = (o: Record<string, unknown>) =>
        Object.entries(o ?? {})
          .map(([k, v]) => `${k}=${Buffer.byteLength(JSON.stringify(v) ?? "")}`)
          .join(" ");
      assert.ok(
        bytes <= 8192,
        `${name}: ${bytes} bytes of state (inputs: ${sizes(r.inputs)}; outputs: ${sizes(r.outputs)})`,
      );
      for (const side of ["inputs", "outputs"] as const) {
        const text = r[side]["__provider"];
        assert.ok(
          typeof text === "string" && text.startsWith(CODE_LOADER_MARK),
          `${name}: ${side}.__provider is the loader: ${String(text).slice(0, 80)}`,
        );
      }
    }
    const codeProviders = resources.filter(
      (r) => r.type === NODEJS_PROVIDER_TYPE && nameOf(r).startsWith(CODE_PROVIDER_PREFIX),
    );
    assert.equal(codeProviders.length, 1, codeProviders.map((r) => r.urn).join("\n"));
    const code = nameOf(codeProviders[0]!);
    const dynamic = resources.filter((r) => String(r.type).startsWith(DYNAMIC_PREFIX));
    assert.ok(dynamic.length >= 2, dynamic.map((r) => r.urn).join("\n"));
    for (const r of dynamic) assert.equal(providerNameOf(String(r.provider)), code, `${nameOf(r)}: ${r.provider}`);
    const nodejsProviders = resources.filter((r) => r.type === NODEJS_PROVIDER_TYPE).map(nameOf);
    assert.deepEqual(nodejsProviders, [code], "no default pulumi-nodejs provider remains");
  });

  it("a second pulumi up has nothing to do (preview --expect-no-changes)", async () => {
    const r = await stack.pulumi("preview", "--diff", "--expect-no-changes", "--non-interactive");
    assert.equal(r.code, 0, outputOf(r));
    assert.deepEqual(changes(r.stdout), [], r.stdout);
  });

  it("npm run rollback -- <N> goes back to the older fleet's first update (written in the old format)", async () => {
    const oldestFirst = await stack.historyOldestFirst();
    assert.deepEqual(
      oldestFirst.map((h) => `${h.kind} ${h.result}`),
      ["update succeeded", "update succeeded", "refresh succeeded", "update succeeded"],
    );
    const n = 1;
    const list = await stack.npm("rollback", "--list", "--stack", stack.name);
    assert.equal(list.code, 0, outputOf(list));
    const row = list.stdout.split("\n").find((l) => l.startsWith(`${n} `));
    for (const s of services) {
      assert.ok(
        row?.includes(`${s.name}=${commits[0]![s.name]!.slice(0, 12)}`),
        `${s.name} in row ${n}:\n${list.stdout}`,
      );
    }

    const r = await stack.npm("rollback", String(n), "--stack", stack.name);
    assert.equal(r.code, 0, outputOf(r));
    // `up --skip-preview` without --diff: progress lines (`+-  … replacing`) and the summary.
    assert.ok(!/\breplac/.test(outputOf(r)), `no replace:\n${outputOf(r)}`);
    for (const s of services) {
      assert.deepEqual(
        await served(hostAddress(s.host), s.port),
        { commit: commits[0]![s.name], release: commits[0]![s.name]!.slice(0, 12) },
        `${s.name} serves update 1 again`,
      );
      assert.equal(await currentRelease(s.host, ROOT, s.name), commits[0]![s.name]!.slice(0, 12), s.name);
    }
    const state = serviceReleases((await stack.exportState()).deployment);
    for (const s of services) {
      const r = state[`${s.name}-release`];
      assert.equal(r.outputs.releaseId, commits[0]![s.name]!.slice(0, 12), s.name);
      assert.ok(String(r.outputs.__provider).startsWith(CODE_LOADER_MARK), `${s.name}: still the loader`);
    }
  });
});
