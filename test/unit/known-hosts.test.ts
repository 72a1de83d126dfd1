import { generateEd25519 } from "../../transport/keys";
import { strict as assert } from "assert";
import { hostKeyFromKnownHosts } from "../../transport/known-hosts";
import { fingerprint, hostKeyAlgorithms, pinnedFingerprint } from "../../transport/ssh";

const KH = [
  "# comment",
  "127.0.0.11,web1 ssh-rsa AAAAB3NzaC1yc2E",
  "127.0.0.11,web1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEd",
  "[127.0.0.12]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIXX",
  "|1|hashed|entry= ssh-ed25519 AAAAC3Nza",
].join("\n");

describe("transport: known_hosts and host key pins", () => {
  it("finds the key for an address, preferring ed25519", () => {
    assert.equal(hostKeyFromKnownHosts(KH, "127.0.0.11"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEd");
    assert.equal(hostKeyFromKnownHosts(KH, "127.0.0.12", 2222), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIXX");
    assert.equal(hostKeyFromKnownHosts(KH, "127.0.0.12"), undefined, "port 22 is not port 2222");
    assert.equal(hostKeyFromKnownHosts(KH, "127.0.0.99"), undefined);
  });

  it("a pin is a fingerprint of the key's blob, whichever way it is written", () => {
    const blob = Buffer.from("AAAAC3NzaC1lZDI1NTE5AAAAIEd", "base64");
    const fp = fingerprint(blob);
    assert.match(fp, /^SHA256:[A-Za-z0-9+/]+$/);
    assert.equal(pinnedFingerprint("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEd"), fp);
    assert.equal(pinnedFingerprint("web1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEd comment"), fp);
    assert.equal(pinnedFingerprint(fp), fp);
    assert.throws(() => pinnedFingerprint("not a key"), /hostKey is neither/);
  });

  it("offers only the pinned key's algorithm, so the server presents that key", () => {
    assert.deepEqual(hostKeyAlgorithms("ssh-ed25519 AAAA"), ["ssh-ed25519"]);
    assert.deepEqual(hostKeyAlgorithms("ssh-rsa AAAA"), ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
    assert.equal(hostKeyAlgorithms("SHA256:abc"), undefined);
  });
});

describe("generateEd25519 (transport/keys.ts)", () => {
  it("every key it returns parses (ssh2's own generator makes a malformed one about 1 time in 256)", () => {
    const { utils } = require("ssh2") as typeof import("ssh2");
    for (let i = 0; i < 1500; i++) {
      const pair = generateEd25519(`k${i}`);
      assert.ok(!(utils.parseKey(pair.private) instanceof Error), `key ${i} does not parse`);
    }
  });
  it("a malformed pair from the generator is thrown away and another is made", () => {
    const good = generateEd25519("good");
    let calls = 0;
    const pair = generateEd25519("x", () => (++calls === 1 ? { private: "-----BEGIN junk", public: "" } : good));
    assert.equal(calls, 2);
    assert.equal(pair, good);
  });
});
