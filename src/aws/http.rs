//! The one place that does HTTP and builds ureq agents: the service agent
//! (keep-alive, proxies, trusted roots from [`crate::aws::trust`], timeouts) that SQS, STS and S3 calls use
//! (S3: any method, and downloads streamed into a sink), and
//! the metadata agent (no proxy, no redirects, short timeouts, small answers)
//! for the container and instance metadata endpoints.
//!
//! Transport only: it knows no service, signs nothing, and must not import
//! `aws::credentials`, `config`, `sqs` or anything above `aws`.

use std::time::Duration;

use crate::error::{Error, Result};

/// The largest answer read (ten 1 MiB messages, XML-escaped, fit easily).
const MAX_BODY: u64 = 64 << 20;

/// Metadata answers (credentials, a token, a role name) are a few hundred
/// bytes; anything much larger is not one.
const MAX_METADATA_BODY: u64 = 64 * 1024;

/// An HTTP answer with lower-case header names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Options for the agent.
#[derive(Clone, Debug, Default)]
pub struct HttpOptions {
    /// The whole call, connection to last byte; longer than any long poll.
    pub timeout: Duration,
    /// PEM file of trusted roots (`AWS_CA_BUNDLE`, else the config file's
    /// `ca_bundle`); they replace the platform trust store, as in the AWS
    /// CLI. Without it: [`crate::aws::trust::platform_roots`].
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Proxy URL for this endpoint, already checked against `NO_PROXY`.
    pub proxy: Option<String>,
}

/// A blocking HTTP client shared by all threads.
#[derive(Debug)]
pub struct Http {
    agent: ureq::Agent,
    /// Longer answers are an error, not read to their end.
    max_body: u64,
    /// Which roots TLS trusts, for a failure's message ([`crate::aws::trust`]).
    trusted: String,
}

/// The methods metadata endpoints are asked with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    /// Without a body (the IMDSv2 token request).
    Put,
}

/// A status and a text body, whatever the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextResponse {
    pub status: u16,
    pub body: String,
}

