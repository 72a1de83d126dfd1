import { strict as assert } from "assert";
import { commitMatches, judgeHealth, jsonField, type ProbeOutcome } from "../../decisions/health";

const health = { url: "http://127.0.0.1:8080/api/health", expectStatus: 200, timeoutMs: 5000, intervalMs: 100 };
const withVersion = { ...health, version: { url: "http://127.0.0.1:8080/api/version", field: "build.commit" } };
const ok: ProbeOutcome = { result: "ok", status: "200", body: "{}", curlError: "", active: "active", journal: "" };
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

describe("decisions/health", () => {
  it("passes a healthy probe with no version check", () => {
    assert.deepEqual(judgeHealth(ok, health, COMMIT), { ok: true });
  });

  it("names the timeout with the last status seen", () => {
    const v = judgeHealth({ ...ok, result: "timeout", status: "500" }, health, COMMIT);
    assert.equal(v.ok, false);
    assert.match(v.failedCheck!, /did not answer 200 within 5000 ms; last: HTTP 500/);
  });

  it("says when nothing answered, with curl's reason", () => {
    const v = judgeHealth({ ...ok, result: "timeout", status: "000", curlError: "Connection refused" }, health, COMMIT);
    assert.match(v.failedCheck!, /no HTTP answer \(Connection refused\)/);
  });

  it("says when the process exited during the gate", () => {
    assert.match(judgeHealth({ ...ok, result: "exited", active: "activating" }, health, COMMIT).failedCheck!, /exited/);
  });

  it("checks the version endpoint's field against the deployed commit (short or full)", () => {
    const body = (commit: string) => JSON.stringify({ build: { commit } });
    assert.equal(judgeHealth({ ...ok, versionStatus: "200", versionBody: body(COMMIT) }, withVersion, COMMIT).ok, true);
    assert.equal(
      judgeHealth({ ...ok, versionStatus: "200", versionBody: body("0123456") }, withVersion, COMMIT).ok,
      true,
    );
    const wrong = judgeHealth({ ...ok, versionStatus: "200", versionBody: body("fedcba9") }, withVersion, COMMIT);
    assert.equal(wrong.ok, false);
    assert.match(wrong.failedCheck!, /reports build.commit="fedcba9", expected 0123456789abcdef/);
    assert.match(
      judgeHealth({ ...ok, versionStatus: "404", versionBody: "" }, withVersion, COMMIT).failedCheck!,
      /HTTP 404/,
    );
    assert.equal(judgeHealth({ ...ok, versionStatus: "200", versionBody: "not json" }, withVersion, COMMIT).ok, false);
  });

  it("reads the version field by its JSON path, whatever the text around it (the gate's one definition)", () => {
    const verdict = (versionBody: string) =>
      judgeHealth({ ...ok, versionStatus: "200", versionBody }, withVersion, COMMIT).ok;
    // Another field of the same name, before or after the one configured.
    assert.equal(verdict(JSON.stringify({ build: { commit: "0000000" }, commit: COMMIT })), false);
    assert.equal(verdict(JSON.stringify({ commit: "0000000", build: { commit: COMMIT } })), true);
    // Escaped quotes, white space, case, and a body spread over lines.
    assert.equal(verdict(JSON.stringify({ note: 'say "commit": "x"', build: { commit: COMMIT } })), true);
    assert.equal(verdict(`{ "build" : {\n  "commit" :\t" ${COMMIT.toUpperCase()} "\n} }`), true);
    assert.equal(verdict(`{"build": {"commit": "${COMMIT}"}, "build": {"commit": "0000000"}}`), false);
  });

  it("commitMatches needs 7 characters for a prefix match", () => {
    assert.equal(commitMatches("012345", COMMIT), false);
    assert.equal(commitMatches("0123456", COMMIT), true);
    assert.equal(commitMatches("", COMMIT), false);
  });

  it("jsonField reads dotted paths and tolerates bad JSON", () => {
    assert.equal(jsonField('{"a":{"b":"c"}}', "a.b"), "c");
    assert.equal(jsonField("{", "a"), undefined);
    assert.equal(jsonField('{"a":1}', "a.b"), undefined);
  });
});
