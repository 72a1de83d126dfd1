import { strict as assert } from "assert";
import { shippedProvider } from "../../providers/ship";
import { UNKNOWN, secret, withProvider, type Props } from "../support/provider-host";
import { providerHostForSuite } from "../support/provider-host-suite";
import { dockerImageInputs, hcloudImageInputs, imageHostConnection as conn } from "../support/provider-inputs";

// What ships in state: the bundled providers (providers/ship.ts), as GoldenImage registers them.
const dockerImageProvider = shippedProvider("dockerImage");
const hcloudImageProvider = shippedProvider("hcloudImage");

/** The component's own inputs, with the secrets it marks (the hosts' connections, the token). */
const docker = (): Props =>
  dockerImageInputs("web", {}, { hostConnections: secret([conn]), hostAddresses: [conn.host] });
const hcloud = (): Props => hcloudImageInputs("agent", {}, { token: secret("hcloud-token") });

/** The image providers' check inside Pulumi's real provider host: the model's rules, as the config applies them. */
describe("Image providers' check in Pulumi's provider host", function () {
  this.timeout(30_000);
  const host = providerHostForSuite();

  const check = async (provider: object, inputs: Props) =>
    (await host().check("urn:pulumi:test::fleet::x::img", {}, await withProvider(provider, inputs))).failures;

  it("docker: accepts the component's inputs and names each field the config would refuse", async () => {
    assert.deepEqual(await check(dockerImageProvider, docker()), []);
    const failures = await check(dockerImageProvider, {
      ...docker(),
      name: "constructor",
      validate: { ...(docker()["validate"] as object), url: "http://127.0.0.1/é" },
      hostConnections: secret([{ ...conn, host: "a b" }]),
    });
    assert.deepEqual(failures.map((f) => f.property).sort(), ["hostConnections[0].host", "name", "validate.url"]);
  });

  it("hcloud: accepts the component's inputs and names each field the config would refuse", async () => {
    assert.deepEqual(await check(hcloudImageProvider, hcloud()), []);
    const failures = await check(hcloudImageProvider, { ...hcloud(), name: "gold-", check: " " });
    assert.deepEqual(failures.map((f) => f.property).sort(), ["check", "name"]);
  });

  it("lets preview's unknowns through", async () => {
    assert.deepEqual(
      await check(dockerImageProvider, { ...docker(), hostConnections: UNKNOWN, hostAddresses: UNKNOWN }),
      [],
    );
    assert.deepEqual(await check(hcloudImageProvider, { ...hcloud(), token: UNKNOWN, check: UNKNOWN }), []);
  });
});
