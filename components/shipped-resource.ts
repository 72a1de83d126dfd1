import * as pulumi from "@pulumi/pulumi";
import { shippedProviderText, type ShippedProviderName } from "../providers/ship";
import { DYNAMIC_MODULE } from "./tokens";

/**
 * A fleet dynamic resource: what `pulumi.dynamic.Resource` registers (the same type token
 * `pulumi-nodejs:dynamic/fleet:<type>`, served by Pulumi's dynamic-provider host), with the
 * `__provider` text that providers/ship.ts writes instead of one from Pulumi's closure
 * serializer, which costs ~250 ms at each program start.
 */
export abstract class ShippedResource extends pulumi.CustomResource {
  protected constructor(
    provider: ShippedProviderName,
    type: string,
    name: string,
    props: pulumi.Inputs,
    opts?: pulumi.CustomResourceOptions,
  ) {
    if ("__provider" in props) throw new Error("a dynamic resource must not define the __provider key");
    super(
      `pulumi-nodejs:dynamic/${DYNAMIC_MODULE}:${type}`,
      name,
      { ...props, __provider: shippedProviderText(provider) },
      opts,
    );
  }
}
