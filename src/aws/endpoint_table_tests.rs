//! Region-to-endpoint table: one region of every partition, for SQS and
//! S3, plain, FIPS, dual-stack and both, as the SDKs' endpoint rules give
//! them (`bench/sdk-worker --check-partitions` compares with the SDK).

use super::*;

const V: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// (region, partition, [sqs plain, fips, dual, both], [s3 plain, fips, dual, both]);
/// `None`: the partition refuses the variant (none does today; the SDK's
/// table gave the ISO and EU sovereign partitions dual-stack suffixes).
type Row = (
    &'static str,
    &'static str,
    [Option<&'static str>; 4],
    [Option<&'static str>; 4],
);

const TABLE: &[Row] = &[
    (
        "eu-west-1",
        "aws",
        [
            Some("https://sqs.eu-west-1.amazonaws.com"),
            Some("https://sqs-fips.eu-west-1.amazonaws.com"),
            Some("https://sqs.eu-west-1.api.aws"),
            Some("https://sqs-fips.eu-west-1.api.aws"),
        ],
        [
            Some("https://s3.eu-west-1.amazonaws.com"),
            Some("https://s3-fips.eu-west-1.amazonaws.com"),
            Some("https://s3.dualstack.eu-west-1.amazonaws.com"),
            Some("https://s3-fips.dualstack.eu-west-1.amazonaws.com"),
        ],
    ),
    (
        "cn-northwest-1",
        "aws-cn",
        [
            Some("https://sqs.cn-northwest-1.amazonaws.com.cn"),
            Some("https://sqs-fips.cn-northwest-1.amazonaws.com.cn"),
            Some("https://sqs.cn-northwest-1.api.amazonwebservices.com.cn"),
            Some("https://sqs-fips.cn-northwest-1.api.amazonwebservices.com.cn"),
        ],
        [
            Some("https://s3.cn-northwest-1.amazonaws.com.cn"),
            Some("https://s3-fips.cn-northwest-1.amazonaws.com.cn"),
            Some("https://s3.dualstack.cn-northwest-1.amazonaws.com.cn"),
            Some("https://s3-fips.dualstack.cn-northwest-1.amazonaws.com.cn"),
        ],
    ),
    (
        "us-gov-east-1",
        "aws-us-gov",
        [
            Some("https://sqs.us-gov-east-1.amazonaws.com"),
            Some("https://sqs.us-gov-east-1.amazonaws.com"),
            Some("https://sqs.us-gov-east-1.api.aws"),
            Some("https://sqs-fips.us-gov-east-1.api.aws"),
        ],
        [
            Some("https://s3.us-gov-east-1.amazonaws.com"),
            Some("https://s3-fips.us-gov-east-1.amazonaws.com"),
            Some("https://s3.dualstack.us-gov-east-1.amazonaws.com"),
            Some("https://s3-fips.dualstack.us-gov-east-1.amazonaws.com"),
        ],
    ),
    (
        "us-iso-east-1",
        "aws-iso",
        [
            Some("https://sqs.us-iso-east-1.c2s.ic.gov"),
            Some("https://sqs-fips.us-iso-east-1.c2s.ic.gov"),
            Some("https://sqs.us-iso-east-1.api.aws.ic.gov"),
            Some("https://sqs-fips.us-iso-east-1.api.aws.ic.gov"),
        ],
        [
            Some("https://s3.us-iso-east-1.c2s.ic.gov"),
            Some("https://s3-fips.us-iso-east-1.c2s.ic.gov"),
            Some("https://s3.dualstack.us-iso-east-1.c2s.ic.gov"),
            Some("https://s3-fips.dualstack.us-iso-east-1.c2s.ic.gov"),
        ],
    ),
    (
        "us-isob-east-1",
        "aws-iso-b",
        [
            Some("https://sqs.us-isob-east-1.sc2s.sgov.gov"),
            Some("https://sqs-fips.us-isob-east-1.sc2s.sgov.gov"),
            Some("https://sqs.us-isob-east-1.api.aws.scloud"),
            Some("https://sqs-fips.us-isob-east-1.api.aws.scloud"),
        ],
        [
            Some("https://s3.us-isob-east-1.sc2s.sgov.gov"),
            Some("https://s3-fips.us-isob-east-1.sc2s.sgov.gov"),
            Some("https://s3.dualstack.us-isob-east-1.sc2s.sgov.gov"),
            Some("https://s3-fips.dualstack.us-isob-east-1.sc2s.sgov.gov"),
        ],
    ),
    (
        "eu-isoe-west-1",
        "aws-iso-e",
        [
            Some("https://sqs.eu-isoe-west-1.cloud.adc-e.uk"),
            Some("https://sqs-fips.eu-isoe-west-1.cloud.adc-e.uk"),
            Some("https://sqs.eu-isoe-west-1.api.cloud-aws.adc-e.uk"),
            Some("https://sqs-fips.eu-isoe-west-1.api.cloud-aws.adc-e.uk"),
        ],
        [
            Some("https://s3.eu-isoe-west-1.cloud.adc-e.uk"),
            Some("https://s3-fips.eu-isoe-west-1.cloud.adc-e.uk"),
            Some("https://s3.dualstack.eu-isoe-west-1.cloud.adc-e.uk"),
            Some("https://s3-fips.dualstack.eu-isoe-west-1.cloud.adc-e.uk"),
        ],
    ),
    (
        "us-isof-south-1",
        "aws-iso-f",
        [
            Some("https://sqs.us-isof-south-1.csp.hci.ic.gov"),
            Some("https://sqs-fips.us-isof-south-1.csp.hci.ic.gov"),
            Some("https://sqs.us-isof-south-1.api.aws.hci.ic.gov"),
            Some("https://sqs-fips.us-isof-south-1.api.aws.hci.ic.gov"),
        ],
        [
            Some("https://s3.us-isof-south-1.csp.hci.ic.gov"),
            Some("https://s3-fips.us-isof-south-1.csp.hci.ic.gov"),
            Some("https://s3.dualstack.us-isof-south-1.csp.hci.ic.gov"),
            Some("https://s3-fips.dualstack.us-isof-south-1.csp.hci.ic.gov"),
        ],
    ),
    (
        "eusc-de-east-1",
        "aws-eusc",
        [
            Some("https://sqs.eusc-de-east-1.amazonaws.eu"),
            Some("https://sqs-fips.eusc-de-east-1.amazonaws.eu"),
            Some("https://sqs.eusc-de-east-1.api.amazonwebservices.eu"),
            Some("https://sqs-fips.eusc-de-east-1.api.amazonwebservices.eu"),
        ],
        [
            Some("https://s3.eusc-de-east-1.amazonaws.eu"),
            Some("https://s3-fips.eusc-de-east-1.amazonaws.eu"),
            Some("https://s3.dualstack.eusc-de-east-1.amazonaws.eu"),
            Some("https://s3-fips.dualstack.eusc-de-east-1.amazonaws.eu"),
        ],
    ),
];

#[test]
fn every_partition_resolves_sqs_and_s3_with_every_variant() {
    assert_eq!(TABLE.len(), crate::aws::partition::PARTITIONS.len());
    for (region, partition, sqs, s3) in TABLE {
        assert_eq!(Partition::of(region).name(), *partition, "{region}");
        for (i, (fips, dual_stack)) in V.into_iter().enumerate() {
            let variant = Variant { fips, dual_stack };
            match (sqs[i], s3[i]) {
                (Some(sqs), Some(s3)) => {
                    assert_eq!(
                        check_variant(region, variant),
                        Ok(()),
                        "{region} {variant:?}"
                    );
                    assert_eq!(service_endpoint("sqs", region, variant), sqs);
                    assert_eq!(s3_endpoint(region, variant), s3);
                }
                _ => {
                    let refused = check_variant(region, variant).unwrap_err();
                    assert!(
                        refused.contains(partition) && refused.contains("dual-stack"),
                        "{refused}"
                    );
                }
            }
        }
    }
}
