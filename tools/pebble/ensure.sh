#!/usr/bin/env bash
# tools/pebble/ensure.sh — find or build Pebble, Let's Encrypt's ACME test server, which the
# proxy's ACME test issues and renews certificates from (no internet: the Go module proxy
# serves it). Prints the folder holding `pebble` and its test certificates (`certs/`: the
# localhost certificate Pebble serves HTTPS with, and the minica root that signs it) on its
# last line; progress goes to stderr. Cached in ${XDG_CACHE_HOME:-~/.cache}/fleet/pebble/<version>.
set -euo pipefail
version=v2.10.3
dir=${XDG_CACHE_HOME:-$HOME/.cache}/fleet/pebble/$version
if [ -x "$dir/pebble" ] && [ -f "$dir/certs/pebble.minica.pem" ]; then echo "$dir"; exit 0; fi
command -v go >/dev/null 2>&1 || { echo "pebble: go is not installed; the ACME test builds Pebble with it" >&2; exit 3; }
echo "pebble: building github.com/letsencrypt/pebble/v2 $version (once)" >&2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp/bin" GOFLAGS=-mod=mod go install "github.com/letsencrypt/pebble/v2/cmd/pebble@$version" >&2
src=$(go env GOMODCACHE)/github.com/letsencrypt/pebble/v2@$version/test/certs
mkdir -p "$tmp/out/certs"
cp "$tmp/bin/pebble" "$tmp/out/pebble"
cp "$src/pebble.minica.pem" "$src/localhost/cert.pem" "$src/localhost/key.pem" "$tmp/out/certs/"
chmod -R u+w "$tmp/out"
mkdir -p "$(dirname "$dir")"; rm -rf "$dir"; mv "$tmp/out" "$dir"
echo "$dir"
