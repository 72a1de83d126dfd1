import { z } from "zod";

/** Docker's repository grammar: lowercase components joined by '.', '_' or '-', separated by '/'. */
export const DOCKER_REPOSITORY_PATTERN = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
export const dockerRepository = z
  .string()
  .regex(DOCKER_REPOSITORY_PATTERN, "must be a docker repository name (lowercase letters, digits, '.', '_', '-', '/')");
