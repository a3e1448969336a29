//! `s3::response` on answers captured from S3's documentation and moto 5.2.

use super::*;
use crate::exit::Exit;

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn service(e: &Error) -> &ServiceError {
    match e {
        Error::Service(s) => s,
        other => panic!("not a service error: {other:?}"),
    }
}

#[test]
fn error_documents_keep_code_message_and_request_id() {
    let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>
<BucketName>nope</BucketName><RequestId>4442587FB7D0A2F9</RequestId><HostId>x</HostId></Error>"#;
    let e = error("PutObject", 404, &[], body, "nope", "us-east-1");
    let s = service(&e);
    assert_eq!(s.code, "NoSuchBucket");
    assert_eq!(s.request_id.as_deref(), Some("4442587FB7D0A2F9"));
    assert_eq!(e.exit(), Exit::DataErr);
    assert!(!e.is_retryable());
    let line = e.to_string();
    assert!(line.contains("bucket \"nope\" does not exist"), "{line}");

    let denied = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
    let e = error("PutObject", 403, &[], denied, "b", "us-east-1");
    assert_eq!(e.exit(), Exit::NoPerm);

    let slow =
        b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
    let e = error("UploadPart", 503, &[], slow, "b", "us-east-1");
    assert!(e.is_retryable());
    assert_eq!(e.exit(), Exit::TempFail);
    let e = error(
        "UploadPart",
        500,
        &[],
        b"<html>oops</html>",
        "b",
        "us-east-1",
    );
    assert!(e.is_retryable());
    assert_eq!(e.exit(), Exit::TempFail);
}

#[test]
fn a_lost_race_is_recognisable() {
    let body = b"<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>";
    let e = error("PutObject", 412, &[], body, "b", "us-east-1");
    assert!(is_precondition_failed(&e));
    assert!(!e.is_retryable());
    let other = error("PutObject", 403, &[], b"", "b", "us-east-1");
    assert!(!is_precondition_failed(&other));
    // A HEAD-less 412 (no body) is one too.
    assert!(is_precondition_failed(&error(
        "PutObject",
        412,
        &[],
        b"",
        "b",
        "r-1"
    )));
}

#[test]
fn a_bucket_in_another_region_names_that_region() {
    // HeadBucket: no body, the region in a header.
    let e = error(
        "HeadBucket",
        301,
        &h(&[("x-amz-bucket-region", "eu-west-1")]),
        b"",
        "far",
        "us-east-1",
    );
    assert_eq!(e.exit(), Exit::Config);
    let line = e.to_string();
    assert!(line.contains("bucket \"far\""), "{line}");
    assert!(
        line.contains("in region eu-west-1, not us-east-1"),
        "{line}"
    );
    // Signed for the wrong region: S3's own document.
    let body = b"<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'ap-southeast-2'</Message><Region>ap-southeast-2</Region><RequestId>R</RequestId></Error>";
    let e = error("PutObject", 400, &[], body, "b", "us-east-1");
    assert!(e.to_string().contains("region ap-southeast-2"), "{e}");
    assert_eq!(e.exit(), Exit::Config);
    // PermanentRedirect without a region: still one clear line.
    let body = b"<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message><Endpoint>b.s3.amazonaws.com</Endpoint></Error>";
    let e = error("PutObject", 301, &[], body, "b", "us-east-1");
    assert!(e.to_string().contains("another region"), "{e}");
    // An unrelated 400 that mentions a region is not a move.
    let body = b"<Error><Code>InvalidArgument</Code><Message>x</Message><Region>eu-west-1</Region></Error>";
    assert!(matches!(
        error("PutObject", 400, &[], body, "b", "us-east-1"),
        Error::Service(_)
    ));
}

#[test]
fn heads_without_bodies_get_codes_from_their_status() {
    assert_eq!(
        service(&error("HeadBucket", 404, &[], b"", "b", "r-1")).code,
        "NoSuchBucket"
    );
    assert_eq!(
        error("HeadBucket", 403, &[], b"", "b", "r-1").exit(),
        Exit::NoPerm
    );
    let e = error(
        "HeadObject",
        418,
        &h(&[("x-amz-request-id", "RID")]),
        b"",
        "b",
        "r-1",
    );
    assert_eq!(service(&e).code, "HTTP 418");
    assert_eq!(service(&e).request_id.as_deref(), Some("RID"));
}

