//! The network around the client: proxies from the environment, TLS
//! verification and `AWS_CA_BUNDLE`, and the message size limit, with
//! `sqs_archive` run as a user would run it.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;
use sqs_archive::queue::ArchiveClient;

use crate::support::*;

/// A forward proxy on loopback. ureq 3 sends every proxied request through a
/// `CONNECT host:port` tunnel, plain-http targets included (no absolute-form
/// `POST http://...`), so that is all it speaks: it records each tunnel's
/// target, relays bytes both ways, and answers anything else with 501.
/// Targets other than 127.0.0.1 are refused. Its threads are joined when it
/// is dropped.
struct ConnectProxy {
    url: String,
    /// `CONNECT` targets, or `METHOD target` of refused requests.
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ConnectProxy {
    fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut tunnels = Vec::new();
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let (Ok(client), seen) = (client, seen.clone()) else {
                        continue;
                    };
                    tunnels.push(std::thread::spawn(move || tunnel(client, &seen)));
                }
                for t in tunnels {
                    let _ = t.join();
                }
            })
        };
        ConnectProxy {
            url,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn tunnel(mut client: TcpStream, seen: &Mutex<Vec<String>>) {
    use std::io::Write;
    // A safety net only: the client closes its end when its process exits.
    let idle = Some(Duration::from_secs(30));
    let _ = client.set_read_timeout(idle);
    let Ok(Some(request)) = read_http_request(&mut client) else {
        return;
    };
    if request.method != "CONNECT" {
        seen.lock()
            .unwrap()
            .push(format!("{} {}", request.method, request.target));
        let _ = client.write_all(
            b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    seen.lock().unwrap().push(request.target.clone());
    let upstream = match request.target.strip_prefix("127.0.0.1:") {
        Some(_) => TcpStream::connect(&request.target),
        None => Err(std::io::ErrorKind::PermissionDenied.into()),
    };
    let Ok(upstream) = upstream else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let _ = upstream.set_read_timeout(idle);
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (mut client_in, mut upstream_out) =
        (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut upstream_out);
        let _ = upstream_out.shutdown(Shutdown::Write);
    });
    let (mut upstream_in, mut client_out) = (upstream, client);
    let _ = std::io::copy(&mut upstream_in, &mut client_out);
    let _ = client_out.shutdown(Shutdown::Write);
    let _ = up.join();
}

/// A workspace with profile `t` on a fresh moto queue (request and completion alike) and moto's keys.
fn moto_workspace(name: &str, extra: serde_json::Value) -> (Workspace, Server, String) {
    let server = moto();
    let queue = server.queue(name, false);
    let mut ws = Workspace::new(name);
    let mut keys = server.profile(&queue, &queue);
    for (k, v) in extra.as_object().unwrap() {
        keys[k] = v.clone();
    }
    ws.profile("t", keys);
    ws.set_env(server.key_env());
    (ws, server, queue)
}

fn stats_with(ws: &Workspace, vars: &[(&str, &str)]) -> Done {
    let mut run = ws.sqs_archive(&["--profile", "t", "stats"]);
    for (k, v) in vars {
        run = run.env(k, v);
    }
    run.run()
}

#[test]
fn proxy_variables_send_calls_through_the_proxy_unless_no_proxy() {
    let (ws, server, _) = moto_workspace("net-proxy", json!({}));
    let moto_authority = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let proxy = ConnectProxy::start();
    let url = proxy.url.as_str();

    // Through the proxy: a tunnel to moto, and moto accepts the signed calls that come through it.
    for vars in [
        &[("HTTP_PROXY", url)][..],
        &[("http_proxy", url)],
        &[("ALL_PROXY", url)],
        &[("HTTP_PROXY", url), ("NO_PROXY", "localhost,.internal")],
    ] {
        let before = proxy.seen().len();
        stats_with(&ws, vars).ok().stdout_has("\"visible\":0");
        let seen = proxy.seen();
        assert!(seen.len() > before, "{vars:?}: the proxy saw nothing");
        assert!(
            seen[before..].iter().all(|t| t == moto_authority),
            "{vars:?}: {seen:?}"
        );
    }

    // Around it: NO_PROXY covers the host, or the variable is for the other scheme.
    for vars in [
        &[("HTTP_PROXY", url), ("NO_PROXY", "127.0.0.1")][..],
        &[("http_proxy", url), ("no_proxy", "localhost, 127.0.0.1")],
        &[("HTTP_PROXY", url), ("NO_PROXY", "*")],
        &[("HTTPS_PROXY", url)],
    ] {
        let before = proxy.seen().len();
        stats_with(&ws, vars).ok().stdout_has("\"visible\":0");
        assert_eq!(
            proxy.seen().len(),
            before,
            "{vars:?} went through the proxy"
        );
    }
}

/// The error names the proxy, not only the endpoint behind it, and hides the proxy's password.
#[test]
fn a_proxy_that_is_down_is_unavailable_and_named() {
    let (ws, server, _) = moto_workspace("net-proxy-down", json!({"max_attempts": 1}));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = stats_with(
        &ws,
        &[(
            "HTTP_PROXY",
            &format!("http://archive:proxy-secret@127.0.0.1:{port}"),
        )],
    );
    out.exit(69)
        .one_line_error()
        .stderr_has(&format!(
            "cannot reach {}/ through proxy http://***@127.0.0.1:{port}",
            server.url
        ))
        .stderr_has("Connection refused");
    assert!(!out.stderr().contains("proxy-secret"), "{}", out.stderr());
}

#[test]
fn ca_bundle_that_is_not_pem_or_missing_is_a_clear_error() {
    let (ws, ..) = moto_workspace("net-ca", json!({}));
    ws.write("not-pem.txt", "this is not a certificate\n");
    let not_pem = ws.path("not-pem.txt");
    stats_with(&ws, &[("AWS_CA_BUNDLE", &not_pem)])
        .exit(78)
        .one_line_error()
        .stderr_has(&not_pem)
        .stderr_has("holds no PEM certificate");
    let missing = ws.path("missing.pem");
    stats_with(&ws, &[("AWS_CA_BUNDLE", &missing)])
        .exit(66)
        .one_line_error()
        .stderr_has("CA bundle")
        .stderr_has(&missing)
        .stderr_has("No such file");
}

/// Runs `openssl` with `args` in `dir`, or fails the test with its stderr.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("the openssl command line tool is needed to make test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TLS server on 127.0.0.1 (`openssl s_server`) whose certificate for
/// IP 127.0.0.1 is signed by a throwaway CA (`ca.pem` in `dir`). It speaks
/// no SQS: it never answers a POST. Killed when dropped.
struct TlsServer {
    child: Child,
    url: String,
}

impl TlsServer {
    fn start(dir: &Path) -> TlsServer {
        let p256 = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
        openssl(dir, &[&["genpkey", "-out", "ca.key"][..], &p256].concat());
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-subj",
                "/CN=sqs-archive test CA",
                "-days",
                "2",
                "-out",
                "ca.pem",
            ],
        );
        openssl(
            dir,
            &[&["genpkey", "-out", "server.key"][..], &p256].concat(),
        );
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                "server.key",
                "-subj",
                "/CN=127.0.0.1",
                "-out",
                "server.csr",
            ],
        );
        std::fs::write(
            dir.join("server.ext"),
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
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-www",
                "-cert",
                "server.pem",
                "-key",
                "server.key",
                "-accept",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "openssl s_server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsServer {
            child,
            url: format!("https://127.0.0.1:{port}"),
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A profile `name` whose endpoint is `url`, failing fast.
fn endpoint_profile(ws: &Workspace, name: &str, url: &str) {
    ws.profile(
        name,
        json!({"backend": "sqs", "endpoint_url": url, "region": "us-east-1", "max_attempts": 1,
               "http_timeout_seconds": 2, "wait_time_seconds": 0,
               "request_queue_url": format!("{url}/1/q"), "completion_queue_url": format!("{url}/1/q")}),
    );
}

#[test]
fn tls_certificates_are_verified_and_ca_bundle_is_trusted() {
    let ws = Workspace::new("net-tls");
    let server = TlsServer::start(&ws.dir);
    endpoint_profile(&ws, "t", &server.url);
    let keys = [
        ("AWS_ACCESS_KEY_ID", "AKIDTLSTEST"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
    ];

    // Not signed by a root the client knows: refused at the handshake.
    let out = stats_with(&ws, &keys);
    out.exit(69)
        .one_line_error()
        .stderr_has(&server.url)
        .stderr_has("not signed by a trusted authority");

    // With its CA in AWS_CA_BUNDLE the handshake succeeds; what fails then is
    // the server, which never answers (a timeout, not a certificate error).
    let ca = ws.path("ca.pem");
    let out = stats_with(&ws, &[keys[0], keys[1], ("AWS_CA_BUNDLE", &ca)]);
    out.exit(69).one_line_error().stderr_has("timeout");
    assert!(
        !out.stderr().contains("certificate") && !out.stderr().contains("UnknownIssuer"),
        "{}",
        out.stderr()
    );

    // A bundle with some other CA (same name, other key) does not make this
    // server trusted; nor do the built-in roots, which the bundle replaces.
    let other = Workspace::new("net-tls-other");
    let _other_server = TlsServer::start(&other.dir);
    let other_ca = other.path("ca.pem");
    stats_with(&ws, &[keys[0], keys[1], ("AWS_CA_BUNDLE", &other_ca)])
        .exit(69)
        .one_line_error()
        .stderr_has("signature does not verify");
}

#[test]
fn https_to_a_plain_tcp_listener_is_a_tls_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    // Answers the ClientHello with plain HTTP, as a misconfigured endpoint would.
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = stream else { continue };
                let mut hello = [0u8; 1024];
                let _ = s.read(&mut hello);
                let _ = s.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        })
    };
    let ws = Workspace::new("net-plain");
    endpoint_profile(&ws, "t", &url);
    stats_with(
        &ws,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDTLSTEST"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ],
    )
    .exit(69)
    .one_line_error()
    .stderr_has(&url)
    .stderr_has("does not speak TLS here");
    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(url.trim_start_matches("https://"));
    server.join().unwrap();
}

