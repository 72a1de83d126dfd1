import type * as pulumi from "@pulumi/pulumi";
import { generateEd25519 } from "../../transport/keys";

/**
 * An SSH host key made on the deploying machine, once, and kept in state (the private half as a
 * secret). A new server gets it through cloud-init, so fleet pins its host key before the first
 * connection: no trust on first use over the network.
 */
export const hostKeyProvider: pulumi.dynamic.ResourceProvider = {
  async create() {
    const pair = generateEd25519("fleet-host-key");
    const publicKey = pair.public.trim().split(/\s+/).slice(0, 2).join(" ");
    const crypto = require("crypto") as typeof import("crypto");
    const blob = Buffer.from(publicKey.split(" ")[1]!, "base64");
    const fingerprint = "SHA256:" + crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
    return { id: fingerprint, outs: { privateKey: pair.private, publicKey, fingerprint } };
  },

  /** A host key is made once; nothing in the inputs changes it. */
  async diff() {
    return { changes: false };
  },
};
