#!/usr/bin/env bash
# `make bench`, archiving into S3: process_message with archive_dir = s3://…
# against the copy tools, side by side in one run against the same emulator:
#   - 2,000 files of 4 KiB into fauxqs's S3 (the faster emulator for many
#     small requests);
#   - one 1 GiB file into moto's S3 (fauxqs refuses bodies over ~11 MiB).
# Contenders: process_message (x-amz-checksum-sha256 and signed payload hash
# on every PUT and part, x-amz-meta-sha256, verified against S3's answer,
# plus the AIP manifest), `s5cmd cp` (no SHA-256 option: MD5 only),
# `aws s3 cp --recursive --checksum-algorithm SHA256` (awscli v1), `rclone
# copy` (MD5 in metadata; no SHA-256 for S3 in Debian's rclone). Each tool
# uploads into a fresh prefix each time, so nothing is skipped.
# Medians of REPS runs (default 3) of wall time, CPU (user + system) and
# peak RSS; ratios against s5cmd and the AWS CLI. Targets: our wall at most
# 1.0x s5cmd's and 0.5x the AWS CLI's; our CPU at most s5cmd's; our peak
# RSS at most 100 MiB for the 1 GiB file (default settings).
# The yardsticks come from `scripts/test-servers.sh install-bench`; a
# missing one fails the bench (exit 69), it is never skipped.
# Usage (under scripts/test-servers.sh run, which exports the emulators):
#   bench/s3.sh [path/to/process_message]
# Knobs: REPS, BENCH_S3_SMALL (2000), BENCH_S3_BIG_MIB (1024).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${1:-target/static/process_message}
[ -x "$BIN" ] || { echo "bench/s3.sh: no $BIN: build it first (make static)" >&2; exit 66; }
REPS=${REPS:-3}
SMALL=${BENCH_S3_SMALL:-2000}
BIG_MIB=${BENCH_S3_BIG_MIB:-1024}
: "${SQS_ARCHIVE_IT_MOTO_URL:?run under scripts/test-servers.sh run}"
: "${SQS_ARCHIVE_IT_FAUXQS_URL:?run under scripts/test-servers.sh run}"
S5CMD=$ROOT/.venv-bench/bin/s5cmd
AWS=$ROOT/.venv-bench/bin/aws
RCLONE=$(command -v rclone || true)
for tool in "$S5CMD" "$AWS" "$RCLONE"; do
  [ -n "$tool" ] && [ -x "$tool" ] || {
    echo "bench/s3.sh: a yardstick is missing ($tool): run scripts/test-servers.sh install-bench" >&2
    exit 69
  }
