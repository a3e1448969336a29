//! Foreign text made safe to print: one escaping rule for everything that
//! came from outside (message fields, server errors and HTML excerpts,
//! handler stderr, file names, `.env` problems, URLs).
//!
//! A terminal or a log viewer obeys control characters: ESC starts a
//! sequence that can rewrite the screen or the window title, BEL rings, a
//! C1 character (U+0080–U+009F) is a control on some terminals, and a
//! bidirectional override (U+202E) makes `exe.txt` read as `txt.exe`.
//! [`escape`] shows every such character as a visible escape (`\x1b`,
//! `\u{202e}`), so what reaches stderr or a log file is one line of inert
//! text; [`excerpt`] also bounds its length. Pure functions, no I/O; every
//! module that prints foreign text goes through here.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for the characters [`escape`] rewrites: C0 controls (newline and tab
/// included: an escaped line stays one line), DEL, C1 controls, the
/// bidirectional marks, embeddings, overrides and isolates, the Unicode
/// line and paragraph separators, and the invisible zero-width space, word
/// joiner and byte-order mark (two names that differ only by one would look
/// the same). The zero-width joiners that scripts and emoji need are kept.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{200b}' | '\u{2060}' | '\u{feff}'
        | '\u{200e}' | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{061c}'
        | '\u{2028}' | '\u{2029}'
    )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// Foreign text with every unsafe character (see [`is_unsafe`]) shown as an
/// escape; borrowed unchanged when there is none (the common case).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// At most `max_chars` characters of foreign text, escaped, with `…` when
/// cut. For server messages, HTML page excerpts, handler stderr: one line,
/// bounded, inert.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    for c in chars.by_ref().take(max_chars) {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// The last `max_chars` characters of foreign text (trimmed), escaped, with
/// `…` in front when cut: the end of a command's stderr is where it says why.
pub fn tail(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    let skip = text.chars().count().saturating_sub(max_chars);
    let mut out = String::new();
    if skip > 0 {
        out.push('…');
    }
    for c in text.chars().skip(skip) {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// A value as it appears inside an error message: in double quotes, `"` and
/// `\` backslash-escaped, unsafe characters escaped, and cut at `max_bytes`
/// (on a character boundary) with its full length given.
pub fn quoted(value: &str, max_bytes: usize) -> String {
    let end = floor_char_boundary(value, max_bytes);
    let mut out = String::with_capacity(end + 2);
    out.push('"');
    for c in value[..end].chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out.push('"');
    if end < value.len() {
        let _ = write!(out, "... ({} bytes)", value.len());
    }
    out
}

/// The largest index at or below `max` that is a character boundary.
pub fn floor_char_boundary(text: &str, max: usize) -> usize {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// A URL fit for a message: `http://user:pass@host/` becomes
/// `http://***@host/`, then escaped like any foreign text. Only the
/// authority is looked at, so an `@` in the path is kept.
pub fn url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let masked = match url[start..end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..start], &url[start + at + 1..]),
        None => url.to_string(),
    };
    escape(&masked).into_owned()
}

/// A JSON value as one line, with the characters [`escape`] would rewrite
/// written as `\uXXXX` escapes: the same JSON value, inert on a terminal
/// (serde_json alone escapes only C0 controls, `"` and `\\`).
pub fn json_line(value: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, SafeFormatter);
    serde::Serialize::serialize(value, &mut serializer).expect("a JSON value serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// serde_json's compact output with unsafe characters as `\uXXXX`.
struct SafeFormatter;

impl serde_json::ser::Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(i) = rest.find(is_unsafe) {
            writer.write_all(&rest.as_bytes()[..i])?;
            let c = rest[i..].chars().next().expect("found a char there");
            write!(writer, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(escape("mds2909 ünïcödé ok"), Cow::Borrowed(_)));
        assert_eq!(escape("a\\b \"c\""), "a\\b \"c\"");
    }

    #[test]
    fn controls_c1_and_bidi_are_escaped() {
        assert_eq!(escape("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(escape("bell\x07"), "bell\\x07");
        assert_eq!(escape("l1\nl2\r\tx\x7f"), "l1\\nl2\\r\\tx\\x7f");
        assert_eq!(escape("c1\u{9b}31m"), "c1\\u{9b}31m");
        assert_eq!(escape("doc\u{202e}fdp.exe"), "doc\\u{202e}fdp.exe");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}', '\u{200e}', '\u{200f}', '\u{85}', '\u{0}', '\u{2028}', '\u{1}',
        ] {
            let e = escape(&c.to_string()).into_owned();
            assert!(e.starts_with('\\'), "{c:?} -> {e:?}");
            assert!(!e.chars().any(is_unsafe), "{c:?} -> {e:?}");
        }
    }

    #[test]
    fn excerpt_is_bounded_and_escaped() {
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("abc", 3), "abc");
        assert_eq!(excerpt("a\nb", 10), "a\\nb");
        let long = "\x1b".repeat(10_000);
        let e = excerpt(&long, 100);
        assert!(e.len() <= 100 * 4 + 3, "{}", e.len());
        assert!(!e.contains('\x1b'));
    }

    #[test]
    fn quoted_escapes_quotes_and_cuts_long_values() {
        assert_eq!(quoted("a\"b\\c\x1b", 100), r#""a\"b\\c\x1b""#);
        assert_eq!(quoted("ééé", 3), "\"é\"... (6 bytes)");
        assert_eq!(quoted("x\u{202e}y", 100), "\"x\\u{202e}y\"");
    }

    #[test]
    fn json_lines_keep_the_value_and_escape_bidi_and_c1() {
        let v = serde_json::json!({"aipid": "a\u{1b}[2J\u{7}\u{9b}\u{202e}b", "n": 1});
        let line = json_line(&v);
        assert_eq!(line, r#"{"aipid":"a\u001b[2J\u0007\u009b\u202eb","n":1}"#);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&line).unwrap(), v);
    }

    #[test]
    fn url_userinfo_is_masked() {
        assert_eq!(url("http://me:s3cret@proxy:3128"), "http://***@proxy:3128");
        assert_eq!(
            url("https://me:p@ss@sqs.local:4566/x@y"),
            "https://***@sqs.local:4566/x@y"
        );
        assert_eq!(url("http://host/q?a=b@c"), "http://host/q?a=b@c");
        assert_eq!(url("proxy:3128"), "proxy:3128");
        assert_eq!(url("u@proxy:3128"), "***@proxy:3128");
        assert_eq!(url("http://h\x1b/"), "http://h\\x1b/");
    }

    #[test]
    fn tails_are_one_escaped_line_cut_at_the_front() {
        assert_eq!(tail("a\nb\tc\u{1b}[31m\n", 100), "a\\nb\\tc\\x1b[31m");
        assert_eq!(tail("0123456789", 4), "…6789");
        assert_eq!(tail("\u{202e}x", 1), "…x");
    }

    #[test]
    fn invisible_characters_are_shown() {
        assert_eq!(
            escape("a\u{200b}b\u{feff}c\u{2060}d"),
            "a\\u{200b}b\\u{feff}c\\u{2060}d"
        );
        // Zero-width joiners are part of scripts and emoji: kept.
        assert_eq!(escape("\u{200c}\u{200d}"), "\u{200c}\u{200d}");
    }
}
