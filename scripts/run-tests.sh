#!/usr/bin/env bash
# The test suite proper; `make test` runs it under scripts/test-servers.sh.
# Everything once against moto over the query protocol, then the
# protocol-independent modules (cli, poller) again over AWS JSON 1.0 against
# moto and against fauxqs. The test-hooks feature builds the fault hooks
# (SQS_ARCHIVE_TEST_HOOKS) into the binaries under test; release builds
# never have them, and the integration tests fail without them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --features test-hooks
for target in moto-json fauxqs; do
    echo "== integration tests (cli, poller) against $target"
    SQS_ARCHIVE_IT_TARGET=$target cargo test --locked --features test-hooks --test it -- cli:: poller::
done
