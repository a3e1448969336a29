//! `application/x-www-form-urlencoded` bodies as the AWS query protocol
//! (SQS, STS) sends them.

/// Form-encodes: RFC 3986 unreserved characters stay, a space becomes `+`,
/// the rest `%XX`. This is byte for byte what botocore sends, and moto
/// re-encodes the form this way when it checks the signature.
pub fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}
