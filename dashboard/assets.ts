/**
 * The dashboard's own static files: its stylesheet and the small script that follows an event
 * stream into the page. htmx comes from node_modules (package.json), served by the dashboard:
 * no CDN, the page works offline.
 */
import * as path from "path";
import { PROJECT_DIR } from "../engine/cli";

export const HTMX_FILE = path.join(PROJECT_DIR, "node_modules", "htmx.org", "dist", "htmx.min.js");

export const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1d232a;color:#fff;padding:.6em 1em;display:flex;gap:1em;align-items:center}
header nav a{color:#cfe3ff;margin-left:1em}header nav a[aria-current]{color:#fff;font-weight:bold}
main{padding:1em}table{border-collapse:collapse;background:#fff}th,td{border:1px solid #d5d9de;padding:.4em .6em;vertical-align:top;text-align:left}
td.cell{min-width:16em;border-left-width:6px}.s-ok{border-left-color:#2e9e44}.s-failed,.s-down{border-left-color:#d2312f;background:#fff1f0}
.s-drift{border-left-color:#d98b00;background:#fff8e6}.s-deploying{border-left-color:#2f6fd2;background:#eef4ff}.s-unreachable{border-left-color:#8a8f96;background:#f0f1f2}
.s-absent{border-left-color:#d5d9de}.state{font-weight:bold}.s-ok .state{color:#2e9e44}.s-failed .state,.s-down .state{color:#d2312f}.s-drift .state{color:#a66900}
.last,.evidence{font-size:12px;color:#505860;max-width:28em;word-break:break-all}.evidence{color:#8a1f1d}
.error{color:#b00020;font-weight:bold}pre{background:#111;color:#e6e6e6;padding:1em;max-height:60vh;overflow:auto;white-space:pre-wrap}
form.action{margin:.5em 0;padding:.5em;background:#fff;border:1px solid #d5d9de}button{margin-left:.5em}
rect.ok,.ok{fill:#2e9e44;color:#2e9e44}rect.bad,.bad{fill:#d2312f;color:#d2312f}.chart{background:#fff;border:1px solid #d5d9de}
tr.r-failed td{background:#fff1f0}`;

/** Follows `[data-events]` (server-sent events: `line`, then `end` with the exit code). */
export const CLIENT_JS = `"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var out = document.querySelector("[data-events]");
  if (!out) return;
  var status = document.getElementById("status");
  var es = new EventSource(out.getAttribute("data-events"));
  es.addEventListener("line", function (e) {
    out.appendChild(document.createTextNode(JSON.parse(e.data) + "\\n"));
    out.scrollTop = out.scrollHeight;
  });
  es.addEventListener("end", function (e) {
    var code = JSON.parse(e.data).code;
    if (status) { status.textContent = "exit " + code; status.setAttribute("data-code", String(code)); }
    es.close();
  });
  es.onerror = function () { if (status && !status.getAttribute("data-code")) status.textContent = "stream ended"; es.close(); };
});`;