done
WORK=$(mktemp -d "${BENCH_DIR:-$ROOT/target}/bench-s3.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Runs a command; prints "wall cpu rss_kib" (GNU time), fails when it fails.
measure() {
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || {
    echo "bench/s3.sh: failed: $*" >&2; tail -5 "$WORK/err" >&2; exit 1; }
  awk '{printf "%.3f %.3f %d\n", $1, $2 + $3, $4}' "$WORK/time"
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
meets() { awk -v r="$1" -v t="$2" 'BEGIN {print (r <= t) ? "met" : "NOT met"}'; }

mkdir -p "$WORK/source/small"
for i in $(seq -w 1 "$SMALL"); do head -c 4096 /dev/urandom >"$WORK/source/small/f$i.bin"; done
mkdir -p "$WORK/source/big"
head -c $((BIG_MIB << 20)) /dev/urandom >"$WORK/source/big/big.bin"

# One emulator's credentials and endpoint for every tool.
use_server() { # MOTO | FAUXQS
  local v=SQS_ARCHIVE_IT_$1
  URL=$(eval echo "\$${v}_URL")
  export AWS_ACCESS_KEY_ID=$(eval echo "\$${v}_ACCESS_KEY_ID")
  export AWS_SECRET_ACCESS_KEY=$(eval echo "\$${v}_SECRET_ACCESS_KEY")
  export AWS_REGION=$(eval echo "\$${v}_REGION") AWS_DEFAULT_REGION=$(eval echo "\$${v}_REGION")
  export AWS_ENDPOINT_URL_S3=$URL AWS_EC2_METADATA_DISABLED=true
  # No one's ~/.aws steers a contender.
  export AWS_CONFIG_FILE=$WORK/no-aws-config AWS_SHARED_CREDENTIALS_FILE=$WORK/no-aws-credentials
  unset AWS_PROFILE AWS_ENDPOINT_URL
  BUCKET=bench-s3-$(echo "$1" | tr A-Z a-z)-$$
  "$AWS" --endpoint-url "$URL" s3 mb "s3://$BUCKET" >/dev/null
}

ours() { # aipid prefix
  printf '{"backend":"mock","request_queue_url":"mock://r","completion_queue_url":"mock://c","source_dir":"%s","archive_dir":"s3://%s/%s"}' \
    "$WORK/source" "$BUCKET" "$2" >"$WORK/profile.json"
  printf '{"action":"archive","aipid":"%s","filenames":[],"timestamp":"2026-01-01T00:00:00Z"}' "$1" >"$WORK/request.json"
  measure sh -c "exec '$BIN' --config '$WORK/profile.json' --aipid '$1' <'$WORK/request.json'"
}
s5() { measure "$S5CMD" --endpoint-url "$URL" cp "$WORK/source/$1/*" "s3://$BUCKET/$2/$1/"; }
awscli() {
  measure "$AWS" --endpoint-url "$URL" s3 cp --recursive --only-show-errors \
    --checksum-algorithm SHA256 "$WORK/source/$1" "s3://$BUCKET/$2/$1"
}
rcl() {
  # rclone's S3 SDK refuses AWS_CA_BUNDLE with its own transport; keys from the environment.
  measure env -u AWS_CA_BUNDLE "$RCLONE" copy --config /dev/null --s3-provider Other --s3-env-auth \
    --s3-endpoint "$URL" --s3-region "$AWS_REGION" --s3-force-path-style=true \
    "$WORK/source/$1" ":s3:$BUCKET/$2/$1"
}

# scenario SERVER DIR LABEL: REPS rounds of every tool; prints the rows.
scenario() {
  use_server "$1"
  local dir=$2 label=$3 tool rep
  declare -A wall cpu rss
  for rep in $(seq "$REPS"); do
    for tool in ours s5 awscli rcl; do
      read -r w c m < <("$tool" "$dir" "$tool-$rep")
      wall[$tool]+="$w "; cpu[$tool]+="$c "; rss[$tool]+="$m "
    done
  done
  local -A W C M
  for tool in ours s5 awscli rcl; do
    # shellcheck disable=SC2086
    W[$tool]=$(median ${wall[$tool]}); C[$tool]=$(median ${cpu[$tool]}); M[$tool]=$(median ${rss[$tool]})
  done
  echo
  echo "$label (median of $REPS)   wall s   CPU s   peak RSS MiB"
  for tool in ours s5 awscli rcl; do
    printf '  %-26s %8s %7s %8d\n' "$(name "$tool")" "${W[$tool]}" "${C[$tool]}" $((M[$tool] / 1024))
  done
  local ws wa cs
  ws=$(ratio "${W[ours]}" "${W[s5]}"); wa=$(ratio "${W[ours]}" "${W[awscli]}"); cs=$(ratio "${C[ours]}" "${C[s5]}")
  echo "  ours/s5cmd wall ${ws}x (target <= 1.0: $(meets "$ws" 1.0)), ours/aws wall ${wa}x (target <= 0.5: $(meets "$wa" 0.5)),"
  echo "  ours/s5cmd CPU ${cs}x (target <= 1.0: $(meets "$cs" 1.0)), ours/rclone wall $(ratio "${W[ours]}" "${W[rcl]}")x"
  if [ "$dir" = big ]; then
    local mib=$((M[ours] / 1024))
    echo "  our peak RSS ${mib} MiB (target <= 100: $(meets "$mib" 100))"
  fi
}
name() {
  case $1 in
  ours) echo "process_message (sha256)" ;;
  s5) echo "s5cmd cp (md5 only)" ;;
  awscli) echo "aws s3 cp (sha256)" ;;
  rcl) echo "rclone copy (md5 only)" ;;
  esac
}

echo "S3 archiving, $(date -u +%Y-%m-%dT%H:%MZ): s5cmd $("$S5CMD" version), $("$AWS" --version 2>&1 | cut -d' ' -f1), $("$RCLONE" version | head -1)"
scenario FAUXQS small "$SMALL files of 4 KiB, fauxqs S3"
scenario MOTO big "one $BIG_MIB MiB file, moto S3"
