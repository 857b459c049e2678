#!/usr/bin/env bash
# Runs every test of the solution. Installs what the tests need (Debian packages) when missing,
# restores, builds, runs `dotnet test` on every test project and prints one closing line
# "N passed, M failed" summed over all projects (CI reads it: keep its format). Skipped tests (a
# kernel without a feature a test needs) count as neither: a line "K skipped: names" above the
# closing line says so. Exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/deps.sh
source scripts/deps.sh
ensure_debian_packages

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet restore Firezone.Actors.sln || { echo "0 passed, 1 failed"; exit 1; }
dotnet build Firezone.Actors.sln -c Release --no-restore -nologo || { echo "0 passed, 1 failed"; exit 1; }

mkdir -p artifacts/test-results
# Tests that SIGKILL a daemon on purpose (a crashed peer, a killed gateway) leave the .NET runtime's
# debugger pipes and diagnostics socket of that process in the temporary directory (a killed process
# cannot remove them). Those made during this run by processes that are gone are removed at its end.
runtime_tmp=${TMPDIR:-/tmp}
run_marker=$(mktemp "$runtime_tmp/fz-test-run.XXXXXX")
remove_runtime_leftovers() {
  local file name pid
  for file in "$runtime_tmp"/clr-debug-pipe-*-in "$runtime_tmp"/clr-debug-pipe-*-out \
              "$runtime_tmp"/dotnet-diagnostic-*-socket; do
    [[ -e $file && $file -nt $run_marker ]] || continue
    name=$(basename "$file")
    name=${name#clr-debug-pipe-}
    name=${name#dotnet-diagnostic-}
    pid=${name%%-*}
    [[ $pid =~ ^[0-9]+$ ]] || continue
    kill -0 "$pid" 2>/dev/null || rm -f "$file"
  done
  rm -f "$run_marker"
}
trap remove_runtime_leftovers EXIT
passed=0
failed=0
skipped=0
status=0
for project in tests/*/*.csproj; do
  name=$(basename "$project" .csproj)
  log="artifacts/test-results/$name.log"
  echo "=== $name"
  # Each project gets its own time bound so one hung test cannot eat CI's 90 minutes.
  timeout --kill-after=30 1500 dotnet test "$project" -c Release --no-build --nologo \
      --logger "console;verbosity=normal" --blame-hang-timeout 5m 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  # The console logger's closing block: "Total tests: N", "     Passed: N", "     Failed: N",
  # "    Skipped: N" (each line only when not 0).
  if grep -qE '^Total tests: [0-9]+' "$log"; then
    p=$(grep -E '^ +Passed: +[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
    f=$(grep -E '^ +Failed: +[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
    s=$(grep -E '^ +Skipped: +[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
    p=${p:-0}
    f=${f:-0}
    s=${s:-0}
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    if [[ $rc -ne 0 && $f -eq 0 ]]; then failed=$((failed + 1)); fi
  elif grep -q "No test is available" "$log"; then
    :
  elif [[ $rc -ne 0 ]]; then
    echo "!!! $name: test run failed with exit code $rc and no summary"
    failed=$((failed + 1))
  fi
  [[ $rc -ne 0 ]] && status=1
done

# Each skipped test with its reason (xUnit's "[SKIP]" line and the indented lines after it).
if [[ $skipped -ne 0 ]]; then
  echo "=== skipped tests"
  for log in artifacts/test-results/*.log; do
    awk -v project="$(basename "$log" .log)" '
      /^\[xUnit\.net [0-9:.]+\]     [^ ].* \[SKIP\]$/ {
        name = $0; sub(/^\[xUnit\.net [0-9:.]+\] +/, "", name); sub(/ \[SKIP\]$/, "", name)
        print project ": " name; inreason = 1; next
      }
      inreason && /^\[xUnit\.net [0-9:.]+\]       / { line = $0; sub(/^\[xUnit\.net [0-9:.]+\] +/, "", line); print "    " line; next }
      { inreason = 0 }
    ' "$log"
  done
fi

# CI keeps only the end of the output: name each failed test and the start of its message here, just
# above the closing line, so a failure can be read from that end alone.
if [[ $failed -ne 0 ]]; then
  echo "=== failed tests"
  for log in artifacts/test-results/*.log; do
    awk -v project="$(basename "$log" .log)" '
      /^  Failed [A-Za-z]/ { print project ": " substr($0, 3); shown = 0; inmsg = 1; next }
      inmsg && /^  Stack Trace:/ { inmsg = 0; next }
      inmsg && shown < 12 { print "    " $0; shown++ }
    ' "$log"
  done
fi

# The skipped tests by name (the console logger's "  Skipped Namespace.Class.Method(args) [time]"
# lines, namespace dropped) on one line above the closing one.
if [[ $skipped -ne 0 ]]; then
  names=$(sed -nE 's/^  Skipped ([^ ].*) \[[^]]*\]$/\1/p' artifacts/test-results/*.log \
      | sed -E 's/^([A-Za-z0-9_]+\.)*([A-Za-z0-9_]+\.[A-Za-z0-9_]+(\(|$))/\2/' \
      | awk 'NR > 1 { printf ", " } { printf "%s", $0 }')
  echo "${skipped} skipped: ${names}"
fi
echo "${passed} passed, ${failed} failed"
[[ $failed -eq 0 && $status -eq 0 ]]
