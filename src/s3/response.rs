//! S3 answers read into plain values: object heads (size, ETag, checksum,
//! metadata), the XML documents of multipart uploads, ListObjectsV2,
//! GetObjectAttributes and ListMultipartUploads, and error documents
//! (`Code`, `Message`, `RequestId`, the bucket's `Region`) turned into the
//! crate's [`Error`] with its exit class.
//!
//! Pure: bytes and headers in, values out; tested on captured answers.

use roxmltree::Document;

use crate::aws::xml::{self, ErrorFields};
use crate::error::{Error, ServiceError};

/// The first header with this (lower-case) name.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// What HeadObject (or GetObject) says of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    /// `x-amz-checksum-sha256` (base64; `…-N` for multipart) when the server keeps it.
    pub checksum_sha256: Option<String>,
    /// User metadata without the `x-amz-meta-` prefix, names lower-case.
    pub metadata: Vec<(String, String)>,
    pub storage_class: Option<String>,
    pub encryption: Option<String>,
}

impl ObjectHead {
    /// `x-amz-meta-sha256`: the hex SHA-256 we stored with the object.
    pub fn metadata_sha256(&self) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == "sha256")
            .map(|(_, v)| v.as_str())
    }
}

pub fn object_head(headers: &[(String, String)]) -> Result<ObjectHead, String> {
    let size = header(headers, "content-length")
        .ok_or("no Content-Length")?
        .trim()
        .parse()
        .map_err(|_| "a Content-Length that is not a number")?;
    Ok(ObjectHead {
        size,
        etag: header(headers, "etag")
            .map(|e| super::checksum::unquote(e).to_string())
            .unwrap_or_default(),
        checksum_sha256: header(headers, "x-amz-checksum-sha256").map(str::to_string),
        metadata: headers
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("x-amz-meta-")?.to_string(), v.clone())))
            .collect(),
        storage_class: header(headers, "x-amz-storage-class").map(str::to_string),
        encryption: header(headers, "x-amz-server-side-encryption").map(str::to_string),
    })
}

fn parse(body: &[u8]) -> Result<Document<'_>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "an answer that is not UTF-8".to_string())?;
    Document::parse(text).map_err(|e| format!("malformed XML: {e}"))
}

/// InitiateMultipartUploadResult's `UploadId`.
pub fn upload_id(body: &[u8]) -> Result<String, String> {
    let doc = parse(body)?;
    xml::descendant_text(doc.root_element(), "UploadId")
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| "no UploadId in the answer".into())
}

/// CompleteMultipartUploadResult. S3 may answer 200 with an `Error`
/// document here (a failure after the status line went out): that is
/// [`Completion::Failed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    Done {
        etag: Option<String>,
        checksum_sha256: Option<String>,
    },
    Failed {
        code: String,
        message: String,
        request_id: Option<String>,
    },
}

pub fn completion(body: &[u8]) -> Result<Completion, String> {
    let doc = parse(body)?;
    let root = doc.root_element();
    if root.tag_name().name() == "Error" {
        let f = ErrorFields::of(root);
        return Ok(Completion::Failed {
            code: f.code.unwrap_or("InternalError").to_string(),
            message: f.message.unwrap_or("").to_string(),
            request_id: f.request_id.map(str::to_string),
        });
    }
    let text = |name| {
        xml::child_text(root, name)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    Ok(Completion::Done {
        etag: text("ETag").map(|e| super::checksum::unquote(&e).to_string()),
        checksum_sha256: text("ChecksumSHA256"),
    })
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub etag: String,
}

/// One page of ListObjectsV2.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    /// `NextContinuationToken` when the listing is truncated.
    pub next: Option<String>,
}

pub fn list_page(body: &[u8]) -> Result<ListPage, String> {
    let doc = parse(body)?;
    let root = doc.root_element();
    let mut objects = Vec::new();
    for c in xml::children(root, "Contents") {
        let key = xml::child_text(c, "Key").ok_or("a Contents entry without Key")?;
        let size = xml::child_text(c, "Size")
            .unwrap_or("")
            .trim()
            .parse()
            .map_err(|_| format!("object {}: no numeric Size", crate::text::quoted(key, 80)))?;
        objects.push(ListedObject {
            key: key.to_string(),
            size,
            etag: super::checksum::unquote(xml::child_text(c, "ETag").unwrap_or("")).to_string(),
        });
    }
    let truncated = xml::child_text(root, "IsTruncated").is_some_and(|t| t.trim() == "true");
    let next = xml::child_text(root, "NextContinuationToken")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    if truncated && next.is_none() {
        return Err("a truncated listing without NextContinuationToken".into());
    }
    Ok(ListPage {
        objects,
        next: if truncated { next } else { None },
    })
}

/// GetObjectAttributes' answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub size: Option<u64>,
    pub etag: Option<String>,
    /// Base64; `…-N` for a multipart object.
    pub checksum_sha256: Option<String>,
}

