/**
 * Where a stack's state lives, from `PULUMI_BACKEND_URL`, as the Pulumi CLI reads it: Pulumi Cloud
 * (`https://…`), or a self-managed ("DIY") backend in a bucket or folder (`s3://`, `gs://`,
 * `azblob://`, `file://`). Pure: the environment, the project folder and the home folder are
 * arguments. Malformed URLs are refused with what to write instead.
 */
import * as path from "path";
import { fleetError, type FleetError } from "../model/errors";

export type BackendKind = "file" | "s3" | "cloud" | "azblob" | "gs";

export interface Backend {
  readonly kind: BackendKind;
  /** The URL to hand to the CLI; for `file://`, with the path made absolute. */
  readonly url: string;
  /** One line for logs: what and where. */
  readonly description: string;
  /** How concurrent updates of one stack are prevented. */
  readonly locking: string;
  /** `file://` only: the absolute folder that holds `.pulumi/` (rollback's history reader reads it). */
  readonly dir?: string;
  /** False when PULUMI_BACKEND_URL is unset: then the CLI uses the backend of the last `pulumi login`. */
  readonly fromEnv: boolean;
}

/** A PULUMI_BACKEND_URL the CLI would refuse or misread: a config FleetError naming the variable. */
export function backendUrlInvalid(url: string, problem: string): FleetError {
  return fleetError(
    "config",
    `PULUMI_BACKEND_URL=${url}: ${problem}`,
    "Fix PULUMI_BACKEND_URL, or unset it to use the backend of the last `pulumi login`.",
  );
}

export const PULUMI_CLOUD_URL = "https://api.pulumi.com";

const DIY_LOCKING =
  "the CLI writes a lock object per stack (.pulumi/locks/…) next to the state; a second update of the same stack fails until the first ends";
const CLOUD_LOCKING = "Pulumi Cloud allows one update per stack at a time; a second one is refused while it runs";

function bucketOf(raw: string, scheme: string, what: string, example: string): { bucket: string; url: URL } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw backendUrlInvalid(raw, `not a URL; write ${example}`);
  }
  if (!url.hostname) throw backendUrlInvalid(raw, `${scheme}:// needs a ${what} name: ${example}`);
  return { bucket: url.hostname, url };
}

/** The folder under the bucket, if any (`s3://bucket/team/fleet` → `team/fleet`). */
function prefixOf(url: URL): string {
  return decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, "");
}

function fileBackend(raw: string, projectDir: string, home: string): Backend {
  const [rest, query] = raw.slice("file://".length).split(/\?(.*)/s, 2) as [string, string | undefined];
  const p = decodeURIComponent(rest);
  if (p === "")
    throw backendUrlInvalid(
      raw,
      `file:// needs a folder: file://~ (your home), file://${projectDir} (absolute) or file://./state (relative to the project)`,
    );
  let dir: string;
  if (p === "~" || p.startsWith("~/")) dir = path.join(home, p.slice(1));
  else if (p.startsWith("~")) throw backendUrlInvalid(raw, `only your own home (~ or ~/…) can be named, not ${p}`);
  else dir = path.resolve(projectDir, p);
  const relative = !path.isAbsolute(p) && !p.startsWith("~");
  return {
    kind: "file",
    url: `file://${dir}${query ? `?${query}` : ""}`,
    dir,
    description: `local folder ${dir}${relative ? ` (relative to the project folder ${projectDir}; the CLI resolves it against its working directory, so run it from there)` : ""}: one machine only, unless the folder is shared`,
    locking: DIY_LOCKING,
    fromEnv: true,
  };
}

/**
 * The backend `PULUMI_BACKEND_URL` names. Unset or empty: Pulumi Cloud unless a `pulumi login`
 * chose otherwise (`fromEnv: false`). Throws a config FleetError (backendUrlInvalid) for a URL the CLI would refuse or
 * misread.
 */
export function backendOf(
  env: { readonly PULUMI_BACKEND_URL?: string | undefined },
  projectDir: string,
  home: string = process.env["HOME"] ?? "/",
): Backend {
  const raw = (env.PULUMI_BACKEND_URL ?? "").trim();
  if (raw === "") {
    return {
      kind: "cloud",
      url: PULUMI_CLOUD_URL,
      description: `PULUMI_BACKEND_URL is not set: the backend of the last \`pulumi login\` (Pulumi Cloud, ${PULUMI_CLOUD_URL}, if none)`,
      locking: CLOUD_LOCKING,
      fromEnv: false,
    };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw)?.[1]?.toLowerCase();
  switch (scheme) {
    case "file":
      return fileBackend(raw, projectDir, home);
    case "s3": {
      const { bucket, url } = bucketOf(raw, "s3", "bucket", "s3://my-bucket?region=eu-central-1");
      const endpoint = url.searchParams.get("endpoint");
      if (endpoint !== null) {
        const host = endpoint.replace(/^https?:\/\//, "");
        if (!/^[A-Za-z0-9.-]+(:\d+)?(\/.*)?$/.test(host))
          throw backendUrlInvalid(
            raw,
            `endpoint=${endpoint} is not a host name (e.g. endpoint=fsn1.your-objectstorage.com)`,
          );
      }
      const prefix = prefixOf(url);
      const region = url.searchParams.get("region");
      return {
        kind: "s3",
        url: raw,
        description:
          `S3${endpoint ? `-compatible storage at ${endpoint}` : ""} bucket ${bucket}` +
          (prefix ? `, folder ${prefix}` : "") +
          (region ? `, region ${region}` : ", region from AWS_REGION/the AWS profile"),
        locking: DIY_LOCKING,
        fromEnv: true,
      };
    }
    case "gs": {
      const { bucket, url } = bucketOf(raw, "gs", "bucket", "gs://my-bucket");
      const prefix = prefixOf(url);
      return {
        kind: "gs",
        url: raw,
        description: `Google Cloud Storage bucket ${bucket}${prefix ? `, folder ${prefix}` : ""}`,
        locking: DIY_LOCKING,
        fromEnv: true,
      };
    }
    case "azblob": {
      const { bucket, url } = bucketOf(raw, "azblob", "container", "azblob://my-container");
      const prefix = prefixOf(url);
      return {
        kind: "azblob",
        url: raw,
        description: `Azure Blob Storage container ${bucket}${prefix ? `, folder ${prefix}` : ""} (account from AZURE_STORAGE_ACCOUNT)`,
        locking: DIY_LOCKING,
        fromEnv: true,
      };
    }
    case "https":
    case "http": {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw backendUrlInvalid(raw, `not a URL; write ${PULUMI_CLOUD_URL}`);
      }
      if (url.protocol === "http:" && !["localhost", "127.0.0.1", "[::1]"].includes(url.hostname))
        throw backendUrlInvalid(
          raw,
          "a Pulumi Cloud URL must be https:// (the access token travels with every request)",
        );
      const self = url.origin !== PULUMI_CLOUD_URL;
      return {
        kind: "cloud",
        url: url.origin,
        description: self ? `self-hosted Pulumi Cloud at ${url.origin}` : `Pulumi Cloud (${PULUMI_CLOUD_URL})`,
        locking: CLOUD_LOCKING,
        fromEnv: true,
      };
    }
    default:
      throw backendUrlInvalid(
        raw,
        scheme
          ? `unknown scheme ${scheme}://; use https:// (Pulumi Cloud), s3://, gs://, azblob:// or file://`
          : "not a URL; use https:// (Pulumi Cloud), s3://, gs://, azblob:// or file://",
      );
  }
}
