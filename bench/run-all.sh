#!/usr/bin/env bash
# Run every benchmark present: each compiled bench/<name>.ts (dist/bench/<name>.js)
# and each bench/<name>.sh other than this script. Every bench prints its own
# table and writes bench/results/<name>.json. A failing bench does not stop the
# others; the exit status says whether all succeeded.
# Usage: bash bench/run-all.sh   (after `make build`; as root)
set -u
cd "$(dirname "$0")/.."
failed=()
ran=0
for js in dist/bench/*.js; do
  [ -e "$js" ] || continue
  name=$(basename "$js" .js)
  [ -e "bench/$name.ts" ] || continue   # stale output of a removed bench
  echo "=== $name"
  if node "$js"; then ran=$((ran + 1)); else failed+=("$name"); fi
  echo
done
for sh in bench/*.sh; do
  [ "$(basename "$sh")" = "run-all.sh" ] && continue
  [ -e "$sh" ] || continue
  name=$(basename "$sh" .sh)
  echo "=== $name"
  if bash "$sh"; then ran=$((ran + 1)); else failed+=("$name"); fi
  echo
done
echo "benchmarks run: $ran ok, ${#failed[@]} failed${failed:+ (${failed[*]})}; results in bench/results/"
[ ${#failed[@]} -eq 0 ]
