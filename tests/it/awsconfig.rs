//! The AWS config file's own settings, as the SDKs read them, honoured by
//! the binaries: `endpoint_url` per service (`[services NAME]`) and for the
//! profile, `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`, `max_attempts` (25, as
//! the CLI allows), `retry_mode`, an explicit `--aws-profile` over
//! environment keys, and the partitions' endpoints. Tries are counted
//! against a failing loopback server (`SQS_ARCHIVE_TEST_FAST_RETRY` shortens
//! the backoff in test-hooks builds).

use serde_json::json;

use crate::fakes::FakeHttp;
use crate::support::*;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A server that fails every call with a retryable 500.
fn failing() -> FakeHttp {
    FakeHttp::start(|_| {
        (
            500,
            "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code>\
             <Message>down</Message></Error></ErrorResponse>"
                .into(),
        )
    })
}

/// A workspace with an sqs-archive profile `t` whose queues are on `url`
/// and which sets neither `endpoint_url` nor `max_attempts`; the AWS config
/// file is `home/.aws/config`.
fn workspace(url: &str, aws_config: &str) -> Workspace {
    let ws = Workspace::new("awsconfig");
    ws.profile(
        "t",
        json!({"backend": "sqs", "protocol": "query", "region": "us-east-1",
               "request_queue_url": format!("{url}/1/q"),
               "completion_queue_url": format!("{url}/1/q")}),
    );
    ws.write("home/.aws/config", aws_config);
    ws
}

fn run(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Done {
    let mut run = ws
        .sqs_archive(args)
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("SQS_ARCHIVE_TEST_FAST_RETRY", "1");
    for (k, v) in env {
        run = run.env(k, v);
    }
    run.run()
}

#[test]
fn services_endpoint_url_and_max_attempts_25_from_the_config_file() {
    let server = failing();
    let ws = workspace(
        "http://127.0.0.1:9",
        &format!(
            "[default]\nservices = archive\nmax_attempts = 25\n\
             [services archive]\nsqs =\n  endpoint_url = {}\n",
            server.url
        ),
    );
    run(&ws, &["--profile", "t", "stats"], &[]).exit(75);
    assert_eq!(
        server.requests().len(),
        25,
        "max_attempts = 25, at the services endpoint"
    );
    let out = run(&ws, &["--profile", "t", "credentials"], &[]);
    out.ok()
        .stdout_has(&format!("endpoint: {}", server.url))
        .stdout_has("[services archive]")
        .stdout_has("aws config: max_attempts 25 (max_attempts of profile default");
    assert!(!out.stdout().contains(SECRET));
}

#[test]
fn aws_max_attempts_25_is_accepted() {
    let server = failing();
    let ws = workspace(&server.url, "");
    run(
        &ws,
        &["--profile", "t", "stats"],
        &[
            ("AWS_MAX_ATTEMPTS", "25"),
            ("AWS_ENDPOINT_URL", &server.url),
        ],
    )
    .exit(75);
    assert_eq!(server.requests().len(), 25);
    run(
        &ws,
        &["--profile", "t", "stats"],
        &[("AWS_MAX_ATTEMPTS", "0")],
    )
    .exit(78)
    .one_line_error();
}

#[test]
fn retry_mode_sets_the_default_tries() {
    for (mode, tries) in [("adaptive", 3), ("standard", 3), ("legacy", 5)] {
        let server = failing();
        let ws = workspace(
            &server.url,
            &format!(
                "[default]\nretry_mode = {mode}\nendpoint_url = {}\n",
                server.url
            ),
        );
        run(&ws, &["--profile", "t", "stats"], &[]).exit(75);
        assert_eq!(server.requests().len(), tries, "retry_mode = {mode}");
        run(&ws, &["--profile", "t", "credentials"], &[])
            .ok()
            .stdout_has(&format!("aws config: retry_mode {mode}"));
    }
    let ws = workspace("http://127.0.0.1:9", "[default]\nretry_mode = eager\n");
    run(&ws, &["--profile", "t", "stats"], &[])
        .exit(78)
        .one_line_error()
        .stderr_has("legacy, standard or adaptive");
}

#[test]
fn configured_endpoint_urls_can_be_ignored() {
    let ws = workspace(
        "https://sqs.us-east-1.amazonaws.com/1/q",
        "[default]\nendpoint_url = http://127.0.0.1:9\n",
    );
    run(&ws, &["--profile", "t", "credentials"], &[])
        .ok()
        .stdout_has("endpoint: http://127.0.0.1:9 (endpoint_url of profile default");
    for env in [
        vec![("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")],
        vec![
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            ("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:8"),
        ],
    ] {
        run(&ws, &["--profile", "t", "credentials"], &env)
            .ok()
            .stdout_has("endpoint: https://sqs.us-east-1.amazonaws.com (partition aws)");
    }
    ws.write(
        "home/.aws/config",
        "[default]\nendpoint_url = http://127.0.0.1:9\nignore_configured_endpoint_urls = true\n",
    );
    run(&ws, &["--profile", "t", "credentials"], &[])
        .ok()
        .stdout_has("endpoint: https://sqs.us-east-1.amazonaws.com (partition aws)")
        .stdout_has("aws config: ignore_configured_endpoint_urls true");
}

#[test]
fn an_explicit_aws_profile_wins_over_environment_keys() {
    let ws = workspace("https://sqs.us-east-1.amazonaws.com/1/q", "");
    ws.write(
        "home/.aws/credentials",
        "[prof1]\naws_access_key_id = AKIAPROFILEONE00001\naws_secret_access_key = p\n",
    );
    run(
        &ws,
        &["--profile", "t", "--aws-profile", "prof1", "credentials"],
        &[],
    )
    .ok()
    .stdout_has("access key AKIA…0001 from shared");
    // AWS_PROFILE does not: the environment's keys win, as in the AWS CLI.
    run(
        &ws,
        &["--profile", "t", "credentials"],
        &[("AWS_PROFILE", "prof1")],
    )
    .ok()
    .stdout_has("access key AKIA…MPLE from environment");
}

#[test]
fn every_partition_has_its_domain() {
    let ws = workspace("https://example.invalid/1/q", "");
    for (region, expected) in [
        (
            "eusc-de-east-1",
            "https://sqs.eusc-de-east-1.amazonaws.eu (partition aws-eusc)",
        ),
        (
            "us-iso-east-1",
            "https://sqs.us-iso-east-1.c2s.ic.gov (partition aws-iso)",
        ),
        (
            "us-isob-east-1",
            "https://sqs.us-isob-east-1.sc2s.sgov.gov (partition aws-iso-b)",
        ),
        (
            "eu-isoe-west-1",
            "https://sqs.eu-isoe-west-1.cloud.adc-e.uk (partition aws-iso-e)",
        ),
        (
            "us-isof-south-1",
            "https://sqs.us-isof-south-1.csp.hci.ic.gov (partition aws-iso-f)",
        ),
    ] {
        run(
            &ws,
            &["--profile", "t", "--region", region, "credentials"],
            &[],
        )
        .ok()
        .stdout_has(&format!("endpoint: {expected}"));
    }
    run(
        &ws,
        &[
            "--profile",
            "t",
            "--region",
            "eusc-de-east-1",
            "credentials",
        ],
        &[("AWS_USE_DUALSTACK_ENDPOINT", "true")],
    )
    .ok()
    .stdout_has("endpoint: https://sqs.eusc-de-east-1.api.amazonwebservices.eu (partition aws-eusc, dual-stack)");
}
