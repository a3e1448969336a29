//! The directory queue's journal format: one [`Change`] per line, as
//! `<checksum> <JSON>\n`, where the checksum is the first 16 hex digits of
//! the JSON's MD5 (integrity against torn and damaged writes, not a
//! security measure).
//!
//! Lines rather than length prefixes: JSON escapes every control character,
//! so a record never holds a raw newline, whatever its message body says. A
//! damaged record is therefore one bad line, and the records after it are
//! found again at the next newline; no body can pass itself off as a
//! record. A last line without its newline is a write that did not finish
//! (a crash or a full disk), never half a message: it is reported apart.
//!
//! Pure encoding and decoding over bytes; the file itself is
//! [`crate::queue::dir`]'s. Must not do I/O.

use std::ops::Range;

use crate::queue::model::Change;

const CHECKSUM_DIGITS: usize = 16;

/// The lines of `changes`, ready to append.
pub fn encode(changes: &[Change]) -> Vec<u8> {
    let mut out = Vec::new();
    for change in changes {
        let json = serde_json::to_vec(change).expect("a change serializes");
        out.extend_from_slice(checksum(&json).as_bytes());
        out.push(b' ');
        out.extend_from_slice(&json);
        out.push(b'\n');
    }
    out
}

/// What a run of journal bytes holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The readable records, in order.
    pub changes: Vec<Change>,
    /// Bytes up to the end of the last complete line; anything after it is
    /// an unfinished write.
    pub complete: usize,
    /// Complete lines that cannot be read (checksum or JSON), with why.
    pub bad: Vec<(Range<usize>, &'static str)>,
}

/// Reads the complete lines of `bytes`.
pub fn decode(bytes: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    let mut at = 0;
    while let Some(n) = bytes[at..].iter().position(|&b| b == b'\n') {
        match parse_line(&bytes[at..at + n]) {
            Ok(change) => decoded.changes.push(change),
            Err(problem) => decoded.bad.push((at..at + n + 1, problem)),
        }
        at += n + 1;
    }
    decoded.complete = at;
    decoded
}

fn parse_line(line: &[u8]) -> Result<Change, &'static str> {
    let (sum, json) = match (line.get(..CHECKSUM_DIGITS), line.get(CHECKSUM_DIGITS + 1..)) {
        (Some(sum), Some(json)) if line[CHECKSUM_DIGITS] == b' ' => (sum, json),
        _ => return Err("not a journal record"),
    };
    if checksum(json).as_bytes() != sum {
        return Err("checksum mismatch");
    }
    serde_json::from_slice(json).map_err(|_| "not a change this version knows")
}

fn checksum(json: &[u8]) -> String {
    let mut sum = crate::digest::md5_hex(json);
    sum.truncate(CHECKSUM_DIGITS);
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::model::Message;

    fn sent(id: &str, body: &str) -> Change {
        Change::Sent(Message {
            id: id.into(),
            body: body.into(),
            sent_ms: 1,
            group: None,
            dedup: None,
            sequence: None,
            receive_count: 0,
            visible_ms: 0,
            receipt: None,
            first_receive_ms: None,
        })
    }

    #[test]
    fn round_trip_even_with_newlines_and_records_in_a_body() {
        let forged = String::from_utf8(encode(&[Change::Deleted { id: "m1".into() }])).unwrap();
        let changes = vec![
            sent("m1", "line one\nline two\r\n\u{0}"),
            sent("m2", &forged),
            Change::Deleted { id: "m1".into() },
        ];
        let bytes = encode(&changes);
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 3);
        let d = decode(&bytes);
        assert_eq!(d.changes, changes);
        assert_eq!((d.complete, d.bad.len()), (bytes.len(), 0));
    }

    #[test]
    fn a_damaged_line_is_skipped_and_a_torn_tail_left_apart() {
        let mut bytes = encode(&[sent("m1", "one"), sent("m2", "two"), sent("m3", "three")]);
        let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let t = second
            + bytes[second..]
                .windows(3)
                .position(|w| w == b"two")
                .unwrap();
        bytes[t] = b'T';
        let whole = bytes.len();
        bytes.extend_from_slice(&encode(&[sent("m4", "four")])[..20]);
        let d = decode(&bytes);
        assert_eq!(d.changes, [sent("m1", "one"), sent("m3", "three")]);
        assert_eq!(d.complete, whole);
        assert_eq!(d.bad.len(), 1);
        assert_eq!(d.bad[0].1, "checksum mismatch");
        assert_eq!(d.bad[0].0.start, second);
        // Zeros from a lost page, garbage, a future record kind.
        let mut other = b"\0\0\0\0\n".to_vec();
        other.extend_from_slice(b"0123456789abcdef {\"op\":\"x\"}\n");
        let json = br#"{"op":"renamed","id":"m1"}"#;
        other.extend_from_slice(checksum(json).as_bytes());
        other.push(b' ');
        other.extend_from_slice(json);
        other.push(b'\n');
        let d = decode(&other);
        let problems: Vec<_> = d.bad.iter().map(|b| b.1).collect();
        assert_eq!(
            problems,
            [
                "not a journal record",
                "checksum mismatch",
                "not a change this version knows"
            ]
        );
    }
}
