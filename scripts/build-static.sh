#!/usr/bin/env bash
# Builds the three binaries as static executables into target/static/.
# musl when its rustup target is installed; otherwise glibc with crt-static
# (the target is named explicitly so build scripts stay dynamic).
set -euo pipefail
cd "$(dirname "$0")/.."
bins=(sqs_archive poll_messages process_message)
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    target=x86_64-unknown-linux-musl
    cargo build --release --locked --target "$target"
else
    target=x86_64-unknown-linux-gnu
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target"
fi
mkdir -p target/static
for b in "${bins[@]}"; do
    cp "target/$target/release/$b" "target/static/$b"
    # ldd says "not a dynamic executable" (or "statically linked") for a static file.
    if ldd "target/static/$b" 2>&1 | grep -qE '=>|ld-linux'; then
        echo "build-static: target/static/$b is dynamically linked:" >&2
        ldd "target/static/$b" >&2
        exit 1
    fi
done
echo "$target" > target/static/TARGET
ls -l target/static
