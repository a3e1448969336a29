//! S3 requests as plain values: method, URL, headers and the payload hash
//! they are signed with, built from what the caller wants stored
//! ([`PutOptions`]) and the body's [`Digests`]; and [`Request::signed`],
//! the SigV4 headers for a given time.
//!
//! Pure: no I/O, no clock. The client (`s3::S3Client`) sends what these build.

use std::time::SystemTime;

use super::address::Endpoint;
use super::checksum::Digests;
use crate::aws::sign::{PayloadHash, SigningKeys, sign_s3_request};
use crate::error::Result;

/// The SHA-256 of an empty body, the payload hash of bodiless requests.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A storage class an object may be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageClass {
    Standard,
    StandardIa,
    IntelligentTiering,
    GlacierIr,
    Glacier,
    DeepArchive,
}

impl StorageClass {
    pub const ALL: [StorageClass; 6] = [
        StorageClass::Standard,
        StorageClass::StandardIa,
        StorageClass::IntelligentTiering,
        StorageClass::GlacierIr,
        StorageClass::Glacier,
        StorageClass::DeepArchive,
    ];

    /// The name S3 uses (`GLACIER_IR`).
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::GlacierIr => "GLACIER_IR",
            StorageClass::Glacier => "GLACIER",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
        }
    }

    pub fn parse(value: &str) -> std::result::Result<StorageClass, String> {
        let v = value.trim().to_ascii_uppercase();
        StorageClass::ALL
            .into_iter()
            .find(|c| c.as_str() == v)
            .ok_or_else(|| {
                format!(
                    "unknown S3 storage class {}: one of STANDARD, STANDARD_IA, \
                     INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE",
                    crate::text::quoted(value, 40)
                )
            })
    }
}

/// Server-side encryption of written objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// `AES256`: S3-managed keys (SSE-S3); ETags stay MD5s.
    Aes256,
    /// `aws:kms`, with a key id or ARN (else the account's `aws/s3` key);
    /// ETags are then not MD5s.
    Kms { key_id: Option<String> },
}

/// A conditional write: the lock S3 offers instead of `flock`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Condition {
    #[default]
    None,
    /// `If-None-Match: *`: only if no object has the key yet. A PUT
    /// retried after a cut connection may find its own first try's object
    /// and report a lost race: the caller re-reads the object (its
    /// `x-amz-meta-sha256`) before deciding.
    IfAbsent,
    /// `If-Match: ETAG`: only if the object is still the one with this ETag.
    IfMatch(String),
}

/// What to store with an object besides its bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutOptions {
    pub storage_class: Option<StorageClass>,
    pub encryption: Option<Encryption>,
    pub condition: Condition,
    /// The whole object's SHA-256 (hex) for the `x-amz-meta-sha256`
    /// metadata. A single PUT fills it from the body; a multipart upload
    /// needs it up front (metadata is given at creation) and checks it
    /// against the bytes read before completing.
    pub sha256_hex: Option<String>,
    pub content_type: Option<String>,
}

impl PutOptions {
    pub fn is_kms(&self) -> bool {
        matches!(self.encryption, Some(Encryption::Kms { .. }))
    }

    /// The headers describing the object (class, encryption, metadata, content type).
    fn object_headers(&self, headers: &mut Vec<(String, String)>) {
        if let Some(class) = self.storage_class {
            headers.push(("x-amz-storage-class".into(), class.as_str().into()));
        }
        match &self.encryption {
            Some(Encryption::Aes256) => {
                headers.push(("x-amz-server-side-encryption".into(), "AES256".into()));
            }
            Some(Encryption::Kms { key_id }) => {
                headers.push(("x-amz-server-side-encryption".into(), "aws:kms".into()));
                if let Some(id) = key_id {
                    headers.push((
                        "x-amz-server-side-encryption-aws-kms-key-id".into(),
                        id.clone(),
                    ));
                }
            }
            None => {}
        }
        if let Some(sha) = &self.sha256_hex {
            headers.push(("x-amz-meta-sha256".into(), sha.clone()));
        }
        headers.push((
            "content-type".into(),
            self.content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
        ));
    }

    fn condition_headers(&self, headers: &mut Vec<(String, String)>) {
        match &self.condition {
            Condition::None => {}
            Condition::IfAbsent => headers.push(("if-none-match".into(), "*".into())),
            Condition::IfMatch(etag) => {
                let etag = super::checksum::unquote(etag);
                headers.push(("if-match".into(), format!("\"{etag}\"")));
            }
        }
    }
}

/// One request, ready to sign and send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Lower-case hex SHA-256 of the body, signed as `x-amz-content-sha256`.
    pub payload_sha256: String,
}

