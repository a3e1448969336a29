//! The credential chain end to end, through the real binaries: each source
//! named by `sqs_archive credentials` without a secret in sight, the container,
//! instance metadata and web identity STS endpoints faked on loopback, roles
//! assumed from moto's STS (whose IAM policies prove which keys signed), and
//! temporary credentials refreshed in long `poll_messages --loop` runs.
//! Regions and endpoints are observed through the `credentials` command and a
//! refusing loopback proxy's `CONNECT` lines, never by contacting AWS.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;
use sqs_archive::queue::{ArchiveClient, QueueStats};

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
    let mut ws = Workspace::new("creds-env");
    // `credentials` exits 78 without a region, as every command does.
    ws.set_env([("AWS_REGION".to_string(), "eu-west-1".to_string())]);
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
    let mut ws = Workspace::new("creds-profile");
    // `credentials` exits 78 without a region, as every command does.
    ws.set_env([("AWS_REGION".to_string(), "eu-west-1".to_string())]);
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
    let mut ws = Workspace::new("creds-shared");
    // `credentials` exits 78 without a region, as every command does.
    ws.set_env([("AWS_REGION".to_string(), "eu-west-1".to_string())]);
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
    // A profile that is nowhere is an error naming both files, not a fall-through.
    ws.sqs_archive(&["credentials"])
        .env("AWS_PROFILE", "nope")
        .run()
        .exit(77)
        .one_line_error()
        .stderr_has("profile nope (from AWS_PROFILE) does not exist")
        .stderr_has(&credentials_file);
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
    let mut ws = Workspace::new("creds-container");
    // `credentials` exits 78 without a region, as every command does.
    ws.set_env([("AWS_REGION".to_string(), "eu-west-1".to_string())]);
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
    ws.set_env([("AWS_REGION".to_string(), "eu-west-1".to_string())]);
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
/// The fake IMDS hands out moto's real key pair with an `Expiration` 3 s
/// ahead, so the chain (which refreshes a quarter of a short lifetime before
/// expiry) considers each answer fresh for about 2 s. No `Token`: moto refuses a session token
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
        let expires = SystemTime::now() + Duration::from_secs(3);
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

// --- Roles, web identity, credential_process, regions -----------------------

/// The role moto lets the assume-only user assume (see `scripts/moto_bootstrap.py`).
fn role_arn() -> String {
    std::env::var("SQS_ARCHIVE_IT_MOTO_ROLE_ARN").expect("run under make test")
}

/// The key of a moto user allowed only `sts:AssumeRole`: SQS refuses it.
fn assumer() -> (String, String) {
    (
        std::env::var("SQS_ARCHIVE_IT_MOTO_ASSUMER_ACCESS_KEY_ID").expect("run under make test"),
        std::env::var("SQS_ARCHIVE_IT_MOTO_ASSUMER_SECRET_ACCESS_KEY")
            .expect("run under make test"),
    )
}

/// Keys of the role, from moto's own `AssumeRole` signed by the assumer.
fn role_keys(server: &Server) -> sqs_archive::aws::credentials::Credentials {
    use sqs_archive::aws::credentials::sts::{RoleToAssume, Sts};
    let (id, secret) = assumer();
    let source = sqs_archive::aws::credentials::Credentials {
        access_key_id: id,
        secret_access_key: sqs_archive::secret::Secret::new(secret),
        session_token: None,
        expiry: None,
        source: "test".into(),
    };
    let env =
        sqs_archive::environment::Env::from_pairs([("AWS_ENDPOINT_URL_STS", server.url.as_str())]);
    Sts::new(&env, Some(&server.region))
        .unwrap()
        .assume_role(
            &source,
            &RoleToAssume {
                role_arn: role_arn(),
                session_name: Some("it-web-identity".into()),
                duration_seconds: None,
                external_id: None,
                origin: "test".into(),
            },
            "test",
            SystemTime::now(),
        )
        .expect("moto AssumeRole")
}

