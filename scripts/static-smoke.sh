#!/usr/bin/env bash
# The embedded round trip (mock queue) with the binaries in DIR, in a scratch
# copy of config/, schemas/ and examples/: send two requests, poll once,
# check both completions and the archived files' digests.
set -euo pipefail
dir=$(cd "${1:?usage: static-smoke.sh DIR}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$root/config" "$root/schemas" "$root/examples" "$work/"
mkdir -p "$work/var/archive"
cd "$work"
run() { env -i PATH=/usr/bin:/bin HOME="$work" "$@"; }
run "$dir/sqs_archive" --profile local send --aipid mds2909 --filenames a b >/dev/null
run "$dir/sqs_archive" --profile local send --aipid mds2909 --filenames >/dev/null
run "$dir/poll_messages" --profile local --log-level warn
out=$(run "$dir/sqs_archive" --profile local receive --delete)
[ "$(grep -c '"success":true' <<<"$out")" -eq 2 ] || { echo "static-smoke: expected 2 successful completions, got:" >&2; echo "$out" >&2; exit 1; }
for f in a b; do
    [ "$(sha256sum < "examples/source/$f")" = "$(sha256sum < "var/archive/mds2909/$f")" ] || { echo "static-smoke: $f differs" >&2; exit 1; }
done
[ -f var/archive/mds2909/sub/data.txt ] || { echo "static-smoke: whole-directory request not archived" >&2; exit 1; }
(cd var/archive/mds2909 && sha256sum --quiet -c manifest-sha256.txt)
# Test hooks are compiled out of release binaries: corrupt-copy changes
# nothing, with verification (a honoured hook would exit 75) or without it
# (a honoured hook would leave a corrupted copy in the archive).
sed 's/^{/{ "verify": false,/' config/local.json > config/noverify.json
grep -q '"verify": false' config/noverify.json || { echo "static-smoke: could not write the noverify profile" >&2; exit 1; }
req='{"action":"archive","aipid":"hooks1","filenames":["a","b"],"timestamp":"2024-05-01T12:34:56"}'
for profile in local noverify; do
    run env SQS_ARCHIVE_TEST_HOOKS=corrupt-copy "$dir/process_message" --profile "$profile" --aipid hooks1 <<<"$req" >/dev/null \
        || { echo "static-smoke: process_message honours SQS_ARCHIVE_TEST_HOOKS (profile $profile)" >&2; exit 1; }
    for f in a b; do
        cmp -s "examples/source/$f" "var/archive/hooks1/$f" || { echo "static-smoke: SQS_ARCHIVE_TEST_HOOKS corrupted $f (profile $profile)" >&2; exit 1; }
    done
    rm -rf var/archive/hooks1
done
echo "static-smoke: ok ($(head -c 40 "$dir/TARGET" 2>/dev/null || echo binaries) in $dir)"
