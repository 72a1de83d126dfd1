import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { ShippedResource } from "./shipped-resource";
import * as hcloud from "@pulumi/hcloud";
import { cloudInitUserData } from "../commands/cloud-init";
import type { BootstrapSpec, HostFacts } from "../model/host";
import { parseDuration } from "../model/duration";
import { SSH_FROM_REQUIRED } from "../model/rules/network";
import { type HostBootstrapSpec } from "../providers/host/provider";
import type { SshConnection } from "../transport/connection";
import { CHILD_SUFFIXES, childName, DYNAMIC_TYPES, TOKENS } from "./tokens";
import { fleetError } from "../model/errors";
import { refusing } from "./refuse";

export interface BootstrapArgs {
  /** The account fleet deploys with. Default "deploy". */
  readonly deployUser?: string;
  /** Public keys allowed to log in as the deploy user. Default none. */
  readonly deployUserKeys?: readonly string[];
  /** Passwordless sudo for the deploy user. Default true. */
  readonly sudo?: boolean;
  /** fleet's root directory. Default "/srv/fleet". */
  readonly root?: string;
  /** Debian packages that must be installed. Default ["curl"] (the health gate needs it). */
  readonly packages?: readonly string[];
  /** journald's disk budget. Default "200M". */
  readonly journalMaxUse?: string;
  /** Time zone. Default "UTC". */
  readonly timezone?: string;
  /** How long to wait for SSH to answer before bootstrapping. Default "5m". */
  readonly readyTimeout?: string;
  /** Limit for the bootstrap script. Default "15m". */
  readonly stepTimeout?: string;
  /** Install and run fleet's proxy (Caddy) for services with `proxy:`. Default false. */
  readonly proxy?: boolean;
}

/** A machine that already exists (a Raspberry Pi, a VPS): reached over SSH with a pinned key. */
export interface ExistingHostArgs {
  readonly kind?: "existing";
  /** How to reach it (with a `jump` bastion if needed). Stored as a secret. */
  readonly connection: pulumi.Input<SshConnection>;
  /** Bootstrap it (user, directories, packages, journald, time zone). Default: not bootstrapped. */
  readonly bootstrap?: BootstrapArgs;
}

/** A Hetzner Cloud server fleet creates, with its firewall and SSH key. */
export interface HcloudHostArgs {
  readonly kind: "hcloud";
  /** e.g. "cx22". */
  readonly serverType: string;
  /** e.g. "fsn1". */
  readonly location: string;
  /** A base image name ("debian-12") or a snapshot id (a GoldenImage output). */
  readonly image: pulumi.Input<string>;
  /** Labels on the server. Default {}. */
  readonly labels?: Readonly<Record<string, string>>;
  /** CIDRs allowed to reach SSH; nothing else may. */
  readonly sshFrom: readonly string[];
  /** Further inbound rules. Default none. */
  readonly inbound?: readonly { protocol: "tcp" | "udp" | "icmp"; port?: string; sourceIps: readonly string[] }[];
  /** Login user. Default "root". */
  readonly user?: string;
  /** fleet's private login key (a secret). */
  readonly privateKey: pulumi.Input<string>;
  /** Its public half, registered with Hetzner as the server's SSH key. */
  readonly publicKey: string;
  /** Bootstrap settings. Default: bootstrapped with the defaults. */
  readonly bootstrap?: BootstrapArgs;
}

export type HostArgs = ExistingHostArgs | HcloudHostArgs;

/** The bootstrap settings with their defaults filled in. */
export function bootstrapSpec(args: BootstrapArgs): BootstrapSpec {
  return {
    deployUser: args.deployUser ?? "deploy",
    deployUserKeys: [...(args.deployUserKeys ?? [])],
    sudo: args.sudo ?? true,
    root: args.root ?? "/srv/fleet",
    packages: [...(args.packages ?? ["curl"])],
    journalMaxUse: args.journalMaxUse ?? "200M",
    timezone: args.timezone ?? "UTC",
    ...(args.proxy ? { proxy: true as const } : {}),
  };
}

/** Firewall rules: SSH from the given CIDRs only, plus the extra inbound rules. */
export function firewallRules(args: Pick<HcloudHostArgs, "sshFrom" | "inbound">): hcloud.types.input.FirewallRule[] {
  if (args.sshFrom.length === 0)
    throw fleetError(
      "config",
      `sshFrom ${SSH_FROM_REQUIRED}`,
      "Give sshFrom the CIDRs you deploy from (e.g. your office's /32).",
    );
  return [
    { direction: "in", protocol: "tcp", port: "22", sourceIps: [...args.sshFrom], description: "SSH (fleet)" },
    ...(args.inbound ?? []).map((r) => ({
      direction: "in",
      protocol: r.protocol,
      ...(r.port ? { port: r.port } : {}),
      sourceIps: [...r.sourceIps],
    })),
  ];
}

