//! The credential chain end to end, through the real binaries: each source
//! named by `sqs_archive credentials` without a secret in sight, the container
//! and instance metadata endpoints faked on loopback, and temporary
//! credentials refreshed in a long `poll_messages --loop` run against moto.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;
use sqs_archive::client::{ArchiveClient, QueueStats};

use crate::support::*;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN";
const CONTAINER_AUTH: &str = "container-auth-EXAMPLETOKEN";
const IMDS_TOKEN: &str = "imds-session-EXAMPLETOKEN";
const ROLE: &str = "sqs-archive-host";
const ROLE_LIST: &str = "/latest/meta-data/iam/security-credentials/";

/// Asserts that none of `secrets` was printed, on either stream.
#[track_caller]
fn no_secrets(out: &Done, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !out.stdout().contains(secret) && !out.stderr().contains(secret),
            "{secret:?} was printed:\n{}\n{}",
            out.stdout(),
            out.stderr()
        );
    }
}

/// `sqs_archive credentials` said `source` supplied key `masked`, and printed nothing secret.
#[track_caller]
fn check_source(out: &Done, masked: &str, source: &str, secrets: &[&str]) {
    out.ok()
        .stdout_has(&format!("access key {masked} from {source}"));
    no_secrets(out, secrets);
}

/// The JSON a container or instance metadata endpoint answers with.
fn credentials_json(key: &str, secret: &str, token: Option<&str>, expires: SystemTime) -> String {
    let mut answer = json!({
        "Code": "Success",
        "Type": "AWS-HMAC",
        "AccessKeyId": key,
        "SecretAccessKey": secret,
        "Expiration": rfc3339(expires),
        "LastUpdated": rfc3339(SystemTime::now()),
    });
    if let Some(token) = token {
        answer["Token"] = json!(token);
    }
    answer.to_string()
}

/// A fake IMDSv2: a session token from `PUT /latest/api/token`, then the
/// role list and the role's credentials, each only with that token.
fn fake_imds(credentials: impl Fn() -> String + Send + Sync + 'static) -> FakeHttp {
    FakeHttp::start(move |r| {
        let token_ok = r.header("x-aws-ec2-metadata-token") == Some(IMDS_TOKEN);
        match (r.method.as_str(), r.target.as_str()) {
            ("PUT", "/latest/api/token")
                if r.header("x-aws-ec2-metadata-token-ttl-seconds").is_some() =>
            {
                (200, IMDS_TOKEN.into())
            }
            ("GET", _) if !token_ok => (401, String::new()),
            ("GET", ROLE_LIST) => (200, format!("{ROLE}\n")),
            ("GET", path) if path == format!("{ROLE_LIST}{ROLE}") => (200, credentials()),
            _ => (404, String::new()),
        }
    })
}

/// A workspace whose only credential source is the instance metadata at `imds`.
fn with_imds(ws: &mut Workspace, imds: &FakeHttp) {
    ws.env.remove("AWS_EC2_METADATA_DISABLED");
    ws.set_env([(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT".to_string(),
        imds.url.clone(),
    )]);
}

#[test]
fn environment_keys() {
    let ws = Workspace::new("creds-env");
    let out = ws
        .sqs_archive(&["credentials"])
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .run();
    check_source(
        &out,
        "AKIA…MPLE",
        "environment",
        &[KEY, SECRET, SESSION_TOKEN],
    );
    out.stdout_has("with a session token");
    // Half a pair is an error, not a silent fall-through to the next source.
    ws.sqs_archive(&["credentials"])
        .env("AWS_ACCESS_KEY_ID", KEY)
        .run()
        .exit(77)
        .one_line_error()
        .stderr_has("AWS_SECRET_ACCESS_KEY is not");
}

#[test]
fn profile_keys_and_the_environment_before_them() {
    let ws = Workspace::new("creds-profile");
    ws.profile(
        "t",
        json!({"aws_access_key_id": "AKIAPROFILEKEY000001", "aws_secret_access_key": SECRET}),
    );
    let out = ws.sqs_archive(&["--profile", "t", "credentials"]).run();
    check_source(
        &out,
        "AKIA…0001",
        "profile config config/t.json",
        &["AKIAPROFILEKEY000001", SECRET],
    );
    let out = ws
        .sqs_archive(&["--profile", "t", "credentials"])
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", "another-secret-value")
        .run();
    check_source(
        &out,
        "AKIA…MPLE",
        "environment",
        &[SECRET, "another-secret-value"],
    );
}