impl Http {
    pub fn new(options: &HttpOptions) -> Result<Http> {
        let proxy = match &options.proxy {
            Some(url) => Some(ureq::Proxy::new(url).map_err(|e| {
                let url = without_userinfo(url);
                Error::config("HTTPS_PROXY", format!("invalid proxy {url:?}: {e}"))
            })?),
            None => None,
        };
        let mut tls = ureq::tls::TlsConfig::builder();
        let trusted = if let Some(path) = &options.ca_bundle {
            let pem = crate::files::read_config_file(path, crate::files::ConfigFile::CaBundle)
                .map_err(|e| e.into_error("read CA bundle", path))?;
            let certs = crate::aws::trust::bundle(pem.as_bytes());
            if certs.is_empty() {
                return Err(Error::config(
                    path.display().to_string(),
                    "the CA bundle (AWS_CA_BUNDLE or ca_bundle) holds no PEM certificate",
                ));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
            format!("CA bundle {}", path.display())
        } else {
            let roots = crate::aws::trust::platform_roots()?;
            if !roots.certs.is_empty() {
                tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots.certs));
            }
            roots.origin
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(options.timeout))
            .timeout_connect(Some(Duration::from_secs(5).min(options.timeout)))
            .max_redirects(0)
            .proxy(proxy)
            .tls_config(tls.build())
            .user_agent(concat!("sqs-archive/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Http {
            agent: config.into(),
            max_body: MAX_BODY,
            trusted,
        })
    }

    /// The agent for link-local metadata endpoints (container credentials,
    /// IMDS): no proxy, since a proxy would see the token and the keys; no
    /// redirects, since one could carry the authorization header to another
    /// host; `connect` and `total` timeouts; answers up to 64 KiB.
    pub fn metadata(connect: Duration, total: Duration) -> Http {
        // An https container endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`)
        // is checked against the platform roots too; an unusable
        // `SSL_CERT_FILE` leaves the built-in ones.
        let (tls, trusted) = match crate::aws::trust::platform_roots() {
            Ok(roots) if !roots.certs.is_empty() => (
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&roots.certs))
                    .build(),
                roots.origin,
            ),
            _ => (
                ureq::tls::TlsConfig::default(),
                "the built-in Mozilla roots".to_string(),
            ),
        };
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_connect(Some(connect))
            .timeout_global(Some(total))
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .build();
        Http {
            agent: config.into(),
            max_body: MAX_METADATA_BODY,
            trusted,
        }
    }

    /// A GET or a bodiless PUT with a text answer, retried once on a
    /// transport error or a 5xx: enough for a dropped connection, few enough
    /// that a missing metadata endpoint fails in seconds. Errors never quote
    /// a header (ureq's text names the failure: refused, timeout).
    pub fn fetch(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> std::result::Result<TextResponse, String> {
        match self.fetch_once(method, url, headers) {
            Ok(answer) if answer.status < 500 => Ok(answer),
            _ => self.fetch_once(method, url, headers),
        }
    }

    fn fetch_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> std::result::Result<TextResponse, String> {
        let response = match method {
            Method::Get => headers
                .iter()
                .fold(self.agent.get(url), |request, (name, value)| {
                    request.header(*name, *value)
                })
                .call(),
            Method::Put => headers
                .iter()
                .fold(self.agent.put(url), |request, (name, value)| {
                    request.header(*name, *value)
                })
                .send_empty(),
        };
        let mut response = response.map_err(|e| self.describe(&e, url))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(self.max_body)
            .read_to_string()
            .map_err(|e| format!("reading the answer: {e}"))?;
        Ok(TextResponse { status, body })
    }

    /// POSTs a body; any status is an answer, only failing to get one is an
    /// error. `timeout`, when given, replaces the agent's for this call (a
    /// long poll's wait plus a margin).
    pub fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        timeout: Option<Duration>,
    ) -> std::result::Result<HttpResponse, String> {
        let mut request = self.agent.post(url);
        if let Some(timeout) = timeout {
            request = request
                .config()
                .timeout_global(Some(timeout))
                .timeout_connect(Some(Duration::from_secs(5).min(timeout)))
                .build();
        }
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let mut response = request.send(body).map_err(|e| self.describe(&e, url))?;
        let (status, headers) = status_and_headers(&response);
        let body = self.read_body(&mut response)?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

impl Http {
    /// An answer's body, read whole up to the agent's limit.
    fn read_body(
        &self,
        response: &mut ureq::http::Response<ureq::Body>,
    ) -> std::result::Result<Vec<u8>, String> {
        response
            .body_mut()
            .with_config()
            .limit(self.max_body)
            .read_to_vec()
            .map_err(|e| format!("reading the answer failed: {e}"))
    }

    /// One line for a failed call ([`crate::aws::trust::describe`]).
    fn describe(&self, error: &ureq::Error, url: &str) -> String {
        crate::aws::trust::describe(error, url, &self.trusted)
    }

    /// Sends a request with any method (`PUT`, `GET`, `HEAD`, `DELETE`,
    /// `POST`) and an optional body; any status is an answer, only failing
    /// to get one is an error. The answer is read whole (up to the agent's
    /// limit); [`Http::download`] streams one instead.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> std::result::Result<HttpResponse, String> {
        let mut response = self.run(method, url, headers, body)?;
        let (status, headers) = status_and_headers(&response);
        let body = self.read_body(&mut response)?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// A bodiless request whose 2xx answer is copied into `sink` as it
    /// arrives (no limit, nothing held in memory); any other answer is read
    /// whole and returned in the response's body, as [`Http::send`] does.
    /// The returned body is empty after a 2xx; `copied` counts the bytes
    /// written to `sink`.
    pub fn download(
        &self,
        url: &str,
        headers: &[(String, String)],
        sink: &mut dyn std::io::Write,
    ) -> std::result::Result<(HttpResponse, u64), String> {
        let mut response = self.run("GET", url, headers, None)?;
        let (status, headers) = status_and_headers(&response);
        if !(200..300).contains(&status) {
            let body = response
                .body_mut()
                .with_config()
                .limit(self.max_body)
                .read_to_vec()
                .map_err(|e| format!("reading the answer failed: {e}"))?;
            return Ok((
                HttpResponse {
                    status,
                    headers,
                    body,
                },
                0,
            ));
        }
        let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
        let copied = std::io::copy(&mut reader, sink)
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        Ok((
            HttpResponse {
                status,
                headers,
                body: Vec::new(),
            },
            copied,
        ))
    }

    fn run(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, String> {
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        match body {
            Some(body) => request
                .body(body)
                .map_err(|e| e.to_string())
                .and_then(|r| self.agent.run(r).map_err(|e| self.describe(&e, url))),
            None => request
                .body(())
                .map_err(|e| e.to_string())
                .and_then(|r| self.agent.run(r).map_err(|e| self.describe(&e, url))),
        }
    }
}

fn status_and_headers(response: &ureq::http::Response<ureq::Body>) -> (u16, Vec<(String, String)>) {
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    (response.status().as_u16(), headers)
}

/// A URL fit for a message: [`crate::text::url`] (userinfo masked, escaped).
pub fn without_userinfo(url: &str) -> String {
    crate::text::url(url)
}

/// The proxy for an endpoint from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`, unless `NO_PROXY` covers its host.
pub fn proxy_for(endpoint: &str, env: &crate::environment::Env) -> Option<String> {
    let https = endpoint.starts_with("https://");
    let get = |name: &str| {
        env.get(name)
            .or_else(|| env.get(&name.to_ascii_lowercase()))
    };
    let proxy = if https {
        get("HTTPS_PROXY")
    } else {
        get("HTTP_PROXY")
    }
    .or_else(|| get("ALL_PROXY"))?;
    let host = endpoint
        .split("://")
        .nth(1)?
        .split(['/', ':'])
        .next()?
        .to_ascii_lowercase();
    let excluded = get("NO_PROXY").is_some_and(|list| {
        list.split(',')
            .map(|e| e.trim().to_ascii_lowercase())
            .any(|entry| {
                let entry = entry.trim_start_matches('*').trim_start_matches('.');
                !entry.is_empty()
                    && (entry == "*" || host == entry || host.ends_with(&format!(".{entry}")))
            })
            || list.trim() == "*"
    });
    (!excluded).then(|| proxy.to_string())
}

#[cfg(test)]
mod tests {
    use crate::environment::Env;

    #[test]
    fn proxy_respects_no_proxy() {
        let env = Env::from_pairs([
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("NO_PROXY", "localhost,.internal"),
        ]);
        assert_eq!(
            proxy_for("https://sqs.eu-west-1.amazonaws.com", &env).as_deref(),
            Some("http://proxy:3128")
        );
        assert_eq!(proxy_for("https://sqs.corp.internal/", &env), None);
        assert_eq!(proxy_for("https://localhost:4566", &env), None);
        assert_eq!(
            proxy_for("http://127.0.0.1:4566", &env),
            None,
            "HTTPS_PROXY is for https only"
        );
        let env = Env::from_pairs([("http_proxy", "http://p:1"), ("no_proxy", "*")]);
        assert_eq!(proxy_for("http://x", &env), None);
    }

    use super::*;

    #[test]
    fn user_info_is_hidden() {
        assert_eq!(
            without_userinfo("http://me:s3cret@proxy:3128"),
            "http://***@proxy:3128"
        );
        assert_eq!(
            without_userinfo("http://me:p@ss@proxy:3128/x@y"),
            "http://***@proxy:3128/x@y"
        );
        assert_eq!(without_userinfo("proxy:3128"), "proxy:3128");
        assert_eq!(without_userinfo("u@proxy:3128"), "***@proxy:3128");
    }
}