impl Request {
    /// A bodiless request.
    pub fn new(method: &'static str, url: String) -> Request {
        Request {
            method,
            url,
            headers: Vec::new(),
            payload_sha256: EMPTY_SHA256.into(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The request's headers with the SigV4 ones added, for `time`.
    pub fn signed(
        &self,
        keys: &SigningKeys<'_>,
        region: &str,
        time: SystemTime,
    ) -> Result<Vec<(String, String)>> {
        let mut headers = self.headers.clone();
        headers.extend(sign_s3_request(
            self.method,
            &self.url,
            &self.headers,
            PayloadHash::Sha256Hex(&self.payload_sha256),
            keys,
            region,
            time,
        )?);
        Ok(headers)
    }
}

/// The checksum headers of a body: the signed payload hash, `Content-MD5`,
/// and `x-amz-checksum-sha256` with the algorithm named as the SDKs do
/// (moto keeps the checksum only then).
fn body_request(method: &'static str, url: String, digests: &Digests) -> Request {
    let mut r = Request::new(method, url)
        .header("content-md5", digests.md5_base64())
        .header("x-amz-checksum-sha256", digests.sha256_base64())
        .header("x-amz-sdk-checksum-algorithm", "SHA256");
    r.payload_sha256 = digests.sha256_hex();
    r
}

/// PutObject of a whole body.
pub fn put_object(
    endpoint: &Endpoint,
    bucket: &str,
    key: &str,
    digests: &Digests,
    options: &PutOptions,
) -> Request {
    let mut r = body_request("PUT", endpoint.url(bucket, Some(key), &[]), digests);
    let options = PutOptions {
        sha256_hex: Some(digests.sha256_hex()),
        ..options.clone()
    };
    options.object_headers(&mut r.headers);
    options.condition_headers(&mut r.headers);
    r
}

/// CreateMultipartUpload with the SHA-256 checksum algorithm.
pub fn create_multipart(
    endpoint: &Endpoint,
    bucket: &str,
    key: &str,
    options: &PutOptions,
) -> Request {
    let mut r = Request::new("POST", endpoint.url(bucket, Some(key), &[("uploads", "")]))
        .header("x-amz-checksum-algorithm", "SHA256");
    options.object_headers(&mut r.headers);
    r
}

/// UploadPart number `part` (from 1).
pub fn upload_part(
    endpoint: &Endpoint,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part: u32,
    digests: &Digests,
) -> Request {
    let part = part.to_string();
    let query = [("partNumber", part.as_str()), ("uploadId", upload_id)];
    body_request("PUT", endpoint.url(bucket, Some(key), &query), digests)
}

/// CompleteMultipartUpload: the request and its XML body listing each
/// part's ETag and checksum, in order. The condition applies here, when
/// the object appears.
pub fn complete_multipart(
    endpoint: &Endpoint,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[(String, Digests)],
    condition: &Condition,
) -> (Request, Vec<u8>) {
    let mut xml =
        String::from("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (i, (etag, digests)) in parts.iter().enumerate() {
        xml.push_str(&format!(
            "<Part><ETag>\"{}\"</ETag><PartNumber>{}</PartNumber>\
             <ChecksumSHA256>{}</ChecksumSHA256></Part>",
            xml_escape(super::checksum::unquote(etag)),
            i + 1,
            digests.sha256_base64()
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let body = xml.into_bytes();
    let mut r = Request::new(
        "POST",
        endpoint.url(bucket, Some(key), &[("uploadId", upload_id)]),
    )
    .header("content-type", "application/xml");
    r.payload_sha256 = crate::digest::sha256_hex(&body);
    let options = PutOptions {
        condition: condition.clone(),
        ..PutOptions::default()
    };
    options.condition_headers(&mut r.headers);
    (r, body)
}

/// AbortMultipartUpload.
pub fn abort_multipart(endpoint: &Endpoint, bucket: &str, key: &str, upload_id: &str) -> Request {
    Request::new(
        "DELETE",
        endpoint.url(bucket, Some(key), &[("uploadId", upload_id)]),
    )
}

/// ListObjectsV2, one page of at most `max_keys` (S3's default: 1,000).
pub fn list_objects(
    endpoint: &Endpoint,
    bucket: &str,
    prefix: &str,
    continuation: Option<&str>,
    max_keys: Option<u32>,
) -> Request {
    let max = max_keys.map(|n| n.to_string());
    let mut query = vec![("list-type", "2"), ("prefix", prefix)];
    if let Some(token) = continuation {
        query.push(("continuation-token", token));
    }
    if let Some(max) = &max {
        query.push(("max-keys", max));
    }
    Request::new("GET", endpoint.url(bucket, None, &query))
}

/// GetObjectAttributes for the checksum and the size.
pub fn get_object_attributes(endpoint: &Endpoint, bucket: &str, key: &str) -> Request {
    Request::new(
        "GET",
        endpoint.url(bucket, Some(key), &[("attributes", "")]),
    )
    .header("x-amz-object-attributes", "Checksum,ObjectSize,ETag")
}

/// HeadObject, asking for the stored checksum.
pub fn head_object(endpoint: &Endpoint, bucket: &str, key: &str) -> Request {
    Request::new("HEAD", endpoint.url(bucket, Some(key), &[]))
        .header("x-amz-checksum-mode", "ENABLED")
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::endpoint::Variant;
    use crate::s3::address::AddressingStyle;
    use std::time::{Duration, UNIX_EPOCH};

    fn local() -> Endpoint {
        Endpoint::resolve(
            Some("http://127.0.0.1:9000"),
            "us-east-1",
            Variant::default(),
            AddressingStyle::Auto,
        )
        .unwrap()
    }

    fn get<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn put_object_carries_every_checksum_and_option() {
        let d = Digests::of(b"hello");
        let options = PutOptions {
            storage_class: Some(StorageClass::DeepArchive),
            encryption: Some(Encryption::Kms {
                key_id: Some("alias/k".into()),
            }),
            condition: Condition::IfAbsent,
            ..PutOptions::default()
        };
        let r = put_object(&local(), "b", "dir/a b", &d, &options);
        assert_eq!(r.method, "PUT");
        assert_eq!(r.url, "http://127.0.0.1:9000/b/dir/a%20b");
        assert_eq!(r.payload_sha256, d.sha256_hex());
        assert_eq!(get(&r, "content-md5"), Some("XUFAKrxLKna5cZ2REBfFkg=="));
        assert_eq!(
            get(&r, "x-amz-checksum-sha256"),
            Some("LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=")
        );
        assert_eq!(get(&r, "x-amz-sdk-checksum-algorithm"), Some("SHA256"));
        assert_eq!(get(&r, "x-amz-meta-sha256"), Some(d.sha256_hex().as_str()));
        assert_eq!(get(&r, "x-amz-storage-class"), Some("DEEP_ARCHIVE"));
        assert_eq!(get(&r, "x-amz-server-side-encryption"), Some("aws:kms"));
        assert_eq!(
            get(&r, "x-amz-server-side-encryption-aws-kms-key-id"),
            Some("alias/k")
        );
        assert_eq!(get(&r, "if-none-match"), Some("*"));
        let r = put_object(
            &local(),
            "b",
            "k",
            &d,
            &PutOptions {
                condition: Condition::IfMatch("\"abc\"".into()),
                encryption: Some(Encryption::Aes256),
                ..PutOptions::default()
            },
        );
        assert_eq!(get(&r, "if-match"), Some("\"abc\""));
        assert_eq!(get(&r, "x-amz-server-side-encryption"), Some("AES256"));
        assert_eq!(get(&r, "if-none-match"), None);
    }

    #[test]
    fn multipart_requests_and_the_completion_document() {
        let e = local();
        let create = create_multipart(&e, "b", "k", &PutOptions::default());
        assert_eq!(create.url, "http://127.0.0.1:9000/b/k?uploads");
        assert_eq!(get(&create, "x-amz-checksum-algorithm"), Some("SHA256"));
        assert_eq!(create.payload_sha256, EMPTY_SHA256);
        let d = Digests::of(b"p1");
        let part = upload_part(&e, "b", "k", "id/+=", 3, &d);
        assert_eq!(
            part.url,
            "http://127.0.0.1:9000/b/k?partNumber=3&uploadId=id%2F%2B%3D"
        );
        assert_eq!(part.payload_sha256, d.sha256_hex());
        let (r, body) = complete_multipart(
            &e,
            "b",
            "k",
            "u1",
            &[("\"e1\"".into(), d), ("e2".into(), Digests::of(b"p2"))],
            &Condition::IfAbsent,
        );
        let body = String::from_utf8(body).unwrap();
        assert!(body.contains(&format!(
            "<Part><ETag>\"e1\"</ETag><PartNumber>1</PartNumber><ChecksumSHA256>{}</ChecksumSHA256></Part>",
            d.sha256_base64()
        )), "{body}");
        assert!(
            body.contains("<ETag>\"e2\"</ETag><PartNumber>2</PartNumber>"),
            "{body}"
        );
        assert_eq!(r.payload_sha256, crate::digest::sha256_hex(body.as_bytes()));
        assert_eq!(get(&r, "if-none-match"), Some("*"));
        assert_eq!(
            list_objects(&e, "b", "p/", Some("t=1"), Some(2)).url,
            "http://127.0.0.1:9000/b/?list-type=2&prefix=p%2F&continuation-token=t%3D1&max-keys=2"
        );
    }

    #[test]
    fn signing_covers_the_checksum_headers_for_a_fixed_clock() {
        let keys = SigningKeys {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "secret",
            session_token: None,
        };
        let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let r = put_object(
            &local(),
            "b",
            "k",
            &Digests::of(b"x"),
            &PutOptions::default(),
        );
        let a = r.signed(&keys, "us-east-1", t).unwrap();
        assert_eq!(a, r.signed(&keys, "us-east-1", t).unwrap());
        let auth = &a.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert!(
            auth.contains("SignedHeaders=content-md5;content-type;host;x-amz-checksum-sha256;x-amz-content-sha256;x-amz-date;x-amz-meta-sha256;x-amz-sdk-checksum-algorithm"),
            "{auth}"
        );
        assert!(auth.contains("/us-east-1/s3/aws4_request"), "{auth}");
    }

    #[test]
    fn storage_classes_parse_by_name() {
        for c in StorageClass::ALL {
            assert_eq!(StorageClass::parse(&c.as_str().to_lowercase()), Ok(c));
        }
        assert!(StorageClass::parse("REDUCED_REDUNDANCY").is_err());
    }
}
