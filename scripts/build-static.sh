#!/usr/bin/env bash
# Builds the three binaries as static executables into target/static/.
#
#   LIBC=musl   x86_64-unknown-linux-musl (needs `rustup target add
#               x86_64-unknown-linux-musl`); fails when that target is missing
#   LIBC=glibc  glibc with crt-static (the target is named explicitly so
#               build scripts stay dynamic)
#   LIBC unset  musl when its target is installed, else glibc; says which
#
# The libc built against is printed and written to target/static/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."
bins=(sqs_archive poll_messages process_message)
have_musl=false
rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl && have_musl=true
case "${LIBC:-auto}" in
musl)
    if ! $have_musl; then
        echo "build-static: LIBC=musl, but the x86_64-unknown-linux-musl target is not installed (rustup target add x86_64-unknown-linux-musl); not falling back to glibc" >&2
        exit 1
    fi
    libc=musl ;;
glibc) libc=glibc ;;
auto) if $have_musl; then libc=musl; else libc=glibc; fi ;;
*)
    echo "build-static: LIBC must be musl or glibc, not ${LIBC}" >&2
    exit 64 ;;
esac
if [ "$libc" = musl ]; then
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
echo "build-static: built against $libc ($target), statically linked"
ls -l target/static
