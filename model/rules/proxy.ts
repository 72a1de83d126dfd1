import { isIPv6 } from "net";
import { z } from "zod";
import { port } from "./network";

/**
 * The rules of a service's `proxy:` (issue #19), shared by the stack config (config/schema.ts)
 * and the Service provider's check (model/service-spec.ts): one rule, one verdict.
 */

/** A host name a route matches (Caddy's host matcher): a DNS name, optionally `*.` wildcarded. */
export const proxyHostName = z
  .string()
  .regex(
    /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    'must be a DNS name such as "example.com" (or "*.example.com")',
  );

/** A path prefix: "/" or "/api"; only characters a URL path carries unencoded, no `*` (Caddy's wildcard). */
export const proxyPath = z
  .string()
  .regex(/^\/([A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*\/?)?$/, 'must be a path prefix such as "/" or "/api"');

/** One IPv4 octet, 0-255, without a leading zero (Go's net.ParseIP, which Caddy uses, refuses those). */
const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

/** A dotted-quad IPv4 address: four octets, each 0-255. */
export const isIPv4Address = (v: string): boolean => IPV4.test(v);

/** An IPv6 address without brackets and without a zone (`%eth0` would need escaping in a URL). */
export const isIPv6Address = (v: string): boolean => /^[0-9A-Fa-f:.]+$/.test(v) && isIPv6(v);

const LISTEN_FORMS = '"127.0.0.5" (IPv4), "[::1]" (IPv6, in brackets) or "" (every address)';

/**
 * Why `v` cannot be a proxy's `listen` as users write it (ProxyArgs.listen, `proxy.listen` in the
 * stack config), or undefined. Caddy joins it with the port (`<listen>:<port>`), so a bare IPv6
 * address would read as `::1:8080` (issue "a service's own account never becomes root": listen
 * took `::1`, `...` and `1.2.3`): IPv6 goes in brackets, and IPv4 must be a whole address.
 */
export function proxyListenProblem(v: string): string | undefined {
  if (v === "" || isIPv4Address(v)) return undefined;
  const inner = /^\[(.*)\]$/.exec(v)?.[1];
  if (inner !== undefined)
    return isIPv6Address(inner)
      ? undefined
      : `${JSON.stringify(inner)} is not an IPv6 address (e.g. "[::1]", "[2001:db8::5]")`;
  if (isIPv6Address(v)) return `an IPv6 address goes in brackets: "[${v}]"`;
  const withPort = /^(.*):([0-9]+)$/.exec(v);
  if (withPort && proxyListenProblem(withPort[1]!) === undefined && withPort[1] !== "")
    return `is the address alone: give ${JSON.stringify(withPort[1])} here and the port as proxy.port (${withPort[2]})`;
  return `must be an IP address: ${LISTEN_FORMS}`;
}

/** The address the proxy binds, as users write it: "", an IPv4 address, or an IPv6 address in brackets. */
export const proxyListen = z.string().superRefine((v, ctx) => {
  const problem = proxyListenProblem(v);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/**
 * The address as the provider takes it (ProxySpec.listen, filled by planProxy): the same
 * addresses, an IPv6 one without its brackets (commands/proxy.ts puts them back where the
 * port follows, as the proxy probe does).
 */
export function listenAddress(listen: string): string {
  const inner = /^\[(.*)\]$/.exec(listen)?.[1];
  return inner !== undefined && isIPv6Address(inner) ? inner : listen;
}

/** Why `v` cannot be ProxySpec.listen (the provider's form, see listenAddress), or undefined. */
export function proxyListenAddressProblem(v: string): string | undefined {
  if (v === "" || isIPv4Address(v) || isIPv6Address(v)) return undefined;
  return `must be an IP address: ${LISTEN_FORMS}; the provider takes IPv6 without brackets (planProxy removes them)`;
}

/** ProxySpec.listen: "", an IPv4 address, or a bare IPv6 address. */
export const proxyListenAddress = z.string().superRefine((v, ctx) => {
  const problem = proxyListenAddressProblem(v);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** `<address>:<port>` as Caddy and curl take it: an IPv6 address in brackets, "" for every address. */
export function hostPort(address: string, port: number): string {
  return `${isIPv6Address(address) ? `[${address}]` : address}:${port}`;
}

export const proxyTls = z.enum(["off", "internal", "acme"]);

export const instancePort = z.number().int().min(1024).max(65535);

export const instancePortsProblem = (r: { from: number; to: number }): string | undefined =>
  r.from > r.to ? `from (${r.from}) must not be above to (${r.to})` : undefined;

/** What a proxy spec cannot go with, whatever its form: one message per problem, with its field. */
export function proxyProblems(p: {
  readonly hosts: readonly string[];
  readonly tls: string;
  readonly acme?: { readonly email: string } | undefined;
}): { path: string[]; message: string }[] {
  const problems: { path: string[]; message: string }[] = [];
  if (p.tls !== "off" && p.hosts.length === 0)
    problems.push({
      path: ["hosts"],
      message: `tls ${p.tls} needs the host names the certificate is for (give hosts, or tls: off)`,
    });
  if (p.tls === "acme" && !p.acme?.email)
    problems.push({ path: ["acme", "email"], message: "tls acme needs the ACME account's email address" });
  if (p.tls !== "acme" && p.acme) problems.push({ path: ["acme"], message: "acme goes with tls: acme" });
  return problems;
}

export { port as proxyPort };