pub fn attributes(body: &[u8]) -> Result<Attributes, String> {
    let doc = parse(body)?;
    let root = doc.root_element();
    let checksum = xml::child(root, "Checksum")
        .and_then(|c| xml::child_text(c, "ChecksumSHA256"))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let parts = xml::child(root, "ObjectParts").and_then(|p| xml::child_text(p, "TotalPartsCount"));
    let checksum = match (checksum, parts.map(str::trim)) {
        // S3 gives a multipart object's composite without its `-N` here.
        (Some(c), Some(n)) if !c.contains('-') && !n.is_empty() => Some(format!("{c}-{n}")),
        (c, _) => c.map(str::to_string),
    };
    Ok(Attributes {
        size: xml::child_text(root, "ObjectSize").and_then(|s| s.trim().parse().ok()),
        etag: xml::child_text(root, "ETag").map(|e| super::checksum::unquote(e).to_string()),
        checksum_sha256: checksum,
    })
}

/// ListMultipartUploads: (key, upload id) of each upload in progress.
pub fn uploads(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let doc = parse(body)?;
    Ok(xml::children(doc.root_element(), "Upload")
        .filter_map(|u| {
            Some((
                xml::child_text(u, "Key")?.to_string(),
                xml::child_text(u, "UploadId")?.trim().to_string(),
            ))
        })
        .collect())
}

/// The error an unsuccessful answer stands for.
///
/// A bucket in another region (`PermanentRedirect`, `AuthorizationHeaderMalformed`,
/// `IllegalLocationConstraintException`, or any 301/400 naming a region in
/// `x-amz-bucket-region` or `<Region>`) is a configuration error naming that
/// region (exit 78). Others keep S3's code: `NoSuchBucket` → 65 (the
/// request names a bucket that does not exist), `AccessDenied` → 77,
/// `SlowDown`/5xx → retryable, then 75, `PreconditionFailed` (412) → 65,
/// recognised by [`is_precondition_failed`].
pub fn error(
    action: &'static str,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    bucket: &str,
    our_region: &str,
) -> Error {
    let doc = std::str::from_utf8(body)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .and_then(|t| Document::parse(t).ok());
    let fields = doc
        .as_ref()
        .map(|d| ErrorFields::of(d.root_element()))
        .unwrap_or_default();
    let doc_region = doc
        .as_ref()
        .and_then(|d| xml::descendant_text(d.root_element(), "Region"));
    let region = header(headers, "x-amz-bucket-region")
        .map(str::trim)
        .or(doc_region)
        .filter(|r| crate::aws::endpoint::is_region_name(r));
    let code = fields.code.filter(|c| !c.is_empty());
    let moved = matches!(status, 301 | 307 | 400)
        && (status != 400
            || matches!(
                code,
                Some(
                    "AuthorizationHeaderMalformed"
                        | "IllegalLocationConstraintException"
                        | "PermanentRedirect"
                )
            ));
    if let Some(region) = region.filter(|r| moved && *r != our_region) {
        return wrong_region(bucket, region, our_region);
    }
    let code = code.map(str::to_string).unwrap_or_else(|| match status {
        301 => "PermanentRedirect".into(),
        403 => "AccessDenied".into(),
        404 if action == "HeadBucket" => "NoSuchBucket".into(),
        404 => "NoSuchKey".into(),
        412 => "PreconditionFailed".into(),
        503 => "SlowDown".into(),
        s => format!("HTTP {s}"),
    });
    let mut message = crate::text::excerpt(fields.message.unwrap_or(""), 300);
    if code == "NoSuchBucket" {
        message = format!(
            "bucket {} does not exist{}",
            crate::text::quoted(bucket, 80),
            if region.is_some_and(|r| r != our_region) || status == 301 {
                " in this region"
            } else {
                ""
            }
        );
    } else if code == "PermanentRedirect" {
        message = format!(
            "bucket {} must be addressed at another endpoint (another region?)",
            crate::text::quoted(bucket, 80)
        );
    } else if message.is_empty() {
        message = format!("bucket {}", crate::text::quoted(bucket, 80));
    }
    Error::Service(ServiceError {
        action,
        status,
        code,
        message,
        request_id: fields
            .request_id
            .or_else(|| header(headers, "x-amz-request-id"))
            .map(|id| crate::text::excerpt(id, 100)),
    })
}

/// The one error for a bucket in another region than the one we sign for
/// (a configuration error, exit 78).
pub fn wrong_region(bucket: &str, region: &str, our_region: &str) -> Error {
    Error::config(
        format!("bucket {}", crate::text::quoted(bucket, 80)),
        format!(
            "the bucket is in region {region}, not {our_region}: set region = {region} \
             (or AWS_REGION={region}) for this destination"
        ),
    )
}

/// True for a conditional write that lost: another writer created the key
/// (`If-None-Match: *`) or changed it (`If-Match`) first. The caller
/// re-reads and decides; sending the same request again cannot succeed.
pub fn is_precondition_failed(e: &Error) -> bool {
    matches!(e, Error::Service(s) if s.code == "PreconditionFailed"
        || s.code == "ConditionalRequestConflict" || s.status == 412)
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
