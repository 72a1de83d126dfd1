/** What bootstrapping a host ensures. Plain data: the HostBootstrap provider's input. */
export interface BootstrapSpec {
  /** The account fleet deploys with. */
  readonly deployUser: string;
  /** Public keys allowed to log in as the deploy user. */
  readonly deployUserKeys: readonly string[];
  /** Passwordless sudo for the deploy user (fleet needs it for systemd when not root). */
  readonly sudo: boolean;
  /** fleet's root directory. */
  readonly root: string;
  /** Debian packages that must be installed. */
  readonly packages: readonly string[];
  /** journald's disk budget (SystemMaxUse), e.g. "200M". */
  readonly journalMaxUse: string;
  /** Time zone name, e.g. "UTC" or "Europe/Berlin". */
  readonly timezone: string;
  /** Install and run fleet's proxy (Caddy), for services with `proxy:`. Absent: no proxy. */
  readonly proxy?: true;
}

/** What fleet reads back from a host. */
export interface HostFacts {
  readonly os: string;
  readonly osId: string;
  readonly osVersion: string;
  readonly arch: string;
  readonly systemd: string;
  readonly diskFreeMb: number;
  readonly memoryMb: number;
}
