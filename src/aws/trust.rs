//! Which certificate authorities TLS trusts, and TLS failures as one line a
//! person can act on.
//!
//! Precedence, as the AWS SDKs and OpenSSL-based tools read it (the first
//! that is set wins and replaces the others):
//!
//! 1. `AWS_CA_BUNDLE` (environment), then `ca_bundle` in the AWS config
//!    file's profile: the caller passes the one that applies as
//!    [`crate::aws::http::HttpOptions::ca_bundle`];
//! 2. `SSL_CERT_FILE` and/or `SSL_CERT_DIR`, as OpenSSL reads them;
//! 3. the platform's trust store, found at run time (`/etc/ssl/certs/
//!    ca-certificates.crt`, `/etc/pki/tls/certs/ca-bundle.crt`, … as
//!    `openssl-probe` lists them), so roots added with
//!    `update-ca-certificates` are trusted, in a static musl binary too;
//! 4. only when none of these yields a certificate: the Mozilla roots
//!    compiled into the binary (`webpki-roots`).
//!
//! Steps 2 and 3 are `rustls-native-certs`, which reads the process's
//! environment. Must not import `aws::credentials`, `config` or anything
//! above `aws`.

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The roots to trust without a bundle, and where they came from.
#[derive(Clone, Debug)]
pub struct Roots {
    pub certs: Vec<ureq::tls::Certificate<'static>>,
    /// `the platform trust store`, `SSL_CERT_FILE /x.pem`, `the built-in Mozilla roots`.
    pub origin: String,
}

/// The platform roots (steps 2 to 4 above), read once per process. An
/// `SSL_CERT_FILE`/`SSL_CERT_DIR` that yields no certificate is an error.
pub fn platform_roots() -> Result<Roots> {
    static ROOTS: OnceLock<std::result::Result<Roots, String>> = OnceLock::new();
    ROOTS
        .get_or_init(load_platform_roots)
        .clone()
        .map_err(|e| Error::config("SSL_CERT_FILE", e))
}

fn load_platform_roots() -> std::result::Result<Roots, String> {
    let set: Vec<String> = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .into_iter()
        .filter_map(|v| std::env::var(v).ok().map(|p| format!("{v} {p}")))
        .collect();
    let found = rustls_native_certs::load_native_certs();
    let certs: Vec<_> = found
        .certs
        .iter()
        .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if !set.is_empty() {
        if certs.is_empty() {
            let why = found
                .errors
                .first()
                .map_or("no PEM certificate in it".to_string(), ToString::to_string);
            return Err(format!("{}: {why}", set.join(", ")));
        }
        return Ok(Roots {
            certs,
            origin: set.join(", "),
        });
    }
    if certs.is_empty() {
        log::debug!("no platform trust store found; trusting the built-in Mozilla roots");
        return Ok(Roots {
            certs: Vec::new(),
            origin: "the built-in Mozilla roots (no platform trust store found)".into(),
        });
    }
    Ok(Roots {
        certs,
        origin: "the platform trust store".into(),
    })
}

/// Certificates of a PEM bundle (`AWS_CA_BUNDLE`, `ca_bundle`).
pub fn bundle(pem: &[u8]) -> Vec<ureq::tls::Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// One line for a failed call: for a TLS failure, the host, the reason in
/// words and what was trusted; otherwise ureq's text.
pub fn describe(error: &ureq::Error, url: &str, trusted: &str) -> String {
    let rustls = match error {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(io) => io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    let Some(tls) = rustls else {
        return error.to_string();
    };
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    format!(
        "TLS with {host} failed: {} (trusted: {trusted})",
        reason(tls)
    )
}

fn reason(error: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => "the server's certificate is not signed by a trusted authority \
                                 (set AWS_CA_BUNDLE, ca_bundle or SSL_CERT_FILE to its CA)"
                .into(),
            C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (is the clock right?)".into()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the server's certificate is for another host name".into()
            }
            C::Revoked => "the server's certificate is revoked".into(),
            C::BadSignature => "the server's certificate signature does not verify against the \
                                trusted authority of its issuer's name (another CA with the same name?)"
                .into(),
            C::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
                "the server presents a CA certificate as its own (a self-signed CA); \
                 trust a CA that signs a server certificate instead"
                    .into()
            }
            other => format!("the server's certificate is refused ({other:?})"),
        },
        rustls::Error::AlertReceived(alert) => format!("the server ended the handshake ({alert:?})"),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the server does not speak TLS here (plain HTTP on this port?)".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_one_line_in_words_naming_the_host() {
        let unknown = ureq::Error::Rustls(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        let line = describe(
            &unknown,
            "https://me:pw@sqs.eu-west-1.amazonaws.com/1/q",
            "the platform trust store",
        );
        assert_eq!(
            line,
            "TLS with sqs.eu-west-1.amazonaws.com failed: the server's certificate is not \
             signed by a trusted authority (set AWS_CA_BUNDLE, ca_bundle or SSL_CERT_FILE to \
             its CA) (trusted: the platform trust store)"
        );
        // Wrapped in an I/O error, as a handshake failure during a write is.
        let wrapped = ureq::Error::Io(std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired,
        )));
        let line = describe(&wrapped, "https://127.0.0.1:4566/", "CA bundle /x.pem");
        assert!(
            line.starts_with(
                "TLS with 127.0.0.1:4566 failed: the server's certificate has expired"
            ),
            "{line}"
        );
        assert!(!line.contains('\n'));
        // Other failures keep ureq's words.
        let other = ureq::Error::ConnectionFailed;
        assert!(!describe(&other, "https://h/", "x").starts_with("TLS"));
    }

    #[test]
    fn a_bundle_keeps_only_certificates() {
        assert!(bundle(b"not a certificate\n").is_empty());
    }
}
