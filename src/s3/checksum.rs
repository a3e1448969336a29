//! The digests of what is sent (SHA-256 and MD5 of a body or a part) and
//! the comparison of S3's answer with them: the checksum S3 echoes
//! (`x-amz-checksum-sha256`, composite `base64(sha256(part digests))-N`
//! for multipart) when it returns one, else the ETag when it is an MD5
//! (single PUT without KMS: `md5(body)`; multipart: `md5(part md5s)-N`).
//! A mismatch is an error, never a success.
//!
//! Pure; knows nothing of HTTP.

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// SHA-256 and MD5 of one body (an object or a part), computed in one pass.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    pub sha256: [u8; 32],
    pub md5: [u8; 16],
}

impl std::fmt::Debug for Digests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Digests(sha256 {}, md5 {})",
            self.sha256_hex(),
            self.md5_hex()
        )
    }
}

impl Digests {
    pub fn of(body: &[u8]) -> Digests {
        Digests {
            sha256: Sha256::digest(body).into(),
            md5: Md5::digest(body).into(),
        }
    }

    pub fn sha256_hex(&self) -> String {
        crate::digest::hex(&self.sha256)
    }

    /// What `x-amz-checksum-sha256` carries.
    pub fn sha256_base64(&self) -> String {
        base64(&self.sha256)
    }

    pub fn md5_hex(&self) -> String {
        crate::digest::hex(&self.md5)
    }

    /// What `Content-MD5` carries.
    pub fn md5_base64(&self) -> String {
        base64(&self.md5)
    }
}

/// How an upload was found to be intact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    /// S3 echoed the SHA-256 checksum (composite for multipart) and it is ours.
    Checksum,
    /// No checksum came back; the ETag is the MD5 we computed.
    Md5Etag,
    /// Neither came back in a comparable form (KMS-encrypted objects have
    /// no MD5 ETag): only the signed payload hash, which S3 checks on
    /// receipt, vouches for the bytes.
    SignedPayloadOnly,
}

/// Compares a single PUT's (or one part's) answer with the body's digests.
/// `kms`: the object is KMS-encrypted, so its ETag is not an MD5.
pub fn verify_single(
    digests: &Digests,
    etag: Option<&str>,
    checksum: Option<&str>,
    kms: bool,
) -> Result<Verified, String> {
    if let Some(returned) = checksum.map(str::trim).filter(|c| !c.is_empty()) {
        let ours = digests.sha256_base64();
        if returned != ours {
            return Err(format!(
                "S3 stored sha256 {} but we sent {ours}",
                crate::text::excerpt(returned, 64)
            ));
        }
        // A server may echo the checksum we sent without checking it (moto
        // does): an MD5 ETag, when there is one, must agree as well.
        return match etag.map(unquote) {
            Some(etag)
                if !kms && is_md5_hex(etag) && !etag.eq_ignore_ascii_case(&digests.md5_hex()) =>
            {
                Err(format!(
                    "S3 echoed our sha256 but answered ETag {}, not the MD5 of what we sent {}",
                    crate::text::excerpt(etag, 64),
                    digests.md5_hex()
                ))
            }
            _ => Ok(Verified::Checksum),
        };
    }
    match etag.map(unquote) {
        Some(etag) if !kms && is_md5_hex(etag) => {
            let ours = digests.md5_hex();
            if etag.eq_ignore_ascii_case(&ours) {
                Ok(Verified::Md5Etag)
            } else {
                Err(format!(
                    "S3 answered ETag {} but the MD5 of what we sent is {ours}",
                    crate::text::excerpt(etag, 64)
                ))
            }
        }
        _ => Ok(Verified::SignedPayloadOnly),
    }
}

/// The composite checksum of a multipart upload: `base64(sha256(concat of
/// the parts' sha256 digests))-N`.
pub fn composite_sha256(parts: &[Digests]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.sha256);
    }
    format!("{}-{}", base64(&h.finalize()), parts.len())
}

/// The ETag S3 gives a multipart object without KMS: `hex(md5(concat of
/// the parts' md5 digests))-N`.
pub fn multipart_etag(parts: &[Digests]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p.md5);
    }
    format!("{}-{}", crate::digest::hex(&h.finalize()), parts.len())
}

