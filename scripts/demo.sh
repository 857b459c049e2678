#!/usr/bin/env bash
# The main job: builds firezone-tunnel and (once the end-to-end lab lands) runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_debian_packages
dotnet build Firezone.Actors.sln -c Release -nologo -v quiet
echo "Built firezone-tunnel. The end-to-end demo (client, router, gateway, resource namespaces with ECN marking) is coming with issue 7."
