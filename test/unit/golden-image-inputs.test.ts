import { strict as assert } from "assert";
import * as path from "path";
import { dockerImageSpec, hcloudImageSpec } from "../../components/golden-image";
import { checkDockerImageInputs, checkHcloudImageInputs } from "../../providers/image/check";

/**
 * GoldenImage's own refusals: only where it is the only gate (what it reads from disk, and the
 * exclude patterns it reads the context with), naming the field, with the model's rule. What
 * the providers' checks judge, the component passes on for them to refuse.
 */

const IMAGES = path.resolve(__dirname, "..", "fixtures", "images");
const validate = { url: "http://127.0.0.1:18650/health" };
const hcloudArgs = {
  kind: "hcloud" as const,
  baseImage: "debian-12",
  serverType: "cx22",
  location: "fsn1",
  provision: { dir: path.join(IMAGES, "provision") },
  validate: { check: "true" },
};

describe("GoldenImage's inputs: the component refuses only what no provider check sees", () => {
  it("an exclude pattern the context is read with: refused at its field, with the model's rule", () => {
    const spec = (exclude: string[]) =>
      dockerImageSpec("web", { kind: "docker", context: path.join(IMAGES, "web"), exclude, validate });
    assert.throws(() => spec(["app/*.tmp", "/srv/x"]), {
      kind: "config",
      summary:
        "images.web.exclude.1: must be relative to the source directory (data/*.db, not /srv/app/data/*.db; ./build for the top-level build only)",
    });
    assert.throws(() => spec(["!keep"]), {
      kind: "config",
      summary: /^images\.web\.exclude\.0: negation \(!\) is not supported/,
    });
    assert.deepEqual(spec(["app/*.tmp"]).exclude, [".git", "app/*.tmp"]);
  });

  it("what the providers judge is theirs: the component passes it on, and the check names it", () => {
    const docker = dockerImageSpec("constructor", {
      kind: "docker",
      context: path.join(IMAGES, "web"),
      validate: { url: "http://127.0.0.1/é" },
      keep: 1,
    });
    assert.deepEqual(
      checkDockerImageInputs({ ...docker, hostConnections: [], hostAddresses: [] }).map((f) => f.property),
      ["name", "validate.url", "keep"],
    );
    const hcloud = hcloudImageSpec("gold-", { ...hcloudArgs, validate: { check: " " } });
    assert.deepEqual(
      checkHcloudImageInputs({ ...hcloud, token: "t" }).map((f) => f.property),
      ["name", "check"],
    );
  });

  it("what it reads from disk: the directory, the Dockerfile in it, the provision scripts", () => {
    assert.throws(() => dockerImageSpec("web", { kind: "docker", context: path.join(IMAGES, "provision"), validate }), {
      kind: "config",
      summary: /^images\.web\.dockerfile: Dockerfile is not in /,
    });
    assert.throws(
      () => hcloudImageSpec("agent", { ...hcloudArgs, provision: { ...hcloudArgs.provision, run: ["nope.sh"] } }),
      /^Error: images\.agent\.provision\.run: nope\.sh is not a file of /,
    );
  });
});
