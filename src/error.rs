//! The library's error type, and how each error maps to an exit code.
//!
//! Every error carries the context a person needs (the file, the queue, the
//! AWS error code and request id) and its `Display` is one line that says
//! what went wrong and, where there is one, what to do. No variant ever holds
//! a secret.

use std::fmt;
use std::path::PathBuf;

use crate::exit::Exit;

/// Everything that can go wrong in sqs-archive.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The command line was wrong.
    Usage(String),
    /// A configuration value is missing, malformed or inconsistent.
    /// `origin` names where it came from (a file, a variable, a flag).
    Config { origin: String, message: String },
    /// A message, an aipid or a file name is not valid; retrying will not help.
    InvalidData(String),
    /// A local file or directory could not be read or written.
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// SQS (or the emulator) answered with an error response.
    Service(ServiceError),
    /// The endpoint could not be reached, or the connection failed mid-way.
    Transport {
        action: &'static str,
        endpoint: String,
        detail: String,
    },
    /// The server's answer could not be understood.
    Protocol {
        action: &'static str,
        detail: String,
    },
    /// A message body does not match the MD5 digest SQS reported for it.
    Checksum {
        message_id: String,
        expected: String,
        actual: String,
    },
    /// No usable credentials were found, or a credentials source failed.
    Credentials(String),
    /// Another writer changed what we meant to change, each time we
    /// tried (a conditional write lost its race): try again later (75).
    Contended(String),
    /// A failure that may pass by itself (a cut connection, bytes changed
    /// in transit) that outlasted the retries: exit 75, so the request is
    /// tried again later rather than given up.
    Transient(Box<Error>),
    /// Standard output was closed by its reader (`| head`); not worth a message.
    BrokenPipe,
}

/// An error response from SQS: `ErrorResponse` (query) or `__type` (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The API action that failed, e.g. `SendMessage`.
    pub action: &'static str,
    /// HTTP status of the answer.
    pub status: u16,
    /// The AWS error code, e.g. `AWS.SimpleQueueService.NonExistentQueue`.
    pub code: String,
    /// The server's own message.
    pub message: String,
    /// The request id, for AWS support.
    pub request_id: Option<String>,
}

impl ServiceError {
    /// The code without its namespace (`AWS.SimpleQueueService.` or `com.amazonaws.sqs#`).
    pub fn short_code(&self) -> &str {
        let code = self.code.rsplit('#').next().unwrap_or(&self.code);
        code.rsplit('.').next().unwrap_or(code)
    }

    /// Throttling and server-side faults may succeed when tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.short_code(),
            "Throttling"
                | "ThrottlingException"
                | "RequestThrottled"
                | "RequestThrottledException"
                | "TooManyRequestsException"
                | "SlowDown"
                | "ServiceUnavailable"
                | "InternalError"
                | "InternalFailure"
                | "KmsThrottled"
                | "RequestTimeout"
        ) || self.status >= 500
            || self.status == 429
    }

    /// True when the credentials were refused.
    pub fn is_auth(&self) -> bool {
        matches!(
            self.short_code(),
            "SignatureDoesNotMatch"
                | "InvalidClientTokenId"
                | "UnrecognizedClientException"
                | "AccessDenied"
                | "AccessDeniedException"
                | "ExpiredToken"
                | "ExpiredTokenException"
                | "IncompleteSignature"
                | "MissingAuthenticationToken"
                | "InvalidSecurity"
                | "AuthFailure"
                | "RequestExpired"
        ) || self.status == 403
    }

    /// True when the queue does not exist.
    pub fn is_missing_queue(&self) -> bool {
        matches!(self.short_code(), "NonExistentQueue" | "QueueDoesNotExist")
    }

    /// True when the service refused the message itself: too long, a
    /// character SQS does not allow, a parameter out of range. Sending the
    /// same message again cannot succeed; a smaller or different one may.
    /// Applies to a `SendMessage` answer and to one entry of a
    /// `SendMessageBatch` answer alike (entries carry the same codes).
    pub fn is_permanent_refusal(&self) -> bool {
        !self.is_retryable()
            && !self.is_auth()
            && !self.is_missing_queue()
            && matches!(
                self.short_code(),
                "InvalidParameterValue"
                    | "InvalidParameterValueException"
                    | "InvalidMessageContents"
                    | "MessageTooLong"
                    | "BatchRequestTooLong"
                    | "InvalidAttributeValue"
                    | "InvalidParameterCombination"
                    | "MissingParameter"
                    | "ValidationError"
                    | "ValidationException"
            )
    }

    /// True when a receipt handle is stale (the message was received again or deleted).
    pub fn is_stale_receipt(&self) -> bool {
        matches!(
            self.short_code(),
            "ReceiptHandleIsInvalid" | "MessageNotInflight" | "InvalidReceiptHandle"
        )
    }

    fn hint(&self) -> &'static str {
        if self.is_auth() {
            "check the access key, secret key and region (and the clock) used for this profile"
        } else if self.is_missing_queue() {
            "check the queue URL in the profile or SQS_*_QUEUE_URL, and the region"
        } else if self.is_retryable() {
            "the service is busy or failing; try again later"
        } else {
            ""
        }
    }
}

