#!/usr/bin/env bash
# `make bench`: the static binaries, then the harness in bench/perf.rs,
# bench/archive.sh (disk) and bench/s3.sh (S3, with its yardsticks installed).
# Runs under scripts/test-servers.sh, which provides moto and fauxqs.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(date -u +%Y-%m-%d)"
# The yardstick on the official SDK: its own project, lock file and target directory.
cargo build --release --locked --quiet --manifest-path bench/sdk-worker/Cargo.toml --target-dir bench/sdk-worker/target
# Our partition table against the SDK's endpoint resolver (no network).
bench/check-partitions.sh target/static/sqs_archive bench/sdk-worker/target/release/sdk-worker
cargo bench --locked --bench perf 2>/dev/null
bench/archive.sh target/static/process_message
# S3: process_message into s3:// against s5cmd, the AWS CLI and rclone (bench/s3.sh).
scripts/test-servers.sh install-bench
bench/s3.sh target/static/process_message