/// Compares CompleteMultipartUpload's answer with the parts' digests. S3
/// writes the composite checksum with or without its `-N`; both are taken.
pub fn verify_multipart(
    parts: &[Digests],
    etag: Option<&str>,
    checksum: Option<&str>,
    kms: bool,
) -> Result<Verified, String> {
    if let Some(returned) = checksum.map(str::trim).filter(|c| !c.is_empty()) {
        let ours = composite_sha256(parts);
        let bare = ours.rsplit_once('-').map_or(ours.as_str(), |(b, _)| b);
        return if returned == ours || returned == bare {
            Ok(Verified::Checksum)
        } else {
            Err(format!(
                "S3 stored composite sha256 {} but our parts give {ours}",
                crate::text::excerpt(returned, 80)
            ))
        };
    }
    match etag.map(unquote) {
        Some(etag) if !kms && etag.split_once('-').is_some_and(|(h, _)| is_md5_hex(h)) => {
            let ours = multipart_etag(parts);
            if etag.eq_ignore_ascii_case(&ours) {
                Ok(Verified::Md5Etag)
            } else {
                Err(format!(
                    "S3 answered ETag {} but our parts give {ours}",
                    crate::text::excerpt(etag, 80)
                ))
            }
        }
        _ => Ok(Verified::SignedPayloadOnly),
    }
}

/// An ETag without its quotes (S3 quotes them; some emulators do not).
pub fn unquote(etag: &str) -> &str {
    let etag = etag.trim();
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.trim_matches('"')
}

fn is_md5_hex(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Standard base64 with padding (RFC 4648 §4), as S3's checksum headers use.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        // The empty body's digests, as S3 documents them.
        let d = Digests::of(b"");
        assert_eq!(
            d.sha256_base64(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(d.md5_base64(), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }

    #[test]
    fn a_single_put_is_checked_by_checksum_then_md5_etag() {
        let d = Digests::of(b"hello");
        let ours = d.sha256_base64();
        assert_eq!(
            verify_single(&d, None, Some(&ours), false),
            Ok(Verified::Checksum)
        );
        assert!(verify_single(&d, None, Some("AAAA"), false).is_err());
        // A checksum that matches wins over an ETag that cannot (KMS).
        assert_eq!(
            verify_single(&d, Some("\"abc\""), Some(&ours), true),
            Ok(Verified::Checksum)
        );
        let etag = format!("\"{}\"", d.md5_hex());
        assert_eq!(
            verify_single(&d, Some(&etag), None, false),
            Ok(Verified::Md5Etag)
        );
        let wrong = format!("\"{}\"", Digests::of(b"hellO").md5_hex());
        let e = verify_single(&d, Some(&wrong), None, false).unwrap_err();
        assert!(e.contains(&d.md5_hex()), "{e}");
        // With KMS the ETag is no MD5: nothing to compare.
        assert_eq!(
            verify_single(&d, Some(&wrong), None, true),
            Ok(Verified::SignedPayloadOnly)
        );
        assert_eq!(
            verify_single(&d, Some("\"x-1\""), None, false),
            Ok(Verified::SignedPayloadOnly)
        );
        // An echoed checksum does not hide an MD5 ETag of other bytes
        // (moto echoes what it was sent without checking it).
        let e = verify_single(&d, Some(&wrong), Some(&ours), false).unwrap_err();
        assert!(e.contains("echoed"), "{e}");
        assert_eq!(
            verify_single(&d, Some(&etag), Some(&ours), false),
            Ok(Verified::Checksum)
        );
    }

    #[test]
    fn multipart_composites_match_s3s_published_form() {
        let parts = [Digests::of(b"part one"), Digests::of(b"part two")];
        let mut concat = Vec::new();
        parts
            .iter()
            .for_each(|p| concat.extend_from_slice(&p.sha256));
        let expected = format!("{}-2", base64(&Sha256::digest(&concat)));
        assert_eq!(composite_sha256(&parts), expected);
        let mut md5s = Vec::new();
        parts.iter().for_each(|p| md5s.extend_from_slice(&p.md5));
        assert_eq!(
            multipart_etag(&parts),
            format!("{}-2", crate::digest::md5_hex(&md5s))
        );
        let bare = expected.trim_end_matches("-2");
        for returned in [expected.as_str(), bare] {
            assert_eq!(
                verify_multipart(&parts, None, Some(returned), false),
                Ok(Verified::Checksum)
            );
        }
        assert!(verify_multipart(&parts[..1], None, Some(&expected), false).is_err());
        let etag = format!("\"{}\"", multipart_etag(&parts));
        assert_eq!(
            verify_multipart(&parts, Some(&etag), None, false),
            Ok(Verified::Md5Etag)
        );
        let swapped = [parts[1], parts[0]];
        assert!(verify_multipart(&swapped, Some(&etag), None, false).is_err());
        assert_eq!(
            verify_multipart(&parts, Some(&etag), None, true),
            Ok(Verified::SignedPayloadOnly)
        );
    }
}