/// A moto workspace with profile `t` and a queue; no credentials anywhere.
fn moto_workspace(name: &str) -> (Workspace, Server, String) {
    let server = moto();
    let queue = server.queue(name, false);
    let ws = Workspace::new(name);
    ws.profile("t", server.profile(&queue, &queue));
    (ws, server, queue)
}

/// A moto workspace for a `--loop` run: profile `t` with its own request and
/// completion queues and two workers; no credentials anywhere. Returns the
/// completion queue.
fn loop_workspace(name: &str) -> (Workspace, Server, String) {
    let server = moto();
    let request = server.queue(&format!("{name}-req"), false);
    let completion = server.queue(&format!("{name}-done"), false);
    let ws = Workspace::new(name);
    let mut keys = server.profile(&request, &completion);
    keys["workers"] = json!(2);
    ws.profile("t", keys);
    (ws, server, completion)
}

/// A counting IMDS handing out moto's own keys: if the chain ever asked it,
/// the call would succeed with the wrong identity, so the count must be 0.
fn counting_imds(server: &Server) -> FakeHttp {
    let (key, secret) = (
        server.access_key_id.clone(),
        server.secret_access_key.clone(),
    );
    fake_imds(move || {
        credentials_json(
            &key,
            &secret,
            None,
            SystemTime::now() + Duration::from_secs(3600),
        )
    })
}

fn send(ws: &Workspace, aipid: &str) -> Run {
    ws.write(&format!("source/{aipid}.txt"), "x\n");
    ws.send("t", aipid, &[&format!("{aipid}.txt")])
}

#[test]
fn web_identity_from_the_environment_assumes_the_role_and_never_asks_imds() {
    let (mut ws, server, queue) = moto_workspace("creds-web");
    let keys = role_keys(&server);
    let role = role_arn();
    let token_file = ws.path("token");
    ws.write("token", "first.jwt.token\n");
    let answer = format!(
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
         <AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
         <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
         </AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        keys.access_key_id,
        keys.secret_access_key.expose(),
        keys.session_token.as_ref().unwrap().expose(),
        rfc3339(SystemTime::now() + Duration::from_secs(3600)),
    );
    let (checked_role, checked_file) = (role.clone(), token_file.clone());
    // The fake STS checks the call: the action, the role, the token file's
    // current content, and no signature (the token is the proof).
    let sts = FakeHttp::start(move |r| {
        let token = std::fs::read_to_string(&checked_file).unwrap_or_default();
        let good = r.method == "POST"
            && r.form("Action").as_deref() == Some("AssumeRoleWithWebIdentity")
            && r.form("RoleArn").as_deref() == Some(checked_role.as_str())
            && r.form("WebIdentityToken").as_deref() == Some(token.trim())
            && r.form("RoleSessionName").as_deref() == Some("pod-a")
            && r.header("authorization").is_none();
        if good {
            (200, answer.clone())
        } else {
            (400, "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad call</Message></Error></ErrorResponse>".into())
        }
    });
    let imds = counting_imds(&server);
    with_imds(&mut ws, &imds);
    ws.set_env([
        ("AWS_WEB_IDENTITY_TOKEN_FILE".into(), token_file.clone()),
        ("AWS_ROLE_ARN".into(), role.clone()),
        ("AWS_ROLE_SESSION_NAME".into(), "pod-a".into()),
        ("AWS_ENDPOINT_URL_STS".into(), sts.url.clone()),
    ]);
    send(&ws, "web-1").run().ok();
    // Kubernetes rotates the token: the next fetch sends the new one.
    ws.write("token", "second.jwt.token");
    send(&ws, "web-2").run().ok();
    let out = ws.sqs_archive(&["--profile", "t", "credentials"]).run();
    out.ok()
        .stdout_has(&format!(
            "assumed role {role} via web identity (token file {token_file})"
        ))
        .stdout_has("chain step: 4 of 6, web identity from the environment")
        .stdout_has("with a session token, expires ");
    no_secrets(&out, &[keys.secret_access_key.expose(), "second.jwt.token"]);

    assert_eq!(sts.requests().len(), 3, "{:?}", sts.requests());
    assert_eq!(imds.requests().len(), 0, "the instance role was asked");
    let sent = bodies(&drain(&server.client(), &queue));
    assert_eq!(sent.len(), 2, "{sent:?}");

    // The fake refuses a stale token: a wrong call is an error, not the instance role.
    let out = send(&ws, "web-3")
        .env("AWS_ROLE_SESSION_NAME", "another-pod")
        .run();
    out.exit(77)
        .one_line_error()
        .stderr_has("AssumeRoleWithWebIdentity")
        .stderr_has("InvalidIdentityToken");
    assert_eq!(imds.requests().len(), 0);
}

