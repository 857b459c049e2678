#!/usr/bin/env bash
# The side-by-side benchmark of issue 8: wireguard-go (A) against firezone-tunnel (B) in a
# two-namespace veth lab. Options are bench.py's (--quick, --self-test, --impl-b PATH, --rounds N,
# --no-peers, ...; --help lists them). Writes artifacts/bench/results.{json,svg}. Run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=scripts/deps.sh
source scripts/deps.sh
ensure_debian_packages

build=1 generator=1
for arg in "$@"; do
  case "$arg" in
    --self-test|--impl-b|--impl-b=*) build=0 ;;
    -h|--help) build=0 generator=0 ;;
  esac
done
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
if ((build)); then
  dotnet build src/Host/Firezone.Actors.Host.csproj -c Release -nologo -v quiet
fi
# The many-peers test's engine load generator (scripts/bench/peers.py EngineLoad), whichever
# implementations are compared.
if ((generator)); then
  dotnet build benchmarks/Benchmarks/Firezone.Actors.Benchmarks.csproj -c Release -nologo -v quiet
fi

# bench.py removes its namespaces and stops its processes (by PID) on every exit, including
# SIGINT/SIGTERM/SIGHUP; exec so those signals reach it directly.
exec python3 -B scripts/bench/bench.py "$@"
