//! Which region to sign for and which host to call, as the AWS SDKs decide.
//!
//! Pure functions: the region from the configured value, the shared config
//! profile or a queue URL (both the modern `sqs.REGION.amazonaws.com` form
//! and the legacy `REGION.queue.amazonaws.com` one); the partition a region
//! belongs to (the table in [`crate::aws::partition`]); and
//! the regional endpoint of a service with the FIPS and dual-stack variants
//! (`AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`). It reads
//! nothing: callers hand in plain values (the settings layer's
//! `config::target` feeds it the shared config profile and the queue URLs).
//! Must not import `config`, `sqs`, `aws::credentials` or anything above `aws`.

use std::fmt;

use crate::aws::partition::{PartitionData, partition_of};
use crate::error::Result;

/// An AWS partition: a row of [`crate::aws::partition::PARTITIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition(&'static PartitionData);

impl Partition {
    /// The partition a region belongs to (`aws` when no pattern matches).
    pub fn of(region: &str) -> Partition {
        Partition(partition_of(region))
    }

    /// `aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, `aws-iso-b`, `aws-iso-e`, `aws-iso-f`, `aws-eusc`.
    pub fn name(self) -> &'static str {
        self.0.id
    }

    fn dns_suffix(self) -> &'static str {
        self.0.dns_suffix
    }

    fn dual_stack_dns_suffix(self) -> &'static str {
        self.0.dual_stack_dns_suffix
    }
}

/// Refuses the variants a region's partition does not offer, with the SDKs'
/// words (every partition of today's table offers both; the check stays for
/// a partition added without them).
pub fn check_variant(region: &str, variant: Variant) -> Result<(), String> {
    let p = partition_of(region);
    if variant.dual_stack && !p.supports_dual_stack {
        return Err(format!(
            "dual-stack is enabled (AWS_USE_DUALSTACK_ENDPOINT / use_dualstack_endpoint) but \
             partition {} of region {region} does not support dual-stack",
            p.id
        ));
    }
    if variant.fips && !p.supports_fips {
        return Err(format!(
            "FIPS is enabled but partition {} of region {region} does not support FIPS",
            p.id
        ));
    }
    Ok(())
}

/// The endpoint variants chosen by `AWS_USE_FIPS_ENDPOINT` and `AWS_USE_DUALSTACK_ENDPOINT`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Variant {
    pub fips: bool,
    pub dual_stack: bool,
}

/// The regional endpoint of `service` (`sqs`, `sts`), e.g.
/// `https://sqs.cn-north-1.amazonaws.com.cn`.
///
/// GovCloud's plain SQS and STS hosts are FIPS-validated already, so FIPS
/// there keeps the plain host (as in the SDKs' endpoint rules).
pub fn service_endpoint(service: &str, region: &str, variant: Variant) -> String {
    let partition = Partition::of(region);
    let suffix = if variant.dual_stack {
        partition.dual_stack_dns_suffix()
    } else {
        partition.dns_suffix()
    };
    let fips_host = variant.fips && (partition.name() != "aws-us-gov" || variant.dual_stack);
    let name = if fips_host {
        format!("{service}-fips")
    } else {
        service.to_string()
    };
    format!("https://{name}.{region}.{suffix}")
}

/// The region in an SQS queue URL or endpoint, if its host names one:
/// `sqs.REGION.amazonaws.com[.cn]`, `sqs-fips.REGION…`, `sqs.REGION.api.aws`,
/// the legacy `REGION.queue.amazonaws.com[.cn]`, and `queue.amazonaws.com`
/// (us-east-1). Emulator URLs (`http://127.0.0.1:4566/…`) name none.
pub fn region_from_url(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .split(':')
        .next()?
        .to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let domain_ok = |rest: &[&str]| {
        let domain = rest.join(".");
        crate::aws::partition::PARTITIONS
            .iter()
            .any(|p| p.dns_suffix == domain || p.dual_stack_dns_suffix == domain)
    };
    let region = match labels.as_slice() {
        ["queue", "amazonaws", "com"] => "us-east-1",
        ["sqs" | "sqs-fips", region, rest @ ..] if domain_ok(rest) => region,
        [region, "queue", rest @ ..] if domain_ok(rest) => region,
        _ => return None,
    };
    is_region_name(region).then(|| region.to_string())
}

