import { strict as assert } from "assert";
import { hostOfServiceResource, serviceResourceName } from "../../model/resource-names";

describe("model/resource-names: the names of fleet's resources", () => {
  it("a service on one host is its name; on several, <service>@<host>, and the host is read back from it", () => {
    assert.equal(serviceResourceName("api", "web1", false), "api");
    assert.equal(serviceResourceName("api", "web1", true), "api@web1");
    assert.equal(hostOfServiceResource("api", serviceResourceName("api", "web1", true)), "web1");
    assert.equal(hostOfServiceResource("api", "api"), undefined);
    // A service whose name starts like another's is not taken for it.
    assert.equal(hostOfServiceResource("api", "api-v2@web1"), undefined);
  });
});
