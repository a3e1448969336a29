//! `sqs_archive credentials`: which source supplied the credentials, the
//! chain step, region and endpoint, as lines or as one JSON object whose
//! fields keep their types (a string or `null`, a number). Never a secret:
//! the key id is masked and the secret and token are only said to exist.

use serde_json::{Value, json};

use crate::aws::credentials::Credentials;
use crate::aws::credentials::chain::Step;
use crate::config::Target;
use crate::error::Result;

/// What `credentials` reports.
pub struct CredentialsView<'a> {
    credentials: &'a Credentials,
    step: Step,
    target: &'a Result<Target>,
}

impl<'a> CredentialsView<'a> {
    pub fn new(credentials: &'a Credentials, step: Step, target: &'a Result<Target>) -> Self {
        CredentialsView {
            credentials,
            step,
            target,
        }
    }

    /// The lines a person reads.
    pub fn text(&self) -> String {
        let (region, endpoint) = match self.target {
            Ok(t) => (
                t.region.to_string(),
                format!("{} ({})", crate::text::url(&t.endpoint), t.endpoint_origin),
            ),
            Err(e) => (format!("not resolved: {e}"), "not resolved".to_string()),
        };
        format!(
            "{}\nchain step: {}\nregion: {region}\nendpoint: {endpoint}",
            self.credentials.describe(),
            self.step.describe()
        )
    }

    /// One JSON line: every key always present, each with one type.
    pub fn json(&self) -> String {
        let c = self.credentials;
        let step_number = Step::ALL
            .iter()
            .position(|s| *s == self.step)
            .map_or(0, |i| i + 1);
        let (region, region_origin, endpoint, endpoint_origin, error) = match self.target {
            Ok(t) => (
                json!(t.region.name),
                json!(t.region.origin),
                json!(crate::text::url(&t.endpoint)),
                json!(t.endpoint_origin),
                Value::Null,
            ),
            Err(e) => (
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                json!(e.to_string()),
            ),
        };
        crate::text::json_line(&json!({
            "access_key_id": c.masked_access_key_id(),
            "source": c.source,
            "session_token": c.session_token.is_some(),
            "expires": c.expiry.map(crate::time::format_rfc3339),
            "chain_step": step_number,
            "chain_steps": Step::ALL.len(),
            "chain_step_name": self.step.describe(),
            "region": region,
            "region_origin": region_origin,
            "endpoint": endpoint,
            "endpoint_origin": endpoint_origin,
            "target_error": error,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::secret::Secret;

    #[test]
    fn json_keeps_types_and_no_secret() {
        let c = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            session_token: Some(Secret::new("TOKEN-SECRET-123")),
            expiry: None,
            source: "environment".into(),
        };
        let target = Err(Error::Usage("no region".into()));
        let line = CredentialsView::new(&c, Step::Environment, &target).json();
        assert!(
            !line.contains("EXAMPLEKEY") && !line.contains("TOKEN-SECRET"),
            "{line}"
        );
        assert!(!line.contains("AKIAIOSFODNN7EXAMPLE"), "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["session_token"], true);
        assert_eq!(v["chain_step"], 1);
        assert!(v["region"].is_null() && v["expires"].is_null(), "{v}");
        assert!(
            v["target_error"].as_str().unwrap().contains("no region"),
            "{v}"
        );
    }
}
