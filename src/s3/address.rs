//! Where an S3 request goes: the endpoint (a custom one from
//! `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL` or the profile's
//! `endpoint_url`, else the regional AWS host with its FIPS and dual-stack
//! variants), the addressing style (`s3.addressing_style`: `auto`, `path`,
//! `virtual`), and keys encoded as S3 signs them.
//!
//! Pure: plain values in, URLs out. Knows nothing of requests or signing.

use crate::aws::endpoint::{Variant, s3_endpoint};

/// `s3.addressing_style` in the AWS config file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddressingStyle {
    /// Path-style for a custom endpoint, virtual-hosted for AWS (path-style
    /// there too when the bucket name is not a DNS label without dots).
    #[default]
    Auto,
    /// `https://host/BUCKET/KEY`.
    Path,
    /// `https://BUCKET.host/KEY`.
    Virtual,
}

impl AddressingStyle {
    /// `auto`, `path` or `virtual`, as the AWS CLI reads them.
    pub fn parse(value: &str) -> Result<AddressingStyle, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(AddressingStyle::Auto),
            "path" => Ok(AddressingStyle::Path),
            "virtual" => Ok(AddressingStyle::Virtual),
            _ => Err(format!(
                "s3.addressing_style must be auto, path or virtual, not {}",
                crate::text::quoted(value, 40)
            )),
        }
    }
}

/// A key of the shared config file's nested `s3 =` setting, whose value
/// (as `aws::shared_config` keeps it) is its indented lines joined by
/// newlines: `addressing_style` from `"\naddressing_style = path"`.
pub fn nested_s3_setting<'a>(s3_value: &'a str, key: &str) -> Option<&'a str> {
    s3_value.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim())
    })
}

/// The custom S3 endpoint, first set of: `AWS_ENDPOINT_URL_S3`,
/// `AWS_ENDPOINT_URL`, the profile's `endpoint_url` (empty values skipped).
pub fn custom_endpoint<'a>(
    service_variable: Option<&'a str>,
    global_variable: Option<&'a str>,
    profile: Option<&'a str>,
) -> Option<&'a str> {
    [service_variable, global_variable, profile]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|v| !v.is_empty())
}

/// A resolved S3 endpoint: the base URL and whether buckets go in the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port]`, no trailing slash, no path.
    base: String,
    style: AddressingStyle,
}

impl Endpoint {
    /// The endpoint for `region`, a custom URL if given.
    pub fn resolve(
        custom: Option<&str>,
        region: &str,
        variant: Variant,
        style: AddressingStyle,
    ) -> Result<Endpoint, String> {
        let (base, style) = match custom {
            Some(url) => {
                let (scheme, rest) = url
                    .split_once("://")
                    .filter(|(s, _)| matches!(*s, "http" | "https"))
                    .ok_or_else(|| {
                        format!(
                            "S3 endpoint {} must start with http:// or https://",
                            crate::text::url(url)
                        )
                    })?;
                let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                if authority.is_empty() || authority.contains('@') {
                    return Err(format!(
                        "S3 endpoint {} needs a host and no user name",
                        crate::text::url(url)
                    ));
                }
                let style = match style {
                    AddressingStyle::Auto => AddressingStyle::Path,
                    other => other,
                };
                (format!("{scheme}://{authority}"), style)
            }
            None => (s3_endpoint(region, variant), style),
        };
        Ok(Endpoint { base, style })
    }

    /// Whether requests for `bucket` name it in the path.
    pub fn path_style(&self, bucket: &str) -> bool {
        match self.style {
            AddressingStyle::Path => true,
            AddressingStyle::Virtual => false,
            AddressingStyle::Auto => !is_virtual_hostable(bucket),
        }
    }

    /// The URL of `key` in `bucket` (the bucket itself when `key` is
    /// `None`), with `query` pairs encoded (a pair with an empty value is
    /// written as a bare name, e.g. `uploads`).
    pub fn url(&self, bucket: &str, key: Option<&str>, query: &[(&str, &str)]) -> String {
        let mut url = if self.path_style(bucket) {
            format!("{}/{}/", self.base, encode_key(bucket))
        } else {
            let (scheme, host) = self.base.split_once("://").unwrap_or(("https", &self.base));
            format!("{scheme}://{bucket}.{host}/")
        };
        if let Some(key) = key {
            url.push_str(&encode_key(key));
        }
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode_query(name));
            if !value.is_empty() {
                url.push('=');
                url.push_str(&encode_query(value));
            }
        }
        url
    }

    /// The base URL, for messages.
    pub fn base(&self) -> &str {
        &self.base
    }
}

/// A bucket name that can be a host label under TLS: 3–63 lower-case
/// letters, digits and dashes, no dots (a dot breaks the wildcard
/// certificate), not shaped like an IP address.
pub fn is_virtual_hostable(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-')
}

/// Checks a bucket name against S3's rules (3–63 characters of lower-case
/// letters, digits, dots and dashes, starting and ending with a letter or
/// digit), so a typo is one clear line before any request.
pub fn check_bucket_name(bucket: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid S3 bucket name {}: 3 to 63 lower-case letters, digits, dots and dashes",
            crate::text::quoted(bucket, 80)
        ))
    }
}

