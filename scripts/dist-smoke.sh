#!/usr/bin/env bash
# Checks a dist tarball as an archive host would see it: unpacks it into a
# scratch directory, checks SHA256SUMS and that the binaries are static, runs
# the local mock round trip from inside the unpacked tree with an empty
# environment (the same round trip as static-smoke.sh, on the tree's own
# config/, schemas/ and examples/), checks that the AWS sample profile loads,
# runs deploy/install.sh into a scratch root with a prefix (binaries, profile,
# man pages, completions), and verifies the
# installed systemd units with systemd-analyze.
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
    SQS_COMPLETION_QUEUE_URL=http://localhost:9/1/q AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIDSMOKE AWS_SECRET_ACCESS_KEY=smoke \
    AWS_MAX_ATTEMPTS=1 bin/sqs_archive stats 2>&1)
code=$?
set -e
if [[ $code -ne 69 ]] || grep -qiE 'lookup|resolv|name or service' <<<"$msg"; then
    fail "localhost through the static binary: exit $code: $msg"
fi

# deploy/install.sh into a scratch root, with a prefix of its own: the
# binaries run from there, the rewritten units name them, and doctor reads the
# installed profile through the search order.
stage="$work/root"
deploy/install.sh --destdir "$stage" --prefix /opt/sqsa --sysconfdir /etc/sqsa >/dev/null
for b in sqs_archive poll_messages process_message; do
    [[ -x "$stage/opt/sqsa/bin/$b" ]] || fail "install.sh did not install bin/$b"
done
[[ -f "$stage/etc/sqsa/aws.json" && -f "$stage/etc/sqsa/aws.env" ]] || fail "install.sh did not install the profile"
# The man pages and completions the tarball carries, installed where man and the shells look.
for b in sqs_archive poll_messages process_message; do
    for f in "man/man1/$b.1" "completions/bash/$b" "completions/zsh/_$b" "completions/fish/$b.fish"; do
        [[ -s "$f" ]] || fail "the tarball lacks $f"
    done
    bash -n "completions/bash/$b" || fail "completions/bash/$b does not parse"
    for f in "share/man/man1/$b.1" "share/bash-completion/completions/$b" \
        "share/zsh/site-functions/_$b" "share/fish/vendor_completions.d/$b.fish"; do
        [[ -f "$stage/opt/sqsa/$f" ]] || fail "install.sh did not install $f"
    done
done
grep -q "ExecStart=/opt/sqsa/bin/poll_messages .*--env-file /etc/sqsa/aws.env" "$stage/opt/sqsa/share/sqs-archive/deploy/sqs-archive-poll.service" ||
    fail "install.sh did not rewrite the unit for its prefix"
set +e
msg=$(run SQS_ARCHIVE_CONFIG_DIR="$stage/etc/sqsa" "$stage/opt/sqsa/bin/sqs_archive" --profile aws credentials 2>&1)
code=$?
set -e
[[ $code -eq 77 ]] || fail "the installed profile: exit $code: $msg"

# Units: --units installs them; an upgrade refreshes the ones we wrote and
# leaves one edited by hand; --uninstall removes what is unchanged and keeps
# the configuration.
up="$work/upgrade"
deploy/install.sh --destdir "$up" --prefix /opt/sqsa --sysconfdir /etc/sqsa --units >/dev/null
[[ -f "$up/etc/systemd/system/sqs-archive-poll.service" ]] || fail "install.sh --units did not install the units"
echo "# edited by hand" >>"$up/etc/systemd/system/sqs-archive-poll.timer"
cp "$up/etc/systemd/system/sqs-archive-poll.service" "$work/old.service"
sed -i 's/^Description=/Description=OLD /' "$up/etc/systemd/system/sqs-archive-poll.service"
# Make the manifest agree with that "old" unit, as if an older release had written it.
old_sum=$(sha256sum "$up/etc/systemd/system/sqs-archive-poll.service" | cut -d' ' -f1)
sed -i "s#^[0-9a-f]* /etc/systemd/system/sqs-archive-poll.service\$#$old_sum /etc/systemd/system/sqs-archive-poll.service#" \
    "$up/opt/sqsa/share/sqs-archive/installed.sha256"
deploy/install.sh --destdir "$up" --prefix /opt/sqsa --sysconfdir /etc/sqsa >/dev/null 2>"$work/upgrade.err"
cmp -s "$up/etc/systemd/system/sqs-archive-poll.service" "$work/old.service" || fail "an upgrade did not refresh the unit it had installed"
grep -q "edited by hand" "$up/etc/systemd/system/sqs-archive-poll.timer" || fail "an upgrade replaced a unit edited by hand"
grep -q "left /etc/systemd/system/sqs-archive-poll.timer alone" "$work/upgrade.err" || fail "an upgrade did not name the unit it left alone"
deploy/install.sh --destdir "$up" --prefix /opt/sqsa --sysconfdir /etc/sqsa --uninstall >/dev/null 2>&1
[[ ! -e "$up/opt/sqsa/bin/poll_messages" && ! -e "$up/etc/systemd/system/sqs-archive-poll.service" ]] ||
    fail "install.sh --uninstall left installed files"
[[ -f "$up/etc/systemd/system/sqs-archive-poll.timer" ]] || fail "install.sh --uninstall removed a unit edited by hand"
[[ -f "$up/etc/sqsa/aws.json" ]] || fail "install.sh --uninstall removed the configuration"

# systemd-analyze verify on the installed units, pointed at the staged binaries.
# Not optional: .ci/run installs systemd where it is missing.
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found: install the systemd package"
mkdir -p "$work/units"
for u in sqs-archive-poll.service sqs-archive-poll.timer sqs-archive-poll-loop.service sqs-archive-notify@.service; do
    sed "s#/opt/sqsa/bin#$stage/opt/sqsa/bin#g" "$stage/opt/sqsa/share/sqs-archive/deploy/$u" >"$work/units/$u"
done
# systemd-analyze exits 0 on unknown keys and bad values; any output is a finding.
report=$(cd "$work/units" && systemd-analyze verify sqs-archive-poll.service sqs-archive-poll.timer \
    sqs-archive-poll-loop.service sqs-archive-notify@.service 2>&1) ||
    fail "systemd-analyze verify failed: $report"
[[ -z "$report" ]] || fail "systemd-analyze verify: $report"
units=verified

echo "dist-smoke: ok: $(basename "$tarball"), $(head -1 BUILD), static, round trip in place, units $units ($((SECONDS - started)) s)"
