//! The environment's credentials: access keys, and the web identity
//! variables that ask for `AssumeRoleWithWebIdentity`. Pure over an [`Env`];
//! must not read the process environment itself or import the chain.

use std::path::PathBuf;

use super::keys::Credentials;
use super::provide::Lookup;
use super::sts::WebIdentityRole;
use crate::environment::Env;
use crate::error::{Error, Result};
use crate::secret::Secret;

const ID: &str = "AWS_ACCESS_KEY_ID";
const SECRET: &str = "AWS_SECRET_ACCESS_KEY";

/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`);
/// one without the other is an error, not a reason to look elsewhere.
pub(crate) fn from_environment(env: &Env) -> Result<Lookup> {
    match (env.get(ID), env.get(SECRET)) {
        (Some(id), Some(secret)) => Ok(Lookup::Found(Credentials {
            access_key_id: id.to_string(),
            secret_access_key: Secret::new(secret),
            session_token: env.get("AWS_SESSION_TOKEN").map(Secret::new),
            expiry: None,
            source: "environment".into(),
        })),
        (Some(_), None) => Err(half_set(ID, SECRET)),
        (None, Some(_)) => Err(half_set(SECRET, ID)),
        (None, None) => Ok(Lookup::NotFound(format!(
            "environment ({ID} and {SECRET} not set)"
        ))),
    }
}

fn half_set(present: &str, missing: &str) -> Error {
    Error::Credentials(format!(
        "{present} is set but {missing} is not; set both, or neither to use another source"
    ))
}

/// `AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN` (and optionally
/// `AWS_ROLE_SESSION_NAME`), as EKS sets them for a service account. One
/// without the other is an error: falling through to the node's instance role
/// would hand a pod its node's permissions.
pub(crate) fn web_identity(env: &Env) -> Result<Option<WebIdentityRole>> {
    const FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
    const ROLE: &str = "AWS_ROLE_ARN";
    match (env.get(FILE), env.get(ROLE)) {
        (Some(file), Some(role_arn)) => Ok(Some(WebIdentityRole {
            role_arn: role_arn.to_string(),
            token_file: PathBuf::from(file),
            session_name: env.get("AWS_ROLE_SESSION_NAME").map(String::from),
            origin: format!("web identity ({FILE} {file})"),
        })),
        (Some(_), None) => Err(half_set(FILE, ROLE)),
        (None, Some(_)) => Err(half_set(ROLE, FILE)),
        (None, None) => Ok(None),
    }
}
