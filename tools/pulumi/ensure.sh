#!/usr/bin/env bash
# tools/pulumi/ensure.sh — find or build the Pulumi CLI fleet drives, and print the folder that
# holds it (the last line of stdout; progress goes to stderr). The demo, the operator scripts,
# the engine tests and CI all call this one script.
#
# Resolution order (the first that works wins):
#   1. FLEET_PULUMI_BIN_DIR, if set: a folder with an executable `pulumi`, taken as given (no
#      fallback: a wrong folder is an error, not a silent rebuild).
#   2. A `pulumi` on PATH (outside node_modules/.bin) that runs and is at least the SDK's version
#      (@pulumi/pulumi in package.json).
#   3. Where `go` exists: the CLI built from source at the SDK's version, pinned by this folder's
#      go.mod/go.sum, cached in ${XDG_CACHE_HOME:-~/.cache}/fleet/pulumi/<version>/bin and reused.
#   4. The `pulumi` npm package (node_modules/.bin/pulumi), which downloads the CLI: internet only.
#   5. Otherwise: exit 3 with what to install.
# The dynamic-provider shim (pulumi-resource-pulumi-nodejs) is put beside a built CLI, because
# the engine looks for plugins next to `pulumi` and on PATH.
#
# The Node.js language host (pulumi-language-nodejs) is a Go module of its own that the Go
# module proxy does not serve (403 "This module version is not available" for every version of
# github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3), so a built CLI has none;
# fleet then runs its program through the Automation API (`pulumi … --client`), see
# engine/workspace.ts. A CLI from Pulumi's installer brings the language host and is used as is.
#
# Environment: FLEET_PULUMI_BIN_DIR (1.), FLEET_PULUMI_NO_BUILD=1 (skip 3.), FLEET_PULUMI_QUIET=1.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$here/../.." && pwd)
say() { [ "${FLEET_PULUMI_QUIET:-}" = 1 ] || printf 'pulumi-cli: %s\n' "$*" >&2; }

# The SDK's version, from package.json (exact pin); go.mod must name the same one.
# (Read with sed, not node: this script runs before every fleet command, and node costs ~50 ms.)
sdk=$(sed -n 's/^ *"@pulumi\/pulumi": *"\([^"]*\)",\{0,1\}$/\1/p' "$project/package.json" | head -1)
[[ "$sdk" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "pulumi-cli: package.json must pin @pulumi/pulumi exactly (found \"$sdk\")" >&2; exit 3; }
grep -Eq "github.com/pulumi/pulumi/pkg/v3 v$sdk( |$)" "$here/go.mod" \
  || { echo "pulumi-cli: tools/pulumi/go.mod does not require pkg/v3 v$sdk (package.json's @pulumi/pulumi); update both together" >&2; exit 3; }

# "3.248.0" from `pulumi version` ("v3.248.0"); empty if it does not run.
version_of() { timeout 20 "$1" version 2>/dev/null | head -1 | sed 's/^v//' || true; }
at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }
shim="$here/pulumi-resource-pulumi-nodejs"

if [ -n "${FLEET_PULUMI_BIN_DIR:-}" ]; then
  # Taken as given (no version check): the caller chose it, e.g. a test's stand-in for the CLI.
  [ -x "$FLEET_PULUMI_BIN_DIR/pulumi" ] || { echo "pulumi-cli: FLEET_PULUMI_BIN_DIR=$FLEET_PULUMI_BIN_DIR has no executable pulumi" >&2; exit 3; }
  say "using FLEET_PULUMI_BIN_DIR ($FLEET_PULUMI_BIN_DIR)"
  echo "$FLEET_PULUMI_BIN_DIR"; exit 0
fi

# 2. PATH, without node_modules/.bin (there `pulumi` is the npm package's downloader: step 4).
path_wo_npm=$(printf '%s' "${PATH:-}" | tr ':' '\n' | grep -v '/node_modules/\.bin$' | paste -sd: -)
if found=$(PATH="$path_wo_npm" command -v pulumi 2>/dev/null); then
  v=$(version_of "$found")
  if [ -n "$v" ] && at_least "$v" "$sdk"; then
    say "using $found ($v)"
    dirname "$found"; exit 0
  fi
  if [ -n "$v" ]; then say "ignoring $found: version $v is older than the SDK ($sdk)"; else say "ignoring $found: it does not run"; fi
fi

# 3. Build from source with Go, once per version.
cache="${XDG_CACHE_HOME:-${HOME:?}/.cache}/fleet/pulumi/$sdk/bin"
# The build leaves a stamp once the binary has reported its version: checking the stamp instead
# of running `pulumi version` (~150 ms) keeps every fleet command's start short.
stamp="$cache/fleet-verified-version"
if [ -x "$cache/pulumi" ] && { [ "$(cat "$stamp" 2>/dev/null)" = "$sdk" ] || [ "$(version_of "$cache/pulumi")" = "$sdk" ]; }; then
  [ -f "$stamp" ] || printf '%s\n' "$sdk" > "$stamp"
  cmp -s "$shim" "$cache/pulumi-resource-pulumi-nodejs" || cp -f "$shim" "$cache/" 2>/dev/null || true
  say "using the CLI built earlier ($cache)"
  echo "$cache"; exit 0
fi
if command -v go >/dev/null && [ "${FLEET_PULUMI_NO_BUILD:-}" != 1 ]; then
  [ -f "$shim" ] || { echo "pulumi-cli: $shim is missing from this checkout" >&2; exit 3; }
  say "building the Pulumi CLI v$sdk from source with $(go version | cut -d' ' -f3) (first time only; a few minutes on a cold machine)"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/fleet-pulumi-build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  start=$SECONDS
  # Progress: the go command names each module it downloads ("go: downloading …"); compiling is silent.
  if ! (cd "$here" && go build -trimpath -o "$tmp/pulumi" \
          -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$sdk" \
          github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) 2>&1 | tee "$tmp/build.log" | sed -u 's/^/pulumi-cli:   /' >&2; then
    echo "pulumi-cli: building the Pulumi CLI failed (log above); or install it: https://www.pulumi.com/docs/install/" >&2
    exit 3
  fi
  [ "$(version_of "$tmp/pulumi")" = "$sdk" ] || { echo "pulumi-cli: the built CLI does not report v$sdk" >&2; exit 3; }
  mkdir -p "$cache"
  cp "$shim" "$tmp/"
  mv -f "$tmp/pulumi" "$tmp/pulumi-resource-pulumi-nodejs" "$cache/"
  printf '%s\n' "$sdk" > "$cache/fleet-verified-version"
  say "built pulumi v$sdk in $((SECONDS - start)) s -> $cache"
  echo "$cache"; exit 0
fi

# 4. The pulumi npm package: works where its download site is reachable.
npm_bin="$project/node_modules/.bin/pulumi"
if [ -x "$npm_bin" ] && [ -n "$(version_of "$npm_bin")" ]; then
  say "using the pulumi npm package"
  dirname "$npm_bin"; exit 0
fi

cat >&2 <<MSG
pulumi-cli: no Pulumi CLI found, and none could be built here.
  - Install it: https://www.pulumi.com/docs/install/ (v$sdk or newer), or
  - install Go (1.24 or newer) and run this again: fleet builds the CLI from source (tools/pulumi/go.mod).
MSG
exit 3
