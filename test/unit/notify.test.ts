import { strict as assert } from "assert";
import { notificationBody, summary } from "../../decisions/notify";
import { parseFleetConfig } from "../../config/schema";
import type { NotifyEvent } from "../../model/notify";

const event: NotifyEvent = {
  event: "rollback",
  service: "aether-core",
  host: "127.0.0.11",
  from: "aaaaaaaaaaaa",
  to: "bbbbbbbbbbbb",
  commit: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
  durationMs: 9300,
  message: "health gate failed: HTTP 500",
};

describe("decisions/notify", () => {
  it("each kind gets the body its API expects", () => {
    assert.deepEqual(Object.keys(notificationBody({ kind: "slack", url: "u" }, event)!), ["text"]);
    assert.deepEqual(Object.keys(notificationBody({ kind: "discord", url: "u" }, event)!), ["content"]);
    assert.deepEqual(notificationBody({ kind: "telegram", url: "u", chatId: "42" }, event), {
      chat_id: "42",
      text: summary(event, 4000),
      disable_web_page_preview: true,
    });
    const hook = notificationBody({ kind: "webhook", url: "u" }, event) as Record<string, unknown>;
    assert.equal(hook["event"], "rollback");
    assert.equal(hook["service"], "aether-core");
    assert.equal(hook["from"], "aaaaaaaaaaaa");
    assert.equal(hook["to"], "bbbbbbbbbbbb");
    assert.equal(hook["durationMs"], 9300);
  });

  it("the summary names what happened, where, from → to, and how long", () => {
    assert.equal(
      summary(event, 4000),
      "⚠️ deploy failed, rolled back: aether-core on 127.0.0.11, aaaaaaaaaaaa → bbbbbbbbbbbb (9.3 s)\nhealth gate failed: HTTP 500",
    );
    assert.equal(summary({ ...event, message: "x".repeat(5000) }, 2000).length, 2000, "cut to the API's limit");
  });

  it("a target that lists events skips the others", () => {
    assert.equal(notificationBody({ kind: "slack", url: "u", events: ["critical"] }, event), undefined);
    assert.ok(notificationBody({ kind: "slack", url: "u", events: ["rollback"] }, event));
  });

  it("config: telegram needs a chat; a target may only name known services", () => {
    const base = {
      hosts: { h: { address: "127.0.0.1", hostKey: "SHA256:x", privateKeyFile: "/k" } },
      services: { s: { host: "h", source: { path: "." }, start: "x", health: { url: "http://127.0.0.1/" } } },
    };
    assert.throws(
      () =>
        parseFleetConfig({ ...base, notify: [{ kind: "telegram", url: "https://api.telegram.org/botT/sendMessage" }] }),
      /notify\.0\.chatId: a telegram target needs chatId/,
    );
    assert.throws(
      () =>
        parseFleetConfig({
          ...base,
          notify: [{ kind: "slack", url: "https://hooks.slack.com/x", services: ["nope"] }],
        }),
      /notify\.0\.services: no service "nope"/,
    );
    assert.equal(
      parseFleetConfig({ ...base, notify: [{ kind: "webhook", url: "http://127.0.0.1:9/h" }] }).notify.length,
      1,
    );
  });
});