#[test]
fn shared_credentials_and_config_files_under_home() {
    let ws = Workspace::new("creds-shared");
    ws.write(
        "home/.aws/credentials",
        &format!(
            "[default]\naws_access_key_id = AKIADEFAULTKEY000001\naws_secret_access_key = default-secret\n\n\
             [archive]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\naws_session_token = {SESSION_TOKEN}\n"
        ),
    );
    ws.write(
        "home/.aws/config",
        "[profile from-config]\nregion = eu-west-1\naws_access_key_id = AKIACONFIGKEY0000001\naws_secret_access_key = config-secret\n",
    );
    let credentials_file = ws.path("home/.aws/credentials");
    let out = ws
        .sqs_archive(&["credentials"])
        .env("AWS_PROFILE", "archive")
        .run();
    check_source(
        &out,
        "AKIA…MPLE",
        &format!("shared credentials file {credentials_file} (profile archive)"),
        &[KEY, SECRET, SESSION_TOKEN],
    );
    out.stdout_has("with a session token");
    let out = ws.sqs_archive(&["credentials"]).run();
    check_source(
        &out,
        "AKIA…0001",
        "shared credentials file",
        &["AKIADEFAULTKEY000001", "default-secret"],
    );
    out.stdout_has("(profile default)");
    let out = ws
        .sqs_archive(&["credentials"])
        .env("AWS_PROFILE", "from-config")
        .run();
    check_source(
        &out,
        "AKIA…0001",
        &format!(
            "shared config file {} (profile from-config)",
            ws.path("home/.aws/config")
        ),
        &["AKIACONFIGKEY0000001", "config-secret"],
    );
    // A profile that is nowhere: the chain goes on, finds nothing, and says what it tried.
    ws.sqs_archive(&["credentials"])
        .env("AWS_PROFILE", "nope")
        .run()
        .exit(77)
        .one_line_error()
        .stderr_has("no profile nope");
}

#[test]
fn container_endpoint_with_authorization_token() {
    let expires = SystemTime::now() + Duration::from_secs(3600);
    let answer = credentials_json(KEY, SECRET, Some(SESSION_TOKEN), expires);
    let server = FakeHttp::start(move |r| {
        if r.target != "/creds" {
            (404, String::new())
        } else if r.header("authorization") != Some(CONTAINER_AUTH) {
            (401, r#"{"message":"unauthorized"}"#.into())
        } else {
            (200, answer.clone())
        }
    });
    let ws = Workspace::new("creds-container");
    let url = format!("{}/creds", server.url);
    let out = ws
        .sqs_archive(&["credentials"])
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url)
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_AUTH)
        .run();
    let secrets = [KEY, SECRET, SESSION_TOKEN, CONTAINER_AUTH];
    check_source(&out, "AKIA…MPLE", "container credentials", &secrets);
    out.stdout_has("with a session token")
        .stdout_has(&format!("expires {}", rfc3339(expires)));
    assert_eq!(server.count("GET", "/creds"), 1);

    // A refused token: an error naming the endpoint, never the token.
    let out = ws
        .sqs_archive(&["credentials"])
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url)
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token-EXAMPLE")
        .run();
    out.exit(77)
        .one_line_error()
        .stderr_has(&url)
        .stderr_has("HTTP 401");
    no_secrets(&out, &["wrong-token-EXAMPLE"]);
}

#[test]
fn instance_metadata_v2() {
    let expires = SystemTime::now() + Duration::from_secs(6 * 3600);
    let answer = credentials_json(KEY, SECRET, Some(SESSION_TOKEN), expires);
    let imds = fake_imds(move || answer.clone());
    let mut ws = Workspace::new("creds-imds");
    with_imds(&mut ws, &imds);
    let out = ws.sqs_archive(&["credentials"]).run();
    check_source(
        &out,
        "AKIA…MPLE",
        &format!("instance metadata (role {ROLE})"),
        &[KEY, SECRET, SESSION_TOKEN, IMDS_TOKEN],
    );
    out.stdout_has("with a session token")
        .stdout_has(&format!("expires {}", rfc3339(expires)));
    // IMDSv2: the session token first, then both reads with it (the fake refuses reads without).
    let seen: Vec<String> = imds
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        seen,
        [
            "PUT /latest/api/token".to_string(),
            format!("GET {ROLE_LIST}"),
            format!("GET {ROLE_LIST}{ROLE}"),
        ]
    );

    // Switched off: the metadata service is not asked at all.
    let before = imds.requests().len();
    ws.sqs_archive(&["credentials"])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .run()
        .exit(77)
        .one_line_error()
        .stderr_has("disabled by AWS_EC2_METADATA_DISABLED");
    assert_eq!(imds.requests().len(), before);
}

