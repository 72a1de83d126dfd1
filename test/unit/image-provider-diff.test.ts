import { strict as assert } from "assert";
import { UNKNOWN } from "../../decisions/diff-keys";
import { checkDockerImageInputs, checkHcloudImageInputs } from "../../providers/image/check";
import { diffDockerImage } from "../../providers/image/docker-provider";
import type { DockerImageSpec, DockerImageState } from "../../providers/image/model";

const conn = { host: "127.0.0.13", port: 22, user: "root", privateKey: "KEY-A", hostKey: "ssh-ed25519 AAAA" };

function spec(over: Partial<DockerImageSpec> = {}): DockerImageSpec {
  return {
    name: "web",
    repository: "fleet/web",
    contextDir: "/work/web",
    exclude: [".git"],
    dockerfile: "Dockerfile",
    buildArgs: {},
    manifest: { Dockerfile: "f:1", "app.py": "f:2" },
    contentHash: "a".repeat(64),
    commit: "1".repeat(40),
    dockerHost: "",
    validate: { url: "http://127.0.0.1:18650/health", expectStatus: 200, env: {}, timeoutMs: 30_000, intervalMs: 100 },
    hostConnections: [conn],
    hostAddresses: ["127.0.0.13"],
    keep: 3,
    stepTimeoutMs: 600_000,
    ...over,
  };
}

const state = (over: Partial<DockerImageSpec> = {}) =>
  ({ ...spec(over), imageId: "sha256:x" }) as unknown as DockerImageState;

describe("DockerImage provider: diff and check", () => {
  it("nothing changed: no change, even with a new commit, a rotated login key or a new validation", () => {
    const d = diffDockerImage(
      state(),
      spec({
        commit: "2".repeat(40),
        hostConnections: [{ ...conn, privateKey: "KEY-B" }],
        validate: { ...spec().validate, timeoutMs: 5 },
      }),
    );
    assert.deepEqual(d, { changes: false, replaces: [], summary: "" });
  });

  it("a changed file is a rebuild, and the summary names it and the hosts", () => {
    const d = diffDockerImage(
      state(),
      spec({ contentHash: "b".repeat(64), manifest: { Dockerfile: "f:1", "app.py": "f:3", "new.txt": "f:4" } }),
    );
    assert.equal(d.changes, true);
    assert.deepEqual(d.replaces, []);
    assert.equal(d.summary, "2 files changed: +new.txt ~app.py; it will be built, validated and shipped to 127.0.0.13");
  });

  it("another host or a new keep is an update; another name is a replacement; unknowns count as changes", () => {
    const more = diffDockerImage(
      state(),
      spec({ hostConnections: [conn, { ...conn, host: "127.0.0.12" }], hostAddresses: ["127.0.0.13", "127.0.0.12"] }),
    );
    assert.deepEqual([more.changes, more.summary], [true, "ships to 127.0.0.13, 127.0.0.12"]);
    assert.equal(diffDockerImage(state(), spec({ keep: 5 })).changes, true);
    assert.deepEqual(diffDockerImage(state(), spec({ name: "web2" })).replaces, ["name"]);
    assert.deepEqual(
      diffDockerImage(state(), spec({ repository: "fleet/other" })).replaces,
      [],
      "a rebuild, not a replacement",
    );
    const unknown = diffDockerImage(
      state(),
      spec({ hostConnections: UNKNOWN as never, hostAddresses: UNKNOWN as never }),
    );
    assert.equal(unknown.changes, true);
  });

  it("check refuses bad names, repositories, keep below 2 and non-HTTP URLs, and lets unknowns through", () => {
    const failures = checkDockerImageInputs({
      name: "../web",
      repository: "Fleet/Web",
      keep: 1,
      validate: { url: "ftp://x" },
    }).map((f) => f.property);
    assert.deepEqual(failures, ["name", "repository", "validate.url", "keep"]);
    assert.deepEqual(
      checkDockerImageInputs({ name: UNKNOWN, repository: UNKNOWN, keep: UNKNOWN, validate: { url: UNKNOWN } }),
      [],
    );
    assert.deepEqual(checkDockerImageInputs(spec() as unknown as Record<string, unknown>), []);
  });

  it("the hcloud check wants a label-safe name, keep >= 2 and a check command", () => {
    const failures = checkHcloudImageInputs({ name: "web@1", keep: 0, check: " " }).map((f) => f.property);
    assert.deepEqual(failures, ["name", "check", "keep"]);
    assert.deepEqual(checkHcloudImageInputs({ name: "agent", keep: 3, check: "true" }), []);
  });
});
