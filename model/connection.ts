/**
 * How fleet reaches one host. Plain data only: it is captured into serialized dynamic providers
 * and stored (as a secret) in Pulumi state.
 */
export interface SshConnection {
  /** Address or name of the host. */
  readonly host: string;
  /** sshd port. Default 22. */
  readonly port?: number;
  /** Login user. */
  readonly user: string;
  /** Private key (OpenSSH or PEM). Always a Pulumi secret in state. */
  readonly privateKey: string;
  /**
   * The pinned host key: a known_hosts style public key ("ssh-ed25519 AAAA…") or its
   * fingerprint ("SHA256:…"). Unknown or mismatched keys are refused.
   */
  readonly hostKey: string;
  /** Connect timeout in milliseconds. Default 10000. */
  readonly connectTimeoutMs?: number;
  /**
   * A bastion to reach this host through (`ssh -J`): its own pinned connection. The tunnel
   * rides the bastion's pooled connection; `host` is then resolved from the bastion.
   */
  readonly jump?: SshConnection;
}