/// `eu-west-1`, `us-gov-east-1`, `cn-north-1`: lower-case letters, digits, dashes.
pub fn is_region_name(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region.contains('-')
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// A region with where it came from, for messages (`environment variable AWS_REGION`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub origin: String,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.name, self.origin)
    }
}

/// What the region can be decided from, best first.
#[derive(Clone, Debug, Default)]
pub struct RegionInputs<'a> {
    /// The `region` key, `AWS_REGION` / `AWS_DEFAULT_REGION` or a flag, with its origin.
    pub configured: Option<Region>,
    /// `region` in the shared config file's profile.
    pub shared_config: Option<Region>,
    /// The queue URLs (request, completion) and the key each came from.
    pub queue_urls: Vec<(&'a str, &'a str)>,
}

/// The region to sign for, and warnings for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionChoice {
    pub region: Region,
    /// E.g. the signing region differs from the region a queue URL names.
    pub warnings: Vec<String>,
}

/// Decides the region: configured, else the shared config profile, else a
/// queue URL. Never a silent default: with none of them it is an error that
/// says where to set one.
pub fn choose_region(inputs: &RegionInputs<'_>) -> Result<RegionChoice, String> {
    let from_urls: Vec<(String, &str, &str)> = inputs
        .queue_urls
        .iter()
        .filter_map(|(url, key)| region_from_url(url).map(|r| (r, *url, *key)))
        .collect();
    let region = match (&inputs.configured, &inputs.shared_config, from_urls.first()) {
        (Some(r), _, _) | (None, Some(r), _) => r.clone(),
        (None, None, Some((name, _, key))) => Region {
            name: name.clone(),
            origin: format!("the {key} host"),
        },
        (None, None, None) => {
            return Err(
                "no AWS region: set region in the profile file, AWS_REGION, or region in the \
                 shared config file (~/.aws/config) profile, or use a queue URL that names one \
                 (https://sqs.REGION.amazonaws.com/...)"
                    .into(),
            );
        }
    };
    if !is_region_name(&region.name) {
        return Err(format!(
            "invalid AWS region {:?} from {}: expected a name like eu-west-1",
            region.name, region.origin
        ));
    }
    let warnings = from_urls
        .iter()
        .filter(|(name, _, _)| *name != region.name)
        .map(|(name, url, key)| {
            format!(
                "signing for region {region} but {key} {} is in {name}; SQS will refuse the \
                 signature unless the endpoint is in {}",
                crate::text::url(url),
                region.name
            )
        })
        .collect();
    Ok(RegionChoice { region, warnings })
}

