//! Configuration precedence, the key table, profile discovery and `.env`.

use std::path::PathBuf;
use std::time::Duration;

use super::keys::*;
use super::settings::*;
use super::sources::*;
use crate::environment::Env;
use crate::error::Result;

fn resolve(flags: &[(K, &str)], env: &[(&str, &str)], file: Option<&str>) -> Result<Settings> {
    let source = Source {
        flags: flags.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        ..Source::default()
    };
    Settings::resolve(
        &source,
        Env::from_pairs(env.iter().copied()),
        file.map(|_| PathBuf::from("config/test.json")),
        file,
    )
}

const PROTOTYPE: &str = r#"{
    "request_queue_url": "https://sqs.eu-west-1.amazonaws.com/123/req",
    "completion_queue_url": "https://sqs.eu-west-1.amazonaws.com/123/done",
    "region": "eu-west-1",
    "aws_access_key_id": "AKIDEXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG",
    "schema_file": "schemas/archive-message.schema.json",
    "max_number_of_messages": 5,
    "wait_time_seconds": 10
}"#;

#[test]
fn prototype_keys_load_unchanged() {
    let s = resolve(&[], &[], Some(PROTOTYPE)).unwrap();
    assert_eq!(s.backend, Backend::Sqs);
    assert_eq!(s.region.as_ref().unwrap().name, "eu-west-1");
    assert_eq!(s.max_number_of_messages, 5);
    assert_eq!(s.wait_time_seconds, 10);
    assert_eq!(s.config_keys.access_key_id.as_deref(), Some("AKIDEXAMPLE"));
    assert_eq!(
        s.queue_url(QueueRole::Completion).unwrap(),
        "https://sqs.eu-west-1.amazonaws.com/123/done"
    );
    assert!(
        s.http_timeout > Duration::from_secs(10),
        "read timeout outlasts the long poll"
    );
    assert!(
        !format!("{s:?}").contains("wJalrXUtnFEMI"),
        "Debug hides the secret"
    );
}

#[test]
fn a_mistyped_credential_key_never_shows_its_value() {
    for file in [
        r#"{"aws_secret_access_key": ["wJalrXUtnFEMI/K7MDENG"]}"#,
        r#"{"aws_session_token": {"v": "wJalrXUtnFEMI/K7MDENG"}}"#,
        r#"{"aws_access_key_id": 12345678}"#,
    ] {
        let e = resolve(&[], &[], Some(file)).unwrap_err().to_string();
        assert!(e.contains("must be a string"), "{e}");
        assert!(!e.contains("wJalr") && !e.contains("12345678"), "{e}");
    }
}

