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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn environment_keys_come_first() {
        let config = ConfigKeys {
            access_key_id: Some("AKIACONFIGFILE01".into()),
            secret_access_key: Some(Secret::new("other")),
            session_token: None,
            origin: "config/aws.json".into(),
        };
        let chain = CredentialChain::new(
            env(&[
                ("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT1"),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("AWS_SESSION_TOKEN", TOKEN),
            ]),
            config,
        );
        let creds = chain.credentials().unwrap();
        assert_eq!(creds.access_key_id, "AKIAENVIRONMENT1");
        assert_eq!(creds.secret_access_key.expose(), SECRET);
        assert_eq!(creds.session_token.as_ref().unwrap().expose(), TOKEN);
        assert_eq!(creds.expiry, None);
        assert_eq!(creds.source, "environment");
        assert_eq!(chain.report().unwrap().0, Step::Environment);
    }

    #[test]
    fn environment_with_one_key_names_the_missing_variable() {
        let message = credentials_error(chain(&[("AWS_ACCESS_KEY_ID", "AKIAONLY")]).load());
        assert!(
            message.contains("AWS_SECRET_ACCESS_KEY is not"),
            "{message}"
        );
        let message = credentials_error(chain(&[("AWS_SECRET_ACCESS_KEY", SECRET)]).load());
        assert!(message.contains("AWS_ACCESS_KEY_ID is not"), "{message}");
        assert!(!message.contains(SECRET));
    }

    #[test]
    fn environment_session_token_alone_is_ignored() {
        let message = credentials_error(chain(&[("AWS_SESSION_TOKEN", TOKEN)]).load());
        assert!(message.starts_with("no AWS credentials found"), "{message}");
    }

    #[test]
    fn half_a_web_identity_is_an_error_not_the_instance_role() {
        let imds = FakeHttp::canned(imds_answers(
            "t",
            "r",
            credentials_json("AKIAINSTANCE00001", "2026-11-28T18:00:00Z"),
        ));
        for (name, value, missing) in [
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "/var/run/token",
                "AWS_ROLE_ARN",
            ),
            (
                "AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/r",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
            ),
        ] {
            let message = credentials_error(
                chain(&[
                    (name, value),
                    ("AWS_EC2_METADATA_DISABLED", "false"),
                    ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url),
                ])
                .load(),
            );
            assert!(message.contains(&format!("{missing} is not")), "{message}");
        }
        assert!(imds.requests().is_empty());
    }
}