#[test]
fn role_arn_with_source_profile_signs_with_the_role() {
    let (mut ws, server, queue) = moto_workspace("creds-role");
    let imds = counting_imds(&server);
    with_imds(&mut ws, &imds);
    let (id, secret) = assumer();
    ws.write(
        "home/.aws/config",
        &format!(
            "[profile archiver]\nrole_arn = {}\nsource_profile = base\nrole_session_name = it-archiver\n\
             duration_seconds = 900\nexternal_id = it-external\n\
             [profile forbidden]\nrole_arn = arn:aws:iam::123456789012:role/not-allowed\nsource_profile = base\n",
            role_arn()
        ),
    );
    ws.write(
        "home/.aws/credentials",
        &format!("[base]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
    );
    let with = |run: Run, profile: &str| {
        run.env("AWS_PROFILE", profile)
            .env("AWS_ENDPOINT_URL_STS", &server.url)
    };
    // The source user alone is refused by SQS: it may only assume the role.
    with(send(&ws, "role-0"), "base")
        .run()
        .exit(77)
        .one_line_error()
        .stderr_has("AccessDenied");
    // Through the role, the same keys get the send accepted.
    with(send(&ws, "role-1"), "archiver").run().ok();
    let out = with(
        ws.sqs_archive(&["--profile", "t", "credentials"]),
        "archiver",
    )
    .run();
    out.ok()
        .stdout_has(&format!(
            "from assumed role {} via shared credentials file",
            role_arn()
        ))
        .stdout_has("(profile base)")
        .stdout_has("chain step: 3 of 6")
        .stdout_has("access key ASIA");
    no_secrets(&out, &[&secret, &id]);
    assert_eq!(bodies(&drain(&server.client(), &queue)).len(), 1);
    // STS refuses: an error naming the role and the refusal, and the
    // instance role is never asked instead.
    let out = with(send(&ws, "role-2"), "forbidden").run();
    out.exit(77)
        .one_line_error()
        .stderr_has("AssumeRole arn:aws:iam::123456789012:role/not-allowed (profile forbidden in ")
        .stderr_has("HTTP 403 AccessDenied");
    no_secrets(&out, &[&secret]);
    assert_eq!(imds.requests().len(), 0, "the instance role was asked");
}

#[test]
fn credential_process_success_and_three_clear_failures() {
    let (mut ws, server, queue) = moto_workspace("creds-process");
    let script = |name: &str, body: &str| {
        ws.write(name, &format!("#!/bin/sh\n{body}\n"));
        let path = ws.dir.join(name);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        path.display().to_string()
    };
    let ok = script(
        "ok.sh",
        r#"printf '{"Version": 1, "AccessKeyId": "%s", "SecretAccessKey": "%s"}' "$1" "$2""#,
    );
    let failing = script(
        "failing.sh",
        "echo 'signing helper: certificate expired' >&2; exit 2",
    );
    let hanging = script("hanging.sh", "sleep 30");
    let bad = script(
        "bad.sh",
        &format!(
            "echo '{{\"Version\": 1, \"SecretAccessKey\": \"{}\"'",
            server.secret_access_key
        ),
    );
    ws.write(
        "home/.aws/config",
        &format!(
            "[default]\ncredential_process = {ok} {} '{}'\n\
             [profile failing]\ncredential_process = {failing} --flag\n\
             [profile hanging]\ncredential_process = {hanging}\n\
             [profile bad]\ncredential_process = \"{bad}\"\n",
            server.access_key_id, server.secret_access_key
        ),
    );
    ws.set_env([("SQS_ARCHIVE_CREDENTIAL_PROCESS_TIMEOUT".into(), "2".into())]);
    send(&ws, "proc-1").run().ok();
    let out = ws.sqs_archive(&["--profile", "t", "credentials"]).run();
    out.ok()
        .stdout_has(&format!(
            "from credential_process {ok} (profile default in "
        ))
        .stdout_has("chain step: 3 of 6");
    no_secrets(&out, &[&server.secret_access_key]);
    assert_eq!(bodies(&drain(&server.client(), &queue)).len(), 1);

    for (profile, expected) in [
        (
            "failing",
            "exited with exit status: 2; stderr: signing helper: certificate expired",
        ),
        ("hanging", "did not finish within 2 s and was stopped"),
        ("bad", "its output is not JSON"),
    ] {
        let started = std::time::Instant::now();
        let out = send(&ws, "proc-x").env("AWS_PROFILE", profile).run();
        out.exit(77)
            .one_line_error()
            .stderr_has(&format!("credential_process of profile {profile} in "))
            .stderr_has(expected);
        no_secrets(&out, &[&server.secret_access_key]);
        assert!(started.elapsed() < Duration::from_secs(20), "{profile}");
    }
}

#[test]
fn a_misspelled_profile_is_an_error_and_imds_is_never_asked() {
    let (mut ws, server, queue) = moto_workspace("creds-noprofile");
    let imds = counting_imds(&server);
    with_imds(&mut ws, &imds);
    ws.write("home/.aws/config", "[profile real]\nregion = us-east-1\n");
    let out = ws
        .sqs_archive(&["--profile", "t", "stats"])
        .env("AWS_PROFILE", "doesnotexist")
        .run();
    out.exit(77)
        .one_line_error()
        .stderr_has("profile doesnotexist (from AWS_PROFILE) does not exist")
        .stderr_has(&ws.path("home/.aws/config"))
        .stderr_has(&ws.path("home/.aws/credentials"));
    // The same through the aws_profile key of the sqs-archive profile file.
    let mut keys = server.profile(&queue, &queue);
    keys["aws_profile"] = json!("doesnotexist");
    ws.profile("named", keys);
    ws.sqs_archive(&["--profile", "named", "stats"])
        .run()
        .exit(77)
        .one_line_error()
        .stderr_has("profile doesnotexist (from aws_profile) does not exist");
    // And through the command line, which wins over both.
    ws.sqs_archive(&["--profile", "t", "--aws-profile", "doesnotexist", "stats"])
        .run()
        .exit(77)
        .one_line_error()
        .stderr_has("profile doesnotexist (from --aws-profile) does not exist");
    assert_eq!(imds.requests().len(), 0, "the instance role was asked");
    // The same fake is used when nothing is configured: it works, so 0 above means something.
    ws.sqs_archive(&["--profile", "t", "stats"]).run().ok();
    assert_eq!(imds.count("GET", &format!("{ROLE_LIST}{ROLE}")), 1);
}

/// `sqs_archive credentials` with env keys and a profile of `keys`; its stdout.
fn credentials_output(ws: &Workspace, keys: serde_json::Value, env: &[(&str, &str)]) -> Done {
    ws.profile("r", keys);
    let mut run = ws
        .sqs_archive(&["--profile", "r", "credentials"])
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET);
    for (k, v) in env {
        run = run.env(k, v);
    }
    run.run()
}

