import { strict as assert } from "assert";
import { parseDuration } from "../../model/duration";
import { redact, tail } from "../../transport/redact";
import { checkServiceInputs } from "../../providers/service/check";
import { lockIsStale } from "../../providers/service/deploy";
import { UNKNOWN } from "../../decisions/service-diff";

describe("small pure helpers", () => {
  it("parseDuration", () => {
    assert.equal(parseDuration("250ms", "x"), 250);
    assert.equal(parseDuration("1.5s", "x"), 1500);
    assert.equal(parseDuration("2m", "x"), 120000);
    assert.throws(
      () => parseDuration("10", "services.web.health.timeout"),
      /services\.web\.health\.timeout: "10" is not a duration/,
    );
  });

  it("redact removes whole secrets and their long lines, not short words", () => {
    const key = "-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\n-----END KEY-----";
    assert.equal(redact("token=s3cr3t! ok", ["s3cr3t!"]), "token=[secret] ok");
    assert.equal(redact("leaked AAAABBBBCCCCDDDD here", [key]), "leaked [secret] here");
    assert.equal(redact("on and on", ["on"]), "on and on");
    assert.equal(tail("a\nb\nc\n\n", 2), "b\nc");
  });

  it("a lock is stale only if taken on this machine by a dead process, or by a deploy this process no longer runs", () => {
    const owner = "who=me@box\nmachine=box\npid=123\ntoken=t1\n";
    const me = (over: object = {}) => ({ machine: "box", pid: 999, alive: () => false, heldTokens: [], ...over });
    assert.equal(lockIsStale(owner, me()), true);
    assert.equal(lockIsStale(owner, me({ alive: () => true })), false);
    assert.equal(lockIsStale(owner, me({ machine: "other" })), false, "another machine's process cannot be checked");
    assert.equal(lockIsStale("garbage", me()), false);
    assert.equal(
      lockIsStale(owner, me({ pid: 123, alive: () => true })),
      true,
      "our own process, not a deploy it runs",
    );
    assert.equal(
      lockIsStale(owner, me({ pid: 123, alive: () => true, heldTokens: ["t1"] })),
      false,
      "our own running deploy",
    );
  });

  it("the provider's check names bad fields and lets unknowns through", () => {
    const failures = checkServiceInputs({
      name: "../etc",
      root: "/",
      env: { "A-B": "x", FLEET_COMMIT: "y" },
      start: "a\nb",
      keepReleases: 1,
      health: { url: "nope" },
    });
    const props = failures.map((f) => f.property).sort();
    assert.deepEqual(props, ["env.A-B", "env.FLEET_COMMIT", "health.url", "keepReleases", "name", "root", "start"]);
    assert.deepEqual(checkServiceInputs({ name: UNKNOWN, root: UNKNOWN, env: UNKNOWN, health: { url: UNKNOWN } }), []);
  });
});

describe("the provider's check: hostile values (issue #10)", () => {
  const props = (news: Record<string, unknown>) => checkServiceInputs(news).map((f) => f.property);

  it("refuses unit names systemctl would take for another unit, or a template", () => {
    assert.deepEqual(props({ unitName: "cron.service" }), ["unitName"]);
    assert.deepEqual(props({ unitName: "ssh.socket" }), ["unitName"]);
    assert.deepEqual(props({ unitName: "web@" }), ["unitName"]);
    assert.deepEqual(props({ unitName: "web@blue" }), []);
    assert.deepEqual(props({ unitName: "web.v2" }), []);
  });

  it("refuses a multi-line bodyContains, a non-ASCII URL and env values systemd refuses", () => {
    assert.deepEqual(props({ health: { url: "http://127.0.0.1/", bodyContains: "a\nb" } }), ["health.bodyContains"]);
    assert.deepEqual(props({ health: { url: "http://127.0.0.1/é" } }), ["health.url"]);
    assert.deepEqual(props({ env: { A: "x\ufffe" }, secretEnv: { B: "\u{10ffff}" } }), ["env.A", "secretEnv.B"]);
    assert.deepEqual(
      props({ health: { url: "http://127.0.0.1/{a,b}", bodyContains: "ok \"'$" }, env: { A: "ü\n" } }),
      [],
    );
  });
});
