/**
 * The dashboard's HTTP server (issue 21), on node:http, or node:https with a certificate (which
 * off loopback it must have: auth.ts plainHttpProblem): the three views (fleet, history,
 * actions), the actions (POST, CSRF token, confirmation, one at a time), their output and the
 * logs as server-sent events. Every response passes the admission check (auth.ts) first.
 */
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import * as os from "os";
import { driftedResources, driftVerdict } from "../decisions/drift";
import { streamLogs } from "../operate/logs";
import type { OperatorConfig } from "../operate/targets";
import { redact } from "../transport/redact";
import { deploySelectionProblem, knownReleases, planAction, type ActionContext } from "./actions";
import { CLIENT_JS, CSS, HTMX_FILE } from "./assets";
import { admit, csrfProblem, hostAllowed, newToken, plainHttpProblem, TOKEN_COOKIE, type Listen } from "./auth";
import { deployLogs, fleetCells, historyOf, type Where } from "./data";
import { barsOf } from "./deploy-log";
import {
  actionsView,
  actionView,
  confirmView,
  fleetTable,
  fleetView,
  historyView,
  Html,
  logsView,
  page,
  problemView,
} from "./html";
import { ActionRunner, type ActionEvent } from "./runner";

export interface DashboardOptions {
  readonly listen: Listen;
  /** Required when `listen.tokenRequired`. */
  readonly token: string;
  /** Serve HTTPS with this certificate and key (PEM). Required off loopback. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  readonly where: Where;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** Reads the stack's config (again after every action: pins and config may have changed). */
  readonly loadConfig: () => OperatorConfig;
}

const MAX_BODY = 64 * 1024;

export class Dashboard {
  readonly csrf = newToken();
  private op: OperatorConfig;
  private drifted = new Set<string>();
  private driftNote = "No refresh preview yet: the cells compare the hosts with the stack's state.";
  readonly runner: ActionRunner;
  private readonly server: http.Server | https.Server;

