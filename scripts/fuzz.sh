#!/usr/bin/env bash
# Bounded fuzzing of the parsers (cargo-fuzz, libFuzzer, nightly toolchain).
#
#   scripts/fuzz.sh                       # every target, FUZZ_SECONDS (default 60) each
#   scripts/fuzz.sh message config        # only these targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh      # longer
#
# Targets (fuzz/fuzz_targets/): query_response (QueryCodec::decode for each
# call), json_response (JsonCodec::decode), message (MessageSchema::parse and
# the completions built from it), config (Settings::resolve).
#
# Needs the nightly toolchain and a C++ compiler (libFuzzer is built from
# source); installs cargo-fuzz with `cargo install --locked` when missing.
# Each target starts from seeds taken from tests/fixtures/ (answers captured
# from moto and fauxqs) and tests/corpus/. A crash leaves its input in
# fuzz/artifacts/<target>/ and makes this script exit 1: turn the input into
# a case in tests/corpus/ and fix the bug. fuzz/corpus, fuzz/artifacts and
# fuzz/target are git-ignored.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
ALL=(query_response json_response message config)
TARGETS=("${ALL[@]}")
[[ $# -gt 0 ]] && TARGETS=("$@")

log() { printf 'fuzz: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

for t in "${TARGETS[@]}"; do
    [[ " ${ALL[*]} " == *" $t "* ]] || die "unknown target $t (known: ${ALL[*]})"
done
[[ "$SECONDS_EACH" =~ ^[0-9]+$ && "$SECONDS_EACH" -gt 0 ]] || die "FUZZ_SECONDS must be a whole number of seconds"
rustup toolchain list | grep -q '^nightly' || die "the nightly toolchain is needed: rustup toolchain install nightly"
command -v c++ >/dev/null || die "a C++ compiler is needed to build libFuzzer (apt-get install g++)"
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# seed TARGET PREFIX_BYTES FILE...: copy files into the target's corpus, each
# behind every prefix (the response targets read a selector byte first).
seed() {
    local target="$1" prefixes="$2" dir f p name
    shift 2
    dir="$FUZZ/corpus/$target"
    mkdir -p "$dir"
    for f in "$@"; do
        [[ -f "$f" ]] || continue
        name="seed-$(basename "$(dirname "$f")")-$(basename "$f")"
        if [[ -z "$prefixes" ]]; then
            cp "$f" "$dir/$name"
            continue
        fi
        for p in $prefixes; do
            { printf '%b' "\\x$p"; cat "$f"; } >"$dir/$name-$p"
        done
    done
}
# Selector bytes 00-08 pick each call with status 200; 47 and 57 a 400 and a 403.
CALLS="00 01 02 03 04 05 06 07 08 47 57"
seed query_response "$CALLS" "$ROOT"/tests/fixtures/moto/*.xml "$ROOT"/tests/corpus/responses/query/*
# json_response: a second byte below 0x80 means no error header.
seed_json() {
    local dir="$FUZZ/corpus/json_response" f c
    mkdir -p "$dir"
    for f in "$@"; do
        for c in $CALLS; do
            { printf '%b' "\\x$c\\x00"; cat "$f"; } >"$dir/seed-$(basename "$f")-$c"
        done
    done
}
seed_json "$ROOT"/tests/fixtures/fauxqs/*.json "$ROOT"/tests/corpus/responses/json/*
seed message "" "$ROOT"/tests/corpus/messages/*
seed config "" "$ROOT"/tests/corpus/config/* "$ROOT"/config/*.json

cd "$FUZZ"
declare -A RESULT
failed=0
for t in "${TARGETS[@]}"; do
    log "$t: ${SECONDS_EACH}s"
    out="$FUZZ/target/fuzz-$t.log"
    mkdir -p "$FUZZ/target"
    rc=0
    cargo +nightly fuzz run "$t" -- -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        >"$out" 2>&1 || rc=$?
    runs="$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$out" | tail -1 || true)"
    if [[ $rc -eq 0 ]]; then
        RESULT[$t]="ok: ${runs:-?}"
    else
        failed=1
        RESULT[$t]="FAILED (exit $rc): $(grep -m1 -E 'panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer' "$out" || echo "see $out")"
        tail -n 40 "$out" >&2
    fi
done

for t in "${TARGETS[@]}"; do
    printf '%-15s %s\n' "$t" "${RESULT[$t]}"
done
if [[ $failed -ne 0 ]]; then
    log "crashing inputs are in $FUZZ/artifacts/; logs in $FUZZ/target/fuzz-*.log"
    exit 1
fi
