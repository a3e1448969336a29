//! Unit tests of the chain: each source as a pass of the chain finds it,
//! the cache and its refresh, and the messages. The sources' own pure parts
//! are tested in their modules. Test builds only.

use super::super::document::metadata_answer;
use super::super::test_support::*;
use super::*;

fn chain(pairs: &[(&str, &str)]) -> CredentialChain {
    CredentialChain::new(env(pairs), ConfigKeys::default())
}

// --- Cache and refresh -------------------------------------------------------

#[test]
fn credentials_close_to_expiry_are_fetched_again() {
    let mut answers = imds_answers(
        "t1",
        "my-role",
        credentials_json("AKIAFIRSTKEY00001", "2026-11-28T12:02:00Z"),
    );
    answers.extend(imds_answers(
        "t2",
        "my-role",
        credentials_json("AKIASECONDKEY0001", "2026-11-28T18:00:00Z"),
    ));
    let server = FakeHttp::canned(answers);
    let chain = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url),
    ]);
    let now = at("2026-11-28T12:00:00Z");
    assert_eq!(
        chain.credentials_at(now).unwrap().access_key_id,
        "AKIAFIRSTKEY00001"
    );
    // Issued for two minutes: cached for the first three quarters of them
    // (a five-minute window would fetch them on every call) ...
    assert_eq!(
        chain.credentials_at(now).unwrap().access_key_id,
        "AKIAFIRSTKEY00001"
    );
    assert_eq!(server.requests().len(), 3);
    // ... then fetched again.
    let now = at("2026-11-28T12:01:31Z");
    assert_eq!(
        chain.credentials_at(now).unwrap().access_key_id,
        "AKIASECONDKEY0001"
    );
    // Six hours left: served from the cache.
    assert_eq!(
        chain.credentials_at(now).unwrap().access_key_id,
        "AKIASECONDKEY0001"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 6);
    assert_eq!(requests[3].header("x-aws-ec2-metadata-token"), None);
    assert_eq!(requests[4].header("x-aws-ec2-metadata-token"), Some("t2"));
}

#[test]
fn long_lived_credentials_are_served_from_the_cache() {
    let mut answers = imds_answers(
        "t1",
        "my-role",
        credentials_json("AKIAFIRSTKEY00001", "2026-11-28T18:00:00Z"),
    );
    answers.extend(imds_answers(
        "t2",
        "my-role",
        credentials_json("AKIASECONDKEY0001", "2026-11-28T18:00:00Z"),
    ));
    let server = FakeHttp::canned(answers);
    fn noon() -> SystemTime {
        crate::time::parse_rfc3339("2026-11-28T12:00:00Z").unwrap()
    }
    let chain = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url),
    ])
    .with_clock(noon);
    assert_eq!(
        chain.credentials().unwrap().access_key_id,
        "AKIAFIRSTKEY00001"
    );
    assert_eq!(
        chain.credentials().unwrap().access_key_id,
        "AKIAFIRSTKEY00001"
    );
    // Still within the window at 17:54:59, refreshed at 17:55:00.
    assert_eq!(
        chain
            .credentials_at(at("2026-11-28T17:54:59Z"))
            .unwrap()
            .access_key_id,
        "AKIAFIRSTKEY00001"
    );
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn failed_refresh_keeps_credentials_until_they_expire() {
    // One set of answers; after that the server is gone and connections are refused.
    let server = FakeHttp::canned(imds_answers(
        "t1",
        "my-role",
        credentials_json("AKIAFIRSTKEY00001", "2026-11-28T12:02:00Z"),
    ));
    let chain = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url),
    ]);
    let now = at("2026-11-28T12:00:00Z");
    assert_eq!(
        chain.credentials_at(now).unwrap().access_key_id,
        "AKIAFIRSTKEY00001"
    );
    assert_eq!(server.requests().len(), 3);

    // The refresh (in the last quarter of their lifetime) fails, but the
    // keys work for 29 more seconds.
    let kept = chain.credentials_at(at("2026-11-28T12:01:31Z")).unwrap();
    assert_eq!(kept.access_key_id, "AKIAFIRSTKEY00001");
    assert!(chain.cache.lock().unwrap().last_failure.is_some());
    // Within the back-off nothing is fetched, so nothing can fail.
    assert!(chain.credentials_at(at("2026-11-28T12:01:40Z")).is_ok());

    // Once they have expired, the failure is the caller's.
    let message = credentials_error(chain.credentials_at(at("2026-11-28T12:02:00Z")));
    assert!(message.contains("instance metadata"), "{message}");
}

