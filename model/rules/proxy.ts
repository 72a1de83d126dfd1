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

/** The address the proxy binds: "" for every address, or an IP address. */
export const proxyListen = z
  .string()
  .regex(/^$|^[0-9.]+$|^[0-9a-fA-F:]+$/, 'must be an IP address such as "127.0.0.5", or "" for every address');

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
