#!/usr/bin/env bash
# `make bench`, archive speed: process_message against `cp -r … && sync` and
# `sha256sum` on the same disk, in one run. Two rows: 2,000 files of 4 KiB
# (target: within 2x of cp+sync) and one 1 GiB file (target: within 1.3x of
# the slower of cp+sync and sha256sum). Medians of REPS runs (default 3).
# Usage: bench/archive.sh [path/to/process_message]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/static/process_message}
[ -x "$BIN" ] || BIN=target/release/process_message
[ -x "$BIN" ] || { echo "bench/archive.sh: build process_message first (make static)" >&2; exit 66; }
REPS=${REPS:-3}
BIG_MIB=${BIG_MIB:-1024}
WORK=$(mktemp -d "${BENCH_DIR:-$PWD/target}/bench-archive.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
# Seconds taken by the command.
timed() { local t0; t0=$(now); "$@" >/dev/null; awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
meets() { awk -v r="$1" -v t="$2" 'BEGIN {print (r <= t) ? "met" : "NOT met"}'; }

mkdir -p "$WORK/source/small" "$WORK/archive"
for i in $(seq -w 1 2000); do head -c 4096 /dev/urandom >"$WORK/source/small/f$i.bin"; done
head -c $((BIG_MIB << 20)) /dev/urandom >"$WORK/source/big.bin"
cat >"$WORK/profile.json" <<EOF
{"backend": "mock", "request_queue_url": "mock://r", "completion_queue_url": "mock://c",
 "source_dir": "$WORK/source", "archive_dir": "$WORK/archive"}
EOF
request() { printf '{"action":"archive","aipid":"%s","filenames":%s,"timestamp":"2026-01-01T00:00:00Z"}' "$1" "$2"; }
archive() { # aipid filenames-json [verify]
  local profile=$WORK/profile.json
  if [ "${3:-true}" = false ]; then
    sed 's/}$/, "verify": false}/' "$WORK/profile.json" >"$WORK/profile-noverify.json"
    profile=$WORK/profile-noverify.json
  fi
  request "$1" "$2" | "$BIN" --config "$profile" --aipid "$1"
}
fresh() { rm -rf "$WORK/archive" "$WORK/cp"; mkdir -p "$WORK/archive" "$WORK/cp"; sync; }
sync

declare -a cp_small ours_small cp_big sum_big ours_big ours_big_noverify
for _ in $(seq "$REPS"); do
  fresh; cp_small+=("$(timed sh -c "cp -r '$WORK/source/small' '$WORK/cp/' && sync")")
  fresh; ours_small+=("$(timed archive small '[]')")
  fresh; cp_big+=("$(timed sh -c "cp '$WORK/source/big.bin' '$WORK/cp/' && sync")")
  fresh; sum_big+=("$(timed sha256sum "$WORK/source/big.bin")")
  fresh; ours_big+=("$(timed archive big '["big.bin"]')")
  fresh; ours_big_noverify+=("$(timed archive big '["big.bin"]' false)")
done
fresh

cs=$(median "${cp_small[@]}"); os=$(median "${ours_small[@]}")
cb=$(median "${cp_big[@]}"); sb=$(median "${sum_big[@]}"); ob=$(median "${ours_big[@]}")
obn=$(median "${ours_big_noverify[@]}")
slower=$(awk -v a="$cb" -v b="$sb" 'BEGIN {print (a > b) ? a : b}')
rs=$(ratio "$os" "$cs"); rb=$(ratio "$ob" "$slower"); rbn=$(ratio "$obn" "$slower")

echo
echo "archive speed (process_message vs cp && sync and sha256sum, same disk, median of $REPS):"
printf '| %-24s | %-22s | %-14s | %-22s | %-6s | %-7s | %s\n' case "cp && sync s" "sha256sum s" "process_message s" ratio target result
printf '| %-24s | %-22s | %-14s | %-22s | %-6s | %-7s | %s\n' "2,000 files of 4 KiB" "$cs" "-" "$os" "$rs" "2x" "$(meets "$rs" 2)"
printf '| %-24s | %-22s | %-14s | %-22s | %-6s | %-7s | %s\n' "one $BIG_MIB MiB file" "$cb" "$sb" "$ob" "$rb" "1.3x" "$(meets "$rb" 1.3)"
printf '| %-24s | %-22s | %-14s | %-22s | %-6s | %-7s | %s\n' "one $BIG_MIB MiB file, verify off" "$cb" "$sb" "$obn" "$rbn" "1.3x" "$(meets "$rbn" 1.3)"