#[test]
fn object_heads_carry_size_etag_checksum_and_metadata() {
    let head = object_head(&h(&[
        ("content-length", "5"),
        ("etag", "\"5d41402abc4b2a76b9719d911017c592\""),
        (
            "x-amz-checksum-sha256",
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
        ),
        ("x-amz-meta-sha256", "2cf2"),
        ("x-amz-storage-class", "GLACIER_IR"),
        ("x-amz-server-side-encryption", "AES256"),
    ]))
    .unwrap();
    assert_eq!(head.size, 5);
    assert_eq!(head.etag, "5d41402abc4b2a76b9719d911017c592");
    assert_eq!(head.metadata_sha256(), Some("2cf2"));
    assert_eq!(head.storage_class.as_deref(), Some("GLACIER_IR"));
    assert_eq!(head.encryption.as_deref(), Some("AES256"));
    assert!(object_head(&h(&[("content-length", "x")])).is_err());
    assert!(object_head(&[]).is_err());
}

#[test]
fn multipart_documents() {
    let init = br#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>"#;
    assert_eq!(upload_id(init).unwrap(), "VXBsb2FkIElE");
    assert!(upload_id(b"<InitiateMultipartUploadResult/>").is_err());
    assert!(upload_id(b"not xml").is_err());

    let done = br#"<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Location>http://b.s3.amazonaws.com/k</Location><Bucket>b</Bucket><Key>k</Key>
<ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag><ChecksumSHA256>abc=-9</ChecksumSHA256>
</CompleteMultipartUploadResult>"#;
    assert_eq!(
        completion(done).unwrap(),
        Completion::Done {
            etag: Some("3858f62230ac3c915f300c664312c11f-9".into()),
            checksum_sha256: Some("abc=-9".into()),
        }
    );
    let failed = b"<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>R</RequestId></Error>";
    assert!(matches!(
        completion(failed).unwrap(),
        Completion::Failed { code, .. } if code == "InternalError"
    ));

    let list = br#"<ListMultipartUploadsResult><Bucket>b</Bucket>
<Upload><Key>a</Key><UploadId>u1</UploadId></Upload><Upload><Key>b</Key><UploadId>u2</UploadId></Upload>
</ListMultipartUploadsResult>"#;
    assert_eq!(
        uploads(list).unwrap(),
        [
            ("a".to_string(), "u1".to_string()),
            ("b".into(), "u2".into())
        ]
    );
}

#[test]
fn listings_and_attributes() {
    let page = br#"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><IsTruncated>true</IsTruncated>
<Contents><Key>p/a b</Key><Size>5</Size><ETag>&quot;e1&quot;</ETag></Contents>
<Contents><Key>p/c</Key><Size>0</Size><ETag>"e2"</ETag></Contents>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#;
    let p = list_page(page).unwrap();
    assert_eq!(p.objects.len(), 2);
    assert_eq!(p.objects[0].key, "p/a b");
    assert_eq!(p.objects[0].etag, "e1");
    assert_eq!(p.objects[1].size, 0);
    assert!(p.next.as_deref().unwrap().starts_with("1ueG"));
    let last = b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
    assert_eq!(list_page(last).unwrap(), ListPage::default());
    assert!(
        list_page(b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>").is_err()
    );
    assert!(
        list_page(b"<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>")
            .is_err()
    );

    let attrs = br#"<GetObjectAttributesResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<ETag>e</ETag><Checksum><ChecksumSHA256>abc=</ChecksumSHA256></Checksum>
<ObjectParts><TotalPartsCount>3</TotalPartsCount></ObjectParts><ObjectSize>42</ObjectSize>
</GetObjectAttributesResponse>"#;
    assert_eq!(
        attributes(attrs).unwrap(),
        Attributes {
            size: Some(42),
            etag: Some("e".into()),
            checksum_sha256: Some("abc=-3".into()),
        }
    );
    let plain =
        b"<GetObjectAttributesResponse><ObjectSize>7</ObjectSize></GetObjectAttributesResponse>";
    assert_eq!(attributes(plain).unwrap().checksum_sha256, None);
}
