//! The AWS shared-file dialect of INI (`~/.aws/config`, `~/.aws/credentials`),
//! pure: text in, sections out. Imports nothing of the crate.

use std::collections::BTreeMap;
use std::fmt;

/// An INI file: section name → key (lower case) → value. A repeated section
/// or key adds to or replaces the earlier one, as in the SDKs.
pub type Ini = BTreeMap<String, BTreeMap<String, String>>;

/// Why an INI file could not be read. Holds the line number only: the line
/// itself may be a secret key.
#[derive(Debug, PartialEq, Eq)]
pub struct IniError {
    pub line: usize,
    message: &'static str,
}

impl fmt::Display for IniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses the AWS shared-file dialect of INI: `[section]` headers,
/// `key = value` lines, whole-line comments starting with `#` or `;`, the same
/// after a value when preceded by whitespace. As in the SDKs, an indented
/// line right after a setting continues its value (that is how nested
/// settings such as `s3 =` are written); anywhere else indentation is ignored.
pub fn parse_ini(text: &str) -> std::result::Result<Ini, IniError> {
    let mut ini = Ini::new();
    let mut section: Option<String> = None;
    let mut last_key: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let error = |message| IniError { line, message };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if raw.starts_with([' ', '\t'])
            && let (Some(name), Some(key)) = (&section, &last_key)
            && let Some(value) = ini.get_mut(name).and_then(|keys| keys.get_mut(key))
        {
            value.push('\n');
            value.push_str(strip_inline_comment(trimmed));
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            let (name, rest) = header
                .split_once(']')
                .ok_or_else(|| error("section header without `]`"))?;
            let rest = rest.trim_start();
            if !rest.is_empty() && !rest.starts_with(['#', ';']) {
                return Err(error("unexpected text after the section header"));
            }
            let name = name.trim();
            if name.is_empty() {
                return Err(error("empty section name"));
            }
            ini.entry(name.to_string()).or_default();
            section = Some(name.to_string());
            last_key = None;
            continue;
        }
        let Some(name) = &section else {
            return Err(error("setting before any [section]"));
        };
        let (key, value) = trimmed
            .split_once('=')
            .ok_or_else(|| error("expected `name = value`"))?;
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(error("setting without a name"));
        }
        let value = strip_inline_comment(value.trim()).to_string();
        ini.entry(name.clone())
            .or_default()
            .insert(key.clone(), value);
        last_key = Some(key);
    }
    Ok(ini)
}

/// Cuts a ` # comment` or ` ; comment` off a value; `#` inside a word stays.
fn strip_inline_comment(value: &str) -> &str {
    let cut = value
        .char_indices()
        .zip(value.chars().skip(1))
        .find(|((_, c), next)| c.is_whitespace() && matches!(next, '#' | ';'))
        .map_or(value.len(), |((at, _), _)| at);
    value[..cut].trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_reads_sections_keys_comments_and_whitespace() {
        let text = "# leading comment\n\
                    ; another\n\
                    \n\
                    [default]\n\
                    \tAWS_Secret_Access_Key  =  with spaces = and equals  \n\
                    aws_access_key_id=AKIDDEFAULT\n\
                    region = eu-west-1 # trailing comment\n\
                    [ profile  dev ]   ; comment after header\n\
                    output = json;not-a-comment\n\
                    empty =\n";
        // The indented setting follows a header, so it is not a continuation.
        let ini = parse_ini(text).unwrap();
        let default = &ini["default"];
        assert_eq!(default["aws_access_key_id"], "AKIDDEFAULT");
        assert_eq!(default["aws_secret_access_key"], "with spaces = and equals");
        assert_eq!(default["region"], "eu-west-1");
        let dev = &ini["profile  dev"];
        assert_eq!(dev["output"], "json;not-a-comment");
        assert_eq!(dev["empty"], "");
    }

    #[test]
    fn ini_appends_continuation_lines_and_merges_repeated_sections() {
        let text = "[default]\ns3 =\n  max_concurrent_requests = 10 # why not\n  addressing_style = path\nregion = a\n[default]\nregion = b\n";
        let ini = parse_ini(text).unwrap();
        assert_eq!(
            ini["default"]["s3"],
            "\nmax_concurrent_requests = 10\naddressing_style = path"
        );
        assert_eq!(ini["default"]["region"], "b");
    }

    #[test]
    fn ini_errors_name_the_line_but_not_its_text() {
        let check = |text: &str, line: usize| {
            let error = parse_ini(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}");
            assert!(!error.to_string().contains("SECRETLINE"), "{error}");
        };
        check("aws_secret_access_key = SECRETLINE\n", 1);
        check("[default]\n\nSECRETLINE\n", 3);
        check("[default\nx = SECRETLINE\n", 1);
        check("[default] SECRETLINE\n", 1);
        check("[]\n", 1);
        check("[default]\n = SECRETLINE\n", 2);
    }
}
