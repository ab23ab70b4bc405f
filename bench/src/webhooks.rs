//! The `webhooks` benchmark: how soon a webhook gets an event, how fast a backlog drains, and what
//! delivering costs the pushes.
//!
//! A node started in this process and a signature-checking receiver (`arca_tests`'s, on
//! 127.0.0.1) measure:
//! - **limit**: signed POSTs of one event's bytes sent one after another straight to the receiver
//!   from one client: the rate a sender that posts in order (as Arca does, per webhook) can reach;
//! - **latency**: `--latency-events` pushes, one every `1 / --rate` s, each timed from the push's
//!   request to its event's arrival (p50, p99, max), beside the pushes' own round trips;
//! - **backlog**: the webhook disabled while `--events` pushes queue (16 pushers), then enabled:
//!   the time until the last arrives, as events/s against the limit;
//! - **cost**: pushes/s (16 pushers, `--cost-pushes` each) with no webhook and with one webhook
//!   being given every push.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use arca_tests::webhook_receiver::Receiver;
use serde::Serialize;
use serde_json::json;

use crate::common::{self, fan_out};
use crate::report::Latency;

/// The secret the receiver verifies with.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Concurrent pushers.
const PUSHERS: usize = 16;
/// The longest a phase may wait for deliveries.
const PATIENCE: Duration = Duration::from_secs(1800);

/// Options of `arca-bench webhooks`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Events queued while the webhook is disabled, then drained.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Pushes timed from request to their event's arrival.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    latency_events: u64,
    /// Pushes a second while timing latency.
    #[arg(long, default_value_t = 50.0, value_parser = common::positive)]
    rate: f64,
    /// Pushes per phase when measuring the cost to pushes.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    cost_pushes: u64,
    /// Directory under which the node's data directory is made (and removed at the end).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

/// What the benchmark measured.
#[derive(Debug, Serialize)]
struct Report {
    limit_posts_per_second: f64,
    latency: Latency,
    push_latency: Latency,
    backlog_events: u64,
    backlog_seconds: f64,
    backlog_events_per_second: f64,
    pushes_per_second_without: f64,
    pushes_per_second_with: f64,
}

