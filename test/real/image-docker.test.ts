import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { IMAGE_REFS_DIR, recordReleaseImagesScript, removeImagesScript } from "../../commands/image";
import type { ImageArtifact } from "../../providers/image/model";
import { dockerImageSpec, type DockerGoldenImageArgs } from "../../components/golden-image";
import { closeAll, runScript } from "../../transport/ssh";
import { connectionFor, sshRun } from "../support/fleet";
import { EngineForward, HostEngine } from "../support/image-engine";
import { ImageContext } from "../support/image-fixtures";
import { ProviderHost, SimulatedResource, secret, type Props } from "../support/provider-host";
import { serviceInputs } from "../support/service-inputs";
import { startLoad } from "../support/load";
import { bootstrapScript } from "../../commands/host";
import { bootstrapSpec } from "../../components/host";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const serviceProvider = shippedProvider("service");
const dockerImageProvider = shippedProvider("dockerImage");

/**
 * GoldenImage (kind docker) for real: the machine's Docker engine builds and validates; web3 gets
 * the images through fleet's SSH connection into its own engine (see test/support/image-engine.ts
 * for why a second engine, reached through web3's forwarded /var/run/docker.sock); a Service on
 * web3 runs them under systemd with the health gate. Everything goes through Pulumi's own
 * dynamic-provider host.
 */

const NAME = "fleet-img-test-web";
const REPO = "fleet-test/img-web";
const VALIDATE_PORT = 18601;
const SERVICE_PORT = 18602;
const SERVICE = "fleet-img-test-svc";
const ROOT = "/srv/fleet-image-test";
const WEB3 = "127.0.0.13";

let host: ProviderHost;
let engine: HostEngine;
let forward: EngineForward;
let ctx: ImageContext;
let image: SimulatedResource;

