import { strict as assert } from "assert";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { GoldenImage } from "../../components/golden-image";
import { Host } from "../../components/host";
import { imageContentHash } from "../../decisions/image-hash";
import { readImageContext } from "../../providers/image/inputs";
import type { SshConnection } from "../../transport/connection";
import { findByType, findResource, installMocks, isKnown, promiseOf, settle } from "../support/mocks";
import { codeProviderConfig, codeProviderName, unpackShipped } from "../../providers/ship";

const FIXTURES = path.resolve(__dirname, "..", "fixtures", "images");
const SECRET_KEY = "4dabf18193072939515e22adb298388d";
const HCLOUD_IMAGE = "pulumi-nodejs:dynamic/fleet:HcloudImage";
const DOCKER_IMAGE = "pulumi-nodejs:dynamic/fleet:DockerImage";
/** The explicit provider resource whose configuration carries fleet's code (components/shipped-resource.ts). */
const CODE_PROVIDER = "pulumi:providers:pulumi-nodejs";
const SNAPSHOT_ID = "314159";
/** A host to ship to: mocks never connect, so no test server (nor its inventory) is needed. */
const WEB3: SshConnection = {
  host: "127.0.0.13",
  port: 22,
  user: "root",
  privateKey: "LOGINKEY",
  hostKey: "ssh-ed25519 AAAAC3NzaWEB3",
};

function hostMocks(args: pulumi.runtime.MockResourceArgs) {
  if (args.type === "pulumi-nodejs:dynamic/fleet:HostKey")
    return { state: { publicKey: "ssh-ed25519 AAAAC3NzaHOSTKEY", privateKey: "HOSTPRIV" } };
  if (args.type === "hcloud:index/server:Server") return { state: { ipv4Address: "203.0.113.20" } };
  if (args.type === "hcloud:index/firewall:Firewall") return { id: "4242" };
  return undefined;
}

function agentImage(): GoldenImage {
  return new GoldenImage("agent", {
    kind: "hcloud",
    baseImage: "debian-12",
    serverType: "cx22",
    location: "fsn1",
    provision: { dir: path.join(FIXTURES, "provision"), env: { AGENT_ROOT: "/opt/agent" } },
    validate: { check: "test -f /opt/agent/ready" },
    keep: 4,
    token: pulumi.secret("hcloud-api-token"),
    labels: { team: "infra" },
  });
}

function hostFrom(image: GoldenImage): Host {
  return new Host("vm", {
    kind: "hcloud",
    serverType: "cx22",
    location: "fsn1",
    image: image.imageId,
    sshFrom: ["198.51.100.7/32"],
    privateKey: pulumi.secret("LOGINKEY"),
    publicKey: "ssh-ed25519 AAAAC3NzaLOGIN fleet",
  });
}

describe("GoldenImage (hcloud) under Pulumi mocks", () => {
  let image: GoldenImage;

  before(async () => {
    await installMocks({
      newResource: (args) =>
        args.type === HCLOUD_IMAGE ? { id: SNAPSHOT_ID, state: { imageId: SNAPSHOT_ID } } : hostMocks(args),
    });
    image = agentImage();
    hostFrom(image);
    await promiseOf(image.imageId);
    await settle();
  });

  it("registers one build resource with the content hash of every provision file, the base image and the scripts in order", () => {
    const build = findResource(HCLOUD_IMAGE, "agent-snapshot");
    const ctx = readImageContext(path.join(FIXTURES, "provision"), [], "x");
    const expected = imageContentHash({
      kind: "hcloud",
      manifest: ctx.manifest,
      buildArgs: { AGENT_ROOT: "/opt/agent" },
      settings: { baseImage: "debian-12", serverType: "cx22", location: "fsn1", run: "10-base.sh\n20-agent.sh" },
    });
    assert.equal(build.inputs["contentHash"], expected);
    assert.deepEqual(Object.keys(build.inputs["manifest"] as object), [
      "10-base.sh",
      "20-agent.sh",
      "files/agent.conf",
    ]);
    assert.deepEqual(build.inputs["run"], ["10-base.sh", "20-agent.sh"], "the top-level executables, by name");
    assert.equal(build.inputs["baseImage"], "debian-12");
    assert.equal(build.inputs["check"], "test -f /opt/agent/ready");
    assert.equal(build.inputs["keep"], 4);
    assert.deepEqual(build.inputs["labels"], { team: "infra" });
    assert.ok(SECRET_KEY in (build.inputs["token"] as object), "the API token is a secret input");
  });

  it("serializes the whole Packer flow into the provider: builder, provision, power off, snapshot, cleanup, validation", () => {
    // The code rides once per stack, in the configuration of the provider resource the build names.
    const [provider, ...more] = findByType(CODE_PROVIDER);
    assert.ok(provider, "a code provider is registered");
    assert.equal(more.length, 0, "one code provider for every fleet resource");
    assert.equal(provider.name, codeProviderName());
    const build = findResource(HCLOUD_IMAGE, "agent-snapshot");
    assert.match(build.provider ?? "", new RegExp(`::${CODE_PROVIDER}::${provider.name}::`), "the build names it");
    assert.equal(provider.inputs["hcloudImageSha256"], codeProviderConfig()["hcloudImageSha256"]);
    const code = unpackShipped(provider.inputs, "hcloudImage") ?? "";
    assert.ok(!String(build.inputs["__provider"]).includes("actions/create_image"), "not in the resource's state");
    for (const step of [
      "/ssh_keys",
      "/servers",
      "actions/shutdown",
      "actions/create_image",
      "deleteSshKey",
      "deleteServer",
      "imageCheckScript",
      "generalize",
    ]) {
      assert.ok(code.includes(step), `the serialized provider contains ${step}`);
    }
  });

  it("leaves no builder server or temporary key in the stack: they live and die inside the update", () => {
    assert.deepEqual(
      findByType("hcloud:index/server:Server").map((r) => r.name),
      ["vm-server"],
      "the only server is the Host's",
    );
    assert.deepEqual(
      findByType("hcloud:index/sshKey:SshKey").map((r) => r.name),
      ["vm-sshkey"],
      "the only SSH key is the Host's login key",
    );
    assert.equal(findByType("hcloud:index/snapshot:Snapshot").length, 0);
  });

  it("a Host of kind hcloud is created from the snapshot id", async () => {
    assert.equal(await promiseOf(image.imageId), SNAPSHOT_ID);
    assert.equal(findResource("hcloud:index/server:Server", "vm-server").inputs["image"], SNAPSHOT_ID);
  });
});

