// picomatch ships no types; only what source/files.ts uses (https://github.com/micromatch/picomatch#options).
declare module "picomatch/posix" {
  interface PicomatchOptions {
    /** `*` and `**` match names starting with a dot. */
    dot?: boolean;
    /** `{a,b}` is literal text. */
    nobrace?: boolean;
    /** `@(a)`, `+(a)`, `!(a)`… are literal text. */
    noextglob?: boolean;
    /** POSIX brackets: `[!a]` is a negated class, `[[:digit:]]` a class. */
    posix?: boolean;
  }
  function picomatch(glob: string, options?: PicomatchOptions): (test: string) => boolean;
  export = picomatch;
}