impl Error {
    /// The exit code a binary ends with when this error stops it.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) => Exit::Usage,
            Error::Config { .. } => Exit::Config,
            Error::InvalidData(_) => Exit::DataErr,
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => Exit::NoInput,
                std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::QuotaExceeded
                | std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::ResourceBusy
                | std::io::ErrorKind::WouldBlock => Exit::TempFail,
                _ => Exit::IoErr,
            },
            Error::Service(e) if e.is_auth() => Exit::NoPerm,
            // An answer that is not an SQS error at all (a redirect, a 404
            // page): whatever answers there is not the queue service.
            Error::Service(e)
                if e.code.starts_with("HTTP")
                    && (e.status == 404 || (300..400).contains(&e.status)) =>
            {
                Exit::Unavailable
            }
            Error::Service(e) if e.is_missing_queue() => Exit::Unavailable,
            Error::Service(e) if e.is_retryable() => Exit::TempFail,
            Error::Service(_) => Exit::DataErr,
            Error::Transport { .. } => Exit::Unavailable,
            Error::Protocol { .. } => Exit::Protocol,
            Error::Checksum { .. } => Exit::Protocol,
            Error::Credentials(_) => Exit::NoPerm,
            Error::Contended(_) | Error::Transient(_) => Exit::TempFail,
            Error::BrokenPipe => Exit::Ok,
        }
    }

    /// Whether trying the same call again may succeed (used by the retry loop).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Service(e) => e.is_retryable(),
            Error::Transport { .. } => true,
            // A truncated or garbled answer is most often a connection cut short.
            Error::Protocol { .. } => true,
            _ => false,
        }
    }

    /// True when a send was refused for the message itself (see
    /// [`ServiceError::is_permanent_refusal`]), by the service or by the
    /// client's own checks before sending ([`crate::queue::prepare`]):
    /// trying the same message again cannot succeed. Meaningful on the
    /// result of a send call.
    pub fn is_permanent_refusal(&self) -> bool {
        match self {
            Error::Service(e) => e.is_permanent_refusal(),
            Error::InvalidData(_) => true,
            _ => false,
        }
    }

    /// Shorthand for a configuration error.
    pub fn config(origin: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config {
            origin: origin.into(),
            message: message.into(),
        }
    }

    /// Shorthand for an I/O error on a path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

// Display escapes the whole line (`text::escape`): an error often carries
// text a server, a file or a message chose, and it is printed to terminals
// and logs. Escaping is idempotent, so text escaped earlier is not mangled.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = Unescaped(self).to_string();
        f.write_str(&crate::text::escape(&line))
    }
}

/// The error's line before escaping.
struct Unescaped<'a>(&'a Error);