/** A host key made once by fleet (see providers/host/host-key.ts). */
class HostKey extends ShippedResource {
  declare readonly privateKey: pulumi.Output<string>;
  declare readonly publicKey: pulumi.Output<string>;
  constructor(name: string, opts?: pulumi.CustomResourceOptions) {
    super(
      "hostKey",
      DYNAMIC_TYPES.hostKey,
      name,
      { privateKey: undefined, publicKey: undefined, fingerprint: undefined },
      { ...opts, additionalSecretOutputs: ["privateKey"] },
    );
  }
}

/** The bootstrap run on one host (see providers/host/provider.ts). */
class HostBootstrap extends ShippedResource {
  declare readonly facts: pulumi.Output<HostFacts>;
  declare readonly changed: pulumi.Output<string[]>;
  constructor(
    name: string,
    spec: { [K in keyof HostBootstrapSpec]: pulumi.Input<HostBootstrapSpec[K]> },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      "hostBootstrap",
      DYNAMIC_TYPES.hostBootstrap,
      name,
      { ...spec, facts: undefined, changed: undefined, bootstrappedAt: undefined },
      { ...opts, additionalSecretOutputs: ["connection"] },
    );
  }
}

/**
 * A machine fleet deploys to: an existing one, or a Hetzner Cloud server it creates (server, SSH
 * key, firewall; host key made locally and injected by cloud-init, so it is pinned before the
 * first connection). Optionally bootstrapped, idempotently; its facts are outputs. Services,
 * backups and images take a Host, and wait for its bootstrap.
 */
export class Host extends pulumi.ComponentResource {
  /** The SSH connection, as a secret output: no key material in plain state or logs. */
  readonly connection: pulumi.Output<SshConnection>;
  /** The address, in plain text, for outputs and messages. */
  readonly address: pulumi.Output<string>;
  /** OS, arch, systemd, free disk, memory; undefined when the host is not bootstrapped. */
  readonly facts: pulumi.Output<HostFacts | undefined>;

  constructor(name: string, args: HostArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TOKENS.host, name, {}, opts);
    let connection: pulumi.Output<SshConnection>;
    let bootstrap: BootstrapArgs | undefined;
    if (args.kind === "hcloud") {
      connection = this.hcloudServer(name, args);
      bootstrap = args.bootstrap ?? {};
    } else {
      connection = pulumi.output(args.connection);
      bootstrap = args.bootstrap;
    }
    this.connection = pulumi.secret(connection);
    this.address = pulumi.unsecret(connection.apply((c) => c.host));

    if (bootstrap) {
      const spec = bootstrapSpec(bootstrap);
      const scriptSha = crypto.createHash("sha256").update(JSON.stringify(spec)).digest("hex");
      const run = new HostBootstrap(
        childName(name, CHILD_SUFFIXES.host.bootstrap),
        {
          connection: this.connection,
          host: this.address,
          bootstrap: spec,
          scriptSha,
          readyTimeoutMs: parseDuration(bootstrap.readyTimeout ?? "5m", `hosts.${name}.bootstrap.readyTimeout`),
          stepTimeoutMs: parseDuration(bootstrap.stepTimeout ?? "15m", `hosts.${name}.bootstrap.stepTimeout`),
        },
        { parent: this },
      );
      this.facts = run.facts;
    } else {
      this.facts = pulumi.output(undefined);
    }
    this.registerOutputs({ connection: this.connection, address: this.address, facts: this.facts });
  }

  private hcloudServer(name: string, args: HcloudHostArgs): pulumi.Output<SshConnection> {
    const hostKey = new HostKey(childName(name, CHILD_SUFFIXES.host.hostKey), { parent: this });
    const sshKey = new hcloud.SshKey(
      childName(name, CHILD_SUFFIXES.host.sshKey),
      { publicKey: args.publicKey },
      { parent: this },
    );
    const firewall = new hcloud.Firewall(
      childName(name, CHILD_SUFFIXES.host.firewall),
      { rules: refusing(this, () => firewallRules(args)) },
      { parent: this },
    );
    const server = new hcloud.Server(
      childName(name, CHILD_SUFFIXES.host.server),
      {
        serverType: args.serverType,
        location: args.location,
        image: args.image,
        labels: { ...(args.labels ?? {}), "managed-by": "fleet" },
        sshKeys: [sshKey.id],
        firewallIds: [firewall.id.apply((id) => Number(id))],
        userData: pulumi.secret(
          pulumi.all([hostKey.privateKey, hostKey.publicKey]).apply(([priv, pub]) => cloudInitUserData(priv, pub)),
        ),
      },
      { parent: this },
    );
    return pulumi
      .all([server.ipv4Address, hostKey.publicKey, pulumi.secret(args.privateKey)])
      .apply(([ip, hostPublicKey, privateKey]) => ({
        host: ip,
        port: 22,
        user: args.user ?? "root",
        privateKey,
        hostKey: hostPublicKey,
      }));
  }
}
