#!/usr/bin/env bash
# npm run demo: start one local test server, then `pulumi up --stack dev` on a local file backend.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLEET_DIR=/tmp/fleet-demo FLEET_NODES="demo=127.0.0.21" FLEET_DB=""
bash test/hosts/up.sh

# The Pulumi CLI: the one on PATH, else the pinned `pulumi` npm package (it downloads the CLI
# once). Neither works without internet access to Pulumi's download site.
if command -v pulumi >/dev/null 2>&1; then PULUMI=(pulumi)
elif node_modules/.bin/pulumi version >/dev/null 2>&1; then PULUMI=(node_modules/.bin/pulumi)
else
  cat >&2 <<'MSG'
demo: the test server is up, but there is no Pulumi CLI here and it could not be downloaded.
Install it (https://www.pulumi.com/docs/install/, e.g. `curl -fsSL https://get.pulumi.com | sh`),
then run `npm run demo` again.
MSG
  exit 3
fi

export PULUMI_BACKEND_URL="file://$PWD/.pulumi" PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
mkdir -p .pulumi
"${PULUMI[@]}" stack select dev --create --non-interactive
"${PULUMI[@]}" up --stack dev --yes --non-interactive --diff
"${PULUMI[@]}" stack output --stack dev --json
echo "demo: curl http://127.0.0.21:8080/api/version -> $(curl -s http://127.0.0.21:8080/api/version)"