/** The build engine (this machine's default Docker engine). */
function docker(...args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

function buildEngineHas(ref: string): boolean {
  try {
    docker("image", "inspect", ref);
    return true;
  } catch {
    return false;
  }
}

/** Removes this file's images and validation containers from the build engine. */
function cleanBuildEngine(): void {
  for (const c of docker("ps", "-aq", "--filter", `name=fleet-validate-${NAME}`).split("\n").filter(Boolean))
    docker("rm", "-f", c);
  for (const id of new Set(
    docker("images", "-q", "--no-trunc", "--filter", `label=io.fleet.image=${NAME}`).split("\n").filter(Boolean),
  ))
    docker("rmi", "-f", id);
}

async function sh(command: string): Promise<string> {
  const r = await sshRun("web3", command);
  if (r.code !== 0) throw new Error(`ssh web3 ${command} → exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

async function removeService(): Promise<void> {
  await sh(
    `systemctl disable --now ${SERVICE} 2>/dev/null; rm -f /etc/systemd/system/${SERVICE}.service ${IMAGE_REFS_DIR}/${SERVICE}; ` +
      `rmdir ${IMAGE_REFS_DIR} 2>/dev/null; ` +
      `systemctl daemon-reload; rm -rf ${ROOT}; true`,
  );
}

const validate = {
  url: `http://127.0.0.1:${VALIDATE_PORT}/health`,
  env: { APP_PORT: String(VALIDATE_PORT) },
  timeout: "5s",
  interval: "50ms",
};

function imageInputs(overrides: Partial<DockerGoldenImageArgs> = {}): Props {
  const spec = dockerImageSpec(NAME, {
    kind: "docker",
    context: ctx.dir,
    repository: REPO,
    validate,
    keep: 2,
    ...overrides,
  });
  const conn = connectionFor("web3");
  return JSON.parse(JSON.stringify({ ...spec, hostConnections: secret([conn]), hostAddresses: [conn.host] })) as Props;
}

function out(key: string): any {
  return image.state!.plainOutputs[key];
}

/** What GoldenImage's `artifact` output holds, from the provider's outputs (as the component builds it). */
function artifact(): ImageArtifact {
  return {
    name: NAME,
    imageId: out("imageId"),
    tags: out("tags"),
    dockerHost: out("dockerHost"),
    keep: out("keep"),
    history: out("history"),
  };
}

/** A Service whose source is the GoldenImage's artifact (`source: { image }`): start is docker run of it. */
function serviceFor(artifact: ImageArtifact): Props {
  return serviceInputs({
    name: SERVICE,
    connection: connectionFor("web3"),
    root: ROOT,
    source: { image: artifact },
    env: { APP_HOST: WEB3, APP_PORT: String(SERVICE_PORT) },
    health: { url: `http://${WEB3}:${SERVICE_PORT}/health`, timeout: "8s", interval: "100ms" },
    keepReleases: 3,
  });
}

async function served(): Promise<string> {
  const res = await fetch(`http://${WEB3}:${SERVICE_PORT}/version`);
  return ((await res.json()) as { version: string }).version;
}

describe("GoldenImage docker: build, validate, ship, run as a Service, retain (real engines, web3)", function () {
  this.timeout(120_000);
  const ids: Record<string, string> = {};
  const arts: Record<string, ImageArtifact> = {};

  before(async function () {
    this.timeout(60_000);
    cleanBuildEngine();
    await removeService();
    engine = await HostEngine.start();
    forward = await EngineForward.open("web3", engine.socket);
    host = await ProviderHost.start();
    ctx = new ImageContext();
    image = new SimulatedResource(host, dockerImageProvider, {
      name: NAME,
      additionalSecretOutputs: ["hostConnections"],
    });
  });

  after(async function () {
    this.timeout(60_000);
    await removeService().catch(() => undefined);
    await forward?.close();
    await engine?.stop();
    await host?.stop();
    await closeAll();
    cleanBuildEngine();
    ctx?.remove();
  });

  it("builds the context, validates it, ships it to web3 with docker save | docker load, tags hash and commit", async () => {
    const commit = ctx.commit("v1", { "app/version.txt": "v1\n" });
    const { op } = await image.up(imageInputs());
    assert.equal(op, "create");
    ids["v1"] = out("imageId");
    arts["v1"] = artifact();
    assert.match(ids["v1"]!, /^sha256:[0-9a-f]{64}$/);
    const hash = out("contentHash") as string;
    assert.equal(out("ref"), `${REPO}:${hash.slice(0, 16)}`);
    assert.deepEqual(out("tags"), [`${REPO}:${hash.slice(0, 16)}`, `${REPO}:${commit.slice(0, 12)}`]);
    assert.equal(out("built"), true);
    assert.deepEqual(
      out("shipped").map((s: any) => [s.host, s.action]),
      [[WEB3, "loaded"]],
    );
    assert.equal(docker("image", "inspect", "-f", "{{.Id}}", `${REPO}:${commit.slice(0, 12)}`), ids["v1"]);
    assert.equal(docker("image", "inspect", "-f", '{{index .Config.Labels "io.fleet.hash"}}', out("ref")), hash);
    // On web3, through its own docker CLI and socket: the same id, with its tags.
    assert.equal(await sh(`docker image inspect -f '{{.Id}}' ${out("ref")}`), ids["v1"]);
    assert.equal(engine.has(ids["v1"]!), true);
    assert.equal(
      docker("ps", "-aq", "--filter", `name=fleet-validate-${NAME}`),
      "",
      "the validation container is gone",
    );
  });

  it("an unchanged context is no change: preview and up say 'same', nothing is built or shipped", async () => {
    const created = docker("image", "inspect", "-f", "{{.Created}}", ids["v1"]!);
    fs.utimesSync(path.join(ctx.dir, "app", "version.txt"), new Date(), new Date(2001, 1, 1)); // mtime only
    assert.equal((await image.preview(imageInputs())).op, "same");
    assert.equal((await image.up(imageInputs())).op, "same");
    assert.equal(out("imageId"), ids["v1"]);
    assert.equal(docker("image", "inspect", "-f", "{{.Created}}", ids["v1"]!), created);
    ctx.commit("a commit that changes no file of the context");
    assert.equal((await image.preview(imageInputs())).op, "same", "a new commit alone rebuilds nothing");
  });

  it("refresh notices the image is gone from the build engine; the next update builds it again, the old one as previous", async () => {
    assert.equal((await image.refresh())!.plainOutputs["contentHash"], out("contentHash"), "no drift: nothing changes");
    docker("rmi", "-f", ids["v1"]!);
    const refreshed = await image.refresh();
    assert.match(
      String(refreshed!.plainOutputs["contentHash"]),
      /^drift: fleet-test\/img-web:[0-9a-f]{16} is missing on the build engine$/,
    );
    assert.equal((await image.preview(imageInputs())).op, "update");
    await image.up(imageInputs());
    assert.equal(out("built"), true);
    assert.notEqual(out("imageId"), ids["v1"], "a rebuild is a new image id");
    assert.equal(out("previousImageId"), ids["v1"]);
    ids["v1"] = out("imageId");
    arts["v1"] = artifact();
  });

  it("a changed file is a rebuild: preview names the file, up activates the new image with the old one as previous", async () => {
    const before = host.logs().length;
    ctx.commit("v2", { "app/version.txt": "v2\n", "app/notes.txt": "new file\n" });
    const preview = await image.preview(imageInputs());
    assert.equal(preview.op, "update");
    // The host's output is read apart from the RPC's answer: wait for the line.
    await host.waitForLog('image "fleet-img-test-web": 2 files changed');
    assert.match(
      host.logs().slice(before),
      /image "fleet-img-test-web": 2 files changed: \+app\/notes\.txt ~app\/version\.txt; it will be built, validated and shipped to 127\.0\.0\.13/,
    );
    await image.up(imageInputs());
    ids["v2"] = out("imageId");
    arts["v2"] = artifact();
    assert.notEqual(ids["v2"], ids["v1"]);
    assert.equal(out("built"), true);
    assert.equal(out("previousImageId"), ids["v1"]);
    assert.deepEqual(out("history"), [ids["v2"], ids["v1"]]);
    assert.equal(out("shipped")[0].action, "loaded");
    assert.equal(
      engine.has(ids["v2"]!) && engine.has(ids["v1"]!),
      true,
      "web3 has the new image and the rollback target",
    );
  });

  it("a failed validation fails the update with the evidence; the active image stays and nothing is shipped", async () => {
    ctx.commit("unhealthy", { "app/mode.txt": "unhealthy\n", "app/version.txt": "v-bad\n" });
    const badHash = imageInputs()["contentHash"] as string;
    await assert.rejects(image.up(imageInputs()), (err: Error) => {
      assert.match(
        err.message,
        /validation failed: no HTTP 200 from http:\/\/127\.0\.0\.1:18601\/health within 5000 ms/,
      );
      assert.match(err.message, /last response: HTTP 500 .*broken/);
      assert.match(err.message, /container output \(last 50 lines\):[\s\S]*health check answered 500/);
      assert.match(
        err.message,
        new RegExp(`The active image \\(${ids["v2"]}\\) stays active; the new one was not shipped`),
      );
      return true;
    });
    assert.equal(out("imageId"), ids["v2"], "state keeps the active image");
    assert.equal(
      buildEngineHas(`${REPO}:${badHash.slice(0, 16)}`),
      true,
      "the failed image stays on the build engine for inspection",
    );
    assert.equal(engine.docker("images", "-q", "--filter", `label=io.fleet.hash=${badHash}`), "", "web3 never got it");

    ctx.commit("crash", { "app/mode.txt": "crash\n", "app/version.txt": "v-crash\n" });
    const started = Date.now();
    await assert.rejects(
      image.up(imageInputs()),
      /the container exited before answering[\s\S]*crashing at start on purpose/,
    );
    assert.ok(Date.now() - started < 5000, "an exit is caught before the validation timeout");
    assert.equal(out("imageId"), ids["v2"]);
  });

  it("runs as a Service under systemd with the health gate; a broken new image is rolled back to the previous, still present", async () => {
    const svc = new SimulatedResource(host, serviceProvider, {
      name: SERVICE,
      additionalSecretOutputs: ["connection", "secretEnv"],
    });
    await svc.up(serviceFor(arts["v2"]!));
    assert.equal(await served(), "v2");
    assert.equal(await sh(`systemctl is-active ${SERVICE}`), "active");
    assert.equal(await sh(`docker inspect -f '{{.Image}}' ${SERVICE}`), ids["v2"]);

    // v3 needs a new setting: validation provides it, the service's environment does not.
    ctx.commit("v3 needs a setting", {
      "app/mode.txt": null,
      "app/version.txt": "v3\n",
      "app/requires.txt": "REQUIRED_SETTING\n",
    });
    await image.up(imageInputs({ validate: { ...validate, env: { ...validate.env, REQUIRED_SETTING: "on" } } }));
    ids["v3"] = out("imageId");
    arts["v3"] = artifact();
    assert.equal(out("previousImageId"), ids["v2"]);
    assert.equal(engine.has(ids["v3"]!), true, "v3 was validated and shipped");

    await assert.rejects(svc.up(serviceFor(arts["v3"]!)), (err: Error) => {
      assert.match(err.message, /failed its health gate: the service exited during the health check/);
      assert.match(err.message, /missing required setting REQUIRED_SETTING/);
      assert.match(err.message, /Rolled back automatically: .* is serving and healthy again/);
      return true;
    });
    assert.equal(await served(), "v2", "the previous image serves again");
    assert.equal(await sh(`docker inspect -f '{{.Image}}' ${SERVICE}`), ids["v2"]);
    assert.equal(engine.has(ids["v2"]!), true, "the rollback target was never pruned");
  });

  it("retention keeps the newest activations on the build engine and web3, never an image in use or recorded by a service", async () => {
    // Activations so far: v1, v2, v3 (keep 2): v1 went at v3's activation, as did the failed builds.
    assert.deepEqual(out("history"), [ids["v3"], ids["v2"]]);
    assert.equal(buildEngineHas(ids["v1"]!), false, "v1 pruned on the build engine");
    assert.equal(engine.has(ids["v1"]!), false, "v1 pruned on web3");
    assert.equal(
      docker("images", "-q", "--filter", `label=io.fleet.image=${NAME}`).split("\n").filter(Boolean).length >= 2,
      true,
    );
    const labelled = new Set(
      docker("images", "-q", "--no-trunc", "--filter", `label=io.fleet.image=${NAME}`).split("\n").filter(Boolean),
    );
    assert.deepEqual([...labelled].sort(), [ids["v2"], ids["v3"]].sort(), "failed builds were pruned too");

    ctx.commit("v4", { "app/requires.txt": null, "app/version.txt": "v4\n" });
    await image.up(imageInputs());
    ids["v4"] = out("imageId");
    arts["v4"] = artifact();
    assert.deepEqual(out("history"), [ids["v4"], ids["v3"]]);
    assert.equal(buildEngineHas(ids["v2"]!), false, "v2 is out of the policy on the build engine: pruned");
    assert.equal(engine.has(ids["v2"]!), true, "on web3, v2 serves the Service: kept whatever the policy");
    const pruned = out("pruned") as { where: string; deleted: string[] }[];
    assert.ok(pruned.find((p) => p.where === "build engine (local)")!.deleted.includes(ids["v2"]!));
    assert.ok(!pruned.find((p) => p.where.includes(WEB3))!.deleted.includes(ids["v2"]!));

    // The delete step re-checks on the spot: asked to delete the serving image, it refuses.
    const r = await runScript(connectionFor("web3"), removeImagesScript([ids["v2"]!], []), { step: "prune" });
    assert.match(r.stdout, new RegExp(`skipped=${ids["v2"]} protected`));
    assert.equal(engine.has(ids["v2"]!), true);

    // The Service retains a release of v3 (its failed deploy): recorded from its releases' IMAGE
    // files, v3 survives v5's retention on web3, as the lead's integration will do after each deploy.
    await runScript(connectionFor("web3"), recordReleaseImagesScript(SERVICE, `${ROOT}/${SERVICE}/releases`), {
      step: "refs",
    });
    assert.deepEqual((await sh(`cat ${IMAGE_REFS_DIR}/${SERVICE}`)).split("\n"), [ids["v2"], ids["v3"]].sort());
    ctx.commit("v5", { "app/version.txt": "v5\n" });
    await image.up(imageInputs());
    ids["v5"] = out("imageId");
    arts["v5"] = artifact();
    assert.deepEqual(out("history"), [ids["v5"], ids["v4"]]);
    assert.equal(buildEngineHas(ids["v3"]!), false, "v3 is out of the policy on the build engine: pruned");
    assert.equal(engine.has(ids["v3"]!), true, "on web3, a service still needs v3: kept");
  });

  it("destroy removes the image's copies that nothing uses or needs, and keeps the serving and recorded ones", async () => {
    await image.destroy();
    assert.equal(docker("images", "-q", "--filter", `label=io.fleet.image=${NAME}`), "", "build engine: all gone");
    assert.equal(engine.has(ids["v2"]!), true, "web3: the serving image stays");
    assert.equal(engine.has(ids["v3"]!), true, "web3: the image a service recorded stays");
    assert.equal(engine.has(ids["v4"]!) || engine.has(ids["v5"]!), false, "web3: the others are gone");
  });

  it("behind the proxy: each release runs as its own container on its own port, switched with no request lost", async () => {
    await sh(bootstrapScript(bootstrapSpec({ proxy: true }), "image-test"));
    const name = "fleet-img-zd";
    const PROXY_PORT = 18603;
    const svc = new SimulatedResource(host, serviceProvider, {
      name,
      additionalSecretOutputs: ["connection", "secretEnv"],
    });
    const proxied = (a: ImageArtifact, env: Record<string, string> = {}) =>
      serviceInputs({
        name,
        connection: connectionFor("web3"),
        root: ROOT,
        source: { image: a },
        env: { APP_HOST: "127.0.0.1", ...env },
        health: { url: "http://127.0.0.1/health", timeout: "8s", interval: "100ms" },
        keepReleases: 3,
        proxy: { listen: WEB3, port: PROXY_PORT, instancePorts: { from: 18604, to: 18607 }, drainTimeout: "5s" },
      });
    const version = async () =>
      ((await (await fetch(`http://${WEB3}:${PROXY_PORT}/version`)).json()) as { version: string }).version;
    try {
      await svc.up(proxied(arts["v2"]!));
      assert.equal(await version(), "v2");
      const load = startLoad({
        host: WEB3,
        port: PROXY_PORT,
        path: "/version",
        rate: 100,
        releaseOf: (b) => (JSON.parse(b) as { version: string }).version,
      });
      await svc.up(proxied(arts["v3"]!, { REQUIRED_SETTING: "on" }));
      // Without the setting the new container exits: its gate fails, and the proxy never moves.
      await assert.rejects(svc.up(proxied(arts["v3"]!)), /failed its health gate/);
      const report = await load.stop();
      assert.deepEqual(
        report.failed.map((s) => s.outcome),
        [],
        "no request failed",
      );
      assert.equal(await version(), "v3");
      const containers = (await sh(`docker ps --filter name=${name}- --format '{{.Names}}'`))
        .split("\n")
        .filter(Boolean);
      assert.equal(containers.length, 1, `one container runs after the drain: ${containers.join(", ")}`);
      assert.match(containers[0]!, new RegExp(`^${name}-1860[4-7]$`), "named after its instance's port");
    } finally {
      await svc.destroy().catch(() => undefined);
    }
  });
});
