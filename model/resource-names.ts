/**
 * The Pulumi names fleet gives its resources, in one place: index.ts registers them, and the
 * operator scripts (deploy --hosts/--services, rollback, history) find them in URNs by them.
 */

/**
 * A service resource's id: its address and name. Written on the host as the owner of the
 * service's folder, so a replaced resource's delete can tell that the folder is another's now.
 */
export function serviceResourceId(connection: { host: string; port?: number }, name: string): string {
  return `${connection.host}:${connection.port ?? 22}/${name}`;
}

/** A service on one host is `<service>`; on several, one resource per host, `<service>@<host>`. */
export function serviceResourceName(service: string, host: string, onSeveralHosts: boolean): string {
  return onSeveralHosts ? `${service}@${host}` : service;
}

/** The host a service resource's name names (`<service>@<host>`), or undefined for a one-host service. */
export function hostOfServiceResource(service: string, resource: string): string | undefined {
  return resource.startsWith(`${service}@`) ? resource.slice(service.length + 1) : undefined;
}
