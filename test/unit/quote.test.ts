import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import { emitBytes, shq, systemdEnvValue, systemdExecArg, writeFileAtomic } from "../../commands/quote";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const HOSTILE = [
  "plain",
  "with space",
  "it's",
  `"double"`,
  "$(touch /tmp/pwned)",
  "`id`",
  "back\\slash",
  "new\nline",
  "tab\there",
  "ünïcødé ✓",
  "%h %i",
  "$HOME ${PATH}",
  "'; rm -rf / #",
  "",
];

function sh(script: string): string {
  return execFileSync("/bin/sh", ["-c", script], { encoding: "utf8" });
}

describe("commands/quote", () => {
  it("shq: every hostile value reaches a real shell byte-exact", () => {
    for (const value of HOSTILE) assert.equal(sh(`printf '%s' ${shq(value)}`), value, JSON.stringify(value));
  });

  it("shq: leaves simple words readable and refuses NUL", () => {
    assert.equal(shq("/srv/fleet/web"), "/srv/fleet/web");
    assert.equal(shq("a b"), "'a b'");
    assert.throws(() => shq("a\0b"), /NUL/);
  });

  it("emitBytes: a shell prints exactly the content, whatever it holds", () => {
    for (const value of HOSTILE) assert.equal(sh(emitBytes(value)), value);
  });

  it("writeFileAtomic: writes byte-exact content with the mode, leaving no temp file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fleet-quote-"));
    const file = path.join(dir, "it's a file");
    const content = HOSTILE.join("\n");
    sh(writeFileAtomic(file, content, "600"));
    assert.equal(fs.readFileSync(file, "utf8"), content);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(dir), ["it's a file"]);
  });

  it("systemdEnvValue: escapes the characters systemd unescapes in double quotes", () => {
    assert.equal(systemdEnvValue(`a"b$c\`d\\e`), `"a\\"b\\$c\\\`d\\\\e"`);
  });

  it("systemdExecArg: doubles $ and % so systemd expands neither, C-escapes the rest", () => {
    assert.equal(systemdExecArg(`echo "$HOME" 100%`), `"echo \\"$$HOME\\" 100%%"`);
    assert.equal(systemdExecArg("a\\b\nc"), `"a\\\\b\\nc"`);
  });
});
