//! The AWS partitions as one data table, as the SDKs' `partitions.json`
//! holds them: each partition's region pattern, DNS suffix, dual-stack DNS
//! suffix and which endpoint variants it supports.
//!
//! A region belongs to the first partition whose pattern it matches (the
//! SDKs' `regionRegex`, e.g. `^us\-iso\-\w+\-\d+$`, read here as a list of
//! prefixes followed by `-WORD-DIGITS`); a region no pattern matches is
//! taken as `aws`, as the SDKs do. Pure data and pure functions: imports
//! nothing of the crate.

/// One partition: a group of regions with its own DNS suffixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionData {
    /// `aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, …
    pub id: &'static str,
    /// The region pattern: one of these prefixes, then `-WORD-DIGITS`
    /// (`^(us|eu|ap)\-\w+\-\d+$` is `["us", "eu", "ap"]`).
    pub region_prefixes: &'static [&'static str],
    pub dns_suffix: &'static str,
    pub dual_stack_dns_suffix: &'static str,
    pub supports_fips: bool,
    pub supports_dual_stack: bool,
}

/// Every current partition, from the SDKs' `partitions.json` (version 1.1,
/// as `aws-sdk-sqs` 1.119 embeds it; `bench/check-partitions.sh` compares).
pub const PARTITIONS: &[PartitionData] = &[
    PartitionData {
        id: "aws",
        region_prefixes: &["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"],
        dns_suffix: "amazonaws.com",
        dual_stack_dns_suffix: "api.aws",
        supports_fips: true,
        supports_dual_stack: true,
    },
    PartitionData {
        id: "aws-cn",
        region_prefixes: &["cn"],
        dns_suffix: "amazonaws.com.cn",
        dual_stack_dns_suffix: "api.amazonwebservices.com.cn",
        supports_fips: true,
        supports_dual_stack: true,
    },
    PartitionData {
        id: "aws-us-gov",
        region_prefixes: &["us-gov"],
        dns_suffix: "amazonaws.com",
        dual_stack_dns_suffix: "api.aws",
        supports_fips: true,
        supports_dual_stack: true,
    },
    PartitionData {
        id: "aws-iso",
        region_prefixes: &["us-iso"],
        dns_suffix: "c2s.ic.gov",
        dual_stack_dns_suffix: "api.aws.ic.gov",
        supports_fips: true,
        supports_dual_stack: true,
    },
    PartitionData {
        id: "aws-iso-b",
        region_prefixes: &["us-isob"],
        dns_suffix: "sc2s.sgov.gov",
        dual_stack_dns_suffix: "api.aws.scloud",
        supports_fips: true,
        supports_dual_stack: true,
    },
    PartitionData {
        id: "aws-iso-e",
        region_prefixes: &["eu-isoe"],
        dns_suffix: "cloud.adc-e.uk",
        dual_stack_dns_suffix: "api.cloud-aws.adc-e.uk",
        supports_fips: true,
        supports_dual_stack: true,
    },
    PartitionData {
        id: "aws-iso-f",
        region_prefixes: &["us-isof"],
        dns_suffix: "csp.hci.ic.gov",
        dual_stack_dns_suffix: "api.aws.hci.ic.gov",
        supports_fips: true,
        supports_dual_stack: true,
    },
    PartitionData {
        id: "aws-eusc",
        region_prefixes: &["eusc-de"],
        dns_suffix: "amazonaws.eu",
        dual_stack_dns_suffix: "api.amazonwebservices.eu",
        supports_fips: true,
        supports_dual_stack: true,
    },
];

impl PartitionData {
    /// Whether `region` matches this partition's pattern: a prefix, then
    /// `-WORD-DIGITS` (WORD: letters, digits, `_`).
    pub fn matches(&self, region: &str) -> bool {
        let mut parts = region.rsplitn(3, '-');
        let (Some(digits), Some(word), Some(prefix)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !word.is_empty()
            && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && self.region_prefixes.contains(&prefix)
    }
}

/// The partition of `region`: the first whose pattern matches, else `aws`.
pub fn partition_of(region: &str) -> &'static PartitionData {
    PARTITIONS
        .iter()
        .find(|p| p.matches(region))
        .unwrap_or(&PARTITIONS[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_claims_its_regions() {
        for (region, id) in [
            ("us-east-1", "aws"),
            ("eu-west-3", "aws"),
            ("il-central-1", "aws"),
            ("mx-central-1", "aws"),
            ("cn-north-1", "aws-cn"),
            ("cn-northwest-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-gov-east-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("us-iso-west-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
            ("eu-isoe-west-1", "aws-iso-e"),
            ("us-isof-south-1", "aws-iso-f"),
            ("us-isof-east-1", "aws-iso-f"),
            ("eusc-de-east-1", "aws-eusc"),
            // No pattern matches: the SDKs fall back to `aws`.
            ("xx-nowhere-1", "aws"),
            ("us-gov-west", "aws"),
        ] {
            assert_eq!(partition_of(region).id, id, "{region}");
        }
    }

    #[test]
    fn the_table_has_every_partition_once() {
        let ids: Vec<&str> = PARTITIONS.iter().map(|p| p.id).collect();
        assert_eq!(
            ids,
            [
                "aws",
                "aws-cn",
                "aws-us-gov",
                "aws-iso",
                "aws-iso-b",
                "aws-iso-e",
                "aws-iso-f",
                "aws-eusc"
            ]
        );
    }
}
