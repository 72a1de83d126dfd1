import * as pulumi from "@pulumi/pulumi";
import { codeProviderConfig, codeProviderName, shippedProviderText, type ShippedProviderName } from "../providers/ship";
import { CODE_PROVIDER_PACKAGE } from "../model/shipped-code";
import { shortStacks } from "./short-stack";
import { DYNAMIC_MODULE } from "./tokens";

/**
 * A fleet dynamic resource: what `pulumi.dynamic.Resource` registers (the same type token
 * `pulumi-nodejs:dynamic/fleet:<type>`, served by Pulumi's dynamic-provider host), with a small
 * loader as `__provider` and the code in the explicit provider resource of this fleet version
 * (docs/state.md), instead of the whole provider in every resource's state.
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
    // The SDK's frames (its stack reader, Resource, CustomResource), this one, the resource's class,
    // the component that made it, and that component's caller.
    const restore = shortStacks(7);
    try {
      super(
        `pulumi-nodejs:dynamic/${DYNAMIC_MODULE}:${type}`,
        name,
        { ...props, __provider: shippedProviderText(provider) },
        { ...opts, provider: codeProvider() },
      );
    } finally {
      restore();
    }
  }
}

/** The explicit `pulumi-nodejs` provider resource whose configuration is fleet's code. */
class FleetCodeProvider extends pulumi.ProviderResource {
  constructor(name: string, config: Record<string, string>) {
    super(CODE_PROVIDER_PACKAGE, name, config);
  }
}

/** One code provider per program run (per monitor: tests run several programs in one process). */
const codeProviders = new WeakMap<object, pulumi.ProviderResource>();
const NO_MONITOR = {};

/**
 * The provider resource that carries every bundle of this fleet version, named after their
 * hash: a new fleet version is a new provider, and the old one stays for as long as a resource
 * in state still names it (so it is deleted with its own code). A root resource, like a
 * default provider.
 */
function codeProvider(): pulumi.ProviderResource {
  const key = (pulumi.runtime.getMonitor() as object | undefined) ?? NO_MONITOR;
  const known = codeProviders.get(key);
  if (known) return known;
  const config = codeProviderConfig();
  const provider = new FleetCodeProvider(codeProviderName(config), config);
  codeProviders.set(key, provider);
  return provider;
}
