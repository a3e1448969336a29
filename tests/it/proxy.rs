//! Loopback HTTP plumbing for the fault tests: a fault-injecting proxy
//! between the toolkit and moto, and a server that answers every request
//! with a canned response.
//!
//! The proxy reads one HTTP request at a time from the client (headers and
//! a `Content-Length` body) and, by a seeded schedule, either forwards it to
//! the upstream server unchanged and relays the answer, or injects a fault
//! (see [`Fault`]). The request bytes are never altered: the client signed
//! them for the proxy's address, and moto recomputes the signature from the
//! `Host` header it receives, so a forwarded request is accepted.
//!
//! Threads are joined when the proxy (or server) is dropped.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a client connection may sit without a whole request before it is closed
/// (longer than ureq keeps an idle connection in its pool).
const CLIENT_IDLE: Duration = Duration::from_secs(60);

/// What the proxy does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Forward it and relay the whole answer.
    None,
    /// Close the connection without answering (nothing is forwarded).
    Drop,
    /// Hold the connection past the client's timeout, then close it (nothing is forwarded).
    Stall,
    /// Answer 500 InternalError (nothing is forwarded).
    Status500,
    /// Answer 503 ServiceUnavailable (nothing is forwarded).
    Status503,
    /// Answer 400 Throttling (nothing is forwarded).
    Throttle,
    /// Forward it (the server carries it out), relay the headers and half the body, close.
    Cut,
    /// Answer 400 InvalidParameterValue, "message too long" (nothing is forwarded).
    TooLong,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "forwarded",
            Fault::Drop => "drop",
            Fault::Stall => "stall",
            Fault::Status500 => "500",
            Fault::Status503 => "503",
            Fault::Throttle => "throttle",
            Fault::Cut => "cut",
            Fault::TooLong => "too-long",
        }
    }
}

/// How often each fault is injected, in percent of requests.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub drop: u32,
    pub stall: u32,
    pub status_500: u32,
    pub status_503: u32,
    pub throttle: u32,
    pub cut: u32,
    pub too_long: u32,
    /// How long a stalled connection is held.
    pub stall_for: Duration,
    /// Faults only for these API actions; every other call is forwarded.
    pub only: Option<&'static [&'static str]>,
}

impl Plan {
    /// No faults: a plain forwarding proxy.
    pub fn none() -> Plan {
        Plan {
            drop: 0,
            stall: 0,
            status_500: 0,
            status_503: 0,
            throttle: 0,
            cut: 0,
            too_long: 0,
            stall_for: Duration::ZERO,
            only: None,
        }
    }

    /// About a quarter of all requests fail, in every way.
    pub fn quarter(stall_for: Duration) -> Plan {
        Plan {
            drop: 4,
            stall: 3,
            status_500: 4,
            status_503: 4,
            throttle: 5,
            cut: 5,
            too_long: 0,
            stall_for,
            only: None,
        }
    }

    /// The fault for a roll in `0..100`.
    pub fn pick(&self, roll: u32) -> Fault {
        let mut edge = 0;
        for (share, fault) in [
            (self.drop, Fault::Drop),
            (self.stall, Fault::Stall),
            (self.status_500, Fault::Status500),
            (self.status_503, Fault::Status503),
            (self.throttle, Fault::Throttle),
            (self.cut, Fault::Cut),
            (self.too_long, Fault::TooLong),
        ] {
            edge += share;
            if roll < edge {
                return fault;
            }
        }
        Fault::None
    }
}

/// xorshift64*: small, seeded, good enough to spread faults.
#[derive(Debug)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One request the proxy saw, and what it did with it.
#[derive(Clone, Debug)]
pub struct Record {
    pub action: String,
    pub fault: Fault,
}

struct Shared {
    upstream: SocketAddr,
    plan: Plan,
    stop: AtomicBool,
    rng: Mutex<XorShift>,
    records: Mutex<Vec<Record>>,
    errors: AtomicU64,
}

/// A fault-injecting proxy on 127.0.0.1; stops (and joins its threads) when dropped.
pub struct FaultProxy {
    pub url: String,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream_url` (`http://127.0.0.1:PORT`).
    pub fn start(upstream_url: &str, seed: u64, plan: Plan) -> FaultProxy {
        let authority = upstream_url
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .trim_end_matches('/');
        let upstream: SocketAddr = authority.parse().expect("upstream is IP:PORT");
        assert!(
            upstream.ip().is_loopback(),
            "the proxy only talks to loopback"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream,
            plan,
            stop: AtomicBool::new(false),
            rng: Mutex::new(XorShift::new(seed)),
            records: Mutex::new(Vec::new()),
            errors: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(listener, &shared))
        };
        FaultProxy {
            url,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Every request seen so far.
    pub fn records(&self) -> Vec<Record> {
        self.shared.records.lock().unwrap().clone()
    }

    /// Requests per fault kind (`forwarded` for the ones that went through).
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        for r in self.records() {
            *counts.entry(r.fault.name()).or_default() += 1;
        }
        counts
    }