describe("GoldenImage (hcloud) in preview under mocks", () => {
  it("a new image's id is unknown in preview, so the Hosts built from it show as moving to it", async () => {
    await installMocks({ preview: true, newResource: hostMocks });
    const image = agentImage();
    hostFrom(image);
    await settle();
    assert.equal(await isKnown(image.imageId), false);
    assert.equal(await isKnown(image.contentHash), true, "the content hash is known at preview");
    const server = findResource("hcloud:index/server:Server", "vm-server");
    assert.equal(
      (server.inputs["image"] as { __pulumiUnknown?: boolean }).__pulumiUnknown,
      true,
      "unknown in preview: the engine shows the server as changing",
    );
  });
});

describe("GoldenImage (docker) under Pulumi mocks", () => {
  it("registers the build with the context's hash and files, ships to the hosts (secret connections, plain addresses)", async () => {
    await installMocks({
      newResource: (args) =>
        args.type === DOCKER_IMAGE
          ? {
              state: {
                imageId: "sha256:" + "a".repeat(64),
                tags: ["fleet/web:x"],
                history: ["sha256:" + "a".repeat(64)],
              },
            }
          : undefined,
    });
    const image = new GoldenImage("web", {
      kind: "docker",
      context: path.join(FIXTURES, "web"),
      buildArgs: { VERSION: "1" },
      validate: { url: "http://127.0.0.1:18650/health", env: { APP_PORT: "18650" } },
      hosts: [WEB3],
    });
    const artifact = await promiseOf(image.artifact);
    await settle();
    const build = findResource(DOCKER_IMAGE, "web-image");
    assert.equal(build.inputs["repository"], "fleet/web");
    assert.deepEqual(Object.keys(build.inputs["manifest"] as object), ["Dockerfile", "app/version.txt"]);
    assert.deepEqual(build.inputs["buildArgs"], { VERSION: "1" });
    assert.match(String(build.inputs["contentHash"]), /^[0-9a-f]{64}$/);
    assert.deepEqual(build.inputs["hostAddresses"], ["127.0.0.13"]);
    assert.ok(SECRET_KEY in (build.inputs["hostConnections"] as object), "host connections are secret");
    assert.deepEqual(artifact, {
      name: "web",
      imageId: "sha256:" + "a".repeat(64),
      tags: ["fleet/web:x"],
      dockerHost: "",
      keep: 3,
      history: ["sha256:" + "a".repeat(64)],
    });
    assert.equal(await promiseOf(image.contentHash), build.inputs["contentHash"]);
  });

  it("refuses a context without its Dockerfile, naming the field", () => {
    assert.throws(
      () =>
        new GoldenImage("bad", {
          kind: "docker",
          context: path.join(FIXTURES, "provision"),
          validate: { url: "http://127.0.0.1:18650/health" },
        }),
      /images\.bad\.dockerfile: Dockerfile is not in .*provision/,
    );
  });
});
