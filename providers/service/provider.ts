import type * as pulumi from "@pulumi/pulumi";
import type { ServiceSpec, ServiceState } from "../../model/service";
import { deleteScript, readScript } from "../../commands/service";
import { parseFacts } from "../../commands/facts";
import { diffService, shouldPrewarm } from "../../decisions/service-diff";
import { parseReleaseLines } from "../../decisions/retention";
import { connectionKey, prewarm, runScript } from "../../transport/ssh";
import type { SshConnection } from "../../transport/connection";
import { recordImageRefsScript } from "../../commands/image";
import { checkServiceInputs } from "./check";
import { deployService } from "./deploy";
import { lockOwner } from "./lock";
import { serviceResourceId } from "../../model/resource-names";

/**
 * The Service dynamic provider: thin; the steps live in deploy.ts, the scripts in commands/,
 * the decisions in decisions/. Serialized by value into state, so it captures only plain
 * functions; ssh2 and other modules are required inside.
 */
export const serviceProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds: Record<string, unknown>, news: Record<string, unknown>) {
    const failures = checkServiceInputs(news, olds);
    // Start the SSH handshake now when a deploy will follow; runs nothing on the host.
    if (failures.length === 0 && shouldPrewarm(olds, news)) prewarm(news["connection"] as SshConnection);
    return { inputs: news, failures };
  },

  async diff(_id: string, olds: ServiceState, news: ServiceSpec) {
    const d = diffService(olds, news);
    return { changes: d.changes, replaces: d.replaces, deleteBeforeReplace: d.deleteBeforeReplace };
  },

  async create(inputs: ServiceSpec) {
    const outs = await deployService(inputs);
    return { id: serviceResourceId(inputs.connection, inputs.name), outs };
  },

  async update(_id: string, olds: ServiceState, news: ServiceSpec) {
    // A re-pinned host key or rotated client key: recorded for refresh and destroy, nothing runs.
    if (diffService(olds, news).recordOnly) return { outs: { ...olds, ...news } };
    // The releases the host kept: switching back to one of them takes a single round trip.
    return { outs: await deployService(news, { retained: olds.retainedReleases ?? [] }) };
  },

  /** `pulumi refresh`: reports the live release so a manual change of `current` shows as drift. */
  async read(id: string, props: ServiceState) {
    const result = await runScript(props.connection, readScript(props), {
      step: "read",
      secrets: [props.connection.privateKey, ...Object.values(props.secretEnv ?? {})],
      timeoutMs: props.stepTimeoutMs,
    });
    const facts = parseFacts(result.stdout);
    if (facts.one["exists"] !== "1") return { id: "", props: {} };
    const live = facts.one["current"] ?? "";
    // Deployed is what a confirmed gate passed last (`verified`), never merely what `current`
    // points at: a release an interrupted deploy left there shows as drift (live.release), and
    // the next up runs its gate. Hosts deployed before `verified` existed report `current`.
    const deployed = facts.one["verified"] || live || props.releaseId;
    const deployedCommit = facts.one["verified"] ? facts.one["verified_commit"] : facts.one["commit"];
    return {
      id,
      props: {
        ...props,
        releaseId: deployed,
        commit: deployed === props.releaseId ? props.commit : (deployedCommit ?? deployed),
        retainedReleases: parseReleaseLines(facts.all["release"] ?? [])
          .map((r) => r.id)
          .sort(),
        live: {
          active: facts.one["active"] ?? "",
          healthStatus: facts.one["health_status"] ?? "",
          release: live,
        },
      },
    };
  },

  async delete(_id: string, props: ServiceState) {
    const deleted = await runScript(props.connection, deleteScript(props, lockOwner(props).who), {
      step: "delete",
      secrets: [props.connection.privateKey, ...Object.values(props.secretEnv ?? {})],
      timeoutMs: props.stepTimeoutMs,
    });
    const supersededBy = parseFacts(deleted.stdout).one["superseded_by"];
    if (supersededBy) {
      console.error(
        `warning: [${connectionKey(props.connection)}] ${props.name}: its folder now belongs to ${supersededBy} (the same machine under another address), which replaced it: left in place`,
      );
      return;
    }
    // An image service's record of the images it uses goes with it (retention may prune them).
    if (props.source?.kind === "image") {
      await runScript(props.connection, recordImageRefsScript(props.name, []), {
        step: "forget images",
        secrets: [props.connection.privateKey],
      });
    }
    const kept = parseFacts(deleted.stdout).one["kept_shared"];
    if (kept)
      console.error(
        `warning: [${connectionKey(props.connection)}] ${props.name}: its shared files stay in ${kept} (set deleteSharedOnDestroy: true to remove them with the service)`,
      );
  },
};
