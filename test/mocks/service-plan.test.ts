import { strict as assert } from "assert";
import * as path from "path";
import { Service } from "../../components/service";
import type { ImageArtifact } from "../../providers/image/model";
import { GitApp } from "../support/git-app";
import { findResource, installMocks, settle } from "../support/mocks";
import { SECRET_SIG_KEY } from "../support/provider-host";
import { serviceSpec, type ServiceCase } from "../support/service-inputs";

/**
 * The real-server tests deploy `serviceSpec(case)` (test/support/service-inputs.ts) through the
 * provider. These prove it is what the Service component registers for the same arguments, so
 * that those tests exercise the component's own inputs, not a replica.
 */

const SERVICE_RELEASE = "pulumi-nodejs:dynamic/fleet:ServiceRelease";
const PYAPP = path.resolve(__dirname, "..", "fixtures", "apps", "pyapp");
const connection = {
  host: "127.0.0.11",
  user: "deploy",
  privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nK\n-----END OPENSSH PRIVATE KEY-----\n",
  hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEd",
};
const health = { url: "http://127.0.0.11:18080/api/health", version: { url: "http://127.0.0.11:18080/api/version" } };

/** What the component registered, without what only it adds (provider code, secrets, notify). */
async function registered(name: string): Promise<Record<string, unknown>> {
  await settle();
  const inputs = { ...findResource(SERVICE_RELEASE, `${name}-release`).inputs };
  for (const key of ["connection", "secretEnv", "notify"]) {
    assert.ok(SECRET_SIG_KEY in (inputs[key] as object), `${key} is secret`);
    delete inputs[key];
  }
  delete inputs["__provider"];
  return inputs;
}

/** The helper's spec without the secrets the component registers separately. */
function helper(c: ServiceCase): Record<string, unknown> {
  const spec: Record<string, unknown> = { ...serviceSpec(c) };
  delete spec["connection"];
  delete spec["secretEnv"];
  return spec;
}

/** A case and the same arguments for the component: the tests' own root, disk floor and timeout given explicitly. */
function both(c: Omit<ServiceCase, "connection">): { case: ServiceCase; deploy: () => void } {
  const full: ServiceCase = { connection, root: "/srv/fleet-test", minFreeDiskMb: 64, stepTimeout: "2m", ...c };
  return {
    case: full,
    deploy: () => {
      const { connection: host, name, ...args } = full;
      new Service(name, { host, ...args });
    },
  };
}

describe("the real-server tests' inputs are the Service component's (under Pulumi mocks)", () => {
  before(() => installMocks());

  it("a directory with install, env, secret env and a health gate", async () => {
    const c = both({
      name: "plan-path",
      source: { path: PYAPP },
      install: { run: "true", when: ["app.py"] },
      start: "python3 app.py",
      env: { APP_PORT: "18080" },
      secretEnv: { TOKEN: "t" },
      health: { ...health, timeout: "5s", interval: "50ms" },
      keepReleases: 3,
      breakStaleLock: true,
    });
    c.deploy();
    assert.deepEqual(await registered("plan-path"), helper(c.case));
  });

  it("a pinned git source with a build and migrations, running as the connection's user", async () => {
    const app = new GitApp(PYAPP);
    const old = app.commit("old", { "requirements.txt": "a\n" });
    app.commit("new", { "requirements.txt": "b\n" });
    const c = both({
      name: "plan-git",
      source: { git: app.dir, ref: "main" },
      install: { run: "pip install -r requirements.txt", when: ["requirements.txt"] },
      build: "make",
      migrate: "./migrate",
      start: "./run",
      health,
      unitName: "plan-git-unit",
      pin: { releaseId: `${old.slice(0, 12)}-babcdef`, commit: old },
    });
    c.deploy();
    const inputs = await registered("plan-git");
    assert.deepEqual(inputs, helper(c.case));
    assert.equal(inputs["releaseId"], `${old.slice(0, 12)}-babcdef`);
    assert.equal(inputs["pinned"], true);
    assert.equal(inputs["runAs"], "deploy");
  });

  it("a docker image, pinned to the build before (its default start runs that build)", async () => {
    const id = (c: string) => `sha256:${c.repeat(64)}`;
    const image: ImageArtifact = {
      name: "agent",
      imageId: id("b"),
      tags: ["agent:b"],
      dockerHost: "",
      keep: 3,
      history: [id("b"), id("a")],
    };
    const c = both({
      name: "plan-image",
      source: { image },
      env: { PORT: "18691" },
      secretEnv: { TOKEN: "t" },
      health,
      pin: { releaseId: `i-${"a".repeat(12)}`, commit: `i-${"a".repeat(12)}` },
    });
    c.deploy();
    const inputs = await registered("plan-image");
    assert.deepEqual(inputs, helper(c.case));
    assert.match(String(inputs["start"]), /-e TOKEN sha256:a{64}$/);
  });
});