#[test]
fn precedence_is_file_then_env_then_flags() {
    let s = resolve(
        &[],
        &[("SQS_ARCHIVE_WAIT_TIME_SECONDS", "3")],
        Some(PROTOTYPE),
    )
    .unwrap();
    assert_eq!(s.wait_time_seconds, 3, "environment beats file");
    let s = resolve(
        &[(K::wait_time_seconds, "7")],
        &[("SQS_ARCHIVE_WAIT_TIME_SECONDS", "3")],
        Some(PROTOTYPE),
    )
    .unwrap();
    assert_eq!(s.wait_time_seconds, 7, "flag beats environment");
    let s = resolve(
        &[],
        &[("AWS_DEFAULT_REGION", "ap-south-1")],
        Some(r#"{"region":"x-1"}"#),
    )
    .unwrap();
    assert_eq!(s.region.as_ref().unwrap().name, "ap-south-1");
    let s = resolve(
        &[],
        &[("AWS_REGION", "a"), ("AWS_DEFAULT_REGION", "b")],
        None,
    )
    .unwrap();
    let region = s.region.unwrap();
    assert_eq!(region.name, "a", "AWS_REGION before AWS_DEFAULT_REGION");
    assert_eq!(region.origin, "environment variable AWS_REGION");
    let s = resolve(
        &[],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:2"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(
        s.endpoint_url.as_deref(),
        Some("http://127.0.0.1:2"),
        "service-specific endpoint wins"
    );
}

#[test]
fn errors_name_file_key_and_where_to_set_it() {
    let e = resolve(&[], &[], Some(r#"{"wait_time_seconds": 30}"#))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("config/test.json") && e.contains("wait_time_seconds") && e.contains("0 to 20"),
        "{e}"
    );
    let e = resolve(&[], &[], Some(r#"{"wait_time_second": 3}"#))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown key \"wait_time_second\"")
            && e.contains("did you mean \"wait_time_seconds\""),
        "{e}"
    );
    let e = resolve(&[], &[], Some(r#"{"region": 3}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("region must be a string"), "{e}");
    let e = resolve(&[], &[], Some("{not json")).unwrap_err();
    assert!(e.to_string().contains("not valid JSON"), "{e}");
    assert_eq!(e.exit(), crate::exit::Exit::Config);
    let e = resolve(
        &[],
        &[("SQS_ARCHIVE_MAX_NUMBER_OF_MESSAGES", "eleven")],
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("environment variable SQS_ARCHIVE_MAX_NUMBER_OF_MESSAGES"),
        "{e}"
    );
    let e = resolve(&[], &[], Some("{}"))
        .unwrap()
        .queue_url(QueueRole::Request)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("config/test.json") && e.contains("SQS_REQUEST_QUEUE_URL"),
        "{e}"
    );
    let e = resolve(&[], &[], Some(r#"{"backend": "kafka"}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"sqs\" or \"mock\""), "{e}");
    let e = resolve(&[], &[], Some(r#"{"handler": "process_message --x"}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("list of strings"), "{e}");
}

#[test]
fn search_order_ends_in_etc() {
    assert_eq!(
        search_dirs(&Env::default()),
        [PathBuf::from("config"), PathBuf::from("/etc/sqs-archive")]
    );
    let env = Env::from_pairs([("SQS_ARCHIVE_CONFIG_DIR", "/tmp/x")]);
    assert_eq!(
        search_dirs(&env),
        [
            PathBuf::from("/tmp/x"),
            PathBuf::from("config"),
            PathBuf::from("/etc/sqs-archive")
        ]
    );
}

#[test]
fn config_problems_all_exit_78() {
    let dir = std::env::temp_dir().join(format!("sqs-archive-78-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("adir.json")).unwrap();
    std::fs::write(dir.join("latin1.json"), b"{\"region\": \"caf\xe9\"}").unwrap();
    std::fs::write(dir.join("bad.json"), "{").unwrap();
    let env = Env::from_pairs([("SQS_ARCHIVE_CONFIG_DIR", dir.to_str().unwrap())]);
    for (profile, needle) in [
        ("adir", "is a directory"),
        ("latin1", "not UTF-8"),
        ("bad", "not valid JSON"),
        ("absent", "does not exist"),
    ] {
        let source = Source {
            profile: Some(profile.into()),
            ..Source::default()
        };
        let e = Settings::load(&source, env.clone()).unwrap_err();
        assert_eq!(e.exit(), crate::exit::Exit::Config, "{profile}: {e}");
        assert!(e.to_string().contains(needle), "{profile}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn table_drives_defaults_and_help() {
    let s = resolve(&[], &[], None).unwrap();
    assert_eq!(s.wait_time_seconds, 20);
    assert_eq!(s.metrics_file, None);
    assert_eq!(s.metrics_interval, Duration::from_secs(60));
    assert_eq!(s.lock_file, PathBuf::from("var/poll_messages.lock"));
    let help = reference_table();
    for key in KEYS {
        assert!(
            help.contains(&format!("| `{}` |", key.name)),
            "{} not in the reference",
            key.name
        );
        assert_eq!(key.id.name(), key.name, "KEYS is in the order of K");
        if let Kind::Choice(words) = key.kind {
            assert!(!words.is_empty());
        }
    }
    assert!(
        help.contains("| `wait_time_seconds` | `SQS_ARCHIVE_WAIT_TIME_SECONDS` | 20 | 0-20 |"),
        "{help}"
    );
    let s = resolve(
        &[(K::metrics_interval, "5")],
        &[("SQS_ARCHIVE_METRICS_FILE", "m.prom")],
        None,
    )
    .unwrap();
    assert_eq!(s.metrics_file, Some(PathBuf::from("m.prom")));
    assert_eq!(s.metrics_interval, Duration::from_secs(5));
    let e = resolve(&[], &[], Some(r#"{"metrics_interval": 0}"#)).unwrap_err();
    assert!(e.to_string().contains("1 to 86400"), "{e}");
}

#[test]
fn missing_profile_and_env_file() {
    let dir = std::env::temp_dir().join(format!("sqs-archive-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let env = Env::from_pairs([("SQS_ARCHIVE_CONFIG_DIR", dir.to_str().unwrap())]);
    let source = Source {
        profile: Some("nope".into()),
        ..Source::default()
    };
    let e = Settings::load(&source, env.clone())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("profile \"nope\" does not exist") && e.contains("nope.json"),
        "{e}"
    );
    for place in [
        dir.join("nope.json").display().to_string(),
        "config/nope.json".into(),
        "/etc/sqs-archive/nope.json".into(),
    ] {
        assert!(e.contains(&place), "{place} not in: {e}");
    }
    let source = Source {
        profile: Some("../etc".into()),
        ..Source::default()
    };
    assert_eq!(
        Settings::load(&source, env.clone()).unwrap_err().exit(),
        crate::exit::Exit::Usage
    );

    std::fs::write(dir.join("p.json"), r#"{"backend":"mock"}"#).unwrap();
    std::fs::write(
        dir.join("vars.env"),
        "SQS_ARCHIVE_BACKEND=sqs\nSQS_ARCHIVE_WAIT_TIME_SECONDS=4\n",
    )
    .unwrap();
    let mut env = env;
    env.set("SQS_ARCHIVE_WAIT_TIME_SECONDS", "2");
    let source = Source {
        profile: Some("p".into()),
        env_file: Some(dir.join("vars.env")),
        ..Source::default()
    };
    let s = Settings::load(&source, env.clone()).unwrap();
    assert_eq!(s.backend, Backend::Sqs, ".env beats the profile file");
    assert_eq!(s.wait_time_seconds, 2, "the process environment beats .env");
    let source = Source {
        env_file: Some(dir.join("missing.env")),
        ..source
    };
    assert!(
        Settings::load(&source, env)
            .unwrap_err()
            .to_string()
            .contains("missing.env")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn env_file_errors_name_the_line_never_its_text() {
    let dir = std::env::temp_dir().join(format!("sqs-archive-dotenv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.env");
    std::fs::write(
        &path,
        "# comment\nA=1 # AWS_SECRET_ACCESS_KEY wJalrXUtnFEMI/K7MDENG\u{1b}[2J\n\nAWS_SECRET_ACCESS_KEY wJalrXUtnFEMI/K7MDENG\u{1b}[2J\nB=2\n",
    )
    .unwrap();
    let source = Source {
        env_file: Some(path.clone()),
        ..Source::default()
    };
    let e = Settings::load(&source, Env::from_pairs::<&str, &str>([])).unwrap_err();
    let text = e.to_string();
    assert_eq!(e.exit(), crate::exit::Exit::Config, "{text}");
    assert!(
        text.contains("bad.env") && text.contains("line 4"),
        "{text}"
    );
    assert!(
        !text.contains("wJalr") && !text.contains("AWS_SECRET"),
        "{text}"
    );
    // A directory, bytes that are not UTF-8: configuration problems too.
    for (name, make) in [("d.env", 0), ("latin1.env", 1)] {
        let p = dir.join(name);
        if make == 0 {
            std::fs::create_dir_all(&p).unwrap();
        } else {
            std::fs::write(&p, b"A=\xe9t\xe9\n").unwrap();
        }
        let source = Source {
            env_file: Some(p),
            ..Source::default()
        };
        let e = Settings::load(&source, Env::from_pairs::<&str, &str>([])).unwrap_err();
        assert_eq!(e.exit(), crate::exit::Exit::Config, "{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn retired_unprefixed_variables_are_refused_naming_their_new_name() {
    for (old, new) in RETIRED_VARIABLES {
        let e = resolve(&[], &[(old, "x")], None).unwrap_err();
        assert_eq!(e.exit(), crate::exit::Exit::Config, "{old}");
        let text = e.to_string();
        assert!(text.contains(old) && text.contains(new), "{text}");
    }
    // Also from an implicit `.env` (the environment after it is applied).
    let dir = std::env::temp_dir().join(format!("retired-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vars.env"), "ARCHIVE_DIR=/tmp/elsewhere\n").unwrap();
    let source = Source {
        env_file: Some(dir.join("vars.env")),
        ..Source::default()
    };
    let e = Settings::load(&source, Env::default()).unwrap_err();
    assert!(e.to_string().contains("SQS_ARCHIVE_ARCHIVE_DIR"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_s3_archive_dir_is_a_bucket_and_a_clean_prefix() {
    use crate::config::S3Location;
    let l = S3Location::parse("s3://my-bucket/a/b/").unwrap().unwrap();
    assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("my-bucket", "a/b"));
    assert_eq!(l.aip_prefix("aip-1"), "a/b/aip-1/");
    let bare = S3Location::parse("s3://my-bucket").unwrap().unwrap();
    assert_eq!(bare.prefix, "");
    assert_eq!(bare.aip_prefix("aip-1"), "aip-1/");
    assert!(S3Location::parse("/var/archive").is_none());
    assert!(S3Location::parse("s3://Bad_Bucket/x").unwrap().is_err());
    let e = S3Location::parse("s3://my-bucket/a/../b")
        .unwrap()
        .unwrap_err();
    assert!(e.contains(".."), "{e}");
}
