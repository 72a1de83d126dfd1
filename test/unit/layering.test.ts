import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";

/**
 * The layers, as README and the style notes state them: `model/` imports nothing of ours but
 * other `model/` files (npm packages such as zod are fine), and `config/` never imports
 * `providers/`. Rules shared by both sides live in `model/`.
 */

const ROOT = path.resolve(__dirname, "..", "..");

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith(".ts") ? [p] : [];
  });
}

/** Every module a file names: imports, `export … from`, `import type`, `require()` and `import()`. */
function importedModules(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/** The project folder an import lands in (`model`, `providers`, …), or undefined for a package. */
function layerOf(fromFile: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  const target = path.relative(ROOT, path.resolve(path.dirname(fromFile), specifier));
  return target.split(path.sep)[0];
}

/** `file: specifier` for each import of `layer`'s files that `allowed` refuses. */
function forbiddenImports(layer: string, allowed: (target: string) => boolean): string[] {
  return tsFiles(path.join(ROOT, layer)).flatMap((file) =>
    importedModules(fs.readFileSync(file, "utf8"))
      .filter((spec) => {
        const target = layerOf(file, spec);
        return target !== undefined && !allowed(target);
      })
      .map((spec) => `${path.relative(ROOT, file)}: ${spec}`),
  );
}

describe("layers: who may import whom", () => {
  it("the parser sees every form of import", () => {
    const source = [
      'import { a } from "../x/a";',
      'import type { B } from "../x/b";',
      'import "../x/c";',
      'export { d } from "../x/d";',
      'export * from "../x/e";',
      'const f = require("../x/f");',
      'const g = await import("../x/g");',
      "import * as h from 'zod';",
    ].join("\n");
    assert.deepEqual(importedModules(source).sort(), [
      "../x/a",
      "../x/b",
      "../x/c",
      "../x/d",
      "../x/e",
      "../x/f",
      "../x/g",
      "zod",
    ]);
  });

  it("model/ imports only model/ (and npm packages)", () => {
    assert.deepEqual(
      forbiddenImports("model", (target) => target === "model"),
      [],
    );
  });

  it("config/ never imports providers/", () => {
    assert.deepEqual(
      forbiddenImports("config", (target) => target !== "providers"),
      [],
    );
  });
});
