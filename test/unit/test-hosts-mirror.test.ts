import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const RECIPE = path.resolve(__dirname, "..", "hosts", "recipe.sh");
// Placeholders on loopback: the recipe names no mirror of its own, and neither does this test.
const MACHINE_MIRROR = "http://127.0.0.1:9/debian";
const SECURITY = "http://127.0.0.1:9/debian-security";
const CHOSEN = "http://127.0.0.2:9/debian";

/** An apt configuration directory (what /etc/apt is) holding `files`. */
function aptEtc(files: Record<string, string>): string {
  const etc = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-apt-"));
  fs.mkdirSync(path.join(etc, "sources.list.d"));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(etc, name), text);
  return etc;
}

/** Runs `script` in bash with recipe.sh sourced and FLEET_APT_ETC set, as up.sh and the Dockerfile build do. */
function recipe(etc: string, script: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync("bash", ["--norc", "--noprofile", "-c", `set -Eeuo pipefail; . "${RECIPE}"; ${script}`], {
    env: { PATH: process.env["PATH"], FLEET_APT_ETC: etc, ...env },
    encoding: "utf8",
  });
  return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

const DEB822 = [
  `Types: deb\nURIs: ${MACHINE_MIRROR}\nSuites: bookworm bookworm-updates\nComponents: main\n`,
  `Types: deb\nURIs: ${SECURITY}\nSuites: bookworm-security\nComponents: main\n`,
].join("\n");

describe("test servers' apt mirror (test/hosts/recipe.sh): read from the machine's apt sources, never named", () => {
  const dirs: string[] = [];
  const etc = (files: Record<string, string>) => {
    const d = aptEtc(files);
    dirs.push(d);
    return d;
  };
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it("recipe.sh names no mirror host: it only reads apt's sources", () => {
    const text = fs.readFileSync(RECIPE, "utf8");
    assert.doesNotMatch(text, /https?:\/\/[a-z]/i, "no http(s) URL with a host name in recipe.sh");
  });

  it("the mirror is the first non-security URI of the deb822 sources (URIs:)", () => {
    const d = etc({ "sources.list.d/debian.sources": DEB822 });
    assert.equal(recipe(d, "apt_mirror").stdout, MACHINE_MIRROR);
  });

  it("or of the one-line sources.list (deb lines, options in brackets included)", () => {
    const d = etc({
      "sources.list": `# comment\ndeb [signed-by=/k.gpg] ${SECURITY} bookworm-security main\ndeb ${MACHINE_MIRROR} bookworm main\n`,
    });
    assert.equal(recipe(d, "apt_mirror").stdout, MACHINE_MIRROR);
  });

  it("FLEET_MIRROR replaces the machine's mirror in the Dockerfile build; the security sources stay", () => {
    const d = etc({ "sources.list.d/debian.sources": DEB822 });
    const r = recipe(d, 'apt_use_mirror "$FLEET_MIRROR"', { FLEET_MIRROR: CHOSEN });
    assert.equal(r.code, 0, r.stderr);
    const after = fs.readFileSync(path.join(d, "sources.list.d", "debian.sources"), "utf8");
    assert.match(after, new RegExp(`^URIs: ${CHOSEN}$`, "m"));
    assert.match(after, new RegExp(`^URIs: ${SECURITY}$`, "m"));
    assert.doesNotMatch(after, new RegExp(`${MACHINE_MIRROR}$`, "m"));
    assert.equal(recipe(d, "apt_mirror").stdout, CHOSEN);
  });

  it("with no mirror in the sources, FLEET_MIRROR fails the build saying which files it read", () => {
    const d = etc({ "sources.list.d/security.sources": `Types: deb\nURIs: ${SECURITY}\nSuites: bookworm-security\n` });
    assert.equal(recipe(d, "apt_mirror").stdout, "");
    const r = recipe(d, 'apt_use_mirror "$FLEET_MIRROR"; echo not-reached', { FLEET_MIRROR: CHOSEN });
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /not-reached/);
    assert.match(r.stderr, /apt.s sources name no Debian mirror to replace/);
    assert.match(r.stderr, /sources\.list\.d\/\*\.sources/);
    assert.match(r.stderr, /sources\.list\b/);
  });
});