/// Many long file names make a body over `max_message_size`: refused before
/// anything is sent, on SQS and on the mock queue alike.
#[test]
fn a_body_over_max_message_size_is_refused_before_sending() {
    let names: Vec<String> = (0..40)
        .map(|i| format!("{i:03}-{}.tif", "long-file-name-".repeat(6)))
        .collect();
    let send = |ws: &Workspace| {
        let mut args = vec!["--profile", "t", "send", "--aipid", "big", "--filenames"];
        args.extend(names.iter().map(String::as_str));
        ws.sqs_archive(&args).run()
    };

    let (ws, server, queue) = moto_workspace("net-size", json!({"max_message_size": 2048}));
    send(&ws)
        .exit(65)
        .one_line_error()
        .stderr_has("over the queue's limit of 2048 bytes (max_message_size)");
    let stats = server.client().queue_stats(&queue).unwrap();
    assert_eq!((stats.visible, stats.in_flight, stats.delayed), (0, 0, 0));

    let mock = Workspace::new("net-size-mock");
    mock.mock_profile("t", json!({"max_message_size": 2048}));
    send(&mock)
        .exit(65)
        .one_line_error()
        .stderr_has("max_message_size");
    let stats = mock.sqs_archive(&["--profile", "t", "stats"]).run();
    stats.ok().stdout_has("\"visible\":0");

    // The same request fits under the default limit.
    let (ws, server, queue) = moto_workspace("net-size-ok", json!({}));
    send(&ws).ok();
    assert_eq!(server.client().queue_stats(&queue).unwrap().visible, 1);
}
