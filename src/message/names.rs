//! The names a request carries: the one rule for an aipid and the one rule
//! for a file name relative to the source directory.
//!
//! Every reader of a request applies these: `MessageSchema::validate`
//! after the JSON Schema (so `sqs_archive send`, the poller and
//! `process_message` do, whatever `schema_file` says; the embedded schema's
//! patterns state the same rules, and a unit test feeds both one table),
//! [`super::ArchiveRequest`] and [`crate::archive`] before touching a file. A name that passes cannot leave the directory it
//! is joined to, cannot truncate a path in the kernel (NUL), cannot forge a
//! manifest line (newline) and fits the file system's limits (255 bytes per
//! component, Linux's `NAME_MAX`).
//!
//! Pure functions over `&str`; this module reads no file and knows nothing
//! of the archive's own reserved names (the manifest), which `archive` adds.

use std::fmt;

use crate::error::Error;

/// Longest aipid, in bytes (all its characters are ASCII).
pub const MAX_AIPID_LEN: usize = 128;
/// Longest file name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest component of a file name (between slashes), in bytes.
pub const MAX_COMPONENT_LEN: usize = 255;

/// The aipid rule in words, for error messages.
pub const AIPID_RULE: &str =
    "aipid must be 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'";
/// The file-name rule in words, for error messages.
pub const NAME_RULE: &str = "each file name must be a relative path (no leading '/', no empty, '.' or '..' component, no control characters, 1 to 1024 bytes, at most 255 bytes between slashes)";

/// Longest value quoted in an error message; a request can carry 256 KiB.
const QUOTED_VALUE_MAX: usize = 200;

/// Why a name breaks its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// The name is the empty string.
    Empty,
    /// The whole name is longer than its limit, in bytes.
    TooLong { len: usize, max: usize },
    /// One component of a file name is over [`MAX_COMPONENT_LEN`] bytes.
    ComponentTooLong { len: usize },
    /// A character an aipid may not hold.
    Character(char),
    /// An aipid starting with `.` or `-`.
    LeadingDotOrDash,
    /// A control character (C0, DEL or C1) in a file name.
    Control(char),
    /// A file name starting with `/`.
    Absolute,
    /// A doubled or trailing `/`.
    EmptyComponent,
    /// A `.` component.
    DotComponent,
    /// A `..` component.
    DotDotComponent,
}

impl NameProblem {
    /// True for the limits counted in bytes. JSON Schema counts characters,
    /// so for a name of multi-byte characters these are the one rule the
    /// schema's patterns cannot state; [`crate::message::schema`] applies
    /// it after the patterns.
    pub fn is_byte_length(self) -> bool {
        matches!(
            self,
            NameProblem::TooLong { .. } | NameProblem::ComponentTooLong { .. }
        )
    }
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("it is empty"),
            NameProblem::TooLong { len, max } => {
                write!(f, "it is {len} bytes, longer than {max}")
            }
            NameProblem::ComponentTooLong { len } => write!(
                f,
                "it has a component of {len} bytes, longer than {MAX_COMPONENT_LEN}"
            ),
            NameProblem::Character(c) => write!(
                f,
                "the character {c:?} is not allowed (only A-Z, a-z, 0-9, '.', '_' and '-' are)"
            ),
            NameProblem::LeadingDotOrDash => f.write_str("it must not start with '.' or '-'"),
            NameProblem::Control(c) => write!(f, "it contains the control character {c:?}"),
            NameProblem::Absolute => {
                f.write_str("it is absolute; names are relative to the source directory")
            }
            NameProblem::EmptyComponent => {
                f.write_str("it has an empty component (a doubled or trailing '/')")
            }
            NameProblem::DotComponent => f.write_str("it has a '.' component"),
            NameProblem::DotDotComponent => f.write_str("it has a '..' component"),
        }
    }
}

