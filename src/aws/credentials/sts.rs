//! AWS STS over the query protocol: `AssumeRole`, signed with the source
//! credentials, and `AssumeRoleWithWebIdentity`, unsigned (the token is the
//! proof). Building the form and reading the XML answer are pure; one thin
//! function sends the call over the crate's HTTP client ([`Http`]), with
//! the same CA bundle and proxy rules as the SQS calls.
//!
//! The endpoint is `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else the
//! regional STS endpoint of the signing region (partition, FIPS and
//! dual-stack aware, see [`crate::aws::endpoint`]). XML is read with
//! [`crate::aws::xml`]. Must not import the chain or build an HTTP agent.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use roxmltree::{Document, Node};

use super::keys::Credentials;
use crate::aws::endpoint::{Variant, parse_flag, service_endpoint};
use crate::aws::form::QueryForm;
use crate::aws::http::{Http, HttpOptions};
use crate::aws::xml::{ErrorFields, child, child_text};
use crate::environment::Env;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::text::excerpt;

/// The STS API version of the query protocol.
const VERSION: &str = "2011-06-15";

/// The whole STS call, connection to last byte.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A web identity token file is a JWT of a few KiB; refuse anything huge.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// A role to assume with credentials from another source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleToAssume {
    pub role_arn: String,
    pub session_name: Option<String>,
    pub duration_seconds: Option<u32>,
    pub external_id: Option<String>,
    /// `profile NAME in FILE`, for messages.
    pub origin: String,
}

/// A role to assume with a web identity token (EKS, OIDC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebIdentityRole {
    pub role_arn: String,
    /// Read again at every refresh: Kubernetes rotates it.
    pub token_file: PathBuf,
    pub session_name: Option<String>,
    /// Where the settings came from, for messages.
    pub origin: String,
}

/// An STS endpoint with its signing region.
#[derive(Debug)]
pub struct Sts {
    pub endpoint: String,
    pub region: String,
    env: Env,
    /// `AWS_CA_BUNDLE`, else the shared config profile's `ca_bundle`.
    ca_bundle: Option<std::path::PathBuf>,
}

impl Sts {
    /// The STS endpoint for `region`, or the one the environment names.
    pub fn new(env: &Env, region: Option<&str>) -> Result<Sts> {
        let configured = env
            .get("AWS_ENDPOINT_URL_STS")
            .or_else(|| env.get("AWS_ENDPOINT_URL"));
        let (endpoint, region) = match (configured, region) {
            (Some(endpoint), region) => (
                endpoint.trim_end_matches('/').to_string(),
                // A custom endpoint with no region: sign as the global endpoint does.
                region.unwrap_or("us-east-1").to_string(),
            ),
            (None, Some(region)) => (
                service_endpoint("sts", region, variant(env)?),
                region.to_string(),
            ),
            (None, None) => {
                return Err(Error::Credentials(
                    "assuming a role needs a region for STS: set region in the profile file, \
                     AWS_REGION, or region in the shared config profile"
                        .into(),
                ));
            }
        };
        Ok(Sts {
            endpoint,
            region,
            env: env.clone(),
            ca_bundle: env.get("AWS_CA_BUNDLE").map(Into::into),
        })
    }

    /// `AssumeRole`, signed with `source`; `via` names where `source` came from.
    pub fn assume_role(
        &self,
        source: &Credentials,
        role: &RoleToAssume,
        via: &str,
        now: SystemTime,
    ) -> Result<Credentials> {
        let body = assume_role_form(role, &session_name(role.session_name.as_deref(), now));
        let mut headers = vec![(
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        )];
        let url = format!("{}/", self.endpoint);
        let signed = crate::aws::sign::sign_service_request(
            "sts",
            &url,
            &headers,
            body.as_bytes(),
            &source.signing_keys(),
            &self.region,
            now,
        )?;
        headers.extend(signed);
        let what = format!("AssumeRole {} ({})", role.role_arn, role.origin);
        let keys = source.signing_keys();
        let secrets: Vec<&str> = [Some(keys.secret_access_key), keys.session_token]
            .into_iter()
            .flatten()
            .collect();
        let (status, answer) = self.post(&url, &headers, &body, &what, &secrets)?;
        parse_answer(status, &answer, "AssumeRole")
            .map(|c| c.into_credentials(format!("assumed role {} via {via}", role.role_arn)))
            .map_err(|why| Error::Credentials(format!("{what}: {why}")))
    }

