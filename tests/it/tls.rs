//! Trust: a loopback TLS endpoint whose certificate a test CA (made by
//! `openssl` at test time) signs is trusted through `SSL_CERT_FILE`,
//! `AWS_CA_BUNDLE` and the AWS config file's `ca_bundle`, and refused
//! otherwise with one readable line naming the host and the reason.

use std::io::Write;
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::json;

use crate::fakes::read_http_request;
use crate::support::*;

/// What the endpoint says to every request that gets through the handshake.
const ANSWER: &str = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
    <Message>reached-over-tls</Message></Error><RequestId>r</RequestId></ErrorResponse>";

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA (`ca.pem`) and a server certificate for 127.0.0.1 it signs
/// (`server.pem`, `server.key`), in `dir`.
fn make_ca(dir: &std::path::Path) {
    let subject = format!("/CN=sqs-archive test CA {}", unique("ca"));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        &subject,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// A loopback HTTPS server presenting `cert`/`key`; answers [`ANSWER`] with
/// HTTP 400 to each request that completes the handshake. Stops after
/// `connections` connections.
fn tls_server(cert: &[u8], key: &[u8], connections: usize) -> (String, JoinHandle<()>) {
    let certs: Vec<rustls::pki_types::CertificateDer<'static>> = ureq::tls::parse_pem(cert)
        .filter_map(|i| match i {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.der().to_vec().into()),
            _ => None,
        })
        .collect();
    let key = ureq::tls::parse_pem(key)
        .find_map(|i| match i {
            Ok(ureq::tls::PemItem::PrivateKey(k)) => Some(rustls::pki_types::PrivateKeyDer::Pkcs8(
                k.der().to_vec().into(),
            )),
            _ => None,
        })
        .expect("a private key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut tcp) = stream else { continue };
            let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
            if let Ok(Some(_)) = read_http_request(&mut tls) {
                let _ = write!(
                    tls,
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ANSWER}",
                    ANSWER.len()
                );
                let _ = tls.flush();
            }
        }
    });
    (url, thread)
}

fn workspace(url: &str) -> Workspace {
    let ws = Workspace::new("tls");
    ws.profile(
        "t",
        json!({"backend": "sqs", "protocol": "query", "endpoint_url": url, "region": "us-east-1",
               "max_attempts": 1, "request_queue_url": format!("{url}/1/q"),
               "completion_queue_url": format!("{url}/1/q")}),
    );
    ws
}

fn stats(ws: &Workspace, env: &[(&str, String)]) -> Done {
    let mut run = ws
        .sqs_archive(&["--profile", "t", "stats"])
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_CONFIG_FILE", &ws.path("home/aws-config"));
    for (k, v) in env {
        run = run.env(k, v);
    }
    run.run()
}

#[test]
fn a_test_ca_is_trusted_through_each_setting_and_refused_otherwise() {
    // One server for every case: 5 connections (3 trusted, 2 refused).
    let probe = Workspace::new("tls-ca");
    make_ca(&probe.dir);
    let read = |name: &str| std::fs::read(probe.dir.join(name)).unwrap();
    let (url, server) = tls_server(&read("server.pem"), &read("server.key"), 5);
    let ws = workspace(&url);
    let ca = probe.path("ca.pem");
    let host = url.trim_start_matches("https://");

    // Not trusted: the platform store does not hold the test CA.
    let refused = stats(&ws, &[]);
    refused
        .exit(69)
        .one_line_error()
        .stderr_has(&format!("TLS with {host} failed"))
        .stderr_has("not signed by a trusted authority");
    assert!(
        !refused.stderr().contains("UnknownIssuer"),
        "{}",
        refused.stderr()
    );

    // SSL_CERT_FILE, as OpenSSL reads it.
    stats(&ws, &[("SSL_CERT_FILE", ca.clone())]).stderr_has("reached-over-tls");
    // AWS_CA_BUNDLE.
    stats(&ws, &[("AWS_CA_BUNDLE", ca.clone())]).stderr_has("reached-over-tls");
    // ca_bundle in the AWS config file's profile.
    ws.write("home/aws-config", &format!("[default]\nca_bundle = {ca}\n"));
    let out = stats(&ws, &[]);
    out.stderr_has("reached-over-tls");
    // ... which `credentials` names.
    ws.sqs_archive(&["--profile", "t", "credentials"])
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("AWS_CONFIG_FILE", &ws.path("home/aws-config"))
        .run()
        .ok()
        .stdout_has(&format!("aws config: ca_bundle {ca}"));

    // AWS_CA_BUNDLE wins over ca_bundle: a bundle without the test CA refuses.
    let other = Workspace::new("tls-other");
    make_ca(&other.dir);
    stats(&ws, &[("AWS_CA_BUNDLE", other.path("ca.pem"))])
        .exit(69)
        .one_line_error()
        .stderr_has("not signed by a trusted authority")
        .stderr_has(&format!("CA bundle {}", other.path("ca.pem")));
    server.join().unwrap();
}

#[test]
fn a_ca_certificate_served_as_the_server_certificate_is_named_as_such() {
    let ws = Workspace::new("tls-self");
    make_ca(&ws.dir);
    let read = |name: &str| std::fs::read(ws.dir.join(name)).unwrap();
    let (url, server) = tls_server(&read("ca.pem"), &read("ca.key"), 1);
    let site = workspace(&url);
    let out = stats(&site, &[("AWS_CA_BUNDLE", ws.path("ca.pem"))]);
    out.exit(69)
        .one_line_error()
        .stderr_has("TLS with 127.0.0.1")
        .stderr_has("CA certificate as its own");
    assert!(!out.stderr().contains("OtherError"), "{}", out.stderr());
    server.join().unwrap();
}

#[test]
fn sts_trusts_the_config_files_ca_bundle_too() {
    let probe = Workspace::new("tls-sts-ca");
    make_ca(&probe.dir);
    let read = |name: &str| std::fs::read(probe.dir.join(name)).unwrap();
    let (url, server) = tls_server(&read("server.pem"), &read("server.key"), 2);
    let ws = workspace("https://sqs.us-east-1.amazonaws.com");
    ws.write("token", "a-web-identity-token-for-the-test");
    let credentials = |config: &str| {
        ws.write("home/aws-config", config);
        ws.sqs_archive(&["--profile", "t", "credentials"])
            .env("AWS_CONFIG_FILE", &ws.path("home/aws-config"))
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &ws.path("token"))
            .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/archiver")
            .env("AWS_ENDPOINT_URL_STS", &url)
            .run()
    };
    credentials("[default]\nregion = us-east-1\n")
        .one_line_error()
        .stderr_has("not signed by a trusted authority");
    credentials(&format!(
        "[default]\nregion = us-east-1\nca_bundle = {}\n",
        probe.path("ca.pem")
    ))
    .one_line_error()
    .stderr_has("reached-over-tls");
    server.join().unwrap();
}