    /// Faults injected (all kinds but `forwarded`).
    pub fn faults(&self) -> u64 {
        self.records()
            .iter()
            .filter(|r| r.fault != Fault::None)
            .count() as u64
    }

    /// Upstream failures that were not injected (moto unreachable, say).
    pub fn upstream_errors(&self) -> u64 {
        self.shared.errors.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: &Arc<Shared>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = shared.clone();
                connections.push(std::thread::spawn(move || serve_client(stream, &shared)));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
        let (done, running): (Vec<_>, Vec<_>) =
            connections.into_iter().partition(|h| h.is_finished());
        for h in done {
            let _ = h.join();
        }
        connections = running;
    }
    for h in connections {
        let _ = h.join();
    }
}

/// One client connection: requests one after another (keep-alive), until a fault closes it.
fn serve_client(mut client: TcpStream, shared: &Shared) {
    let _ = client.set_nonblocking(false);
    let mut pending = Vec::new();
    loop {
        let Some(request) = read_message(&mut client, &mut pending, &shared.stop, CLIENT_IDLE)
        else {
            return;
        };
        let action = action_of(&request);
        let fault = {
            let roll = shared.rng.lock().unwrap().below(100) as u32;
            match shared.plan.only {
                Some(actions) if !actions.contains(&action.as_str()) => Fault::None,
                _ => shared.plan.pick(roll),
            }
        };
        shared
            .records
            .lock()
            .unwrap()
            .push(Record { action, fault });
        let keep_open = match fault {
            Fault::Drop => false,
            Fault::Stall => {
                let until = Instant::now() + shared.plan.stall_for;
                while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                false
            }
            Fault::Status500 | Fault::Status503 | Fault::Throttle | Fault::TooLong => {
                let _ = client.write_all(&error_response(fault, &request));
                false
            }
            Fault::None | Fault::Cut => match forward(shared, &request) {
                Some(answer) => {
                    if fault == Fault::Cut {
                        let cut = answer.head.len() + answer.body_len / 2;
                        let _ = client.write_all(&answer.bytes[..cut]);
                        false
                    } else {
                        let _ = client.write_all(&answer.bytes);
                        !answer.close
                    }
                }
                None => {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                    false
                }
            },
        };
        if !keep_open {
            let _ = client.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// A whole HTTP message: its bytes, where the head ends and how long the body is.
pub struct Message {
    pub bytes: Vec<u8>,
    pub head: Vec<u8>,
    pub body_len: usize,
    /// The sender said `Connection: close`.
    pub close: bool,
}

impl Message {
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.head.len()..self.head.len() + self.body_len]
    }

    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        String::from_utf8_lossy(&self.head)
            .lines()
            .skip(1)
            .find_map(|line| {
                let (k, v) = line.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
    }
}

/// Reads one HTTP message (request or response). `pending` keeps bytes read past
/// its end. `None` at end of stream, on a read error, on `stop`, or when no
/// whole message came within `give_up`.
pub fn read_message(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    stop: &AtomicBool,
    give_up: Duration,
) -> Option<Message> {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let started = Instant::now();
    let mut buf = [0u8; 16 * 1024];
    let mut head_end = None;
    let mut body_len = 0;
    let mut chunked = false;
    let mut until_eof = false;
    loop {
        if head_end.is_none()
            && let Some(i) = find(pending, b"\r\n\r\n")
        {
            let head = String::from_utf8_lossy(&pending[..i + 4]).to_ascii_lowercase();
            for line in head.lines().skip(1) {
                if let Some((k, v)) = line.split_once(':') {
                    match k.trim() {
                        "content-length" => body_len = v.trim().parse().unwrap_or(0),
                        "transfer-encoding" => chunked = v.contains("chunked"),
                        _ => {}
                    }
                }
            }
            // A response without a length runs to the end of the stream.
            until_eof = head.starts_with("http/") && !chunked && !head.contains("content-length");
            head_end = Some(i + 4);
        }
        if let Some(h) = head_end {
            let end = if chunked {
                // The last chunk: "0" on a line of its own, then an empty line.
                find(&pending[h - 2..], b"\r\n0\r\n\r\n").map(|i| h - 2 + i + 7)
            } else if !until_eof && pending.len() >= h + body_len {
                Some(h + body_len)
            } else {
                None
            };
            if let Some(end) = end {
                let bytes: Vec<u8> = pending.drain(..end).collect();
                return Some(message(bytes, h, false));
            }
        }
        if stop.load(Ordering::SeqCst) || started.elapsed() > give_up {
            return None;
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                return match (head_end, until_eof) {
                    (Some(h), true) => Some(message(std::mem::take(pending), h, true)),
                    _ => None,
                };
            }
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
}

fn message(bytes: Vec<u8>, head_len: usize, closed: bool) -> Message {
    let head = bytes[..head_len].to_vec();
    let close = closed
        || String::from_utf8_lossy(&head)
            .to_ascii_lowercase()
            .contains("connection: close");
    Message {
        body_len: bytes.len() - head_len,
        close,
        head,
        bytes,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends the request unchanged to the upstream server on a new connection; its whole answer.
fn forward(shared: &Shared, request: &Message) -> Option<Message> {
    let mut upstream = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5)).ok()?;
    upstream.write_all(&request.bytes).ok()?;
    let mut pending = Vec::new();
    read_message(
        &mut upstream,
        &mut pending,
        &shared.stop,
        Duration::from_secs(30),
    )
}

/// The API action a request names (query `Action=` or JSON `x-amz-target`).
fn action_of(request: &Message) -> String {
    if let Some(target) = request.header("x-amz-target") {
        return target.trim_start_matches("AmazonSQS.").to_string();
    }
    let body = String::from_utf8_lossy(request.body());
    body.split('&')
        .find_map(|p| p.strip_prefix("Action="))
        .unwrap_or("?")
        .to_string()
}

/// An error answer in the protocol the request used.
fn error_response(fault: Fault, request: &Message) -> Vec<u8> {
    let (status, reason, code, kind) = match fault {
        Fault::Status500 => (500, "Internal Server Error", "InternalError", "Receiver"),
        Fault::Status503 => (503, "Service Unavailable", "ServiceUnavailable", "Receiver"),
        Fault::TooLong => (400, "Bad Request", "InvalidParameterValue", "Sender"),
        _ => (400, "Bad Request", "Throttling", "Sender"),
    };
    let json = request
        .header("content-type")
        .is_some_and(|c| c.contains("amz-json"));
    let (content_type, body, extra) = if json {
        (
            "application/x-amz-json-1.0",
            format!(
                r#"{{"__type":"com.amazonaws.sqs#{code}","message":"injected by the test proxy"}}"#
            ),
            format!("x-amzn-query-error: {code};{kind}\r\n"),
        )
    } else {
        (
            "text/xml",
            format!(
                "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>\
                 <Message>injected by the test proxy</Message></Error><RequestId>proxy-fault</RequestId></ErrorResponse>"
            ),
            String::new(),
        )
    };
    canned(status, reason, content_type, &extra, body.as_bytes())
}

/// An HTTP/1.1 answer that closes the connection.
pub fn canned(status: u16, reason: &str, content_type: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A server on 127.0.0.1 that answers every request with the same bytes;
/// stops (and joins its threads) when dropped.
pub struct CannedServer {
    pub url: String,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    acceptor: Option<JoinHandle<()>>,
}

impl CannedServer {
    pub fn start(response: Vec<u8>) -> CannedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let acceptor = {
            let (stop, served) = (stop.clone(), served.clone());
            std::thread::spawn(move || {
                let response = Arc::new(response);
                let mut connections = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let (stop, served, response) =
                                (stop.clone(), served.clone(), response.clone());
                            connections.push(std::thread::spawn(move || {
                                let _ = stream.set_nonblocking(false);
                                let mut pending = Vec::new();
                                if read_message(&mut stream, &mut pending, &stop, CLIENT_IDLE)
                                    .is_some()
                                {
                                    served.fetch_add(1, Ordering::SeqCst);
                                    let _ = stream.write_all(&response);
                                }
                                let _ = stream.shutdown(std::net::Shutdown::Both);
                            }));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                for h in connections {
                    let _ = h.join();
                }
            })
        };
        CannedServer {
            url,
            stop,
            served,
            acceptor: Some(acceptor),
        }
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for CannedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}