    /// Trusts `ca_bundle` (the shared config profile's) when `AWS_CA_BUNDLE` is not set.
    pub fn with_profile_ca_bundle(mut self, ca_bundle: Option<std::path::PathBuf>) -> Sts {
        if self.ca_bundle.is_none() {
            self.ca_bundle = ca_bundle;
        }
        self
    }

    /// `AssumeRoleWithWebIdentity` with the token file's current content; unsigned.
    pub fn assume_role_with_web_identity(&self, role: &WebIdentityRole) -> Result<Credentials> {
        let what = format!(
            "AssumeRoleWithWebIdentity {} ({})",
            role.role_arn, role.origin
        );
        let token = read_token(&role.token_file).map_err(|why| {
            Error::Credentials(format!(
                "{what}: web identity token file {}: {why}",
                role.token_file.display()
            ))
        })?;
        let body = web_identity_form(
            role,
            &token,
            &session_name(role.session_name.as_deref(), SystemTime::now()),
        );
        let headers = vec![(
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        )];
        let url = format!("{}/", self.endpoint);
        let (status, answer) = self.post(&url, &headers, &body, &what, &[token.expose()])?;
        parse_answer(status, &answer, "AssumeRoleWithWebIdentity")
            .map(|c| {
                c.into_credentials(format!(
                    "assumed role {} via web identity (token file {})",
                    role.role_arn,
                    role.token_file.display()
                ))
            })
            .map_err(|why| Error::Credentials(format!("{what}: {why}")))
    }

    fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &str,
        what: &str,
        secrets: &[&str],
    ) -> Result<(u16, String)> {
        let http = Http::new(&HttpOptions {
            timeout: TIMEOUT,
            ca_bundle: self.ca_bundle.clone(),
            proxy: crate::aws::http::proxy_for(url, &self.env),
        })?;
        let response = http
            .post(url, headers, body.as_bytes(), None)
            .map_err(|e| {
                let url = crate::text::url(url);
                let e = crate::aws::redact::redact(&e, secrets);
                Error::Credentials(format!("{what}: calling {url} failed: {e}"))
            })?;
        let answer = String::from_utf8_lossy(&response.body).into_owned();
        // An error answer may echo the request (a WAF, a proxy): no secret
        // of it reaches a message.
        let answer = if (200..300).contains(&response.status) {
            answer
        } else {
            crate::aws::redact::redact(&answer, secrets)
        };
        Ok((response.status, answer))
    }
}

/// `AWS_USE_FIPS_ENDPOINT` and `AWS_USE_DUALSTACK_ENDPOINT`.
pub fn variant(env: &Env) -> Result<Variant> {
    let flag = |name: &str| match env.get(name) {
        None => Ok(false),
        Some(value) => parse_flag(name, value).map_err(|e| Error::config(name, e)),
    };
    Ok(Variant {
        fips: flag("AWS_USE_FIPS_ENDPOINT")?,
        dual_stack: flag("AWS_USE_DUALSTACK_ENDPOINT")?,
    })
}

/// The session name asked for, else `sqs-archive-<milliseconds>` as the SDKs do.
fn session_name(configured: Option<&str>, now: SystemTime) -> String {
    match configured {
        Some(name) => name.to_string(),
        None => format!(
            "sqs-archive-{}",
            now.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
        ),
    }
}

fn read_token(path: &std::path::Path) -> std::result::Result<Secret, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MAX_TOKEN_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_TOKEN_BYTES {
        return Err(format!("larger than {MAX_TOKEN_BYTES} bytes"));
    }
    let token = text.trim();
    if token.is_empty() {
        return Err("empty".into());
    }
    Ok(Secret::new(token))
}

/// A form of `action` with `pairs` after `Action` and `Version`.
fn form(action: &str, pairs: &[(&str, &str)]) -> String {
    let mut form = QueryForm::new(action, VERSION);
    for (key, value) in pairs {
        form.add(key, value);
    }
    form.finish()
}