#[test]
fn region_from_shared_config_or_the_legacy_queue_url_and_never_a_silent_default() {
    let ws = Workspace::new("creds-region");
    let emulator = json!({"backend": "sqs", "endpoint_url": "http://127.0.0.1:9",
        "request_queue_url": "http://127.0.0.1:9/123456789012/q",
        "completion_queue_url": "http://127.0.0.1:9/123456789012/q"});
    // Nothing names a region: an error saying where to set one, exit 78.
    ws.profile("r", emulator.clone());
    ws.sqs_archive(&["--profile", "r", "stats"])
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .run()
        .exit(78)
        .one_line_error()
        .stderr_has("no AWS region")
        .stderr_has("AWS_REGION");

    ws.write(
        "home/.aws/config",
        "[default]\nregion = eu-north-1\n[profile gov]\nregion = us-gov-west-1\nuse_fips_endpoint = true\n",
    );
    let legacy = json!({"backend": "sqs",
        "request_queue_url": "https://eu-west-1.queue.amazonaws.com/123456789012/req",
        "completion_queue_url": "https://eu-west-1.queue.amazonaws.com/123456789012/done"});
    // The shared config profile's region wins over the URL's, with a warning.
    let out = credentials_output(&ws, legacy.clone(), &[("SQS_ARCHIVE_LOG", "warn")]);
    out.ok()
        .stdout_has(&format!(
            "region: eu-north-1 (from region of profile default in {})",
            ws.path("home/.aws/config")
        ))
        .stdout_has("endpoint: https://sqs.eu-north-1.amazonaws.com (partition aws)")
        .stderr_has("is in eu-west-1");
    let out = credentials_output(&ws, legacy.clone(), &[("AWS_PROFILE", "gov")]);
    out.ok()
        .stdout_has("region: us-gov-west-1 (from region of profile gov")
        .stdout_has(
            "endpoint: https://sqs.us-gov-west-1.amazonaws.com (partition aws-us-gov, FIPS)",
        );
    // No region set anywhere but in the legacy URL: that region, not us-east-1.
    std::fs::remove_file(ws.path("home/.aws/config")).unwrap();
    let out = credentials_output(&ws, legacy, &[]);
    out.ok()
        .stdout_has("region: eu-west-1 (from the request_queue_url host)")
        .stdout_has("endpoint: https://sqs.eu-west-1.amazonaws.com (partition aws)");
    assert!(!out.stderr().contains("is in"), "{}", out.stderr());
}

