//! HTTP to the container and instance metadata endpoints, and their JSON
//! answer. The one place these sources talk to ureq: no proxy (it would see
//! the token and the keys), no redirects, short timeouts.

use std::time::Duration;

use super::Credentials;
use crate::secret::Secret;

/// Credentials answers are a few hundred bytes; anything much larger is not one.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Reads the JSON answer of the container and instance metadata endpoints:
/// `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}`, plus `Code`
/// from IMDS. The error never quotes the body, which holds the secret.
pub(super) fn parse_credentials_answer(
    body: &str,
    source: String,
) -> std::result::Result<Credentials, String> {
    let document: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        format!(
            "the answer is not JSON (error at line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let field = |name: &str| {
        document
            .get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|value| !value.is_empty())
    };
    if let Some(code) = field("Code")
        && code != "Success"
    {
        let shown = if code.chars().all(|c| c.is_ascii_alphanumeric()) && code.len() <= 64 {
            code
        } else {
            "(not shown)"
        };
        return Err(format!("the answer reports failure, Code {shown}"));
    }
    let access_key_id = field("AccessKeyId").ok_or("the answer has no AccessKeyId")?;
    let secret = field("SecretAccessKey").ok_or("the answer has no SecretAccessKey")?;
    let expiry = match field("Expiration") {
        Some(text) => Some(
            crate::time::parse_rfc3339(text)
                .ok_or("the answer's Expiration is not an RFC 3339 time")?,
        ),
        None => None,
    };
    Ok(Credentials {
        access_key_id: access_key_id.to_string(),
        secret_access_key: Secret::new(secret),
        session_token: field("Token").map(Secret::new),
        expiry,
        source,
    })
}

// ---------------------------------------------------------------------------
// HTTP to the metadata endpoints: the one place this module talks to ureq.

#[derive(Clone, Copy)]
pub(super) enum Method {
    Get,
    Put,
}

/// A status and a body, whatever the status.
pub(super) struct Answer {
    pub status: u16,
    pub body: String,
}

pub(super) fn metadata_agent(connect: Duration, total: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(connect))
        .timeout_global(Some(total))
        .http_status_as_error(false)
        // A proxy would see the token and the keys; a redirect could carry
        // the authorization header to another host.
        .proxy(None)
        .max_redirects(0)
        .build()
        .into()
}

/// One request, retried once on a transport error or a 5xx: enough for a
/// dropped connection, few enough that a missing endpoint fails in seconds.
pub(super) fn send(
    agent: &ureq::Agent,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> std::result::Result<Answer, String> {
    match send_once(agent, method, url, headers) {
        Ok(answer) if answer.status < 500 => Ok(answer),
        _ => send_once(agent, method, url, headers),
    }
}

fn send_once(
    agent: &ureq::Agent,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> std::result::Result<Answer, String> {
    let response = match method {
        Method::Get => headers
            .iter()
            .fold(agent.get(url), |request, (name, value)| {
                request.header(*name, *value)
            })
            .call(),
        Method::Put => headers
            .iter()
            .fold(agent.put(url), |request, (name, value)| {
                request.header(*name, *value)
            })
            .send_empty(),
    };
    // ureq's error text names the failure (refused, timeout), never a header.
    let mut response = response.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok(Answer { status, body })
}