#[test]
fn expired_credentials_are_refused_naming_source_and_expiry() {
    let server = FakeHttp::canned(imds_answers(
        "t1",
        "my-role",
        credentials_json("AKIAFIRSTKEY00001", "2020-01-01T00:00:00Z"),
    ));
    let chain = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url),
    ]);
    let message = credentials_error(chain.credentials_at(at("2026-11-28T12:00:00Z")));
    assert!(
        message.contains("instance metadata")
            && message.contains("expired at 2020-01-01T00:00:00Z"),
        "{message}"
    );
}

#[test]
fn an_explicit_aws_profile_wins_over_environment_keys() {
    let dir = std::env::temp_dir().join(format!("chain-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("credentials");
    std::fs::write(
        &file,
        "[prof1]\naws_access_key_id = AKIAPROFILEKEY0001\naws_secret_access_key = s\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let pairs = [
        ("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT001"),
        ("AWS_SECRET_ACCESS_KEY", "e"),
        ("AWS_SHARED_CREDENTIALS_FILE", file.as_str()),
        ("AWS_CONFIG_FILE", "/nonexistent/config"),
    ];
    let by_flag = chain(&pairs).with_profile(Some("prof1".into()), Some("--aws-profile".into()));
    assert_eq!(by_flag.load().unwrap().access_key_id, "AKIAPROFILEKEY0001");
    // AWS_PROFILE does not: environment keys win, as in the AWS CLI.
    let mut with_variable = pairs.to_vec();
    with_variable.push(("AWS_PROFILE", "prof1"));
    assert_eq!(
        chain(&with_variable).load().unwrap().access_key_id,
        "AKIAENVIRONMENT001"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn static_credentials_are_cached() {
    let chain = chain(&[
        ("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT1"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
    ]);
    let far_future = at("2999-01-01T00:00:00Z");
    chain.credentials_at(far_future).unwrap();
    assert!(chain.cache.lock().unwrap().credentials.is_some());
    assert!(
        chain
            .credentials_at(far_future)
            .unwrap()
            .is_fresh(far_future)
    );
}

// --- Messages ------------------------------------------------------------------

#[test]
fn nothing_found_lists_every_source_on_one_line() {
    let config = ConfigKeys {
        origin: "config/aws.json".into(),
        ..ConfigKeys::default()
    };
    let message = credentials_error(CredentialChain::new(env(&[]), config).load());
    assert!(!message.contains('\n'), "{message}");
    for part in [
        "no AWS credentials found; tried ",
        "environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set)",
        "profile config config/aws.json (no keys)",
        "shared files (",
        "container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "instance metadata (disabled by AWS_EC2_METADATA_DISABLED)",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
    let message = credentials_error(
        CredentialChain::new(
            Env::from_pairs([("AWS_EC2_METADATA_DISABLED", "true")]),
            ConfigKeys::default(),
        )
        .load(),
    );
    assert!(message.contains("shared files (HOME not set)"), "{message}");
}

#[test]
fn debug_and_describe_never_show_the_secret_or_token() {
    let server = FakeHttp::canned(imds_answers(
        "imds-session-token",
        "my-role",
        credentials_json("AKIAIOSFODNN7EXAMPLE", "2026-11-28T18:00:00Z"),
    ));
    fn noon() -> SystemTime {
        crate::time::parse_rfc3339("2026-11-28T12:00:00Z").unwrap()
    }
    let chain = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url),
    ])
    .with_clock(noon);
    let creds = chain.credentials().unwrap();
    let description = chain.describe().unwrap();
    assert_eq!(
        description,
        "access key AKIA…MPLE from instance metadata (role my-role), with a session token, \
         expires 2026-11-28T18:00:00Z"
    );
    for shown in [
        format!("{creds:?}"),
        format!("{chain:?}"),
        description,
        creds.describe(),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(!shown.contains("imds-session-token"), "{shown}");
        assert!(!shown.contains("AKIAIOSFODNN7EXAMPLE"), "{shown}");
    }

    let env_chain = chain_from_env_keys();
    assert_eq!(
        env_chain.describe().unwrap(),
        "access key AKIA…ENT1 from environment, with a session token"
    );
    assert!(!format!("{env_chain:?}").contains(SECRET));
}

fn chain_from_env_keys() -> CredentialChain {
    chain(&[
        ("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT1"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", TOKEN),
    ])
}

// --- The environment (`variables`) -----------------------------------------

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

// --- Keys in the profile file (`config_keys`) ------------------------------

#[test]
fn profile_config_keys_come_after_the_environment() {
    let config = ConfigKeys {
        access_key_id: Some("AKIACONFIGFILE01".into()),
        secret_access_key: Some(Secret::new(SECRET)),
        session_token: Some(Secret::new(TOKEN)),
        origin: "config/aws.json".into(),
    };
    let creds = CredentialChain::new(env(&[]), config)
        .credentials()
        .unwrap();
    assert_eq!(creds.access_key_id, "AKIACONFIGFILE01");
    assert_eq!(creds.session_token.unwrap().expose(), TOKEN);
    assert_eq!(creds.source, "profile config config/aws.json");
}

#[test]
fn profile_config_with_one_key_is_an_error() {
    let config = ConfigKeys {
        access_key_id: Some("AKIACONFIGFILE01".into()),
        origin: "config/aws.json".into(),
        ..ConfigKeys::default()
    };
    let message = credentials_error(CredentialChain::new(env(&[]), config).load());
    assert!(message.contains("config/aws.json"), "{message}");
    assert!(
        message.contains("but no aws_secret_access_key"),
        "{message}"
    );
}

// --- Shared-file profiles (`profile`) --------------------------------------

#[test]
fn shared_credentials_file_default_profile() {
    let dir = TempDir::new("shared-default");
    let path = dir.write(
        ".aws/credentials",
        &format!(
            "[other]\naws_access_key_id = AKIAOTHERPROFILE\naws_secret_access_key = x\n\n\
             [default]\naws_access_key_id = AKIASHAREDDEFAULT\naws_secret_access_key = {SECRET}\n\
             aws_session_token = {TOKEN}\n"
        ),
    );
    dir.write(".aws/config", "[default]\nregion = eu-west-1\n");
    let creds = chain(&[("HOME", &dir.home())]).credentials().unwrap();
    assert_eq!(creds.access_key_id, "AKIASHAREDDEFAULT");
    assert_eq!(creds.secret_access_key.expose(), SECRET);
    assert_eq!(creds.session_token.unwrap().expose(), TOKEN);
    assert_eq!(
        creds.source,
        format!(
            "shared credentials file {} (profile default)",
            path.display()
        )
    );
}

#[test]
fn shared_config_file_named_profile_from_overridden_paths() {
    let dir = TempDir::new("shared-named");
    let config = dir.write(
        "my-config",
        &format!(
            "[default]\naws_access_key_id = AKIAWRONGDEFAULT\naws_secret_access_key = x\n\
             [profile dev]\naws_access_key_id = AKIACONFIGDEV0001\naws_secret_access_key = {SECRET}\n"
        ),
    );
    let creds = chain(&[
        ("HOME", &dir.home()),
        ("AWS_PROFILE", "dev"),
        ("AWS_CONFIG_FILE", "~/my-config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "~/missing-credentials"),
    ])
    .credentials()
    .unwrap();
    assert_eq!(creds.access_key_id, "AKIACONFIGDEV0001");
    assert_eq!(
        creds.source,
        format!("shared config file {} (profile dev)", config.display())
    );
}

#[test]
fn shared_file_syntax_error_names_file_and_line() {
    let dir = TempDir::new("shared-syntax");
    let path = dir.write(".aws/credentials", &format!("[default]\n{SECRET}\n"));
    let message = credentials_error(chain(&[("HOME", &dir.home())]).load());
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("line 2"), "{message}");
    assert!(!message.contains(SECRET), "{message}");
}

// --- Web identity through STS (`sts`) --------------------------------------

#[test]
fn web_identity_reads_the_token_file_at_each_call_and_sends_no_signature() {
    let dir = TempDir::new("sts-web");
    let token_file = dir.write("token", "first-token\n");
    let answer = WEB_IDENTITY_ANSWER.replace("2014-10-24T23:00:23Z", "2999-01-01T00:00:00Z");
    let server = FakeHttp::start(move |_| (200, answer.clone()));
    let env = env(&[
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            &token_file.display().to_string(),
        ),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/w"),
        ("AWS_ROLE_SESSION_NAME", "pod-1"),
        ("AWS_ENDPOINT_URL_STS", &server.url),
    ]);
    let chain = CredentialChain::new(env, ConfigKeys::default());
    let (step, creds) = chain.report().unwrap();
    assert_eq!(step, Step::WebIdentity);
    assert_eq!(creds.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
    assert!(
        creds
            .source
            .starts_with("assumed role arn:aws:iam::123456789012:role/w via web identity"),
        "{}",
        creds.source
    );
    std::fs::write(&token_file, "second-token").unwrap();
    chain.load().unwrap();
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].form("WebIdentityToken").as_deref(),
        Some("first-token")
    );
    assert_eq!(
        seen[1].form("WebIdentityToken").as_deref(),
        Some("second-token")
    );
    assert_eq!(seen[0].form("RoleSessionName").as_deref(), Some("pod-1"));
    assert_eq!(
        seen[0].form("Action").as_deref(),
        Some("AssumeRoleWithWebIdentity")
    );
    assert!(seen.iter().all(|r| r.header("authorization").is_none()));
    // A missing token file is an error naming it, not a fall-through.
    std::fs::remove_file(&token_file).unwrap();
    let message = credentials_error(chain.load());
    assert!(message.contains("web identity token file"), "{message}");
}

// --- Container credentials (`container`) -----------------------------------

#[test]
fn container_relative_uri_sends_the_authorization_token() {
    let server = FakeHttp::canned(vec![(
        200,
        credentials_json("AKIACONTAINER0001", "2026-11-28T18:00:00Z"),
    )]);
    let chain = chain(&[
        (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/task-1",
        ),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "auth-from-variable"),
    ])
    .with_container_endpoint(server.url.clone());
    let creds = chain.credentials_at(at("2026-11-28T12:00:00Z")).unwrap();
    assert_eq!(creds.access_key_id, "AKIACONTAINER0001");
    assert_eq!(creds.secret_access_key.expose(), SECRET);
    assert_eq!(creds.session_token.as_ref().unwrap().expose(), TOKEN);
    assert_eq!(creds.expiry, Some(at("2026-11-28T18:00:00Z")));
    assert_eq!(creds.source, "container credentials");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].target, "/v2/credentials/task-1");
    assert_eq!(
        requests[0].header("authorization"),
        Some("auth-from-variable")
    );
}