/// The node and how to talk to it.
struct Bench {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Bench {
    /// Pushes a file; when its request was sent and when its answer came.
    async fn push(&self, path: &str) -> anyhow::Result<(Instant, Instant)> {
        let sent = Instant::now();
        let response = self
            .http
            .put(format!("{}/generic/hooks/{path}", self.base))
            .bearer_auth(&self.token)
            .body(format!("bytes of {path}"))
            .send()
            .await?;
        ensure!(
            response.status().as_u16() == 201,
            "push {path}: {}",
            response.status()
        );
        Ok((sent, Instant::now()))
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<()> {
        let response = self
            .http
            .request(method, format!("{}/api/v1/{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        Ok(())
    }

    /// Pushes/s of `count` pushes under `prefix` from [`PUSHERS`] pushers.
    async fn push_rate(self: &Arc<Self>, prefix: &str, count: u64) -> anyhow::Result<f64> {
        let started = Instant::now();
        let bench = self.clone();
        let prefix = prefix.to_string();
        fan_out(PUSHERS, count, move |i| {
            let (bench, prefix) = (bench.clone(), prefix.clone());
            async move {
                bench.push(&format!("{prefix}/{i}/f.bin")).await?;
                Ok(1)
            }
        })
        .await?;
        Ok(count as f64 / started.elapsed().as_secs_f64())
    }
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let (temp, root) = common::temp_root(&args.dir)?;
    let node = arca_node::start(arca_node::config::Config {
        http: "127.0.0.1:0".parse()?,
        quic: "127.0.0.1:0".parse()?,
        data_dir: root.join("node"),
        webhook_retry_base_ms: 50,
        webhook_retry_max_ms: 1000,
        ..Default::default()
    })
    .await
    .context("starting the node")?;
    let bench = Arc::new(Bench {
        base: format!("http://{}", node.http_addr),
        token: common::admin_token(&node).await?,
        http: reqwest::Client::new(),
    });
    common::create_registry(&bench.http, &bench.base, &bench.token, "hooks", "GENERIC").await?;
    let receiver = Receiver::start(SECRET).await?;

    let pushes_per_second_without = bench.push_rate("cost-without", args.cost_pushes).await?;
    let limit_posts_per_second = limit(&receiver, args.cost_pushes).await?;
    receiver.seen().taken.clear();
    receiver.seen().taken_at.clear();

    bench
        .api(
            reqwest::Method::POST,
            "webhooks",
            json!({"name": "bench", "url": receiver.url, "secret": SECRET, "registry": "hooks"}),
        )
        .await?;
    let (latency, push_latency) =
        latency(&bench, &receiver, args.latency_events, args.rate).await?;

    bench
        .api(
            reqwest::Method::PATCH,
            "webhooks/bench",
            json!({"enabled": false}),
        )
        .await?;
    let before = receiver.seen().taken.len();
    bench.push_rate("backlog", args.events).await?;
    let started = Instant::now();
    bench
        .api(
            reqwest::Method::PATCH,
            "webhooks/bench",
            json!({"enabled": true}),
        )
        .await?;
    let expected = before + args.events as usize;
    receiver
        .wait_for(PATIENCE, |seen| seen.taken.len() >= expected)
        .await?;
    let backlog_seconds = started.elapsed().as_secs_f64();

    let pushes_per_second_with = bench.push_rate("cost-with", args.cost_pushes).await?;
    let posted = receiver.seen().taken.len();
    ensure!(receiver.seen().forged == 0, "forged posts");
    node.shutdown().await?;
    drop(temp);

    let report = Report {
        limit_posts_per_second,
        latency,
        push_latency,
        backlog_events: args.events,
        backlog_seconds,
        backlog_events_per_second: args.events as f64 / backlog_seconds,
        pushes_per_second_without,
        pushes_per_second_with,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report, posted);
    }
    Ok(())
}

/// Signed POSTs/s of a pushed event's bytes straight to the receiver, one after another.
async fn limit(receiver: &Receiver, posts: u64) -> anyhow::Result<f64> {
    let event = json!({
        "specversion": "1.0", "id": "0", "source": "/registries/hooks",
        "type": "io.arca.artifact.pushed", "time": "2026-12-06T10:00:00.000Z",
        "subject": "/generic/hooks/limit/0/f.bin", "datacontenttype": "application/json",
        "data": {"id": 0, "at": 0, "actor": "admin", "actor_id": "tok_000000000000",
                 "source_ip": "127.0.0.1", "action": "PUT /generic/{registry}/{*path}",
                 "registry": "hooks", "target": "/generic/hooks/limit/0/f.bin", "result": 201,
                 "detail": null},
    });
    let key = arca_node::webhooks::signing_key(SECRET).map_err(anyhow::Error::msg)?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let started = Instant::now();
    for i in 0..posts {
        let mut event = event.clone();
        event["id"] = json!(i.to_string());
        let body = serde_json::to_vec(&event)?;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let id = i.to_string();
        let response = http
            .post(&receiver.url)
            .header(
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            )
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                arca_node::webhooks::signature(&key, &id, timestamp, &body),
            )
            .body(body)
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "limit post: {}",
            response.status()
        );
    }
    Ok(posts as f64 / started.elapsed().as_secs_f64())
}

/// Pushes `count` files at `rate` a second and times each from the push's request to its event's
/// arrival (the event is committed with the push, so it may arrive before the push's answer); also
/// the pushes' own round trips.
async fn latency(
    bench: &Arc<Bench>,
    receiver: &Receiver,
    count: u64,
    rate: f64,
) -> anyhow::Result<(Latency, Latency)> {
    let mut round_trips = Vec::new();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut ticks = tokio::time::interval(interval);
    for i in 0..count {
        ticks.tick().await;
        let path = format!("latency/{i}/f.bin");
        let (at, answered) = bench.push(&path).await?;
        round_trips.push(answered.duration_since(at).as_micros() as u32);
        sent.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(format!("/generic/hooks/{path}"), at);
    }
    receiver
        .wait_for(PATIENCE, |seen| seen.taken.len() >= count as usize)
        .await?;
    let sent = sent.lock().unwrap_or_else(|p| p.into_inner());
    let seen = receiver.seen();
    let mut micros = Vec::new();
    for (event, arrived) in seen.taken.iter().zip(&seen.taken_at) {
        let Some(sent_at) = event["subject"].as_str().and_then(|s| sent.get(s)) else {
            continue;
        };
        micros.push(arrived.saturating_duration_since(*sent_at).as_micros() as u32);
    }
    Ok((
        Latency::from_micros(micros).context("no event arrived")?,
        Latency::from_micros(round_trips).context("no push")?,
    ))
}

fn print_table(report: &Report, posted: usize) {
    println!(
        "webhooks: one node, one webhook, a receiver checking every signature ({posted} events taken)"
    );
    println!();
    println!("| measure | figure |");
    println!("|---|---|");
    println!(
        "| limit: signed POSTs one after another, straight to the receiver | {:.0} /s |",
        report.limit_posts_per_second
    );
    let row = |what: &str, l: &Latency| {
        println!(
            "| {what} ({} pushes) | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
            l.requests, l.p50_ms, l.p99_ms, l.max_ms
        );
    };
    row("push sent -> its event at the receiver", &report.latency);
    row(
        "push sent -> push answered (for comparison)",
        &report.push_latency,
    );
    println!(
        "| {} queued events drained after enabling | {:.1} s, {:.0} events/s ({:.2} of the limit) |",
        report.backlog_events,
        report.backlog_seconds,
        report.backlog_events_per_second,
        report.backlog_events_per_second / report.limit_posts_per_second
    );
    println!(
        "| pushes/s, 16 pushers: no webhook / one webhook given every push | {:.0} / {:.0} ({:.2}) |",
        report.pushes_per_second_without,
        report.pushes_per_second_with,
        report.pushes_per_second_with / report.pushes_per_second_without
    );
}