  constructor(private readonly o: DashboardOptions) {
    // The script refuses first, as a usage error; this refuses any other caller, before any listen.
    const plain = o.tls ? undefined : plainHttpProblem(o.listen);
    if (plain) throw new Error(`dashboard: refused: ${plain}`);
    this.op = o.loadConfig();
    this.runner = new ActionRunner({
      cwd: o.cwd,
      env: o.env,
      secrets: () => this.op.secrets,
      onEnd: (a, output) => {
        if (a.plan.kind === "refresh") this.noteRefresh(a.code ?? 1, output);
        try {
          this.op = o.loadConfig();
        } catch {
          // keep the config we have; the next page says what is wrong when it reads the hosts
        }
      },
    });
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent)
          this.send(
            res,
            500,
            page(this.html(), o.where.stack, "", "error", problemView(this.html(), "Error", (err as Error).message)),
          );
        else res.end();
      });
    };
    this.server = o.tls
      ? https.createServer({ cert: o.tls.cert, key: o.tls.key }, handler)
      : http.createServer(handler);
  }

  private get scheme(): "http" | "https" {
    return this.o.tls ? "https" : "http";
  }

  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.o.listen.port, this.o.listen.host, () => {
        const host = this.o.listen.host.includes(":") ? `[${this.o.listen.host}]` : this.o.listen.host;
        resolve(`${this.scheme}://${host}:${this.o.listen.port}/`);
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private noteRefresh(code: number, output: string): void {
    const verdict = driftVerdict(code, output);
    if (verdict.kind === "error") {
      this.driftNote = `The last refresh preview failed (exit ${code}): drift is unknown.`;
      return;
    }
    this.drifted = new Set(verdict.kind === "drift" ? driftedResources(output).map((r) => r.name) : []);
    this.driftNote =
      verdict.kind === "drift"
        ? `The last refresh preview (${new Date().toISOString()}) proposes changes to: ${[...this.drifted].join(", ")}.`
        : `The last refresh preview (${new Date().toISOString()}) found the stack in sync.`;
  }

  private html(): Html {
    return new Html(this.op.secrets, this.csrf);
  }

  private send(res: http.ServerResponse, status: number, body: string, type = "text/html; charset=utf-8"): void {
    const text = redact(body, this.op.secrets);
    res.writeHead(status, {
      "Content-Type": type,
      "Content-Length": Buffer.byteLength(text),
      "Cache-Control": "no-store",
      "Content-Security-Policy": "default-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'",
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "same-origin",
    });
    res.end(text);
  }

  private problem(res: http.ServerResponse, status: number, title: string, why: string): void {
    const h = this.html();
    this.send(res, status, page(h, this.o.where.stack, "", title, problemView(h, title, why)));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://dashboard.invalid");
    if (!hostAllowed(this.o.listen, req.headers.host))
      return this.problem(
        res,
        421,
        "Refused",
        `this dashboard answers only on loopback, not as ${req.headers.host ?? "(no Host)"}`,
      );
    const admitted = admit(this.o.listen, this.o.token, {
      authorization: req.headers.authorization,
      cookie: req.headers.cookie,
      queryToken: url.searchParams.get("token"),
    });
    if (!admitted.ok) return this.problem(res, 401, "Token required", admitted.why);
    if (admitted.setCookie) {
      // The token leaves the address bar (and the history) for an HttpOnly cookie.
      url.searchParams.delete("token");
      res.writeHead(303, {
        "Set-Cookie": `${TOKEN_COOKIE}=${encodeURIComponent(this.o.token)}; HttpOnly; SameSite=Strict; Path=/${this.o.tls ? "; Secure" : ""}`,
        Location: url.pathname + url.search,
      });
      res.end();
      return;
    }
    const h = this.html();
    const stack = this.o.where.stack;
    const route = `${req.method} ${url.pathname}`;
    if (route === "GET /static/htmx.min.js")
      return this.send(res, 200, fs.readFileSync(HTMX_FILE, "utf8"), "text/javascript; charset=utf-8");
    if (route === "GET /static/dashboard.js") return this.send(res, 200, CLIENT_JS, "text/javascript; charset=utf-8");
    if (route === "GET /favicon.ico") {
      res.writeHead(204);
      res.end();
      return;
    }
    if (route === "GET /static/dashboard.css") return this.send(res, 200, CSS, "text/css; charset=utf-8");
    if (route === "GET /") {
      const table = fleetTable(
        h,
        await fleetCells(this.op, this.o.where, this.drifted),
        Object.keys(this.op.cfg.hosts),
      );
      return this.send(res, 200, page(h, stack, "fleet", "fleet", fleetView(h, table, this.driftNote)));
    }
    if (route === "GET /fleet")
      return this.send(
        res,
        200,
        fleetTable(h, await fleetCells(this.op, this.o.where, this.drifted), Object.keys(this.op.cfg.hosts)),
      );
    if (route === "GET /history") {
      const { entries, problem } = historyOf(this.o.where);
      const bars = barsOf(await deployLogs(this.op));
      return this.send(res, 200, page(h, stack, "history", "history", historyView(h, entries, problem, bars)));
    }
    if (route === "GET /actions") {
      const { entries } = historyOf(this.o.where);
      const services = Object.keys(this.op.cfg.services);
      const known = Object.fromEntries(services.map((s) => [s, entries ? knownReleases(entries, s) : []]));
      return this.send(
        res,
        200,
        page(h, stack, "actions", "actions", actionsView(h, services, entries, known, this.runner.list())),
      );
    }
    if (route === "POST /actions") return this.post(req, res);
    const actionPath = /^\/actions\/([0-9a-f]{12})(\/events)?$/.exec(url.pathname);
    if (req.method === "GET" && actionPath) {
      const a = this.runner.get(actionPath[1]!);
      if (!a)
        return this.problem(res, 404, "No such action", `no action ${actionPath[1]} (the dashboard keeps the last 20)`);
      if (!actionPath[2]) return this.send(res, 200, page(h, stack, "actions", a.action, actionView(h, a)));
      return this.events(req, res, (emit) => {
        for (const text of a.lines) emit({ kind: "line", text });
        if (a.code !== undefined) {
          emit({ kind: "end", code: a.code });
          return undefined;
        }
        a.listeners.add(emit);
        return () => a.listeners.delete(emit);
      });
    }
    if (route === "GET /logs" || route === "GET /logs/events") {
      const service = url.searchParams.get("service") ?? "";
      if (!Object.hasOwn(this.op.cfg.services, service))
        return this.problem(
          res,
          400,
          "Bad input",
          `unknown service ${JSON.stringify(service)}: the stack's services are ${Object.keys(this.op.cfg.services).join(", ")}`,
        );
      if (route === "GET /logs")
        return this.send(res, 200, page(h, stack, "actions", `logs ${service}`, logsView(h, service)));
      return this.logs(req, res, service);
    }
    return this.problem(res, 404, "Not found", `nothing at ${req.method} ${url.pathname}`);
  }

  /** A server-sent event stream; `subscribe` replays and follows, and returns how to stop following. */
  private events(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    subscribe: (emit: (e: ActionEvent) => void) => (() => void) | undefined,
  ): void {
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      Connection: "keep-alive",
    });
    let open = true;
    const following: { stop?: (() => void) | undefined } = {};
    const emit = (e: ActionEvent) => {
      if (!open) return;
      const data =
        e.kind === "line" ? JSON.stringify(redact(e.text, this.op.secrets)) : JSON.stringify({ code: e.code });
      res.write(`event: ${e.kind}\ndata: ${data}\n\n`);
      if (e.kind === "end") {
        open = false;
        following.stop?.();
        res.end();
      }
    };
    req.on("close", () => {
      open = false;
      following.stop?.();
    });
    following.stop = subscribe(emit);
    if (!open) following.stop?.();
  }

  private logs(req: http.IncomingMessage, res: http.ServerResponse, service: string): void {
    const abort = new AbortController();
    this.events(req, res, (emit) => {
      const line = (b: Buffer) => emit({ kind: "line", text: b.toString("utf8").replace(/\r?\n$/, "") });
      // operate/logs.ts: the logs command's own code, lines redacted as it streams.
      void streamLogs(this.op, { service, lines: 50, follow: true }, { stdout: line, stderr: line }, abort.signal).then(
        (results) => emit({ kind: "end", code: results.every((r) => r.ok) ? 0 : 1 }),
      );
      return () => abort.abort();
    });
  }

  private async post(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (body === undefined) return this.problem(res, 413, "Bad input", `the form is larger than ${MAX_BODY} bytes`);
    const form = Object.fromEntries(new URLSearchParams(body)) as Record<string, string | undefined>;
    const refused = csrfProblem(this.csrf, {
      csrf: form["csrf"],
      origin: req.headers.origin,
      host: req.headers.host,
      scheme: this.scheme,
    });
    if (refused) return this.problem(res, 403, "Refused", `${refused}. Nothing was run.`);
    const { entries } = historyOf(this.o.where);
    const ctx: ActionContext = {
      stack: this.o.where.stack,
      cwd: this.o.cwd,
      services: Object.keys(this.op.cfg.services),
      history: entries,
      selectionProblem: deploySelectionProblem(this.op.cfg, this.o.where.stack, this.o.where.project),
    };
    const planned = planAction(form, ctx);
    if (!planned.ok) return this.problem(res, 400, "Bad input", planned.problem);
    const h = this.html();
    if (form["confirm"] !== "yes")
      return this.send(res, 200, page(h, this.o.where.stack, "actions", "confirm", confirmView(h, planned.plan, form)));
    const by = `${os.userInfo().username} via ${req.socket.remoteAddress ?? "?"}`;
    const started = this.runner.start(planned.plan, by);
    if (!started.ok) return this.problem(res, 409, "Busy", started.message);
    res.writeHead(303, { Location: `/actions/${started.action.id}` });
    res.end();
  }
}

function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (d: Buffer) => {
      size += d.length;
      if (size <= MAX_BODY) chunks.push(d);
    });
    req.on("end", () => resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