/// A key as S3 signs and routes it: every byte but the unreserved ones
/// (`A-Z a-z 0-9 - _ . ~`) percent-encoded in upper-case hex, `/` kept.
pub fn encode_key(key: &str) -> String {
    encode(key, true)
}

/// A query name or value: as [`encode_key`], `/` encoded too.
pub fn encode_query(value: &str) -> String {
    encode(value, false)
}

fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS: Variant = Variant {
        fips: false,
        dual_stack: false,
    };

    #[test]
    fn tricky_keys_are_encoded_once_slash_kept() {
        assert_eq!(encode_key("a b+c"), "a%20b%2Bc");
        assert_eq!(encode_key("dir/sub/f.txt"), "dir/sub/f.txt");
        assert_eq!(encode_key("100%"), "100%25");
        assert_eq!(encode_key("é/ü"), "%C3%A9/%C3%BC");
        assert_eq!(encode_key("~a_b-c.d"), "~a_b-c.d");
        assert_eq!(encode_key("a?b#c&d=e"), "a%3Fb%23c%26d%3De");
        assert_eq!(
            encode_key("$*'()!,;:@[]"),
            "%24%2A%27%28%29%21%2C%3B%3A%40%5B%5D"
        );
        assert_eq!(encode_query("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn custom_endpoints_are_path_style_in_auto() {
        let e = Endpoint::resolve(
            Some("http://127.0.0.1:4566/ignored"),
            "us-east-1",
            AWS,
            AddressingStyle::Auto,
        )
        .unwrap();
        assert_eq!(
            e.url("bkt", Some("a b/c"), &[]),
            "http://127.0.0.1:4566/bkt/a%20b/c"
        );
        assert_eq!(
            e.url("bkt", None, &[("list-type", "2"), ("prefix", "p/q")]),
            "http://127.0.0.1:4566/bkt/?list-type=2&prefix=p%2Fq"
        );
        assert_eq!(
            e.url("bkt", Some("k"), &[("uploads", "")]),
            "http://127.0.0.1:4566/bkt/k?uploads"
        );
        let v = Endpoint::resolve(
            Some("https://minio.example:9000"),
            "us-east-1",
            AWS,
            AddressingStyle::Virtual,
        )
        .unwrap();
        assert_eq!(
            v.url("bkt", Some("k"), &[]),
            "https://bkt.minio.example:9000/k"
        );
    }

    #[test]
    fn aws_is_virtual_hosted_unless_the_name_cannot_be_a_host() {
        let e = Endpoint::resolve(None, "eu-west-1", AWS, AddressingStyle::Auto).unwrap();
        assert_eq!(
            e.url("my-bucket", Some("x"), &[]),
            "https://my-bucket.s3.eu-west-1.amazonaws.com/x"
        );
        assert_eq!(
            e.url("my.bucket", Some("x"), &[]),
            "https://s3.eu-west-1.amazonaws.com/my.bucket/x"
        );
        let p = Endpoint::resolve(None, "eu-west-1", AWS, AddressingStyle::Path).unwrap();
        assert_eq!(
            p.url("my-bucket", None, &[]),
            "https://s3.eu-west-1.amazonaws.com/my-bucket/"
        );
        let fips = Variant {
            fips: true,
            dual_stack: true,
        };
        let f = Endpoint::resolve(None, "us-east-1", fips, AddressingStyle::Auto).unwrap();
        assert_eq!(
            f.url("b-1", None, &[]),
            "https://b-1.s3-fips.dualstack.us-east-1.amazonaws.com/"
        );
    }

    #[test]
    fn bad_endpoints_names_and_styles_are_one_line() {
        for bad in ["ftp://x", "127.0.0.1:4566", "http://", "http://u:p@host"] {
            let e =
                Endpoint::resolve(Some(bad), "us-east-1", AWS, AddressingStyle::Auto).unwrap_err();
            assert!(!e.contains("u:p"), "{e}");
        }
        for bad in ["ab", "Upper", "-x-", "a..b", "a_b", &"x".repeat(64)] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
        for good in ["abc", "my.bucket-1", "0ab"] {
            check_bucket_name(good).unwrap();
        }
        assert_eq!(
            AddressingStyle::parse(" Virtual ").unwrap(),
            AddressingStyle::Virtual
        );
        assert!(AddressingStyle::parse("host").is_err());
        assert_eq!(
            custom_endpoint(None, Some(" "), Some("http://p")),
            Some("http://p")
        );
        assert_eq!(
            custom_endpoint(Some("http://s3"), Some("http://g"), None),
            Some("http://s3")
        );
        assert_eq!(custom_endpoint(None, None, None), None);
        let nested = "\nmax_concurrent_requests = 10\naddressing_style = virtual";
        assert_eq!(
            nested_s3_setting(nested, "addressing_style"),
            Some("virtual")
        );
        assert_eq!(nested_s3_setting(nested, "use_accelerate_endpoint"), None);
    }
}
