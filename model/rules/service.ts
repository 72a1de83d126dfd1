import { z } from "zod";
import { NONCHARACTER, hasNoncharacter, line, oneLine } from "./text";

/** The command systemd runs: rendered into the unit file, whose lines systemd drops when they hold a noncharacter. */
export const startCommand = oneLine("start")
  .refine((v) => v.trim() !== "", "start must not be blank")
  .refine((v) => !hasNoncharacter(v), NONCHARACTER);

/** Where a service's start comes from when none is given: only an image has a default (`docker run`). */
export const START_REQUIRED = "give the command that runs the service (only image sources have a default)";

export const installRun = oneLine("install.run");

/** grep -F takes each line of a multi-line pattern as a pattern of its own: any line would match. */
export const bodyContains = line;

/** The JSON field of the version endpoint that must equal the release's commit. */
export const versionField = z.string().min(1);

export const keepReleases = z.number().int().min(2, "must be at least 2 (the serving release and the rollback target)");

export const minFreeDiskMb = z.number().int().min(0);

/** An image is built by its GoldenImage (a `fleet:images` entry), never by the service. */
export const IMAGE_BUILDS_ITSELF =
  "install and build go with git or path sources; an image is built by its GoldenImage (its fleet:images entry)";