/// The `AssumeRole` form body.
pub fn assume_role_form(role: &RoleToAssume, session_name: &str) -> String {
    let duration = role.duration_seconds.map(|d| d.to_string());
    let mut pairs = vec![
        ("RoleArn", role.role_arn.as_str()),
        ("RoleSessionName", session_name),
    ];
    if let Some(duration) = &duration {
        pairs.push(("DurationSeconds", duration));
    }
    if let Some(external_id) = &role.external_id {
        pairs.push(("ExternalId", external_id));
    }
    form("AssumeRole", &pairs)
}

/// The `AssumeRoleWithWebIdentity` form body; it holds the token.
pub fn web_identity_form(role: &WebIdentityRole, token: &Secret, session_name: &str) -> String {
    form(
        "AssumeRoleWithWebIdentity",
        &[
            ("RoleArn", role.role_arn.as_str()),
            ("RoleSessionName", session_name),
            ("WebIdentityToken", token.expose()),
        ],
    )
}

/// Temporary credentials from an STS answer.
#[derive(Debug)]
pub struct StsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    pub expiration: SystemTime,
    /// `AssumedRoleUser/Arn`, if present.
    pub assumed_role_arn: Option<String>,
}

impl StsCredentials {
    fn into_credentials(self, source: String) -> Credentials {
        Credentials {
            access_key_id: self.access_key_id,
            secret_access_key: self.secret_access_key,
            session_token: Some(self.session_token),
            expiry: Some(self.expiration),
            source,
        }
    }
}

