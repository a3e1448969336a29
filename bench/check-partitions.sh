#!/bin/sh
# Compares the SQS endpoints sqs_archive resolves (its partition table,
# src/aws/partition.rs) with the official SDK's resolver
# (bench/sdk-worker --check-partitions), one region of every partition,
# plain, FIPS, dual-stack and both. Prints the differences; exits 1 if any.
# Usage: bench/check-partitions.sh [SQS_ARCHIVE [SDK_WORKER]]
set -eu
ours=${1:-target/debug/sqs_archive}
sdk=${2:-bench/sdk-worker/target/release/sdk-worker}
regions="us-east-1 eu-west-1 il-central-1 mx-central-1 cn-north-1 cn-northwest-1 us-gov-west-1 us-gov-east-1 us-iso-east-1 us-isob-east-1 eu-isoe-west-1 us-isof-south-1 eusc-de-east-1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/config"
echo '{"backend": "sqs"}' >"$work/config/check.json"
ours_abs=$(cd "$(dirname "$ours")" && pwd)/$(basename "$ours")
"$sdk" --check-partitions $regions >"$work/sdk.txt"
for region in $regions; do
  for variant in plain fips dualstack fips+dualstack; do
    case $variant in
      plain) fips=false dual=false ;;
      fips) fips=true dual=false ;;
      dualstack) fips=false dual=true ;;
      *) fips=true dual=true ;;
    esac
    url=$(cd "$work" && env -i HOME="$work" PATH="$PATH" AWS_ACCESS_KEY_ID=AKIDCHECK AWS_SECRET_ACCESS_KEY=check \
      AWS_EC2_METADATA_DISABLED=true AWS_USE_FIPS_ENDPOINT=$fips AWS_USE_DUALSTACK_ENDPOINT=$dual \
      "$ours_abs" --profile check --region "$region" credentials 2>/dev/null |
      sed -n 's/^endpoint: \(https:[^ ]*\).*/\1/p')
    echo "$region $variant ${url:-error}"
  done
done >"$work/ours.txt"
if diff -u "$work/sdk.txt" "$work/ours.txt"; then
  echo "partitions: $(wc -l <"$work/ours.txt") region/variant endpoints agree with the SDK"
else
  exit 1
fi
