#!/usr/bin/env bash
# `make bench`, archive speed: process_message against `cp -r … && sync` and
# `sha256sum` on the same disk, in one run. Two rows: 2,000 files of 4 KiB
# (target: within 2x of cp+sync) and one 1 GiB file (target: within 1.3x of
# the slower of cp+sync and sha256sum), both with verify on (the default:
# the AIP lock, private staging, the second hash of each source after its
# copy and the read-back all included), and the big file with verify off
# (neither second hash nor read-back). One more row: adding one file to the
# 2,000-file AIP, which rebuilds its whole manifest from the directory and
# the previous manifest (nothing re-hashed). Medians of REPS runs (default 3).
# Then `sqs_archive audit` of both AIPs against `cat` of the same files and
# `sha256sum -c` of the same manifest, the page cache dropped before each
# (target: at most 1.25x cat, and below sha256sum -c).
# Usage: bench/archive.sh [path/to/process_message]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/static/process_message}
[ -x "$BIN" ] || BIN=target/release/process_message
CLI=$(dirname "$BIN")/sqs_archive
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

declare -a cp_small ours_small cp_big sum_big ours_big ours_big_noverify ours_add
for _ in $(seq "$REPS"); do
  fresh; cp_small+=("$(timed sh -c "cp -r '$WORK/source/small' '$WORK/cp/' && sync")")
  fresh; ours_small+=("$(timed archive small '[]')")
  ours_add+=("$(timed archive small '["small/f0001.bin"]')")
  fresh; cp_big+=("$(timed sh -c "cp '$WORK/source/big.bin' '$WORK/cp/' && sync")")
  fresh; sum_big+=("$(timed sha256sum "$WORK/source/big.bin")")
  fresh; ours_big+=("$(timed archive big '["big.bin"]')")
  fresh; ours_big_noverify+=("$(timed archive big '["big.bin"]' false)")
done
fresh

cs=$(median "${cp_small[@]}"); os=$(median "${ours_small[@]}")
cb=$(median "${cp_big[@]}"); sb=$(median "${sum_big[@]}"); ob=$(median "${ours_big[@]}")
obn=$(median "${ours_big_noverify[@]}"); oa=$(median "${ours_add[@]}")
slower=$(awk -v a="$cb" -v b="$sb" 'BEGIN {print (a > b) ? a : b}')
rs=$(ratio "$os" "$cs"); rb=$(ratio "$ob" "$slower"); rbn=$(ratio "$obn" "$slower")

echo
echo "archive speed (process_message vs cp && sync and sha256sum, same disk, median of $REPS):"
printf '| %-24s | %-22s | %-14s | %-22s | %-6s | %-7s | %s\n' case "cp && sync s" "sha256sum s" "process_message s" ratio target result
printf '| %-24s | %-22s | %-14s | %-22s | %-6s | %-7s | %s\n' "2,000 files of 4 KiB" "$cs" "-" "$os" "$rs" "2x" "$(meets "$rs" 2)"
printf '| %-24s | %-22s | %-14s | %-22s | %-6s | %-7s | %s\n' "one $BIG_MIB MiB file" "$cb" "$sb" "$ob" "$rb" "1.3x" "$(meets "$rb" 1.3)"
printf '| %-24s | %-22s | %-14s | %-22s | %-6s | %-7s | %s\n' "one $BIG_MIB MiB file, verify off" "$cb" "$sb" "$obn" "$rbn" "1.3x" "$(meets "$rbn" 1.3)"
printf '| %-24s | %-22s | %-14s | %-22s | %-6s | %-7s | %s\n' "1 file added to 2,000" "-" "-" "$oa" "-" "-" "-"

# Fixity audit, cold cache: the AIPs as process_message left them.
drop_cache() { # as root: the kernel's caches; otherwise each file's pages (GNU dd)
  sync
  if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
    find "$WORK/archive" -type f -exec dd if={} iflag=nocache count=0 status=none \;
  fi
}
cold() { drop_cache; timed "$@"; }
rm -rf "$WORK/archive"; mkdir -p "$WORK/archive"
archive small '[]' >/dev/null
archive big '["big.bin"]' >/dev/null
declare -a au_small cat_small sum_small au_big cat_big sum_big2
for _ in $(seq "$REPS"); do
  au_small+=("$(cold "$CLI" --config "$WORK/profile.json" audit --aipid small)")
  cat_small+=("$(cold sh -c "find '$WORK/archive/small' -type f -exec cat {} + >/dev/null")")
  sum_small+=("$(cold sh -c "cd '$WORK/archive/small' && sha256sum -c --quiet manifest-sha256.txt")")
  au_big+=("$(cold "$CLI" --config "$WORK/profile.json" audit --aipid big)")
  cat_big+=("$(cold sh -c "find '$WORK/archive/big' -type f -exec cat {} + >/dev/null")")
  sum_big2+=("$(cold sh -c "cd '$WORK/archive/big' && sha256sum -c --quiet manifest-sha256.txt")")
done
as=$(median "${au_small[@]}"); ks=$(median "${cat_small[@]}"); ss=$(median "${sum_small[@]}")
ab=$(median "${au_big[@]}"); kb=$(median "${cat_big[@]}"); sb2=$(median "${sum_big2[@]}")
ras=$(ratio "$as" "$ks"); rab=$(ratio "$ab" "$kb"); rss=$(ratio "$as" "$ss"); rsb=$(ratio "$ab" "$sb2")
echo
echo "fixity audit (sqs_archive audit vs cat and sha256sum -c, page cache dropped before each, median of $REPS):"
printf '| %-24s | %-10s | %-16s | %-12s | %-10s | %-14s | %s\n' case "cat s" "sha256sum -c s" "audit s" "vs cat" "vs sha256sum" "target (1.25x cat, < sha256sum -c)"
printf '| %-24s | %-10s | %-16s | %-12s | %-10s | %-14s | %s\n' "2,000 files of 4 KiB" "$ks" "$ss" "$as" "$ras" "$rss" "$(meets "$ras" 1.25), $(meets "$rss" 0.999)"
printf '| %-24s | %-10s | %-16s | %-12s | %-10s | %-14s | %s\n' "one $BIG_MIB MiB file" "$kb" "$sb2" "$ab" "$rab" "$rsb" "$(meets "$rab" 1.25), $(meets "$rsb" 0.999)"
