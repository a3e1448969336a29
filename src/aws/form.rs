//! `application/x-www-form-urlencoded` bodies as the AWS query protocol
//! (SQS, STS) sends them. Pure; imports nothing of the crate.

/// A query-protocol request body: `Action` and `Version` first, then the
/// parameters in the order added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryForm(String);

impl QueryForm {
    pub fn new(action: &str, version: &str) -> QueryForm {
        let mut form = QueryForm(String::new());
        form.add("Action", action);
        form.add("Version", version);
        form
    }

    /// Appends `key=value`, both encoded.
    pub fn add(&mut self, key: &str, value: &str) {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        encode_into(&mut self.0, key);
        self.0.push('=');
        encode_into(&mut self.0, value);
    }

    /// The body.
    pub fn finish(self) -> String {
        self.0
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_start_with_action_and_version_and_encode_like_botocore() {
        let mut form = QueryForm::new("SendMessage", "2012-11-05");
        form.add("MessageBody", "a b+c/é~");
        assert_eq!(
            form.finish(),
            "Action=SendMessage&Version=2012-11-05&MessageBody=a+b%2Bc%2F%C3%A9~"
        );
    }
}
