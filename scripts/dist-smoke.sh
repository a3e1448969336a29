#!/usr/bin/env bash
# Checks a dist tarball as an archive host would see it: unpacks it into a
# scratch directory, checks SHA256SUMS and that the binaries are static, runs
# the local mock round trip from inside the unpacked tree with an empty
# environment (the same round trip as static-smoke.sh, on the tree's own
# config/, schemas/ and examples/), checks that the AWS sample profile loads,
# and verifies the systemd units when systemd-analyze is there.
# Only loopback is contacted.
#
# usage: scripts/dist-smoke.sh [TARBALL]   (default: the one for Cargo.toml's version)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -gt 0 ]]; then
    tarball=$(realpath "$1")
else
    version=$(awk -F'"' '/^\[/ { in_package = ($0 == "[package]") } in_package && /^version *=/ { print $2; exit }' "$root/Cargo.toml")
    tarball="$root/dist/sqs-archive-$version-x86_64-linux.tar.gz"
fi
fail() { echo "dist-smoke: $*" >&2; exit 1; }
[[ -f "$tarball" ]] || fail "$tarball not found: run make dist"
started=$SECONDS

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work"
tops=("$work"/*)
[[ ${#tops[@]} -eq 1 && -d "${tops[0]}" ]] || fail "expected one top-level directory in the tarball"
tree=${tops[0]}
mkdir -p "$work/home"
cd "$tree"

sha256sum --quiet -c SHA256SUMS || fail "SHA256SUMS does not match the binaries"
for b in sqs_archive poll_messages process_message; do
    [[ -x "bin/$b" ]] || fail "bin/$b missing or not executable"
    if ldd "bin/$b" 2>&1 | grep -qE '=>|ld-linux'; then
        ldd "bin/$b" >&2
        fail "bin/$b is dynamically linked"
    fi
done

# Nothing from the caller's environment: no PATH entries but the system's, a
# HOME without ~/.aws, and never the instance metadata service.
run() { env -i PATH=/usr/bin:/bin HOME="$work/home" AWS_EC2_METADATA_DISABLED=true "$@"; }

# The local round trip, in place: send a file list and a whole directory, poll
# once (the default handler is bin/process_message, next to poll_messages),
# read both completions and compare the archived files.
run bin/sqs_archive --profile local send --aipid mds2909 --filenames a b >/dev/null
run bin/sqs_archive --profile local send --aipid mds2909 --filenames >/dev/null
run bin/poll_messages --profile local --log-level warn
out=$(run bin/sqs_archive --profile local receive --delete)
[[ $(grep -c '"success":true' <<<"$out") -eq 2 ]] || { echo "$out" >&2; fail "expected 2 successful completions"; }
for f in a b; do
    cmp -s "examples/source/$f" "var/archive/mds2909/$f" || fail "var/archive/mds2909/$f differs from examples/source/$f"
done
[[ -f var/archive/mds2909/sub/data.txt ]] || fail "the whole-directory request was not archived"
(cd var/archive/mds2909 && sha256sum --quiet -c manifest-sha256.txt) || fail "manifest-sha256.txt does not match"
stats=$(run bin/sqs_archive --profile local stats)
grep -q '"visible":0' <<<"$stats" || fail "queues not empty after the round trip: $stats"

# The AWS sample parses and names no key: with no credentials anywhere the
# only complaint is the missing credentials (77), not the configuration (78).
set +e
msg=$(run bin/sqs_archive --config config/aws.example.json credentials 2>&1)
code=$?
set -e
[[ $code -eq 77 && $msg == *"no AWS credentials found"* ]] || fail "config/aws.example.json: exit $code: $msg"

# Name lookup in the static binary (/etc/hosts): localhost resolves, and the
# error is about the refused connection, not about the name.
set +e
msg=$(run SQS_ARCHIVE_BACKEND=sqs AWS_ENDPOINT_URL=http://localhost:9 SQS_REQUEST_QUEUE_URL=http://localhost:9/1/q \
    SQS_COMPLETION_QUEUE_URL=http://localhost:9/1/q AWS_ACCESS_KEY_ID=AKIDSMOKE AWS_SECRET_ACCESS_KEY=smoke \
    AWS_MAX_ATTEMPTS=1 bin/sqs_archive stats 2>&1)
code=$?
set -e
if [[ $code -ne 69 ]] || grep -qiE 'lookup|resolv|name or service' <<<"$msg"; then
    fail "localhost through the static binary: exit $code: $msg"
fi

units=skipped
if command -v systemd-analyze >/dev/null; then
    # The units name /opt/sqs-archive; verify copies that point at this tree.
    mkdir -p "$work/units"
    for u in sqs-archive-poll.service sqs-archive-poll.timer; do
        sed "s#/opt/sqs-archive#$tree#g" "deploy/$u" >"$work/units/$u"
    done
    # systemd-analyze exits 0 on unknown keys and bad values; any output is a finding.
    report=$(systemd-analyze verify "$work/units/sqs-archive-poll.service" "$work/units/sqs-archive-poll.timer" 2>&1) ||
        fail "systemd-analyze verify failed: $report"
    [[ -z "$report" ]] || fail "systemd-analyze verify: $report"
    units=verified
fi

echo "dist-smoke: ok: $(basename "$tarball"), $(head -1 BUILD), static, round trip in place, units $units ($((SECONDS - started)) s)"