#[test]
fn china_fips_and_dual_stack_hosts_seen_through_a_refusing_proxy() {
    let ws = Workspace::new("creds-partition");
    // A proxy that records each CONNECT target and refuses it: nothing leaves the machine.
    let proxy = FakeHttp::start(|_| (403, String::new()));
    let queue = |region: &str| {
        json!({"backend": "sqs", "region": region, "max_attempts": 1,
        "request_queue_url": format!("https://sqs.{region}.amazonaws.com/123456789012/q"),
        "completion_queue_url": format!("https://sqs.{region}.amazonaws.com/123456789012/q")})
    };
    for (region, env, host) in [
        ("cn-north-1", vec![], "sqs.cn-north-1.amazonaws.com.cn:443"),
        (
            "us-east-1",
            vec![("AWS_USE_FIPS_ENDPOINT", "true")],
            "sqs-fips.us-east-1.amazonaws.com:443",
        ),
        (
            "eu-west-1",
            vec![("AWS_USE_DUALSTACK_ENDPOINT", "true")],
            "sqs.eu-west-1.api.aws:443",
        ),
        (
            "cn-northwest-1",
            vec![("AWS_USE_DUALSTACK_ENDPOINT", "true")],
            "sqs.cn-northwest-1.api.amazonwebservices.com.cn:443",
        ),
    ] {
        let out = credentials_output(&ws, queue(region), &env);
        out.ok().stdout_has(&format!(
            "endpoint: https://{}",
            host.trim_end_matches(":443")
        ));
        let before = proxy.requests().len();
        let mut run = ws
            .sqs_archive(&["--profile", "r", "stats"])
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("HTTPS_PROXY", &proxy.url);
        for (k, v) in &env {
            run = run.env(k, v);
        }
        run.run().exit(69).one_line_error();
        let seen: Vec<String> = proxy.requests()[before..]
            .iter()
            .map(|r| format!("{} {}", r.method, r.target))
            .collect();
        assert_eq!(seen, [format!("CONNECT {host}")], "{region} {env:?}");
    }
}

