import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import { utils } from "ssh2";
import { fingerprint, pinnedFingerprint } from "../../transport/ssh";
import { SimulatedResource } from "../support/provider-host";
import { providerHostForSuite } from "../support/provider-host-suite";

// What ships in state: the bundled provider (providers/ship.ts), as the components register it.
const hostKeyProvider = shippedProvider("hostKey");

describe("HostKey provider in Pulumi's provider host", function () {
  this.timeout(30_000);
  const host = providerHostForSuite();

  it("makes an ed25519 host key once, keeps the private half secret, and never changes it", async () => {
    const r = new SimulatedResource(host(), hostKeyProvider, {
      name: "vps-hostkey",
      additionalSecretOutputs: ["privateKey"],
    });
    const { state } = await r.up({});
    const out = state!.plainOutputs as { privateKey: string; publicKey: string; fingerprint: string };
    assert.match(out.publicKey, /^ssh-ed25519 AAAA[A-Za-z0-9+/=]+$/);
    assert.match(out.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    const parsed = utils.parseKey(out.privateKey);
    assert.ok(!(parsed instanceof Error), "the private key parses");
    assert.equal(pinnedFingerprint(out.publicKey), out.fingerprint);
    assert.equal(
      fingerprint((parsed as { getPublicSSH(): Buffer }).getPublicSSH()),
      out.fingerprint,
      "the halves belong together",
    );
    assert.deepEqual(state!.secretOutputKeys, ["privateKey"]);
    assert.ok(!r.plainStateJson().includes(out.privateKey.split("\n")[1]!), "the private key is not in plain state");
    assert.equal((await r.up({})).op, "same", "a host key never changes by itself");
    assert.equal(state!.id, out.fingerprint);
  });
});
