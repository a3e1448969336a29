#!/usr/bin/env bash
# Packs the static binaries in target/static/ (`make static`) with everything
# a host needs into dist/sqs-archive-<version>-x86_64-linux.tar.gz, one
# top-level directory sqs-archive-<version>/ holding:
#   bin/        sqs_archive, poll_messages, process_message (static)
#   config/     local.json (works in the unpacked tree), aws.example.json
#   schemas/    the message schema
#   examples/source/  files for the local round trip
#   var/archive/      where the local profile archives to
#   deploy/     install.sh (to /usr/local/bin and /etc/sqs-archive, or a prefix),
#               crontab.example, sqs-archive-poll.service/.timer,
#               sqs-archive-notify@.service, logrotate.example, INSTALL.md
#   completions/ bash/<program>, zsh/_<program>, fish/<program>.fish for the
#               three programs (`sqs_archive generate completions`)
#   man/man1/   <program>.1 for the three programs (`sqs_archive generate man`)
#   README.md, ARCHITECTURE.md, docs/, LICENSE (those present)
#   SHA256SUMS  of the binaries (sha256sum -c SHA256SUMS)
#   BUILD       version, target, commit, toolchain
# The archive is reproducible for a given commit: sorted, fixed owner and
# mtime (the commit's time), gzip without a timestamp.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "make-dist: $*" >&2; exit 1; }

version=$(awk -F'"' '/^\[/ { in_package = ($0 == "[package]") } in_package && /^version *=/ { print $2; exit }' Cargo.toml)
[[ -n "$version" ]] || die "no version in Cargo.toml's [package]"
bins=(sqs_archive poll_messages process_message)
[[ -f target/static/TARGET ]] || die "target/static/ is empty: run make static first"
target=$(<target/static/TARGET)
for b in "${bins[@]}"; do
    bin="target/static/$b"
    [[ -x "$bin" ]] || die "$bin is missing: run make static"
    if ldd "$bin" 2>&1 | grep -qE '=>|ld-linux'; then
        die "$bin is dynamically linked"
    fi
    # A stale target/static/ from another version must not be shipped under this one.
    # `sqs_archive 0.1.0 (commit abc1234, x86_64-unknown-linux-musl, musl, built 2026-12-02)`
    got=$("$bin" --version)
    [[ "$got" == "$b $version ("* ]] || die "$bin --version says \"$got\", expected \"$b $version (...)\": run make static"
done
deploy_files=(deploy/install.sh deploy/crontab.example deploy/sqs-archive-poll.service
    deploy/sqs-archive-poll.timer deploy/sqs-archive-poll-loop.service deploy/sqs-archive-notify@.service
    deploy/logrotate.example deploy/INSTALL.md)
monitoring_files=(deploy/prometheus/sqs-archive.rules.yml deploy/prometheus/sqs-archive.rules.test.yml
    deploy/grafana/sqs-archive.json)
for f in config/local.json config/aws.example.json "${deploy_files[@]}" "${monitoring_files[@]}"; do
    [[ -f "$f" ]] || die "$f is missing"
done
# The AWS sample is copied to hosts as is: it must hold no key.
if grep -qiE '"aws_(access_key_id|secret_access_key|session_token)"' config/aws.example.json; then
    die "config/aws.example.json holds AWS keys; keep credentials out of the sample"
fi

name="sqs-archive-$version"
arch=${target%%-*}
tarball="dist/$name-$arch-linux.tar.gz"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
mkdir -p "$root"/{bin,config,schemas,examples,var/archive,deploy/prometheus,deploy/grafana} \
    "$root"/completions/{bash,zsh,fish} "$root"/man/man1

install -m 755 "${bins[@]/#/target/static/}" "$root/bin/"
install -m 644 config/local.json config/aws.example.json "$root/config/"
install -m 644 schemas/*.json "$root/schemas/"
cp -R examples/source "$root/examples/"
install -m 644 "${deploy_files[@]}" "$root/deploy/"
for f in "${monitoring_files[@]}"; do install -m 644 "$f" "$root/$f"; done
chmod 755 "$root/deploy/install.sh"
for doc in README.md ARCHITECTURE.md LICENSE LICENSE.md; do
    if [[ -f "$doc" ]]; then install -m 644 "$doc" "$root/"; fi
done
install -d -m 755 "$root/docs"
install -m 644 docs/*.md "$root/docs/"
# Completions and man pages come from the command table in the binary just packed.
gen="target/static/sqs_archive"
for b in "${bins[@]}"; do
    "$gen" generate completions bash "$b" >"$root/completions/bash/$b"
    "$gen" generate completions zsh "$b" >"$root/completions/zsh/_$b"
    "$gen" generate completions fish "$b" >"$root/completions/fish/$b.fish"
    "$gen" generate man "$b" >"$root/man/man1/$b.1"
done
chmod 644 "$root"/completions/*/* "$root"/man/man1/*
(cd "$root" && sha256sum bin/* >SHA256SUMS)

if commit=$(git rev-parse --short=12 HEAD 2>/dev/null); then
    epoch=$(git log -1 --format=%ct HEAD)
    git --no-optional-locks diff --quiet HEAD 2>/dev/null || commit="$commit (with uncommitted changes)"
else
    commit=unknown
    epoch=$(stat -c %Y Cargo.toml)
fi
epoch=${SOURCE_DATE_EPOCH:-$epoch}
{
    echo "sqs-archive $version"
    echo "target: $target$([[ $target == *-gnu ]] && echo ' (glibc, statically linked)')"
    echo "commit: $commit"
    echo "rustc: $(rustc --version 2>/dev/null || echo unknown)"
} >"$root/BUILD"

chmod -R u+rwX,go+rX,go-w "$root"
find "$root" -exec touch -h -d "@$epoch" {} +
mkdir -p dist
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    -C "$stage" -cf - "$name" | gzip -9n >"$tarball.tmp"
mv "$tarball.tmp" "$tarball"
(cd dist && sha256sum "$(basename "$tarball")" >"$(basename "$tarball").sha256")

echo "make-dist: $tarball ($(du -h "$tarball" | cut -f1), $(tar -tzf "$tarball" | wc -l) entries)"
