//! Loopback fakes of the HTTP services around the credential chain: instance
//! metadata, container credentials, STS, a refusing proxy. One server,
//! answering each request with a function and recording what it saw.
//!
//! Shared by the `it` crate and the library's unit tests (`src/credentials`
//! includes this file with `#[path]`), so there is one fake server, not two.
//! It uses nothing but `std`.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request seen by a [`FakeHttp`] server.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    /// The request target as sent: a path, or `host:port` for `CONNECT`.
    pub target: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The `Content-Length` body, as text (lossy).
    pub body: String,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A form field of an `application/x-www-form-urlencoded` body, decoded.
    pub fn form(&self, name: &str) -> Option<String> {
        self.body.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one HTTP/1.1 request, its `Content-Length` body included; `None` at
/// a clean end of stream.
pub fn read_http_request(stream: &mut impl Read) -> std::io::Result<Option<SeenRequest>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (
        first.next().unwrap_or_default().to_string(),
        first.next().unwrap_or_default().to_string(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0u64);
    let mut body = Vec::new();
    stream.take(length).read_to_end(&mut body)?;
    Ok(Some(SeenRequest {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }))
}

type Answer = dyn Fn(&SeenRequest) -> (u16, String) + Send + Sync;

/// A loopback HTTP server: every request is recorded and answered by a
/// function, one request per connection. Its thread is joined when it is
/// dropped.
pub struct FakeHttp {
    pub url: String,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHttp {
    pub fn start(
        answer: impl Fn(&SeenRequest) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let answer: Box<Answer> = Box::new(answer);
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut stream) = stream else { continue };
                    serve_one(&mut stream, &*answer, &seen);
                }
            })
        };
        FakeHttp {
            url,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Answers requests with these, in order, then with HTTP 500.
    pub fn canned(answers: Vec<(u16, String)>) -> FakeHttp {
        let answers = Mutex::new(VecDeque::from(answers));
        FakeHttp::start(move |_| {
            answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or((500, "no more canned answers".into()))
        })
    }

    /// Everything asked so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests had this method and target.
    pub fn count(&self, method: &str, target: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.target == target)
            .count()
    }
}

fn serve_one(stream: &mut TcpStream, answer: &Answer, seen: &Mutex<Vec<SeenRequest>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(Some(request)) = read_http_request(stream) else {
        return;
    };
    let (status, body) = answer(&request);
    seen.lock().unwrap().push(request);
    let content_type = if body.starts_with('<') {
        "text/xml"
    } else {
        "application/json"
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A loopback URL where nothing listens: connections are refused at once.
pub fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}
