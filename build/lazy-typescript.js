// @ts-check
/**
 * `node -r build/lazy-typescript.js`: @pulumi/pulumi's runtime loads the TypeScript compiler
 * (typescript-shim.js, for its closure serializer) as soon as it is required, ~0.2–0.4 s of
 * every start of the runner and of the provider host. fleet serializes no closures on the deploy
 * path (providers/ship.ts writes `__provider` itself), so the shim gets a stand-in that loads
 * the real compiler on first use: whoever does use it gets it, only later.
 * build/launch.js and tools/pulumi/pulumi-resource-pulumi-nodejs load this file.
 */
"use strict";
const Module = require("module");

const SHIM = /[\\/]@pulumi[\\/]pulumi[\\/]typescript-shim\.js$/;
/** @type {(request: string, parent: { filename?: string } | undefined, isMain: boolean) => unknown} */
// @ts-expect-error: Module._load is internal
const load = Module._load;

// @ts-expect-error: Module._load is internal
Module._load = function (request, parent, isMain) {
  if (request !== "typescript" || !parent || !SHIM.test(parent.filename ?? "")) {
    return load.apply(this, [request, parent, isMain]);
  }
  /** @type {any} */
  let real;
  const get = () => (real ??= load.call(Module, request, parent, isMain));
  return new Proxy(
    {},
    {
      get: (_, key) => get()[key],
      has: (_, key) => key in get(),
      ownKeys: () => Reflect.ownKeys(get()),
      getOwnPropertyDescriptor: (_, key) => {
        const d = Object.getOwnPropertyDescriptor(get(), key);
        // Reported configurable: the stand-in's own target is an empty object.
        return d && { ...d, configurable: true };
      },
    },
  );
};
