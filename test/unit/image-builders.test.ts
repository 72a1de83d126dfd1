import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  dockerBuildScript,
  dockerRunCommand,
  dockerSaveCommand,
  imageLoadCommand,
  imagePresenceScript,
  imageTag,
  inspectImageScript,
  listImagesScript,
  recordImageRefsScript,
  recordReleaseImagesScript,
  removeImagesScript,
  renderDockerEnvFile,
  validateRunCommand,
} from "../../commands/image";
import {
  generalizeScript,
  imageCheckScript,
  provisionScript,
  provisionUploadCommand,
} from "../../commands/image-provision";
import { serviceLayout } from "../../commands/layout";
import { renderUnit } from "../../commands/unit";
import { imageTags } from "../../providers/image/docker-activate";

const ID = "sha256:" + "ab".repeat(32);
const OTHER = "sha256:" + "cd".repeat(32);
const HOSTILE = `it's $(rm -rf /) \`x\` "q" \\ é\nnext`;

/** Runs `script` with sh -n (syntax only): every builder must produce valid POSIX sh. */
function parses(script: string): void {
  execFileSync("sh", ["-n"], { input: script });
}

describe("commands/image (docker builders)", () => {
  it("build: context on stdin, build log to stderr, sorted args and labels, all tags, the id on stdout", () => {
    const s = dockerBuildScript({
      dockerfile: "docker/Dockerfile",
      tags: ["fleet/web:0123456789abcdef", "fleet/web:abcdefabcdef"],
      buildArgs: { B: "2", A: "1" },
      labels: { "io.fleet.image": "web" },
    });
    assert.match(
      s,
      /^docker build --iidfile "\$iid" -f docker\/Dockerfile --build-arg A=1 --build-arg B=2 --label io\.fleet\.image=web -t fleet\/web:0123456789abcdef -t fleet\/web:abcdefabcdef - >&2$/m,
    );
    assert.match(s, /^echo "image_id=\$\(cat "\$iid"\)"$/m);
    parses(s);
  });

  it("quotes hostile build args and labels as data", () => {
    const s = dockerBuildScript({
      dockerfile: "Dockerfile",
      tags: ["a:b"],
      buildArgs: { X: HOSTILE },
      labels: { note: HOSTILE },
    });
    assert.ok(s.includes(`--build-arg 'X=it'\\''s $(rm -rf /) \`x\` "q" \\ é\nnext'`));
    parses(s);
    const echoed = execFileSync(
      "sh",
      ["-c", s.replace(/docker build/g, "printf '%s\\n'").replace(/^iid=.*$/m, "iid=/dev/null")],
      {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    assert.equal(echoed, "image_id=\n");
  });

  it("tags follow Docker's grammar; the commit tag is the short commit (with -dirty)", () => {
    assert.equal(imageTag("fleet/web", "0123"), "fleet/web:0123");
    assert.throws(() => imageTag("Fleet/Web", "x"), /not a Docker repository/);
    assert.throws(() => imageTag("fleet/web", "-x"), /not a Docker tag/);
    const hash = "f".repeat(64);
    assert.deepEqual(imageTags({ repository: "r", contentHash: hash, commit: "a".repeat(40) }), [
      `r:${"f".repeat(16)}`,
      `r:${"a".repeat(12)}`,
    ]);
    assert.deepEqual(
      imageTags({ repository: "r", contentHash: hash, commit: "a".repeat(40) + "-dirty" })[1],
      `r:${"a".repeat(12)}-dirty`,
    );
    assert.deepEqual(imageTags({ repository: "r", contentHash: hash, commit: "" }), [`r:${"f".repeat(16)}`]);
  });

  it("scripts that run, load or delete images take full ids only", () => {
    for (const build of [
      () => imagePresenceScript("web:latest"),
      () => imageLoadCommand("sha256:abc", "root"),
      () => removeImagesScript(["$(reboot)"], []),
      () => dockerRunCommand({ container: "web", image: "web", envKeys: [] }),
      () => validateRunCommand("c", "latest", "/tmp/env"),
    ]) {
      assert.throws(build, /not a full image id/);
    }
  });

  it("save keeps every tag; load proves the expected id arrived, through sudo for other users", () => {
    assert.equal(dockerSaveCommand(["r:1", "r:2"]), "docker save r:1 r:2");
    assert.equal(
      imageLoadCommand(ID, "root"),
      `docker load >&2 && echo "loaded=$(docker image inspect -f '{{.Id}}' ${ID})"`,
    );
    assert.match(imageLoadCommand(ID, "deploy"), /^sudo -n \/bin\/sh -c 'docker load >&2/);
    parses(imagePresenceScript(ID));
    parses(inspectImageScript("r:1"));
  });

  it("the env file for validation is literal KEY=value lines and refuses what Docker cannot read", () => {
    assert.equal(renderDockerEnvFile({ B: `a "b" $c`, A: "1" }), `A=1\nB=a "b" $c\n`);
    assert.throws(() => renderDockerEnvFile({ A: "x\ny" }), /cannot hold newlines/);
    assert.throws(() => renderDockerEnvFile({ "A-B": "x" }), /not an environment variable name/);
  });

  it("retention lists by label and what protects images; the delete step re-checks and skips protected ids", () => {
    const list = listImagesScript("web");
    assert.match(list, /docker images -q --no-trunc --filter label=io\.fleet\.image=web/);
    assert.match(list, /echo "in_use=\$id"/);
    assert.match(list, /echo "referenced=\$id"/);
    parses(list);
    const rm = removeImagesScript([ID], [OTHER, "not-an-id"]);
    assert.ok(rm.includes(`printf '%s\\n' ${OTHER} ;`), "the caller's protected ids are part of the guard");
    assert.ok(!rm.includes("not-an-id"));
    assert.match(rm, /^for id in sha256:a/m);
    parses(rm);
    assert.equal(removeImagesScript([], [ID]), "echo pruned=none\n");
    assert.match(rm, /cat \/etc\/systemd\/system\/\*\.service \/var\/lib\/fleet\/images\/\* 2>\/dev\/null/);
  });

  it("a service records the images its releases need, one file per service; none removes the record", () => {
    const s = recordImageRefsScript("web", [ID, OTHER, ID]);
    assert.match(s, /^mkdir -p \/var\/lib\/fleet\/images$/m);
    assert.ok(s.includes(Buffer.from(`${ID}\n${OTHER}\n`).toString("base64")), "deduplicated ids, one per line");
    assert.match(s, /mv -f \/var\/lib\/fleet\/images\/web\.fleet-tmp \/var\/lib\/fleet\/images\/web/);
    assert.equal(recordImageRefsScript("web", []), "rm -f /var/lib/fleet/images/web\n");
    assert.throws(() => recordImageRefsScript("../etc", [ID]), /not an owner name/);
    assert.throws(() => recordImageRefsScript("web", ["latest"]), /not a full image id/);
    parses(s);
  });

  it("the record can be rebuilt from the releases' IMAGE files on the host (empty: no record)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-refs-"));
    const releases = path.join(dir, "releases");
    for (const [rel, content] of [
      ["a", ID],
      ["b", `${OTHER}\n`],
      ["c", "not an id"],
      ["d", ID],
    ] as const) {
      fs.mkdirSync(path.join(releases, rel), { recursive: true });
      fs.writeFileSync(path.join(releases, rel, "IMAGE"), content);
    }
    // The service user's plants: a FIFO (a read would hang) and a link out of the tree (never followed).
    fs.mkdirSync(path.join(releases, "e"));
    execFileSync("mkfifo", [path.join(releases, "e", "IMAGE")]);
    fs.mkdirSync(path.join(releases, "f"));
    fs.writeFileSync(path.join(dir, "outside"), `sha256:${"f".repeat(64)}\n`);
    fs.symlinkSync(path.join(dir, "outside"), path.join(releases, "f", "IMAGE"));
    const script = recordReleaseImagesScript("web", releases).replaceAll(
      "/var/lib/fleet/images",
      path.join(dir, "refs"),
    );
    execFileSync("sh", ["-c", script], { timeout: 10_000 });
    assert.equal(fs.readFileSync(path.join(dir, "refs", "web"), "utf8"), `${ID}\n${OTHER}\n`);
    fs.rmSync(releases, { recursive: true });
    execFileSync("sh", ["-c", script]);
    assert.equal(fs.existsSync(path.join(dir, "refs", "web")), false);
    fs.rmSync(dir, { recursive: true });
  });

  it("the start command runs the image in the foreground with host networking and the unit's env", () => {
    const start = dockerRunCommand({ container: "web", image: ID, envKeys: ["PORT", "FLEET_RELEASE", "PORT"] });
    assert.equal(
      start,
      `docker rm -f web >/dev/null 2>&1; exec docker run --rm --name web --network host -e FLEET_RELEASE -e PORT ${ID}`,
    );
    assert.throws(
      () => dockerRunCommand({ container: "web", image: ID, envKeys: ["A;B"] }),
      /not an environment variable name/,
    );
    // It fits the Service's unit as is: one line, and systemd sees no `$` or `%` to expand.
    const unit = renderUnit({ name: "web", runAs: "root", start, layout: serviceLayout("/srv/fleet", "web", "web") });
    const execStart = unit.split("\n").find((l) => l.startsWith("ExecStart="))!;
    assert.ok(execStart.includes(start), `the unit carries the command unchanged: ${execStart}`);
  });
});

