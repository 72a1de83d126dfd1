#!/usr/bin/env bash
# npm run demo: start one local test server (127.0.0.21), get the Pulumi CLI (tools/pulumi/ensure.sh:
# PATH, or built from source with Go and cached), then `pulumi up --stack dev` on a file backend
# under the project (.pulumi/, passphrase secrets), and show what the service answers.
# A second run is a no-op: the engine finds nothing to change and fleet opens no SSH connection.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLEET_DIR=/tmp/fleet-demo FLEET_NODES="demo=127.0.0.21" FLEET_DB=""
bash test/hosts/up.sh

bash tools/pulumi/ensure.sh >/dev/null || exit 3

# The demo's own backend and passphrase; export your own to use another (see README).
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$PWD/.pulumi}"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-fleet-demo}"
mkdir -p .pulumi
pulumi() { node build/launch.js pulumi "$@"; }

pulumi stack select dev --create --non-interactive
# --refresh: a test server started afresh (its container was recreated) is read as it is, so
# what it lacks is deployed again instead of trusted from the state.
pulumi up --stack dev --yes --non-interactive --diff --refresh
url=http://127.0.0.21:8080/api/version
echo "demo: the service answers at $url: $(curl -s --max-time 5 "$url")"
echo "demo: next: change demo/app/app.py, then \`npm run pulumi -- preview --diff --stack dev\` (README: the demo loop)"
