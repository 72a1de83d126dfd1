/**
 * Who may use the dashboard (issue 21): loopback only unless `--listen` is given, and then only
 * with the token (printed at start, or given in $FLEET_DASHBOARD_TOKEN); off loopback only over
 * TLS, so that the token never crosses the network in clear; every action is a POST carrying the
 * page's CSRF token, from the dashboard's own origin. Pure checks, tested directly.
 */
import { randomBytes, timingSafeEqual } from "crypto";
import { BlockList, isIP } from "net";

export const DEFAULT_PORT = 8377;
export const TOKEN_ENV = "FLEET_DASHBOARD_TOKEN";
export const TOKEN_COOKIE = "fleet_dashboard";

export interface Listen {
  readonly host: string;
  readonly port: number;
  /** `--listen` was given: a token is required. */
  readonly tokenRequired: boolean;
}

/** `--listen <addr:port>` (IPv4 or `[v6]`), or the loopback default on `port`; a problem as a string. */
export function listenOf(listen: string | undefined, port: string | undefined): Listen | string {
  const portOf = (text: string): number | string => {
    const n = Number(text);
    return /^\d{1,5}$/.test(text) && n >= 1 && n <= 65535 ? n : `not a port: ${JSON.stringify(text)} (1-65535)`;
  };
  if (listen !== undefined && port !== undefined) return "give --listen <addr:port> or --port <n>, not both";
  if (listen === undefined) {
    const p = portOf(port ?? String(DEFAULT_PORT));
    return typeof p === "string" ? `--port: ${p}` : { host: "127.0.0.1", port: p, tokenRequired: false };
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+|[A-Za-z0-9.-]+)):(\d+)$/.exec(listen);
  if (!m) return `--listen takes <addr:port> (127.0.0.1:8377, 0.0.0.0:8377, [::1]:8377), not ${JSON.stringify(listen)}`;
  const p = portOf(m[3]!);
  if (typeof p === "string") return `--listen: ${p}`;
  return { host: m[1] ?? m[2]!, port: p, tokenRequired: true };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * Whether a `--listen` address is loopback: in 127.0.0.0/8 or ::1 (an IPv4-mapped
 * `::ffff:127.x.y.z` too). A name is not, `localhost` included: what it resolves to is the
 * resolver's, not this check's, to say.
 */
export function isLoopback(host: string): boolean {
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? "ipv4" : "ipv6");
}

/** `--tls-cert <file>` and `--tls-key <file>` as given. */
export interface TlsFlags {
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

/** How the dashboard serves: plain HTTP, HTTPS with the given certificate and key, or not at all. */
export type Serving =
  | { readonly kind: "plain" }
  | { readonly kind: "tls"; readonly cert: string; readonly key: string }
  | { readonly kind: "refuse"; readonly why: string };

/** Why plain HTTP is refused on `listen` (off loopback: the token and its cookie would cross the network in clear), or undefined. */
export function plainHttpProblem(listen: Listen): string | undefined {
  if (isLoopback(listen.host)) return undefined;
  const addr = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  return (
    `--listen ${addr}:${listen.port} is off loopback, where plain HTTP would send the token and its cookie in clear: ` +
    `give --tls-cert <file> --tls-key <file> (a PEM certificate and its key) to serve HTTPS, ` +
    `or listen on loopback (127.0.0.1, [::1]) and reach it through an SSH tunnel (ssh -L 8377:127.0.0.1:8377 <host>)`
  );
}

/**
 * The decision: both TLS flags serve HTTPS, anywhere; one without the other is a usage problem;
 * neither serves plain HTTP on loopback only and refuses elsewhere (README: Dashboard).
 */
export function servingOf(listen: Listen, tls: TlsFlags): Serving {
  if (tls.cert !== undefined && tls.key !== undefined) return { kind: "tls", cert: tls.cert, key: tls.key };
  if (tls.cert !== undefined || tls.key !== undefined)
    return {
      kind: "refuse",
      why: `give both --tls-cert <file> and --tls-key <file>, not only ${tls.cert !== undefined ? "--tls-cert" : "--tls-key"}`,
    };
  const problem = plainHttpProblem(listen);
  return problem ? { kind: "refuse", why: problem } : { kind: "plain" };
}

/** A fresh random token (URL-safe). */
export function newToken(): string {
  return randomBytes(24).toString("base64url");
}

/** Equal strings, compared in constant time; an empty expected token matches nothing. */
export function sameSecret(expected: string, given: string | undefined): boolean {
  if (!expected || given === undefined) return false;
  const a = Buffer.from(expected, "utf8");
  const b = Buffer.from(given, "utf8");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Cookie header → name → value. */
export function cookiesOf(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 1) continue;
    const name = part.slice(0, eq).trim();
    try {
      out[name] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      // a malformed cookie is no token
    }
  }
  return out;
}

export interface RequestCredentials {
  readonly authorization?: string | undefined;
  readonly cookie?: string | undefined;
  /** `?token=` on the URL (the link printed at start). */
  readonly queryToken?: string | null | undefined;
}

export type Admission =
  { readonly ok: true; readonly setCookie: boolean } | { readonly ok: false; readonly why: string };

/** Whether a request may see the dashboard: always on the loopback default, else with the token. */
export function admit(listen: Listen, token: string, c: RequestCredentials): Admission {
  if (!listen.tokenRequired) return { ok: true, setCookie: false };
  const bearer = /^Bearer (.+)$/.exec(c.authorization ?? "")?.[1];
  if (sameSecret(token, bearer) || sameSecret(token, cookiesOf(c.cookie)[TOKEN_COOKIE]))
    return { ok: true, setCookie: false };
  if (sameSecret(token, c.queryToken ?? undefined)) return { ok: true, setCookie: true };
  const given = bearer !== undefined || c.queryToken != null || TOKEN_COOKIE in cookiesOf(c.cookie);
  return {
    ok: false,
    why: given
      ? "the token is wrong: open the link the dashboard printed at start"
      : "this dashboard listens off loopback and needs its token: open the link it printed at start (…/?token=…)",
  };
}

export interface PostCheck {
  /** The form's `csrf` field. */
  readonly csrf: string | undefined;
  readonly origin?: string | undefined;
  readonly host?: string | undefined;
  /** How the dashboard serves (default http). */
  readonly scheme?: "http" | "https";
}

/**
 * A POST is the page's own: it carries the page's CSRF token, and an Origin, when the browser
 * sends one, is this dashboard's (`<scheme>://<Host header>`). The refusal says which check failed.
 */
export function csrfProblem(expected: string, p: PostCheck): string | undefined {
  const own = `${p.scheme ?? "http"}://${p.host}`;
  if (p.origin !== undefined && p.origin !== "null" && p.host !== undefined && p.origin !== own)
    return `refused: the request came from ${p.origin}, not from this dashboard (${own})`;
  if (p.origin === "null") return "refused: the request came from an opaque origin, not from this dashboard";
  if (!sameSecret(expected, p.csrf))
    return "refused: the form's CSRF token is missing or stale; reload the dashboard and try again";
  return undefined;
}

/**
 * On the loopback default (no token), only a request addressed to loopback is the operator's: a
 * web page elsewhere that rebinds its own name to 127.0.0.1 sends its own name as Host.
 */
export function hostAllowed(listen: Listen, hostHeader: string | undefined): boolean {
  if (listen.tokenRequired) return true;
  return ["127.0.0.1", "localhost", "[::1]"].some((n) => hostHeader === `${n}:${listen.port}`);
}
