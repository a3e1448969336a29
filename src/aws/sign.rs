//! Signature Version 4, as a pure function of the request, the keys and the time.
//!
//! Takes plain signing inputs ([`SigningKeys`]); it knows nothing of where
//! credentials come from and must not import `aws::credentials`, a service,
//! or anything that does I/O.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::error::{Error, Result};

/// The keys a request is signed with: what SigV4 needs, nothing more.
#[derive(Clone, Copy)]
pub struct SigningKeys<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// Temporary credentials' token, sent as `x-amz-security-token`.
    pub session_token: Option<&'a str>,
}

impl std::fmt::Debug for SigningKeys<'_> {
    // Never the secret or the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("session_token", &self.session_token.is_some())
            .finish_non_exhaustive()
    }
}

/// The headers to add to a request so that SQS accepts it: `authorization`,
/// `x-amz-date` and, with temporary credentials, `x-amz-security-token`.
///
/// `headers` are the request's own headers (they are signed too).
pub fn sign_request(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    keys: &SigningKeys<'_>,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>> {
    sign_service_request("sqs", url, headers, body, keys, region, time)
}

/// [`sign_request`] for another service's signing name (`sts` for AssumeRole).
pub fn sign_service_request(
    service: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    keys: &SigningKeys<'_>,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>> {
    let body = SignableBody::Bytes(body);
    let request = Unsigned {
        method: "POST",
        url,
        headers,
        body,
    };
    signed_headers(
        request,
        keys,
        region,
        service,
        SigningSettings::default(),
        time,
    )
}

/// A request as the signer sees it.
struct Unsigned<'a> {
    method: &'a str,
    url: &'a str,
    headers: &'a [(String, String)],
    body: SignableBody<'a>,
}

/// The headers SigV4 adds to `request` (`authorization`, `x-amz-date`, ...).
/// A URL that cannot be signed is named with its user info masked.
fn signed_headers(
    request: Unsigned<'_>,
    keys: &SigningKeys<'_>,
    region: &str,
    service: &str,
    settings: SigningSettings,
    time: SystemTime,
) -> Result<Vec<(String, String)>> {
    let identity = identity(keys);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| Error::Credentials(format!("cannot sign request: {e}")))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
        request.body,
    )
    .map_err(|e| {
        Error::config(
            "endpoint_url",
            format!(
                "cannot sign a request to {}: {e}",
                crate::text::url(request.url)
            ),
        )
    })?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| Error::Credentials(format!("cannot sign request: {e}")))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The payload hash an S3 request is signed with (`x-amz-content-sha256`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadHash<'a> {
    /// The lower-case hex SHA-256 of the body: S3 refuses a body that differs.
    Sha256Hex(&'a str),
    /// `UNSIGNED-PAYLOAD`: the body is not covered by the signature.
    Unsigned,
}

/// Signs a request as S3 wants it: any method, the payload hash given
/// (sent as `x-amz-content-sha256` and signed), and the URL's path taken as
/// it is written (S3 signs the single-encoded path, not normalised: the
/// caller encodes the key once, see `s3::address`). Returns the headers to
/// add, as [`sign_request`] does.
#[allow(clippy::too_many_arguments)]
pub fn sign_s3_request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    payload: PayloadHash<'_>,
    keys: &SigningKeys<'_>,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, UriPathNormalizationMode,
    };
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let body = match payload {
        PayloadHash::Sha256Hex(hex) => SignableBody::Precomputed(hex.to_string()),
        PayloadHash::Unsigned => SignableBody::UnsignedPayload,
    };
    let request = Unsigned {
        method,
        url,
        headers,
        body,
    };
    signed_headers(request, keys, region, "s3", settings, time)
}