/// A loopback profile against moto with queues of its own, credentials from `imds` only.
fn moto_with_imds(
    name: &str,
    imds: &FakeHttp,
    extra: serde_json::Value,
) -> (Workspace, Server, String, String) {
    let server = moto();
    let mut ws = Workspace::new(name);
    let (request, completion) = (
        server.queue("creds-req", false),
        server.queue("creds-done", false),
    );
    let mut keys = server.profile(&request, &completion);
    for (k, v) in extra.as_object().unwrap() {
        keys[k] = v.clone();
    }
    ws.profile("t", keys);
    with_imds(&mut ws, imds);
    (ws, server, request, completion)
}

/// The important one: an instance role's credentials expire while
/// `poll_messages --loop` runs, and the chain fetches new ones before they
/// do, with every request still handled.
///
/// The fake IMDS hands out moto's real key pair with an `Expiration` 5 min 2 s
/// ahead, so the chain (which refreshes 5 minutes before expiry) considers
/// each answer fresh for about 2 s. No `Token`: moto refuses a session token
/// on an IAM user's key (see the next test), so the refresh is shown with
/// expiring key-pair credentials.
#[test]
fn temporary_credentials_are_refreshed_in_a_long_run() {
    let moto_server = moto();
    let (key, secret) = (
        moto_server.access_key_id.clone(),
        moto_server.secret_access_key.clone(),
    );
    let imds = fake_imds(move || {
        let expires = SystemTime::now()
            + sqs_archive::credentials::REFRESH_BEFORE_EXPIRY
            + Duration::from_secs(2);
        credentials_json(&key, &secret, None, expires)
    });
    let (ws, server, request, completion) =
        moto_with_imds("creds-refresh", &imds, json!({"workers": 2}));
    let client = Arc::new(server.client());
    let n = 6;
    for i in 0..n {
        ws.write(&format!("source/file-{i}.txt"), &format!("file {i}\n"));
    }

    let started = std::time::Instant::now();
    let poll = ws
        .poll(&["--profile", "t", "--loop", "--max-runtime", "8"])
        .spawn();
    // Requests arrive over the run, so calls keep being signed as the credentials age.
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(700));
        ws.sqs_archive(&[
            "--profile",
            "t",
            "send",
            "--aipid",
            &format!("aip-{i}"),
            "--filenames",
            &format!("file-{i}.txt"),
        ])
        .env("AWS_ACCESS_KEY_ID", &server.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret_access_key)
        .run()
        .ok();
    }
    let out = wait_bounded(poll, Duration::from_secs(90));
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "poll_messages failed:\n{stderr}");
    assert!(
        stderr.contains(&format!("received={n} succeeded={n}")),
        "{stderr}"
    );
    assert!(!stderr.contains("could not refresh"), "{stderr}");
    assert!(!stderr.contains(&server.secret_access_key), "{stderr}");

    let fetches = imds.count("GET", &format!("{ROLE_LIST}{ROLE}"));
    eprintln!("credential fetches from the fake IMDS in {elapsed:?}: {fetches}");
    assert!(
        fetches >= 3,
        "expected a refresh about every 2 s of an {elapsed:?} run, saw {fetches} fetches"
    );
    // Every fetch went through a fresh IMDSv2 session token.
    assert_eq!(imds.count("PUT", "/latest/api/token"), fetches);

    let completions = bodies(&drain(client.as_ref(), &completion));
    assert_eq!(completions.len(), n, "{completions:?}");
    assert!(
        completions.iter().all(|c| c["success"] == true),
        "{completions:?}"
    );
    for i in 0..n {
        assert!(
            ws.dir
                .join(format!("archive/aip-{i}/file-{i}.txt"))
                .is_file()
        );
    }
    assert_eq!(
        client.queue_stats(&request).unwrap(),
        QueueStats {
            visible: 0,
            in_flight: 0,
            delayed: 0
        }
    );
}

/// The session token travels with the signed request: moto knows the key
/// pair but did not issue this token, and refuses the call.
#[test]
fn session_token_is_sent_with_the_signature() {
    let moto_server = moto();
    let (key, secret) = (
        moto_server.access_key_id.clone(),
        moto_server.secret_access_key.clone(),
    );
    let imds = fake_imds(move || {
        let expires = SystemTime::now() + Duration::from_secs(3600);
        credentials_json(&key, &secret, Some(SESSION_TOKEN), expires)
    });
    let (ws, ..) = moto_with_imds("creds-token", &imds, json!({}));
    let out = ws.sqs_archive(&["--profile", "t", "stats"]).run();
    out.exit(77)
        .one_line_error()
        .stderr_has("InvalidClientTokenId");
    no_secrets(
        &out,
        &[SESSION_TOKEN, IMDS_TOKEN, &moto_server.secret_access_key],
    );
    // The same keys without the token are accepted.
    let out = ws
        .sqs_archive(&["--profile", "t", "stats"])
        .env("AWS_ACCESS_KEY_ID", &moto_server.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &moto_server.secret_access_key)
        .run();
    out.ok().stdout_has("\"visible\":0");
}
