/**
 * The dashboard's pages, server-rendered (issue 21): plain HTML strings from plain data. Every
 * value passes through `Html.text`, which redacts the stack's secret values before escaping, so
 * a secret never reaches the page in any form the CLI's redaction knows.
 */
import { redact } from "../transport/redact";
import type { HistoryEntry } from "../rollback/history";
import type { FleetCell } from "./data";
import type { Bar } from "./deploy-log";
import type { ActionPlan } from "./actions";
import type { RunningAction } from "./runner";

export class Html {
  constructor(
    private readonly secrets: readonly string[],
    /** The page's CSRF token, put in every form. */
    private readonly csrf: string,
  ) {}

  /** Redacted, then escaped for text and attribute values. */
  text(value: string | number): string {
    return redact(String(value), this.secrets)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  csrfField(): string {
    return `<input type="hidden" name="csrf" value="${this.text(this.csrf)}">`;
  }
}

export type View = "fleet" | "history" | "actions";

export function page(h: Html, stack: string, view: View | "", title: string, body: string): string {
  const nav = (["fleet", "history", "actions"] as const)
    .map((v) => `<a href="/${v === "fleet" ? "" : v}"${v === view ? ' aria-current="page"' : ""}>${v}</a>`)
    .join(" ");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${h.text(title)} · fleet ${h.text(stack)}</title>
<meta name="htmx-config" content='{"includeIndicatorStyles":false}'>
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/htmx.min.js" defer></script><script src="/static/dashboard.js" defer></script>
</head><body>
<header><strong>fleet</strong> · stack <code id="stack">${h.text(stack)}</code><nav>${nav}</nav></header>
<main>${body}</main></body></html>`;
}

/** The fleet table: services down, hosts across; a blank cell where a service does not run. */
export function fleetTable(h: Html, cells: readonly FleetCell[], hosts: readonly string[]): string {
  const services = [...new Set(cells.map((c) => c.service))];
  const head = `<tr><th>service</th>${hosts.map((x) => `<th>${h.text(x)}</th>`).join("")}</tr>`;
  const rows = services.map((s) => {
    const tds = hosts.map((host) => {
      const c = cells.find((x) => x.service === s && x.host === host)?.cell;
      if (!c) return `<td class="none"></td>`;
      const lines = [
        `<div class="state">${h.text(c.icon)} ${h.text(c.label)}</div>`,
        c.release
          ? `<div>release <code class="release">${h.text(c.release)}</code>${c.age ? ` <span class="age">${h.text(c.age)} ago</span>` : ""}</div>`
          : "",
        c.commit ? `<div>commit <code>${h.text(c.commit)}</code></div>` : "",
        c.health ? `<div>health <span class="health">${h.text(c.health)}</span></div>` : "",
        c.lock ? `<div class="lock">🔒 ${h.text(c.lock)}</div>` : "",
        c.lastDeploy ? `<div class="last" title="last deploy.log line">${h.text(c.lastDeploy)}</div>` : "",
        ...c.evidence.map((e) => `<div class="evidence">${h.text(e)}</div>`),
      ].join("");
      return `<td class="cell s-${c.state}" data-service="${h.text(s)}" data-host="${h.text(host)}" data-state="${c.state}" data-release="${h.text(c.release)}">${lines}</td>`;
    });
    return `<tr><th>${h.text(s)}</th>${tds.join("")}</tr>`;
  });
  return `<table class="fleet">${head}${rows.join("")}</table><p class="polled">read ${h.text(new Date().toISOString())}</p>`;
}

export function fleetView(h: Html, table: string, driftNote: string): string {
  return `<h1>Fleet</h1>
<div id="fleet" hx-get="/fleet" hx-trigger="every 10s" hx-swap="innerHTML">${table}</div>
<p>${h.text(driftNote)}</p>
<form method="post" action="/actions">${h.csrfField()}<input type="hidden" name="action" value="refresh"><button>Check drift (refresh preview)</button></form>`;
}

/** Deploy durations over time, one bar per deploy.log line, coloured by result. */
export function chart(h: Html, bars: readonly Bar[]): string {
  if (bars.length === 0) return `<p>No deploy.log lines yet.</p>`;
  const shown = bars.slice(-60);
  const max = Math.max(1, ...shown.map((b) => b.seconds));
  const W = 14;
  const H = 120;
  const rects = shown.map((b, i) => {
    const height = Math.max(2, Math.round((b.seconds / max) * H));
    return `<rect class="${b.ok ? "ok" : "bad"}" x="${i * W + 2}" y="${H - height}" width="${W - 4}" height="${height}"><title>${h.text(b.text)}</title></rect>`;
  });
  const first = new Date(shown[0]!.at).toISOString();
  const last = new Date(shown[shown.length - 1]!.at).toISOString();
  return `<figure><svg class="chart" role="img" aria-label="deploy durations" width="${shown.length * W + 4}" height="${H + 2}" viewBox="0 0 ${shown.length * W + 4} ${H + 2}">${rects.join("")}</svg>
<figcaption>deploy durations from deploy.log (longest ${h.text(max)} s), ${h.text(first)} … ${h.text(last)}; <span class="ok">■</span> ok, <span class="bad">■</span> failed or rolled back</figcaption></figure>`;
}

export function historyView(
  h: Html,
  entries: readonly HistoryEntry[] | undefined,
  problem: string | undefined,
  bars: readonly Bar[],
): string {
  const rows = (entries ?? [])
    .slice()
    .reverse()
    .map((e) => {
      const releases = Object.values(e.releases)
        .sort((a, b) => a.resource.localeCompare(b.resource))
        .map((r) => `<code>${h.text(r.resource)}=${h.text(r.releaseId)}</code>`)
        .join(" ");
      const secs = e.endTime && e.startTime ? `${e.endTime - e.startTime}s` : "";
      return `<tr class="r-${h.text(e.result)}" data-version="${e.version}"><td>${e.version}</td><td>${h.text(new Date(e.startTime * 1000).toISOString())}</td><td>${h.text(e.kind)} ${h.text(e.result)}</td><td>${h.text(secs)}</td><td>${h.text(e.message)}</td><td>${releases || "-"}</td></tr>`;
    });
  return `<h1>History</h1>${problem ? `<p class="error">${h.text(problem)}</p>` : ""}
${chart(h, bars)}
<table class="history"><tr><th>update</th><th>time</th><th>result</th><th>took</th><th>message</th><th>releases</th></tr>${rows.join("")}</table>`;
}

export function actionsView(
  h: Html,
  services: readonly string[],
  entries: readonly HistoryEntry[] | undefined,
  known: Readonly<Record<string, readonly string[]>>,
  recent: readonly RunningAction[],
): string {
  const form = (action: string, inner: string, button: string) =>
    `<form method="post" action="/actions" class="action">${h.csrfField()}<input type="hidden" name="action" value="${action}">${inner}<button name="go" value="${action}">${button}</button></form>`;
  const versions = (entries ?? []).map(
    (e) =>
      `<option value="${e.version}">${e.version} · ${h.text(e.result)} · ${h.text(new Date(e.startTime * 1000).toISOString())}</option>`,
  );
  const svcOptions = services.map((s) => `<option>${h.text(s)}</option>`).join("");
  const releases = Object.entries(known).map(
    ([s, rs]) => `<li>${h.text(s)}: ${rs.map((r) => `<code>${h.text(r)}</code>`).join(" ") || "-"}</li>`,
  );
  const list = recent.map(
    (a) =>
      `<li><a href="/actions/${h.text(a.id)}">${h.text(a.action)}</a> by ${h.text(a.by)} at ${h.text(new Date(a.since).toISOString())}: ${a.code === undefined ? "running" : `exit ${a.code}`}</li>`,
  );
  return `<h1>Actions</h1>
${form("preview", "", "Preview")}
${form("refresh", "", "Check drift (refresh preview)")}
${form("deploy", `<label>hosts <input name="hosts" size="16" placeholder="all"></label> <label>services <input name="services" size="16" placeholder="all"></label>`, "Deploy")}
${form("rollback", `<label>update <input name="version" size="4" list="versions"></label><datalist id="versions">${versions.join("")}</datalist>`, "Roll back")}
${form("pin", `<label>service <select name="service">${svcOptions}</select></label> <label>release <input name="release" size="14"></label>`, "Pin")}
<details><summary>releases the history knows</summary><ul>${releases.join("")}</ul></details>
<form method="get" action="/logs" class="action"><label>service <select name="service">${svcOptions}</select></label><button>Tail logs</button></form>
<h2>Recent</h2><ul class="recent">${list.join("") || "<li>none</li>"}</ul>`;
}

/** The confirmation: the same fields again, with `confirm=yes`. */
export function confirmView(h: Html, plan: ActionPlan, form: Readonly<Record<string, string | undefined>>): string {
  const fields = Object.entries(form)
    .filter(([k, v]) => v !== undefined && k !== "csrf" && k !== "confirm" && k !== "go")
    .map(([k, v]) => `<input type="hidden" name="${h.text(k)}" value="${h.text(v!)}">`)
    .join("");
  return `<h1>Confirm</h1><p class="confirm">${h.text(plan.confirm)}</p>
<p>Runs <code>npm run ${h.text(plan.argv.join(" "))}</code>.</p>
<form method="post" action="/actions">${h.csrfField()}${fields}<input type="hidden" name="confirm" value="yes"><button id="confirm">Yes, ${h.text(plan.label)}</button> <a href="/actions">Cancel</a></form>`;
}

export function problemView(h: Html, title: string, problem: string): string {
  return `<h1>${h.text(title)}</h1><p class="error" id="problem">${h.text(problem)}</p><p><a href="/actions">Back</a></p>`;
}

/** A running or ended action: its output so far, then live from its event stream. */
export function actionView(h: Html, a: RunningAction): string {
  const status = a.code === undefined ? "running" : `exit ${a.code}`;
  return `<h1>${h.text(a.action)}</h1><p>started by ${h.text(a.by)} at ${h.text(new Date(a.since).toISOString())} · <span id="status" data-code="${a.code ?? ""}">${status}</span></p>
<pre id="output" data-events="/actions/${h.text(a.id)}/events"></pre>`;
}

export function logsView(h: Html, service: string): string {
  return `<h1>Logs: ${h.text(service)}</h1><p><span id="status">following</span> (journal lines from every host, secrets redacted)</p>
<pre id="output" data-events="/logs/events?service=${encodeURIComponent(service)}"></pre>`;
}
