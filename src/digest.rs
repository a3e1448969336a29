//! Digests as the toolkit writes them: lowercase hex of SHA-256 (manifests,
//! completions, FIFO deduplication ids) and of MD5 (SQS's body checksums,
//! S3 ETags). One place, so every caller formats a digest the same way.

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    hex(&Sha256::digest(data.as_ref()))
}

/// Lowercase hex MD5 of `data`.
pub fn md5_hex(data: impl AsRef<[u8]>) -> String {
    hex(&Md5::digest(data.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(hex(&[0, 255]), "00ff");
    }
}