/// `true`/`false` as the SDKs read `AWS_USE_FIPS_ENDPOINT` and friends
/// (case-insensitive); anything else is an error naming the variable.
pub fn parse_flag(name: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{name} must be true or false, not {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Variant = Variant {
        fips: false,
        dual_stack: false,
    };
    const FIPS: Variant = Variant {
        fips: true,
        dual_stack: false,
    };
    const DUAL: Variant = Variant {
        fips: false,
        dual_stack: true,
    };
    const BOTH: Variant = Variant {
        fips: true,
        dual_stack: true,
    };

    #[test]
    fn endpoints_by_partition_and_variant() {
        for (service, region, variant, expected) in [
            (
                "sqs",
                "eu-west-1",
                PLAIN,
                "https://sqs.eu-west-1.amazonaws.com",
            ),
            (
                "sqs",
                "us-east-1",
                FIPS,
                "https://sqs-fips.us-east-1.amazonaws.com",
            ),
            ("sqs", "us-east-2", DUAL, "https://sqs.us-east-2.api.aws"),
            (
                "sqs",
                "us-west-2",
                BOTH,
                "https://sqs-fips.us-west-2.api.aws",
            ),
            (
                "sqs",
                "cn-north-1",
                PLAIN,
                "https://sqs.cn-north-1.amazonaws.com.cn",
            ),
            (
                "sqs",
                "cn-northwest-1",
                DUAL,
                "https://sqs.cn-northwest-1.api.amazonwebservices.com.cn",
            ),
            (
                "sqs",
                "cn-north-1",
                FIPS,
                "https://sqs-fips.cn-north-1.amazonaws.com.cn",
            ),
            (
                "sqs",
                "us-gov-west-1",
                PLAIN,
                "https://sqs.us-gov-west-1.amazonaws.com",
            ),
            (
                "sqs",
                "us-gov-west-1",
                FIPS,
                "https://sqs.us-gov-west-1.amazonaws.com",
            ),
            (
                "sqs",
                "us-gov-east-1",
                BOTH,
                "https://sqs-fips.us-gov-east-1.api.aws",
            ),
            (
                "sts",
                "eu-central-1",
                PLAIN,
                "https://sts.eu-central-1.amazonaws.com",
            ),
            (
                "sts",
                "us-east-1",
                FIPS,
                "https://sts-fips.us-east-1.amazonaws.com",
            ),
            (
                "sts",
                "cn-north-1",
                PLAIN,
                "https://sts.cn-north-1.amazonaws.com.cn",
            ),
        ] {
            assert_eq!(
                service_endpoint(service, region, variant),
                expected,
                "{service} {region} {variant:?}"
            );
        }
        assert_eq!(Partition::of("cn-north-1").name(), "aws-cn");
        assert_eq!(Partition::of("us-gov-west-1").name(), "aws-us-gov");
        assert_eq!(Partition::of("eu-west-1").name(), "aws");
    }

    #[test]
    fn region_from_both_queue_url_forms() {
        for (url, expected) in [
            (
                "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
                Some("eu-west-1"),
            ),
            (
                "https://eu-west-1.queue.amazonaws.com/123456789012/q",
                Some("eu-west-1"),
            ),
            (
                "https://queue.amazonaws.com/123456789012/q",
                Some("us-east-1"),
            ),
            (
                "https://sqs.cn-north-1.amazonaws.com.cn/1/q",
                Some("cn-north-1"),
            ),
            (
                "https://cn-north-1.queue.amazonaws.com.cn/1/q",
                Some("cn-north-1"),
            ),
            (
                "https://sqs-fips.us-gov-west-1.amazonaws.com/1/q",
                Some("us-gov-west-1"),
            ),
            ("https://sqs.ap-south-1.api.aws/1/q", Some("ap-south-1")),
            (
                "HTTPS://SQS.CA-CENTRAL-1.AMAZONAWS.COM:443/1/q",
                Some("ca-central-1"),
            ),
            ("http://127.0.0.1:4566/000000000000/q", None),
            (
                "http://sqs.us-east-1.localhost.localstack.cloud:4566/0/q",
                None,
            ),
            ("https://sqs.eu-west-1.amazonaws.com.evil.example/1/q", None),
            ("https://sqs.x.amazonaws.com/1/q", None),
            (
                "https://sqs.eusc-de-east-1.amazonaws.eu/1/q",
                Some("eusc-de-east-1"),
            ),
            (
                "https://sqs.us-isob-east-1.sc2s.sgov.gov/1/q",
                Some("us-isob-east-1"),
            ),
            ("mock://requests", None),
            ("not a url", None),
        ] {
            assert_eq!(region_from_url(url).as_deref(), expected, "{url}");
        }
    }

    fn region(name: &str, origin: &str) -> Option<Region> {
        Some(Region {
            name: name.into(),
            origin: origin.into(),
        })
    }

    #[test]
    fn region_precedence_and_no_silent_default() {
        let legacy = "https://eu-west-1.queue.amazonaws.com/1/q";
        let urls = vec![(legacy, "request_queue_url")];
        let choose = |configured, shared, urls: &Vec<(&str, &str)>| {
            choose_region(&RegionInputs {
                configured,
                shared_config: shared,
                queue_urls: urls.clone(),
            })
        };
        let c = choose(None, None, &urls).unwrap();
        assert_eq!(c.region.name, "eu-west-1");
        assert_eq!(c.region.origin, "the request_queue_url host");
        assert!(c.warnings.is_empty());

        let c = choose(None, region("ap-south-1", "shared config"), &vec![]).unwrap();
        assert_eq!(c.region.name, "ap-south-1");
        let c = choose(
            region("eu-west-1", "AWS_REGION"),
            region("ap-south-1", "shared config"),
            &urls,
        )
        .unwrap();
        assert_eq!(c.region.name, "eu-west-1");
        assert!(c.warnings.is_empty());

        // Signing for another region than the URL's draws a warning.
        let c = choose(None, region("us-east-1", "shared config"), &urls).unwrap();
        assert_eq!(c.region.name, "us-east-1");
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains(legacy), "{:?}", c.warnings);
        assert!(
            c.warnings[0].contains("is in eu-west-1"),
            "{:?}",
            c.warnings
        );

        let e = choose(
            None,
            None,
            &vec![("http://127.0.0.1:9/1/q", "request_queue_url")],
        )
        .unwrap_err();
        assert!(e.starts_with("no AWS region"), "{e}");
        assert!(
            e.contains("AWS_REGION") && e.contains("~/.aws/config"),
            "{e}"
        );
        let e = choose(region("Eu West", "AWS_REGION"), None, &vec![]).unwrap_err();
        assert!(e.contains("invalid AWS region"), "{e}");
    }

    #[test]
    fn flags_are_true_or_false() {
        assert_eq!(parse_flag("AWS_USE_FIPS_ENDPOINT", "TRUE"), Ok(true));
        assert_eq!(parse_flag("AWS_USE_FIPS_ENDPOINT", " false "), Ok(false));
        assert!(
            parse_flag("AWS_USE_FIPS_ENDPOINT", "yes")
                .unwrap_err()
                .contains("AWS_USE_FIPS_ENDPOINT")
        );
    }
}

