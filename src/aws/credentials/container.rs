//! Container credentials: ECS task roles and EKS Pod Identity.
//!
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (joined to the ECS agent's host)
//! or `AWS_CONTAINER_CREDENTIALS_FULL_URI` (https, or http to a loopback or
//! container host only), with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN` as the `Authorization` header.
//!
//! Fetched over [`crate::aws::http::Http::metadata`]; it builds no agent of
//! its own and must not import the chain.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::document::metadata_answer;
use super::provide::Lookup;
use crate::aws::http::{Http, Method};
use crate::environment::Env;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The ECS agent's credentials host, joined with `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
pub const ECS_CONTAINER_ENDPOINT: &str = "http://169.254.170.2";

pub(super) fn from_container(env: &Env, ecs_endpoint: &str) -> Result<Lookup> {
    let Some(url) = container_url(env, ecs_endpoint)? else {
        return Ok(Lookup::NotFound(
            "container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and \
             AWS_CONTAINER_CREDENTIALS_FULL_URI not set)"
                .into(),
        ));
    };
    let failed = |why: String| {
        Error::Credentials(format!(
            "container credentials from {}: {why}",
            crate::text::url(&url)
        ))
    };
    let authorization = container_authorization(env)?;
    let mut headers = Vec::new();
    if let Some(token) = &authorization {
        headers.push(("authorization", token.expose()));
    }
    let http = Http::metadata(Duration::from_secs(2), Duration::from_secs(5));
    let answer = http.fetch(Method::Get, &url, &headers).map_err(failed)?;
    if !(200..300).contains(&answer.status) {
        // The body is not quoted: an endpoint may echo what it was sent.
        return Err(failed(format!("HTTP {}", answer.status)));
    }
    metadata_answer(&answer.body, "container credentials".into())
        .map(Lookup::Found)
        .map_err(failed)
}

/// The URL to fetch container credentials from, if the environment names one.
/// The relative URI wins over the full one, as in the SDKs.
fn container_url(env: &Env, ecs_endpoint: &str) -> Result<Option<String>> {
    if let Some(relative) = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        let slash = if relative.starts_with('/') { "" } else { "/" };
        let base = ecs_endpoint.trim_end_matches('/');
        return Ok(Some(format!("{base}{slash}{relative}")));
    }
    let Some(full) = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") else {
        return Ok(None);
    };
    check_full_uri(full).map_err(|why| {
        let full = crate::text::url(full);
        Error::Credentials(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI {full}: {why}; allowed are https URLs, and http \
             to a loopback address, 169.254.170.2 (ECS) or 169.254.170.23 / fd00:ec2::23 (EKS)"
        ))
    })?;
    Ok(Some(full.to_string()))
}

/// Whether the SDKs would fetch credentials from this full URI. Plain http
/// could hand the authorization token and the keys to anyone on the path, so
/// it is limited to hosts that never leave the machine or the task.
fn check_full_uri(uri: &str) -> std::result::Result<(), &'static str> {
    let (scheme, rest) = uri.split_once("://").ok_or("not an absolute URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("user information in the URL is not allowed");
    }
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').ok_or("malformed IPv6 host")?.0,
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err("no host");
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if is_container_host(host) => Ok(()),
        "http" => Err("plain http to this host is not allowed"),
        _ => Err("the scheme must be http or https"),
    }
}

fn is_container_host(host: &str) -> bool {
    const ECS: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);
    const EKS: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 23);
    const EKS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip == ECS || ip == EKS,
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || ip == EKS_V6,
        Err(_) => false,
    }
}

/// The `Authorization` header value: the token file (re-read on every fetch,
/// because EKS rotates it) wins over the token variable, as in the SDKs.
fn container_authorization(env: &Env) -> Result<Option<Secret>> {
    let (origin, token) = if let Some(path) = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            Secret::new(text.trim()),
        )
    } else if let Some(token) = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN") {
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            Secret::new(token.trim()),
        )
    } else {
        return Ok(None);
    };
    if token.expose().chars().any(char::is_control) {
        return Err(Error::Credentials(format!(
            "{origin}: the authorization token contains a line break or another control character"
        )));
    }
    Ok(Some(token).filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_full_uri_allows_http_only_to_local_and_container_hosts() {
        for allowed in [
            "http://127.0.0.1:8080/creds",
            "http://127.3.4.5/creds",
            "http://localhost/creds",
            "http://LOCALHOST:1234",
            "http://[::1]:80/creds",
            "http://169.254.170.2/v2/credentials",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "https://credentials.example.com/creds",
        ] {
            assert_eq!(check_full_uri(allowed), Ok(()), "{allowed}");
        }
        for refused in [
            "http://169.254.169.254/latest/meta-data",
            "http://example.com/creds",
            "http://127.0.0.1.example.com/creds",
            "http://user@127.0.0.1/creds",
            "http://10.0.0.1/creds",
            "ftp://127.0.0.1/creds",
            "127.0.0.1/creds",
            "http:///creds",
            "http://[::1/creds",
        ] {
            assert!(check_full_uri(refused).is_err(), "{refused}");
        }
    }
}