/// A `--loop` run of `poll_messages` with profile `t`, requests sent over
/// eight seconds while temporary credentials expire every two; its stderr.
fn loop_run_with_expiring_credentials(
    ws: &Workspace,
    server: &Server,
    queue: &str,
    n: usize,
) -> String {
    let poll = ws
        .poll(&["--profile", "t", "--loop", "--max-runtime", "8"])
        .spawn();
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(700));
        send(ws, &format!("loop-{i}"))
            .env("AWS_ACCESS_KEY_ID", &server.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &server.secret_access_key)
            .run()
            .ok();
    }
    let out = wait_bounded(poll, Duration::from_secs(90));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "poll_messages failed:\n{stderr}");
    assert!(
        stderr.contains(&format!("received={n} succeeded={n}")),
        "{stderr}"
    );
    assert!(!stderr.contains("could not refresh"), "{stderr}");
    let completions = bodies(&drain(&server.client(), queue));
    assert_eq!(completions.len(), n, "{completions:?}");
    assert!(
        completions.iter().all(|c| c["success"] == true),
        "{completions:?}"
    );
    stderr
}

#[test]
fn short_lived_process_credentials_are_refreshed_in_a_loop_run() {
    let (ws, server, completion) = loop_workspace("creds-proc-loop");
    // Valid 3 s: the chain, refreshing a quarter of that ahead, runs it again every 2 s or so.
    ws.write(
        "helper.sh",
        &format!(
            "#!/bin/sh\necho run >> {}\nexp=$(date -u -d @$(( $(date +%s) + 3 )) +%Y-%m-%dT%H:%M:%SZ)\n\
             printf '{{\"Version\":1,\"AccessKeyId\":\"{}\",\"SecretAccessKey\":\"{}\",\"Expiration\":\"%s\"}}' \"$exp\"\n",
            ws.path("runs"),
            server.access_key_id,
            server.secret_access_key
        ),
    );
    std::fs::set_permissions(
        ws.dir.join("helper.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    ws.write(
        "home/.aws/config",
        &format!("[default]\ncredential_process = {}\n", ws.path("helper.sh")),
    );
    let stderr = loop_run_with_expiring_credentials(&ws, &server, &completion, 5);
    assert!(!stderr.contains(&server.secret_access_key));
    let runs = std::fs::read_to_string(ws.dir.join("runs"))
        .unwrap()
        .lines()
        .count();
    assert!(
        runs >= 3,
        "expected the process to run about every 2 s, saw {runs} runs"
    );
}

#[test]
fn short_lived_assumed_role_credentials_are_refreshed_in_a_loop_run() {
    let (ws, server, completion) = loop_workspace("creds-role-loop");
    let (id, secret) = assumer();
    // moto honours any duration: 3 s is fresh for about 2 s before the refresh window.
    ws.write(
        "home/.aws/config",
        &format!(
            "[default]\nrole_arn = {}\nsource_profile = base\nduration_seconds = 3\n",
            role_arn()
        ),
    );
    ws.write(
        "home/.aws/credentials",
        &format!("[base]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
    );
    let mut ws = ws;
    ws.set_env([("AWS_ENDPOINT_URL_STS".into(), server.url.clone())]);
    let stderr = loop_run_with_expiring_credentials(&ws, &server, &completion, 5);
    assert!(!stderr.contains(&secret));
    let fetches = stderr
        .lines()
        .filter(|l| {
            l.contains("fetched AWS credentials: access key ASIA") && l.contains("assumed role")
        })
        .count();
    assert!(
        fetches >= 3,
        "expected a new role session about every 2 s, saw {fetches}:\n{stderr}"
    );
}

/// URLs in credential errors have their userinfo masked, as everywhere else.
#[test]
fn credential_endpoint_userinfo_is_masked_in_errors() {
    let ws = Workspace::new("creds-userinfo");
    ws.write("token", "a-token\n");
    let web = ws
        .sqs_archive(&["credentials"])
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &ws.path("token"))
        .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/archive")
        .env("AWS_ENDPOINT_URL_STS", "http://user:pa55word@127.0.0.1:9/")
        .run();
    let container = ws
        .sqs_archive(&["credentials"])
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://user:pa55word@127.0.0.1:9/creds",
        )
        .run();
    for out in [&web, &container] {
        out.exit(77)
            .one_line_error()
            .stderr_has("http://***@127.0.0.1:9/");
        assert!(!out.stderr().contains("pa55word"), "{}", out.stderr());
    }
}
