//! Helpers for the unit tests of the chain and its sources: a sealed
//! environment, temporary homes, canned metadata answers. Test builds only.

#[path = "../../../tests/it/fakes.rs"]
pub(crate) mod fakes;

pub use super::keys::Credentials;
pub use crate::environment::Env;
pub use crate::error::{Error, Result};
pub use crate::secret::Secret;
pub use fakes::{FakeHttp, closed_port};
pub use std::path::PathBuf;
pub use std::time::{Instant, SystemTime};

pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
pub const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN";

pub fn at(text: &str) -> SystemTime {
    crate::time::parse_rfc3339(text).unwrap()
}

/// An environment that cannot reach the developer's own AWS setup: no
/// HOME with an `.aws`, no instance metadata. Tests add what they need.
pub fn env(pairs: &[(&str, &str)]) -> Env {
    let mut env = Env::from_pairs([
        (
            "HOME",
            std::env::temp_dir()
                .join("sqs-archive-credentials-no-such-home")
                .display()
                .to_string(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ]);
    for (name, value) in pairs {
        env.set(*name, *value);
    }
    env
}

pub fn credentials_json(key: &str, expiration: &str) -> String {
    format!(
        r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{key}","SecretAccessKey":"{SECRET}","Token":"{TOKEN}","Expiration":"{expiration}"}}"#
    )
}

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "sqs-archive-credentials-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.join(".aws")).unwrap();
        TempDir(path)
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.0.join(relative);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn home(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn imds_answers(token: &str, role: &str, credentials: String) -> Vec<(u16, String)> {
    vec![
        (200, token.to_string()),
        (200, format!("{role}\n")),
        (200, credentials),
    ]
}

pub fn credentials_error(result: Result<Credentials>) -> String {
    match result {
        Err(Error::Credentials(message)) => message,
        Err(other) => panic!("expected a credentials error, got {other}"),
        Ok(credentials) => panic!("expected an error, got {credentials:?}"),
    }
}

/// AWS's documented `AssumeRoleWithWebIdentity` answer.
pub const WEB_IDENTITY_ANSWER: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A</SubjectFromWebIdentityToken>
    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2014-10-24T23:00:23Z</Expiration>
      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
    <Provider>www.amazon.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#;