/// Checks an aipid: 1 to 128 characters of `[A-Za-z0-9._-]`, not starting
/// with `.` or `-` (so never `.`, `..` or an option).
pub fn check_aipid(aipid: &str) -> Result<(), NameProblem> {
    if aipid.is_empty() {
        return Err(NameProblem::Empty);
    }
    if aipid.len() > MAX_AIPID_LEN {
        return Err(NameProblem::TooLong {
            len: aipid.len(),
            max: MAX_AIPID_LEN,
        });
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if let Some(c) = aipid.chars().find(|&c| !allowed(c)) {
        return Err(NameProblem::Character(c));
    }
    if aipid.starts_with(['.', '-']) {
        return Err(NameProblem::LeadingDotOrDash);
    }
    Ok(())
}

/// Checks a file name: not empty, at most 1024 bytes, no control character
/// (`char::is_control`: C0, DEL, C1), not absolute, every component between
/// slashes 1 to 255 bytes and neither `.` nor `..`.
pub fn check_relative_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameProblem::TooLong {
            len: name.len(),
            max: MAX_NAME_LEN,
        });
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(NameProblem::Control(c));
    }
    if name.starts_with('/') {
        return Err(NameProblem::Absolute);
    }
    for component in name.split('/') {
        match component {
            "" => return Err(NameProblem::EmptyComponent),
            "." => return Err(NameProblem::DotComponent),
            ".." => return Err(NameProblem::DotDotComponent),
            long if long.len() > MAX_COMPONENT_LEN => {
                return Err(NameProblem::ComponentTooLong { len: long.len() });
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn is_valid_aipid(aipid: &str) -> bool {
    check_aipid(aipid).is_ok()
}

pub fn is_valid_relative_name(name: &str) -> bool {
    check_relative_name(name).is_ok()
}

/// [`check_aipid`] as the error a command reports: the aipid, quoted and
/// bounded, and why (exit 65).
pub fn validate_aipid(aipid: &str) -> Result<(), Error> {
    check_aipid(aipid)
        .map_err(|why| Error::InvalidData(format!("aipid {} is not valid: {why}", quoted(aipid))))
}

/// [`check_relative_name`] as the error a command reports (exit 65).
pub fn validate_relative_name(name: &str) -> Result<(), Error> {
    check_relative_name(name).map_err(|why| invalid_name(name, why))
}

/// The error for a file name that breaks a rule: the name, quoted and
/// bounded, and why. `archive` uses it for the names it reserves.
pub fn invalid_name(name: &str, why: impl fmt::Display) -> Error {
    Error::InvalidData(format!("file name {} is not valid: {why}", quoted(name)))
}

/// A name as it appears in an error message: [`crate::text::quoted`],
/// bounded (a request can carry 256 KiB).
pub fn quoted(name: &str) -> String {
    crate::text::quoted(name, QUOTED_VALUE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_aipid_is(aipid: &str, valid: bool) {
        let result = validate_aipid(aipid);
        assert_eq!(result.is_ok(), valid, "{aipid:?}: {result:?}");
    }

    fn check_name_is(name: &str, valid: bool) {
        let result = validate_relative_name(name);
        assert_eq!(result.is_ok(), valid, "{name:?}: {result:?}");
    }

    #[test]
    fn aipid_must_be_a_safe_identifier() {
        check_aipid_is("aip-0001", true);
        check_aipid_is("A.b_c-9", true);
        check_aipid_is("x", true);
        check_aipid_is("_a", true);
        check_aipid_is(&"a".repeat(128), true);
        check_aipid_is("", false);
        check_aipid_is(&"a".repeat(129), false);
        check_aipid_is(".hidden", false);
        check_aipid_is("..", false);
        check_aipid_is("-rf", false);
        check_aipid_is("a/b", false);
        check_aipid_is("a b", false);
        check_aipid_is("a\0b", false);
        check_aipid_is("é", false);
        let message = validate_aipid("../etc").unwrap_err().to_string();
        assert!(message.contains("\"../etc\""), "{message}");
    }

    #[test]
    fn file_names_must_stay_below_their_directory() {
        check_name_is("a.txt", true);
        check_name_is("sub/dir/b.bin", true);
        check_name_is(".hidden", true);
        check_name_is("a..b", true);
        check_name_is("...", true);
        check_name_is("with space", true);
        check_name_is("sub/manifest-sha256.txt", true);
        check_name_is(&"n".repeat(255), true);
        check_name_is(&["n".repeat(255), "n".repeat(255)].join("/"), true);
        check_name_is(&"é".repeat(127), true);
        check_name_is("", false);
        check_name_is("/etc/passwd", false);
        check_name_is("../x", false);
        check_name_is("a/../../x", false);
        check_name_is("..", false);
        check_name_is(".", false);
        check_name_is("./a", false);
        check_name_is("a/./b", false);
        check_name_is("a//b", false);
        check_name_is("a/", false);
        check_name_is("a\0b", false);
        check_name_is("a\nb", false);
        check_name_is("a\u{7f}", false);
        check_name_is("a\u{85}", false);
        check_name_is(&"n".repeat(256), false);
        check_name_is(&"é".repeat(128), false);
        check_name_is(&vec!["n".repeat(200); 6].join("/"), false);
    }

    #[test]
    fn problems_say_why_on_one_bounded_line() {
        let message = validate_relative_name("evil\nname")
            .unwrap_err()
            .to_string();
        assert!(message.contains(r#""evil\nname""#), "{message}");
        assert!(!message.contains('\n'));
        let long = format!("{}/x", "d".repeat(5000));
        let message = validate_relative_name(&long).unwrap_err().to_string();
        assert!(message.len() < 400, "{message}");
        assert!(message.contains("5002 bytes"), "{message}");
        assert_eq!(
            check_relative_name("a//b"),
            Err(NameProblem::EmptyComponent)
        );
        assert_eq!(check_relative_name("./a"), Err(NameProblem::DotComponent));
        assert!(
            check_relative_name(&"é".repeat(128))
                .unwrap_err()
                .is_byte_length()
        );
    }
}