#[test]
fn container_full_uri_reads_the_token_file() {
    let dir = TempDir::new("container-token");
    let token_file = dir.write("token", "auth-from-file\n");
    let server = FakeHttp::canned(vec![(
        200,
        credentials_json("AKIAPODIDENTITY01", "2026-11-28T18:00:00Z"),
    )]);
    let full_uri = format!("{}/v1/credentials", server.url);
    let creds = chain(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "loses-to-the-file"),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            &token_file.display().to_string(),
        ),
    ])
    .credentials_at(at("2026-11-28T12:00:00Z"))
    .unwrap();
    assert_eq!(creds.access_key_id, "AKIAPODIDENTITY01");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].target, "/v1/credentials");
    assert_eq!(requests[0].header("authorization"), Some("auth-from-file"));
}

#[test]
fn container_full_uri_refused_before_any_connection() {
    // Refused before any connection is attempted.
    let message = credentials_error(
        chain(&[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://example.com/creds",
        )])
        .load(),
    );
    assert!(
        message.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        "{message}"
    );
    assert!(message.contains("not allowed"), "{message}");
}

#[test]
fn container_error_status_does_not_quote_the_body() {
    let body = format!(r#"{{"message":"denied","echo":"{SECRET}"}}"#);
    let server = FakeHttp::canned(vec![(500, body.clone()), (500, body)]);
    let chain = chain(&[(
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "/v2/credentials/x",
    )])
    .with_container_endpoint(server.url.clone());
    let message = credentials_error(chain.load());
    assert!(message.contains("container credentials from"), "{message}");
    assert!(message.contains("HTTP 500"), "{message}");
    assert!(!message.contains(SECRET), "{message}");
    // One retry, then the error.
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn bad_credentials_json_does_not_quote_the_body() {
    let truncated = format!(r#"{{"AccessKeyId":"AKIATRUNCATED001","SecretAccessKey":"{SECRET}""#);
    let no_id = format!(r#"{{"SecretAccessKey":"{SECRET}","Token":"{TOKEN}"}}"#);
    let bad_time = format!(
        r#"{{"AccessKeyId":"AKIABADTIME00001","SecretAccessKey":"{SECRET}","Expiration":"{TOKEN}"}}"#
    );
    let failed = format!(r#"{{"Code":"{SECRET}","AccessKeyId":"A","SecretAccessKey":"B"}}"#);
    for (body, expected) in [
        (truncated.as_str(), "not JSON"),
        (no_id.as_str(), "no AccessKeyId"),
        (bad_time.as_str(), "Expiration"),
        (failed.as_str(), "reports failure"),
    ] {
        let message = metadata_answer(body, "test".into()).unwrap_err();
        assert!(message.contains(expected), "{message}");
        assert!(!message.contains(SECRET), "{message}");
        assert!(!message.contains(TOKEN), "{message}");
    }

    let server = FakeHttp::canned(vec![(200, truncated)]);
    let message = credentials_error(
        chain(&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds")])
            .with_container_endpoint(server.url.clone())
            .load(),
    );
    assert!(message.contains("not JSON"), "{message}");
    assert!(!message.contains(SECRET), "{message}");
}

// --- Instance metadata (`imds`) --------------------------------------------

#[test]
fn imds_v2_fetches_token_role_and_credentials() {
    let server = FakeHttp::canned(imds_answers(
        "imds-session-token",
        "my-role",
        credentials_json("AKIAINSTANCE00001", "2026-11-28T18:00:00Z"),
    ));
    let chain = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            &format!("{}/", server.url),
        ),
    ]);
    let creds = chain.credentials_at(at("2026-11-28T12:00:00Z")).unwrap();
    assert_eq!(creds.access_key_id, "AKIAINSTANCE00001");
    assert_eq!(creds.session_token.as_ref().unwrap().expose(), TOKEN);
    assert_eq!(creds.expiry, Some(at("2026-11-28T18:00:00Z")));
    assert_eq!(creds.source, "instance metadata (role my-role)");

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].method, "PUT");
    assert_eq!(requests[0].target, "/latest/api/token");
    assert_eq!(
        requests[0].header("x-aws-ec2-metadata-token-ttl-seconds"),
        Some("21600")
    );
    assert_eq!(requests[1].method, "GET");
    assert_eq!(
        requests[1].target,
        "/latest/meta-data/iam/security-credentials/"
    );
    assert_eq!(requests[2].method, "GET");
    assert_eq!(
        requests[2].target,
        "/latest/meta-data/iam/security-credentials/my-role"
    );
    for request in &requests[1..] {
        assert_eq!(
            request.header("x-aws-ec2-metadata-token"),
            Some("imds-session-token")
        );
    }
}

#[test]
fn imds_disabled_sends_no_request() {
    let server = FakeHttp::canned(imds_answers(
        "t",
        "r",
        credentials_json("AKIAINSTANCE00001", "2026-11-28T18:00:00Z"),
    ));
    let chain = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "TRUE"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url),
    ]);
    let message = credentials_error(chain.load());
    assert!(
        message.contains("instance metadata (disabled by AWS_EC2_METADATA_DISABLED)"),
        "{message}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn imds_without_a_role_is_listed() {
    let server = FakeHttp::canned(vec![(200, "t".into()), (404, String::new())]);
    let chain = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url),
    ]);
    let message = credentials_error(chain.load());
    assert!(
        message.contains("no IAM role is attached to this instance"),
        "{message}"
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn imds_unreachable_fails_fast_and_is_listed() {
    let endpoint = closed_port();
    let chain = chain(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint),
    ]);
    let started = Instant::now();
    let message = credentials_error(chain.load());
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        message.contains(&format!("instance metadata ({endpoint}: ")),
        "{message}"
    );
}
