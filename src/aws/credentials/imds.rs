//! EC2 instance metadata (IMDSv2): a session token, the role name, then the
//! role's credentials. The chain asks it only when nothing else is configured.
//!
//! Fetched over [`crate::aws::http::Http::metadata`]; it builds no agent of
//! its own and must not import the chain.

use std::time::Duration;

use super::document::metadata_answer;
use super::keys::Credentials;
use super::provide::Lookup;
use crate::aws::http::{Http, Method};
use crate::environment::Env;
use crate::error::Result;
use crate::secret::Secret;

/// The EC2 instance metadata service (`AWS_EC2_METADATA_SERVICE_ENDPOINT` overrides it).
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// The IMDS address on IPv6-only instances (`AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`).
const IMDS_ENDPOINT_IPV6: &str = "http://[fd00:ec2::254]";

/// Six hours, the SDKs' session length; we ask for a new token on every fetch anyway.
const IMDS_TOKEN_TTL_SECONDS: &str = "21600";

/// Whether `AWS_EC2_METADATA_DISABLED` switches the metadata service off.
pub(super) fn disabled(env: &Env) -> bool {
    env.get("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

pub(super) fn from_instance_metadata(env: &Env) -> Result<Lookup> {
    if disabled(env) {
        return Ok(Lookup::NotFound(
            "instance metadata (disabled by AWS_EC2_METADATA_DISABLED)".into(),
        ));
    }
    let endpoint = imds_endpoint(env);
    match fetch_instance_credentials(&endpoint) {
        Ok(credentials) => Ok(Lookup::Found(credentials)),
        Err(why) => Ok(Lookup::NotFound(format!(
            "instance metadata ({endpoint}: {why})"
        ))),
    }
}

/// The instance role's credentials, for `credential_source = Ec2InstanceMetadata`:
/// here a failure is an error, not a reason to look elsewhere.
pub(super) fn instance_credentials(env: &Env) -> std::result::Result<Credentials, String> {
    if disabled(env) {
        return Err("instance metadata is disabled by AWS_EC2_METADATA_DISABLED".into());
    }
    let endpoint = imds_endpoint(env);
    fetch_instance_credentials(&endpoint)
        .map_err(|why| format!("instance metadata ({endpoint}): {why}"))
}

fn imds_endpoint(env: &Env) -> String {
    let endpoint = match env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
        Some(endpoint) => endpoint,
        None if env
            .get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")
            .is_some_and(|mode| mode.eq_ignore_ascii_case("ipv6")) =>
        {
            IMDS_ENDPOINT_IPV6
        }
        None => IMDS_ENDPOINT,
    };
    endpoint.trim_end_matches('/').to_string()
}

/// The token, the role name, then the role's credentials. Timeouts are short
/// because most machines that get this far have no metadata service at all.
fn fetch_instance_credentials(endpoint: &str) -> std::result::Result<Credentials, String> {
    let http = Http::metadata(Duration::from_secs(1), Duration::from_secs(2));
    let roles_url = format!("{endpoint}/latest/meta-data/iam/security-credentials/");

    let answer = http.fetch(
        Method::Put,
        &format!("{endpoint}/latest/api/token"),
        &[(
            "x-aws-ec2-metadata-token-ttl-seconds",
            IMDS_TOKEN_TTL_SECONDS,
        )],
    )?;
    match answer.status {
        200 => {}
        403 => {
            return Err(
                "the token request was refused (HTTP 403): IMDS is turned off for this instance"
                    .into(),
            );
        }
        status => return Err(format!("the token request answered HTTP {status}")),
    }
    let token = Secret::new(answer.body.trim());
    let token_header = [("x-aws-ec2-metadata-token", token.expose())];

    let answer = http.fetch(Method::Get, &roles_url, &token_header)?;
    match answer.status {
        200 => {}
        404 => return Err("no IAM role is attached to this instance".into()),
        status => return Err(format!("the role list answered HTTP {status}")),
    }
    let role = answer
        .body
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .ok_or("no IAM role is attached to this instance")?;
    if !is_role_name(role) {
        return Err("the role list does not hold an IAM role name".into());
    }

    let answer = http.fetch(Method::Get, &format!("{roles_url}{role}"), &token_header)?;
    if answer.status != 200 {
        return Err(format!(
            "the credentials of role {role} answered HTTP {}",
            answer.status
        ));
    }
    metadata_answer(&answer.body, format!("instance metadata (role {role})"))
        .map_err(|why| format!("role {role}: {why}"))
}

/// IAM role names are `[\w+=,.@-]{1,64}`; anything else must not reach a URL path.
fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}
