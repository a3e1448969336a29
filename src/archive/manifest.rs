//! The manifest written into each archived AIP directory: its name (which
//! no archived file may take), its text (`sha256sum` format) and its digest.
//!
//! Pure functions (the one parser of the format: the audit reads manifests
//! with it too); writing it is `target`'s business.

use std::collections::BTreeMap;

use super::copy::{ContentDigest, digest_of_bytes};
use crate::error::Error;
use crate::message::names;

/// The name of the checksum file written into each archived AIP directory,
/// in the format `sha256sum --check` reads.
pub const MANIFEST_NAME: &str = "manifest-sha256.txt";

/// The manifest for files given as `(name, sha256)` pairs (the name
/// relative to the AIP directory, the digest in lower-case hex): one
/// `<sha256>  <name>` line per file, sorted by name, as `sha256sum` writes
/// them.
pub fn manifest_text<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut sorted: Vec<(&str, &str)> = files.into_iter().collect();
    sorted.sort_unstable();
    let mut text = String::with_capacity(sorted.len() * 100);
    for (name, sha256) in sorted {
        text.push_str(sha256);
        text.push_str("  ");
        text.push_str(name);
        text.push('\n');
    }
    text
}

/// The manifest's text and its digest.
pub fn manifest<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (String, ContentDigest) {
    let text = manifest_text(files);
    let digest = digest_of_bytes(text.as_bytes());
    (text, digest)
}

/// Parses a manifest: `<64 lower-case hex>  <name>` lines, as `sha256sum`
/// writes them. Pure.
pub fn parse_manifest(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut entries = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let (digest, name) = line
            .split_once("  ")
            .ok_or_else(|| format!("line {n} is not \"<sha256>  <name>\""))?;
        if digest.len() != 64
            || !digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format!("line {n} does not start with a SHA-256 in hex"));
        }
        if name.is_empty() {
            return Err(format!("line {n} names no file"));
        }
        if entries
            .insert(name.to_string(), digest.to_string())
            .is_some()
        {
            return Err(format!("line {n} names a file a second time"));
        }
    }
    Ok(entries)
}

/// Checks a name a job would archive: the rule of
/// [`names::check_relative_name`], and not the manifest's name nor below it
/// (a directory of that name would leave no room for the manifest).
pub fn validate_archived_name(name: &str) -> Result<(), Error> {
    names::validate_relative_name(name)?;
    if name.split('/').next() == Some(MANIFEST_NAME) {
        return Err(names::invalid_name(
            name,
            "the name is reserved for the manifest",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines_are_sorted_in_sha256sum_format() {
        let files = [("sub/b.txt", "bbbb"), ("a.txt", "aaaa")];
        assert_eq!(manifest_text(files), "aaaa  a.txt\nbbbb  sub/b.txt\n");
        assert_eq!(manifest_text([]), "");
        let (text, digest) = manifest(files);
        assert_eq!(digest, digest_of_bytes(text.as_bytes()));
    }

    #[test]
    fn the_manifest_name_is_reserved_at_the_top_only() {
        assert!(validate_archived_name("a.txt").is_ok());
        assert!(validate_archived_name("sub/manifest-sha256.txt").is_ok());
        for name in [MANIFEST_NAME, "manifest-sha256.txt/below"] {
            let message = validate_archived_name(name).unwrap_err().to_string();
            assert!(message.contains("reserved for the manifest"), "{message}");
        }
        let message = validate_archived_name("a//b").unwrap_err().to_string();
        assert!(message.contains("empty component"), "{message}");
    }
}