impl fmt::Display for Unescaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Error::Usage(m) => write!(f, "{m} (see --help)"),
            Error::Config { origin, message } => write!(f, "configuration: {origin}: {message}"),
            Error::InvalidData(m) => f.write_str(m),
            Error::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            Error::Service(e) => fmt::Display::fmt(e, f),
            Error::Transport {
                action,
                endpoint,
                detail,
            } => write!(
                f,
                "{action}: cannot reach {endpoint}: {detail}; check endpoint_url / AWS_ENDPOINT_URL and the network"
            ),
            Error::Protocol { action, detail } => {
                write!(f, "{action}: unexpected answer from the server: {detail}")
            }
            Error::Checksum {
                message_id,
                expected,
                actual,
            } => write!(
                f,
                "message {}: body MD5 {actual} does not match {} reported by the server; the message was left on the queue",
                // Both come from the server as it pleased: one line, bounded.
                crate::text::excerpt(message_id, 100),
                crate::text::excerpt(expected, 64)
            ),
            Error::Credentials(m) => write!(f, "credentials: {m}"),
            Error::Contended(m) => write!(f, "{m}; another writer won each time: try again later"),
            Error::Transient(e) => write!(f, "{}", Unescaped(e)),
            Error::BrokenPipe => f.write_str("broken pipe"),
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::text::escape;
        write!(
            f,
            "{}: {} (HTTP {}): {}",
            self.action,
            escape(&self.code),
            self.status,
            escape(&self.message)
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " [request id {}]", escape(id))?;
        }
        let hint = self.hint();
        if !hint.is_empty() {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> Error {
        Error::Service(ServiceError {
            action: "SendMessage",
            status,
            code: code.into(),
            message: "m".into(),
            request_id: Some("r-1".into()),
        })
    }

    #[test]
    fn classifies_service_errors() {
        let sig = service(403, "SignatureDoesNotMatch");
        assert_eq!(sig.exit(), Exit::NoPerm);
        assert!(!sig.is_retryable());
        let missing = service(400, "AWS.SimpleQueueService.NonExistentQueue");
        assert_eq!(missing.exit(), Exit::Unavailable);
        assert!(!missing.is_retryable());
        let json_missing = service(400, "com.amazonaws.sqs#QueueDoesNotExist");
        assert_eq!(json_missing.exit(), Exit::Unavailable);
        assert!(service(400, "Throttling").is_retryable());
        assert!(service(503, "Whatever").is_retryable());
        assert!(!service(400, "InvalidParameterValue").is_retryable());
        assert_eq!(service(400, "InvalidParameterValue").exit(), Exit::DataErr);
    }

    #[test]
    fn a_lost_race_and_a_lasting_transient_fault_exit_75() {
        let race = Error::Contended("manifest s3://b/aip/manifest-sha256.txt".into());
        assert_eq!(race.exit(), Exit::TempFail);
        assert!(race.to_string().contains("try again later"), "{race}");
        let cut = Error::Transport {
            action: "UploadPart",
            endpoint: "http://127.0.0.1:1".into(),
            detail: "connection reset".into(),
        };
        assert_eq!(cut.exit(), Exit::Unavailable);
        let later = Error::Transient(Box::new(cut));
        assert_eq!(later.exit(), Exit::TempFail);
        assert!(later.to_string().contains("connection reset"), "{later}");
    }

    #[test]
    fn a_checksum_error_is_one_line_whatever_the_server_sent() {
        // Found by fuzz/query_response: an MD5OfBody holding a newline.
        let e = Error::Checksum {
            message_id: "m\n1".into(),
            expected: format!("0dd4\n{}", "z".repeat(500)),
            actual: "0dd47222eb32ef00f8856a542670d296".into(),
        }
        .to_string();
        assert!(!e.contains('\n'), "{e:?}");
        assert!(e.len() < 400, "{e}");
    }

    #[test]
    fn display_is_one_line_with_request_id_and_hint() {
        let text = service(403, "SignatureDoesNotMatch").to_string();
        assert!(!text.contains('\n'));
        assert!(text.contains("SignatureDoesNotMatch"), "{text}");
        assert!(text.contains("request id r-1"), "{text}");
        assert!(text.contains("secret key"), "{text}");
    }
}
