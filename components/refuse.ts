import * as pulumi from "@pulumi/pulumi";
import { isFleetError } from "../model/errors";

/**
 * Runs a component's constructor-time shaping; a config FleetError it throws (a field the
 * component refuses) becomes a `pulumi.ResourceError` on the component, with the same message:
 * the field path, the hint and the marker, so that the deploy still exits as a config error.
 */
export function refusing<T>(resource: pulumi.Resource, shape: () => T): T {
  try {
    return shape();
  } catch (err) {
    if (isFleetError(err) && err.kind === "config") throw new pulumi.ResourceError(err.message, resource);
    throw err;
  }
}
