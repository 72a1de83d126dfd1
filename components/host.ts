import * as pulumi from "@pulumi/pulumi";
import type { SshConnection } from "../transport/connection";
import { TOKENS } from "./tokens";

export interface HostArgs {
  /** How to reach the host. The whole connection is stored as a secret (it holds the key). */
  readonly connection: pulumi.Input<SshConnection>;
}

/**
 * A machine fleet deploys to. This is the `existing` kind: a host reached over SSH with a pinned
 * host key. Services, backups and images take a Host (or its connection).
 */
export class Host extends pulumi.ComponentResource {
  /** The SSH connection, as a secret output: no key material in plain state or logs. */
  readonly connection: pulumi.Output<SshConnection>;
  /** The address, in plain text, for outputs and messages. */
  readonly address: pulumi.Output<string>;

  constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TOKENS.host, name, {}, opts);
    this.connection = pulumi.secret(args.connection);
    this.address = pulumi.unsecret(pulumi.output(args.connection).apply((c) => c.host));
    this.registerOutputs({ connection: this.connection, address: this.address });
  }
}