/// The keys as the SigV4 crate's identity.
fn identity(keys: &SigningKeys<'_>) -> Identity {
    aws_credential_types::Credentials::new(
        keys.access_key_id,
        keys.secret_access_key,
        keys.session_token.map(str::to_string),
        None,
        "sqs-archive",
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn creds(token: Option<&str>) -> SigningKeys<'_> {
        SigningKeys {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: token,
        }
    }

    const BODY: &[u8] = b"Action=ListQueues&Version=2012-11-05";

    fn headers() -> Vec<(String, String)> {
        vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )]
    }

    #[test]
    fn signature_is_fixed_for_a_fixed_clock() {
        // 2015-08-30T12:36:00Z, the instant of AWS's own SigV4 test suite.
        let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let sign = |body: &[u8]| {
            sign_request(
                "https://sqs.us-east-1.amazonaws.com/",
                &headers(),
                body,
                &creds(None),
                "us-east-1",
                t,
            )
            .unwrap()
        };
        let out = sign(BODY);
        let get = |name: &str| out.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(get("x-amz-date").as_deref(), Some("20150830T123600Z"));
        let auth = get("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="), "{auth}");
        // Same inputs, same signature: the function is pure.
        assert_eq!(out, sign(BODY));
        // A different body changes the signature.
        assert_ne!(out, sign(b"Action=X"));
        assert!(!auth.contains("wJalrXUtnFEMI"), "the secret never appears");
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let out = sign_request(
            "http://127.0.0.1:4566/",
            &headers(),
            BODY,
            &creds(Some("TOKEN123")),
            "eu-west-1",
            t,
        )
        .unwrap();
        assert!(
            out.iter()
                .any(|(k, v)| k == "x-amz-security-token" && v == "TOKEN123")
        );
        let auth = &out.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert!(auth.contains("/eu-west-1/sqs/aws4_request"), "{auth}");
        assert!(auth.contains("x-amz-security-token"), "{auth}");
    }
}

#[cfg(test)]
mod s3_tests {
    //! AWS's published S3 SigV4 examples ("Signature Calculations for the
    //! Authorization Header: Transferring Payload in a Single Chunk").
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const KEYS: SigningKeys<'static> = SigningKeys {
        access_key_id: "AKIAIOSFODNN7EXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };
    /// 2013-05-24T00:00:00Z.
    fn t() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn auth(out: &[(String, String)]) -> &str {
        &out.iter().find(|(k, _)| k == "authorization").unwrap().1
    }

    #[test]
    fn get_object_example() {
        let headers = vec![("range".to_string(), "bytes=0-9".to_string())];
        let out = sign_s3_request(
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &headers,
            PayloadHash::Sha256Hex(EMPTY),
            &KEYS,
            "us-east-1",
            t(),
        )
        .unwrap();
        assert_eq!(
            auth(&out),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert!(
            out.iter()
                .any(|(k, v)| k == "x-amz-content-sha256" && v == EMPTY)
        );
    }

    #[test]
    fn put_object_example_signs_the_encoded_path_once() {
        let body = b"Welcome to Amazon S3.";
        let hash = crate::digest::sha256_hex(body);
        let headers = vec![
            (
                "date".to_string(),
                "Fri, 24 May 2013 00:00:00 GMT".to_string(),
            ),
            (
                "x-amz-storage-class".to_string(),
                "REDUCED_REDUNDANCY".to_string(),
            ),
        ];
        // The key `test$file.text`, encoded once as S3 wants it.
        let out = sign_s3_request(
            "PUT",
            "https://examplebucket.s3.amazonaws.com/test%24file.text",
            &headers,
            PayloadHash::Sha256Hex(&hash),
            &KEYS,
            "us-east-1",
            t(),
        )
        .unwrap();
        assert_eq!(
            auth(&out),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, \
             Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    #[test]
    fn unsigned_payload_and_query_strings() {
        let out = sign_s3_request(
            "GET",
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
            &[],
            PayloadHash::Sha256Hex(EMPTY),
            &KEYS,
            "us-east-1",
            t(),
        )
        .unwrap();
        // AWS's ListObjects example (GET /?max-keys=2&prefix=J).
        assert!(
            auth(&out).ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{}",
            auth(&out)
        );
        let out = sign_s3_request(
            "PUT",
            "https://examplebucket.s3.amazonaws.com/a",
            &[],
            PayloadHash::Unsigned,
            &KEYS,
            "us-east-1",
            t(),
        )
        .unwrap();
        assert!(
            out.iter()
                .any(|(k, v)| k == "x-amz-content-sha256" && v == "UNSIGNED-PAYLOAD")
        );
        assert!(!auth(&out).contains("wJalrXUtnFEMI"));
    }
}
