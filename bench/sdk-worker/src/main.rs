//! A drain worker on the official SDK, for `make bench`: receive up to 10
//! requests at a time, run the handler for each under a semaphore of
//! `WORKERS` (`tokio::process`, the body on stdin), send a completion, delete
//! the request; exit when a receive returns nothing and no handler runs.
//!
//! `sdk-worker --check-partitions REGION...` instead prints, for each region,
//! the SQS endpoint the SDK's own resolver gives, plain, FIPS, dual-stack
//! and both (`REGION VARIANT URL`, or `REGION VARIANT error`), for
//! `bench/check-partitions.sh` to compare with `sqs_archive credentials`.
//!
//! Environment: `REQUEST_QUEUE_URL`, `COMPLETION_QUEUE_URL`, `WORKERS` (4),
//! `WAIT_TIME_SECONDS` (0: the long poll of each receive),
//! `AWS_ENDPOINT_URL`, the usual AWS credentials and region; the handler's
//! argv follows on the command line. Prints `summary: succeeded=N cpu=Ss
//! peak_rss=KKiB` on stderr, read from /proc/self like `poll_messages` does.

use std::process::Stdio;
use std::sync::Arc;

use aws_sdk_sqs::Client;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// The variants in the order `bench/check-partitions.sh` asks for them.
const VARIANTS: [(&str, bool, bool); 4] = [
    ("plain", false, false),
    ("fips", true, false),
    ("dualstack", false, true),
    ("fips+dualstack", true, true),
];

async fn check_partitions(regions: &[String]) -> Result<(), Failure> {
    use aws_sdk_sqs::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    let resolver = DefaultResolver::new();
    for region in regions {
        for (name, fips, dual_stack) in VARIANTS {
            let params = Params::builder()
                .region(region.clone())
                .use_fips(fips)
                .use_dual_stack(dual_stack)
                .build()?;
            match resolver.resolve_endpoint(&params).await {
                Ok(endpoint) => println!("{region} {name} {}", endpoint.url()),
                Err(_) => println!("{region} {name} error"),
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--check-partitions") {
        return check_partitions(&args[1..]).await;
    }
    let request_queue = std::env::var("REQUEST_QUEUE_URL")?;
    let completion_queue = std::env::var("COMPLETION_QUEUE_URL")?;
    let workers: usize = std::env::var("WORKERS").ok().and_then(|w| w.parse().ok()).unwrap_or(4);
    let wait: i32 = std::env::var("WAIT_TIME_SECONDS").ok().and_then(|w| w.parse().ok()).unwrap_or(0);
    let handler: Vec<String> = std::env::args().skip(1).collect();
    let handler = Arc::new(handler);
    let config = aws_config::load_from_env().await;
    let client = Client::new(&config);
    let permits = Arc::new(Semaphore::new(workers));
    let mut running = JoinSet::new();
    let mut succeeded = 0u64;
    loop {
        let received = client
            .receive_message()
            .queue_url(&request_queue)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .visibility_timeout(120)
            .send()
            .await?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            // Handlers still running may put work back; drain them, then look once more.
            if running.is_empty() {
                break;
            }
            while let Some(done) = running.join_next().await {
                succeeded += u64::from(done??);
            }
            continue;
        }
        for message in messages {
            let permit = permits.clone().acquire_owned().await?;
            let (client, handler) = (client.clone(), handler.clone());
            let (request_queue, completion_queue) = (request_queue.clone(), completion_queue.clone());
            running.spawn(async move {
                let ok = handle(&client, &handler, &request_queue, &completion_queue, message).await;
                drop(permit);
                ok
            });
            // Reap what has finished so the set stays small.
            while let Some(done) = running.try_join_next() {
                succeeded += u64::from(done??);
            }
        }
    }
    let (cpu, rss) = own_usage();
    eprintln!("summary: succeeded={succeeded} cpu={cpu:.3}s peak_rss={rss}KiB");
    Ok(())
}

async fn handle(
    client: &Client,
    handler: &[String],
    request_queue: &str,
    completion_queue: &str,
    message: aws_sdk_sqs::types::Message,
) -> Result<bool, Failure> {
    let body = message.body.clone().unwrap_or_default();
    let mut child = Command::new(&handler[0])
        .args(&handler[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let writer = async move {
        let _ = stdin.write_all(body.as_bytes()).await;
    };
    let (_, output) = tokio::join!(writer, child.wait_with_output());
    let output = output?;
    if !output.status.success() {
        return Ok(false);
    }
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    let completion = serde_json::json!({
        "success": true,
        "request_message_id": message.message_id,
        "result": result,
    });
    client
        .send_message()
        .queue_url(completion_queue)
        .message_body(completion.to_string())
        .send()
        .await?;
    client
        .delete_message()
        .queue_url(request_queue)
        .receipt_handle(message.receipt_handle.unwrap_or_default())
        .send()
        .await?;
    Ok(true)
}

/// CPU seconds (user + system) and peak RSS in KiB of this process, from /proc/self.
fn own_usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat[stat.rfind(')').map_or(0, |i| i + 1)..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let cpu = (ticks(11) + ticks(12)) as f64 / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu, rss)
}