/// The regional S3 endpoint, as the SDKs' S3 endpoint rules build it:
/// `https://s3.REGION.amazonaws.com`, `s3-fips.REGION…` with FIPS (in every
/// partition: S3 has separate FIPS hosts in GovCloud too),
/// `s3.dualstack.REGION…` / `s3-fips.dualstack.REGION…` with dual-stack
/// (S3's dual-stack hosts keep the partition's plain DNS suffix).
pub fn s3_endpoint(region: &str, variant: Variant) -> String {
    let suffix = Partition::of(region).dns_suffix();
    let name = if variant.fips { "s3-fips" } else { "s3" };
    let dual = if variant.dual_stack { ".dualstack" } else { "" };
    format!("https://{name}{dual}.{region}.{suffix}")
}

#[cfg(test)]
mod s3_tests {
    use super::*;

    #[test]
    fn s3_endpoints_by_partition_and_variant() {
        let v = |fips, dual_stack| Variant { fips, dual_stack };
        for (region, variant, expected) in [
            (
                "eu-west-1",
                v(false, false),
                "https://s3.eu-west-1.amazonaws.com",
            ),
            (
                "eu-west-1",
                v(true, false),
                "https://s3-fips.eu-west-1.amazonaws.com",
            ),
            (
                "eu-west-1",
                v(false, true),
                "https://s3.dualstack.eu-west-1.amazonaws.com",
            ),
            (
                "us-east-1",
                v(true, true),
                "https://s3-fips.dualstack.us-east-1.amazonaws.com",
            ),
            (
                "cn-north-1",
                v(false, false),
                "https://s3.cn-north-1.amazonaws.com.cn",
            ),
            (
                "cn-north-1",
                v(false, true),
                "https://s3.dualstack.cn-north-1.amazonaws.com.cn",
            ),
            (
                "us-gov-west-1",
                v(true, false),
                "https://s3-fips.us-gov-west-1.amazonaws.com",
            ),
        ] {
            assert_eq!(
                s3_endpoint(region, variant),
                expected,
                "{region} {variant:?}"
            );
        }
    }
}

#[cfg(test)]
#[path = "endpoint_table_tests.rs"]
mod table_tests;
