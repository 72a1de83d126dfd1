import { listenAddress } from "./rules/proxy";

/**
 * A service behind its host's proxy (issue #19, zero-downtime releases). Plain data, the
 * provider's form: every default filled. The proxy is Caddy, driven by fleet (commands/proxy.ts).
 */
export type ProxyTls = "off" | "internal" | "acme";

export interface ProxySpec {
  /** Host names the route matches; empty: any host (only with `tls: "off"`). */
  readonly hosts: readonly string[];
  /** Path prefix the route matches, e.g. "/api"; "/" matches every path. */
  readonly path: string;
  /** The public port the proxy listens on for this route. */
  readonly port: number;
  /**
   * The address the proxy binds: "" for every address, "127.0.0.5" on a test host, "::1" (an
   * IPv6 address without brackets: commands/proxy.ts adds them where the port follows).
   */
  readonly listen: string;
  readonly tls: ProxyTls;
  /**
   * ACME only: the account's email address, the directory URL ("" for Let's Encrypt), and a PEM
   * file on the host with the root a private ACME server's HTTPS is signed by ("" for none).
   */
  readonly acme?: { readonly email: string; readonly ca: string; readonly caRoot?: string };
  /** How long requests in flight on the old instance may take to finish before it stops, in ms. */
  readonly drainTimeoutMs: number;
  /** Serve a 503 with Retry-After from the proxy instead of the service. */
  readonly maintenance: boolean;
  /** The range instance ports are allocated from (each new instance takes a free one). */
  readonly instancePorts: { readonly from: number; readonly to: number };
}

/** A service's `proxy:` as users write it; `planProxy` fills the defaults. */
export interface ProxyArgs {
  /** Host names the route matches. Default: none (any host; only with `tls: "off"`). */
  readonly hosts?: readonly string[];
  /** Path prefix the route matches. Default "/" (every path). */
  readonly path?: string;
  /** The public port. Default 80, or 443 with TLS. */
  readonly port?: number;
  /**
   * The address the proxy binds: an IPv4 address ("127.0.0.5") or an IPv6 address in brackets
   * ("[::1]"). Default "" (every address).
   */
  readonly listen?: string;
  /** Default "off". `internal`: the proxy's own CA; `acme`: a CA such as Let's Encrypt. */
  readonly tls?: ProxyTls;
  /**
   * With `tls: "acme"`: the account's email address, the directory URL (default Let's Encrypt),
   * and for a private ACME server, a PEM file on the host with the root its HTTPS is signed by.
   */
  readonly acme?: { readonly email: string; readonly ca?: string; readonly caRoot?: string };
  /** How long requests in flight on the old instance may take to finish. Default "30s". */
  readonly drainTimeout?: string;
  /** Serve a 503 with Retry-After instead of the service. Default false. */
  readonly maintenance?: boolean;
  /** The range instance ports are allocated from. Default 20000–29999. */
  readonly instancePorts?: { readonly from: number; readonly to: number };
}

/** The proxy spec with every default filled; `drainMs` is the parsed `drainTimeout`. */
export function planProxy(args: ProxyArgs, drainMs: number): ProxySpec {
  const tls = args.tls ?? "off";
  return {
    hosts: [...(args.hosts ?? [])],
    path: args.path ?? "/",
    port: args.port ?? (tls === "off" ? 80 : 443),
    listen: listenAddress(args.listen ?? ""),
    tls,
    ...(args.acme
      ? {
          acme: {
            email: args.acme.email,
            ca: args.acme.ca ?? "",
            ...(args.acme.caRoot ? { caRoot: args.acme.caRoot } : {}),
          },
        }
      : {}),
    drainTimeoutMs: drainMs,
    maintenance: args.maintenance ?? false,
    instancePorts: args.instancePorts ?? { from: 20000, to: 29999 },
  };
}