describe("commands/image-provision (machine image builders)", () => {
  it("runs the scripts in order from the provision dir, exports the env quoted, records the marker", () => {
    const s = provisionScript({
      run: ["10-base.sh", "sub/20 app.sh"],
      env: { GREETING: HOSTILE },
      imageName: "agent",
      contentHash: "h".repeat(64),
    });
    assert.ok(s.indexOf("provision 10-base.sh") < s.indexOf("provision sub/20 app.sh"));
    assert.match(s, /^export GREETING='it'\\''s /m);
    assert.match(s, /\(cd "\$P" && \.\/'sub\/20 app\.sh' <\/dev\/null\) >&2 \|\| rc=\$\?/);
    assert.match(s, /^printf '%s\\n' ran=10-base\.sh$/m);
    assert.match(s, /\/etc\/fleet\/image/);
    assert.match(s, /trap 'rm -rf "\$P"' EXIT/);
    parses(s);
  });

  it("refuses scripts outside the provision directory and bad env names", () => {
    assert.throws(
      () => provisionScript({ run: ["../x.sh"], env: {}, imageName: "a", contentHash: "h" }),
      /inside the provision directory/,
    );
    assert.throws(() => provisionScript({ run: ["/etc/x.sh"], env: {}, imageName: "a", contentHash: "h" }), /inside/);
    assert.throws(
      () => provisionScript({ run: [], env: { "A B": "x" }, imageName: "a", contentHash: "h" }),
      /not a variable name/,
    );
  });

  it("upload unpacks into a fresh 0700 directory (sudo for other users)", () => {
    assert.equal(
      provisionUploadCommand("root"),
      "rm -rf /var/tmp/fleet-provision && mkdir -p -m 700 /var/tmp/fleet-provision && tar -xzf - -C /var/tmp/fleet-provision",
    );
    assert.match(provisionUploadCommand("ops"), /^sudo -n \/bin\/sh -c 'rm -rf/);
  });

  it("generalize drops the temporary keys by their key blob, empties machine-id and the host keys", () => {
    const s = generalizeScript("/", ["ssh-ed25519 AAAAC3NzaTEMPKEY fleet-image-build"]);
    assert.match(s, /^R=''$/m);
    assert.match(s, /grep -vF -e AAAAC3NzaTEMPKEY "\$f"/);
    assert.match(s, /: > "\$R\/etc\/machine-id"/);
    assert.match(s, /rm -f "\$R"\/etc\/ssh\/ssh_host_\*/);
    parses(s);
  });

  it("the check first proves the server was made from this image, then runs the user's command", () => {
    const s = imageCheckScript("systemctl is-active agent", "a".repeat(64));
    assert.match(s, new RegExp(`grep -qxF hash=${"a".repeat(64)} /etc/fleet/image`));
    assert.ok(s.indexOf("phase marker") < s.indexOf("systemctl is-active agent"));
    parses(s);
  });
});

describe("commands/image-provision: hostile values (issue #10)", () => {
  it("ran= facts carry script names byte-exact (printf: dash's echo would expand backslashes)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-provision-"));
    try {
      const P = path.join(dir, "p");
      const names = ["a\\tb", "c\\cd", "e'f $(g)", "-h"];
      fs.mkdirSync(P);
      for (const n of names) fs.writeFileSync(path.join(P, n), "#!/bin/sh\ntrue\n");
      const marker = path.join(dir, "marker", "image");
      const script = provisionScript({ run: names, env: {}, imageName: "x", contentHash: "h", dir: P })
        .split("/etc/fleet/image")
        .join(marker)
        .split("mkdir -p /etc/fleet")
        .join(`mkdir -p ${path.dirname(marker)}`);
      const out = execFileSync("/bin/sh", ["-s"], { input: script, encoding: "utf8" });
      assert.deepEqual(
        out.split("\n").filter((l) => l.startsWith("ran=")),
        names.map((n) => `ran=${n}`),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