/// The trimmed text of a child element, when it has any.
fn text<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    child_text(node, name)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Reads `<ActionResponse><ActionResult><Credentials>…` or an `<ErrorResponse>`.
/// Errors quote the error code and message (escaped, bounded), never a key.
pub fn parse_answer(
    status: u16,
    body: &str,
    action: &str,
) -> std::result::Result<StsCredentials, String> {
    let document = Document::parse(body)
        .map_err(|_| format!("HTTP {status}, and the answer is not STS XML"))?;
    let root = document.root_element();
    if root.tag_name().name() == "ErrorResponse" || !(200..300).contains(&status) {
        let fields = ErrorFields::of(root);
        let code = fields.code.filter(|c| !c.is_empty()).unwrap_or("(no code)");
        let message = fields.message.unwrap_or("");
        return Err(format!(
            "HTTP {status} {}: {}",
            excerpt(code, 64),
            excerpt(message, 300)
        ));
    }
    let credentials = child(root, &format!("{action}Result"))
        .and_then(|result| child(result, "Credentials"))
        .ok_or_else(|| format!("the {action} answer has no Credentials"))?;
    let field = |name: &str| {
        text(credentials, name).ok_or_else(|| format!("the {action} answer has no {name}"))
    };
    let expiration = field("Expiration")?;
    Ok(StsCredentials {
        access_key_id: field("AccessKeyId")?.to_string(),
        secret_access_key: Secret::new(field("SecretAccessKey")?),
        session_token: Secret::new(field("SessionToken")?),
        expiration: crate::time::parse_rfc3339(expiration)
            .ok_or_else(|| format!("the {action} answer's Expiration is not an RFC 3339 time"))?,
        assumed_role_arn: child(root, &format!("{action}Result"))
            .and_then(|r| child(r, "AssumedRoleUser"))
            .and_then(|u| text(u, "Arn"))
            .map(String::from),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    /// As AWS documents it (shortened keys), and as moto answers.
    const ASSUME_ROLE_ANSWER: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity>DevUser123</SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/John</Arn>
      <AssumedRoleId>ARO123EXAMPLE123:John</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>
       AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW
      </SessionToken>
      <Expiration>2019-11-09T13:34:41Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>"#;

    const ERROR_ANSWER: &str = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: arn:aws:iam::123456789012:user/x is not authorized to perform: sts:AssumeRole
on resource: arn:aws:iam::123456789012:role/r</Message>
  </Error>
  <RequestId>4c6f0d3e-EXAMPLE</RequestId>
</ErrorResponse>"#;

    #[test]
    fn reads_captured_answers() {
        let c = parse_answer(200, ASSUME_ROLE_ANSWER, "AssumeRole").unwrap();
        assert_eq!(c.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(
            c.secret_access_key.expose(),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
        );
        assert_eq!(
            c.session_token.expose(),
            "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW"
        );
        assert_eq!(c.expiration, at("2019-11-09T13:34:41Z"));
        assert_eq!(
            c.assumed_role_arn.as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/demo/John")
        );
        let c = parse_answer(200, WEB_IDENTITY_ANSWER, "AssumeRoleWithWebIdentity").unwrap();
        assert_eq!(c.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
        assert_eq!(c.expiration, at("2014-10-24T23:00:23Z"));
        // The wrong action's result is not taken for the right one.
        assert!(parse_answer(200, WEB_IDENTITY_ANSWER, "AssumeRole").is_err());
    }

    #[test]
    fn reads_answers_captured_from_moto() {
        let c = parse_answer(
            200,
            include_str!("../../../tests/fixtures/sts/assume-role-moto.xml"),
            "AssumeRole",
        )
        .unwrap();
        assert!(c.access_key_id.starts_with("ASIA"), "{}", c.access_key_id);
        assert!(!c.session_token.is_empty());
        let e = parse_answer(
            403,
            include_str!("../../../tests/fixtures/sts/assume-role-denied-moto.xml"),
            "AssumeRole",
        )
        .unwrap_err();
        assert!(
            e.starts_with("HTTP 403 AccessDenied: User: arn:aws:iam::123456789012:user/"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_code_and_message_on_one_line_without_keys() {
        let e = parse_answer(403, ERROR_ANSWER, "AssumeRole").unwrap_err();
        assert!(
            e.starts_with("HTTP 403 AccessDenied: User: arn:aws:iam"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        let e = parse_answer(500, "<html>Internal Server Error</html>", "AssumeRole").unwrap_err();
        assert_eq!(e, "HTTP 500 (no code): ");
        let e = parse_answer(502, "not xml at all wJalrXUtnFEMI", "AssumeRole").unwrap_err();
        assert_eq!(e, "HTTP 502, and the answer is not STS XML");
        let truncated = ASSUME_ROLE_ANSWER
            .replace("<SessionToken>", "<Other>")
            .replace("</SessionToken>", "</Other>");
        let e = parse_answer(200, &truncated, "AssumeRole").unwrap_err();
        assert_eq!(e, "the AssumeRole answer has no SessionToken");
        assert!(!e.contains("wJalr"));
    }

    #[test]
    fn forms_carry_the_role_settings() {
        let role = RoleToAssume {
            role_arn: "arn:aws:iam::123456789012:role/archive".into(),
            session_name: None,
            duration_seconds: Some(900),
            external_id: Some("ext id/1".into()),
            origin: "test".into(),
        };
        assert_eq!(
            assume_role_form(&role, "s-1"),
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Farchive\
             &RoleSessionName=s-1&DurationSeconds=900&ExternalId=ext+id%2F1"
        );
        let web = WebIdentityRole {
            role_arn: "arn:aws:iam::1:role/w".into(),
            token_file: "/t".into(),
            session_name: None,
            origin: "test".into(),
        };
        assert_eq!(
            web_identity_form(&web, &Secret::new("eyJ.a+b"), "s"),
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fw\
             &RoleSessionName=s&WebIdentityToken=eyJ.a%2Bb"
        );
        assert_eq!(session_name(Some("mine"), SystemTime::now()), "mine");
        assert_eq!(
            session_name(None, UNIX_EPOCH + Duration::from_millis(1234)),
            "sqs-archive-1234"
        );
    }

    #[test]
    fn endpoint_from_region_or_environment() {
        let sts = Sts::new(&Env::default(), Some("cn-north-1")).unwrap();
        assert_eq!(sts.endpoint, "https://sts.cn-north-1.amazonaws.com.cn");
        let fips = Env::from_pairs([("AWS_USE_FIPS_ENDPOINT", "true")]);
        assert_eq!(
            Sts::new(&fips, Some("us-east-1")).unwrap().endpoint,
            "https://sts-fips.us-east-1.amazonaws.com"
        );
        let custom = Env::from_pairs([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:2/"),
        ]);
        let sts = Sts::new(&custom, None).unwrap();
        assert_eq!(
            (sts.endpoint.as_str(), sts.region.as_str()),
            ("http://127.0.0.1:2", "us-east-1")
        );
        assert!(Sts::new(&Env::default(), None).is_err());
    }
}
