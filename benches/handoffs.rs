//! `cargo bench --bench handoffs`: hand-offs between two provinces, end to end, against raw
//! JetStream over the same link in the same run (this machine is shared and noisy: compare the
//! ratios).
//!
//! A hand-off from 南京市玄武区 (320102, Jiangsu) to 临泉县 (341221, Anhui), both leaves of the exchange, is
//! measured from the moment the origin's case worker calls `RequestHandoff` until the origin has
//! recorded the acceptance (its `handoff_completed` event, written in the commit that records it,
//! reaches the bench). Anhui's case worker is the bench itself: it watches Anhui's receipts go out
//! and calls `AcceptHandoff` at once. The path crosses the link twice (request there, acceptance
//! back) with the case service's reservation at the origin and its take-in at the destination in
//! between; the baseline is a raw JetStream round trip over the same link — a publish with an
//! awaited ack into Anhui's stream, a pull consumer there publishing it back into Jiangsu's
//! stream, a pull consumer there — at the same concurrency.
//!
//! 1. Latency: `NOL_BENCH_HANDOFFS` (1,000) hand-offs one at a time; raw round trips the same.
//! 2. Throughput: as many again with `NOL_BENCH_IN_FLIGHT` (8) lanes; raw round trips the same.
//!
//! Setup (pupils registered and cases opened, 16 calls in flight) is not measured.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use nol_auth::Role;
use nol_events::{EventEnvelope, HANDOFF_COMPLETED, HANDOFF_RECEIVED, SubjectScheme};
use nol_proto::v1::{AcceptHandoffRequest, HandoffReceived, RequestHandoffRequest};
use nol_region::RegionCode;
use nol_stack::{Clients, Stack, StackSettings, postgres};
use prost::Message;

const SETUP_IN_FLIGHT: usize = 16;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let handoffs: usize = env_number("NOL_BENCH_HANDOFFS", 1_000);
    let in_flight: usize = env_number("NOL_BENCH_IN_FLIGHT", 8).max(1);
    let dir = tempfile::tempdir()?;
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let prefix = format!("h{id}");
    let mut settings = StackSettings::bench(env!("CARGO_BIN_EXE_nol").into(), dir.path().to_path_buf(), &prefix);
    // Eight services under load stay inside PostgreSQL's 100 connections (`NOL_BENCH_POOL`).
    let pool = env_number("NOL_BENCH_POOL", 12).to_string();
    settings.extra_env.insert("NOL_DATABASE_POOL_SIZE".into(), pool);
    let mut stack = Stack::start(settings).await?;
    println!("Not One Less hand-off benchmark ({})", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
    println!();
    let result = run(&stack, &prefix, handoffs, in_flight).await;
    stack.stop().await?;
    for province in ["320000", "340000"] {
        postgres::drop_database(&postgres::default_admin_url(), &format!("nol_{prefix}_{province}")).await?;
    }
    result
}

async fn run(stack: &Stack, prefix: &str, handoffs: usize, in_flight: usize) -> anyhow::Result<()> {
    let hour = Duration::from_secs(3600);
    let xuanwu = Clients::for_province(
        stack.province("320000"),
        &stack.keys.token("bench-origin", RegionCode::parse("320102")?, Role::Caseworker, hour)?,
    )?;
    let linquan = Clients::for_province(
        stack.province("340000"),
        &stack.keys.token("bench-destination", RegionCode::parse("341221")?, Role::Caseworker, hour)?,
    )?;
    xuanwu.ensure_school("3201020001", "南京市玄武区示范小学", "320102").await?;

    let started = Instant::now();
    let cases = xuanwu.open_cases(2 * handoffs, "3201020001", "341221", SETUP_IN_FLIGHT).await?;
    println!(
        "setup: {} children of 341221 registered at 3201020001 with a case open, in {:.1}s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    let (sequential, concurrent) = cases.split_at(handoffs);

    let raw = RawLink::start(stack, prefix).await?;
    let handoff = HandoffPath::start(stack, prefix, &xuanwu, &linquan).await?;

    println!();
    println!("1. one at a time, {handoffs} each:");
    let raw_one = raw.round_trips(handoffs, 1).await?;
    let path_one = handoff.run(sequential, 1).await?;
    report(&raw_one, &path_one);
    println!();
    println!("2. {in_flight} in flight, {handoffs} each:");
    let raw_many = raw.round_trips(handoffs, in_flight).await?;
    let path_many = handoff.run(concurrent, in_flight).await?;
    report(&raw_many, &path_many);
    let retries = handoff.retries.lock().map(|retries| *retries).unwrap_or_default();
    println!("  requests answered UNAVAILABLE and tried again (both runs): {retries}");
    let refused = handoff.refused.lock().map(|refused| *refused).unwrap_or_default();
    anyhow::ensure!(refused == 0, "{refused} accepts were refused");
    Ok(())
}

fn report(raw: &Figures, path: &Figures) {
    println!(
        "  raw JetStream round trip over the link:   p50 {:>7.2} ms  p99 {:>7.2} ms  {:>7.0} /s",
        raw.p50, raw.p99, raw.rate
    );
    println!(
        "  hand-off, request → origin sees accepted: p50 {:>7.2} ms  p99 {:>7.2} ms  {:>7.0} /s",
        path.p50, path.p99, path.rate
    );
    println!(
        "  ratio: p50 {:.1}×, p99 {:.1}×, throughput {:.2}",
        path.p50 / raw.p50,
        path.p99 / raw.p99,
        path.rate / raw.rate
    );
}

struct Figures {
    p50: f64,
    p99: f64,
    rate: f64,
}

impl Figures {
    fn from(mut latencies: Vec<f64>, elapsed: Duration) -> Figures {
        latencies.sort_by(f64::total_cmp);
        let at = |fraction: f64| latencies[((latencies.len() as f64 - 1.0) * fraction).round() as usize];
        Figures { p50: at(0.50), p99: at(0.99), rate: latencies.len() as f64 / elapsed.as_secs_f64() }
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|text| text.parse().ok()).unwrap_or(default)
}

async fn jetstream(stack: &Stack, index: usize) -> anyhow::Result<async_nats::jetstream::Context> {
    let client =
        nol_backbone::connect_nats(&stack.nats[index].client_url(), "bench", stack.nats[index].client_tls()).await?;
    Ok(async_nats::jetstream::new(client))
}

/// Arrivals by key, and a signal each time one arrives.
#[derive(Clone)]
struct Arrivals {
    arrived: Arc<Mutex<HashMap<String, Instant>>>,
    signal: tokio::sync::watch::Sender<u64>,
}

impl Arrivals {
    fn new() -> Arrivals {
        Arrivals { arrived: Default::default(), signal: tokio::sync::watch::channel(0).0 }
    }

    fn arrive(&self, key: String) {
        if let Ok(mut arrived) = self.arrived.lock() {
            arrived.entry(key).or_insert_with(Instant::now);
        }
        self.signal.send_modify(|count| *count += 1);
    }

    /// Waits (up to 60 s) until `key` has arrived; returns when it did.
    async fn wait(&self, key: &str) -> anyhow::Result<Instant> {
        let mut signal = self.signal.subscribe();
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Some(at) = self.arrived.lock().ok().and_then(|arrived| arrived.get(key).copied()) {
                    return Ok(at);
                }
                signal.changed().await?;
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("{key} did not arrive within 60 s"))?
    }
}

/// The raw baseline: Jiangsu publishes into Anhui's stream, a pull consumer there publishes each
/// message back into Jiangsu's stream, a pull consumer there marks it arrived.
struct RawLink {
    jiangsu: async_nats::jetstream::Context,
    ping: String,
    arrivals: Arrivals,
}

impl RawLink {
    async fn start(stack: &Stack, prefix: &str) -> anyhow::Result<RawLink> {
        let (jiangsu, anhui) = (jetstream(stack, 0).await?, jetstream(stack, 1).await?);
        let ping = format!("{prefix}.340000.xp.320000.bench.ping.341221");
        let pong = format!("{prefix}.320000.xp.340000.bench.pong.320102");
        let consumer = |js: async_nats::jetstream::Context, stream: String, subject: String| async move {
            let stream = js.get_stream(stream).await?;
            let consumer = stream
                .create_consumer(async_nats::jetstream::consumer::pull::Config {
                    filter_subject: subject,
                    ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                    ..Default::default()
                })
                .await?;
            Ok::<_, anyhow::Error>(consumer.messages().await?)
        };
        let mut at_anhui = consumer(anhui.clone(), format!("{}_340000", prefix.to_uppercase()), ping.clone()).await?;
        let mut at_jiangsu =
            consumer(jiangsu.clone(), format!("{}_320000", prefix.to_uppercase()), pong.clone()).await?;
        tokio::spawn(async move {
            while let Some(Ok(message)) = at_anhui.next().await {
                let sent = anhui.publish(pong.clone(), message.payload.clone()).await;
                if let Ok(ack) = sent {
                    let _ = ack.await;
                }
            }
        });
        let arrivals = Arrivals::new();
        let arrived = arrivals.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = at_jiangsu.next().await {
                arrived.arrive(String::from_utf8_lossy(&message.payload).into_owned());
            }
        });
        Ok(RawLink { jiangsu, ping, arrivals })
    }

    async fn round_trips(&self, count: usize, in_flight: usize) -> anyhow::Result<Figures> {
        let started = Instant::now();
        let latencies: Vec<anyhow::Result<f64>> = futures::stream::iter((0..count).map(|_| async move {
            let key = uuid::Uuid::new_v4().to_string();
            let sent = Instant::now();
            self.jiangsu.publish(self.ping.clone(), key.clone().into()).await?.await?;
            let back = self.arrivals.wait(&key).await?;
            Ok(back.duration_since(sent).as_secs_f64() * 1000.0)
        }))
        .buffer_unordered(in_flight)
        .collect()
        .await;
        let elapsed = started.elapsed();
        Ok(Figures::from(latencies.into_iter().collect::<anyhow::Result<_>>()?, elapsed))
    }
}

/// The project's path: the origin's request, Anhui's receipt answered at once by the bench's
/// accept, the origin's record of the acceptance.
struct HandoffPath {
    xuanwu: Clients,
    completed: Arrivals,
    refused: Arc<Mutex<u64>>,
    /// Requests answered UNAVAILABLE and tried again.
    retries: Arc<Mutex<u64>>,
}

impl HandoffPath {
    async fn start(stack: &Stack, prefix: &str, xuanwu: &Clients, linquan: &Clients) -> anyhow::Result<HandoffPath> {
        let scheme = SubjectScheme::new(prefix)?;
        let (origin, destination) = (RegionCode::parse("320102")?, RegionCode::parse("341221")?);
        // Core subscriptions see what the services publish on their own province's server.
        let anhui =
            nol_backbone::connect_nats(&stack.nats[1].client_url(), "bench-receipts", stack.nats[1].client_tls())
                .await?;
        let mut receipts = anhui.subscribe(scheme.cross(HANDOFF_RECEIVED, &destination, &origin)).await?;
        let jiangsu =
            nol_backbone::connect_nats(&stack.nats[0].client_url(), "bench-completions", stack.nats[0].client_tls())
                .await?;
        let mut completions = jiangsu.subscribe(scheme.local(HANDOFF_COMPLETED, &origin)).await?;
        let refused = Arc::new(Mutex::new(0u64));
        let (accept_with, refusals) = (linquan.transfer.clone(), refused.clone());
        tokio::spawn(async move {
            while let Some(message) = receipts.next().await {
                let Ok(envelope) = EventEnvelope::decode(message.payload.as_ref()) else { continue };
                let Ok(receipt) = HandoffReceived::decode(envelope.payload.as_ref()) else { continue };
                let (mut transfer, refusals) = (accept_with.clone(), refusals.clone());
                tokio::spawn(async move {
                    let accepted =
                        transfer.accept_handoff(AcceptHandoffRequest { handoff_id: receipt.handoff_id }).await;
                    if let Err(status) = accepted {
                        eprintln!("accept refused: {status:?}");
                        if let Ok(mut refused) = refusals.lock() {
                            *refused += 1;
                        }
                    }
                });
            }
        });
        let completed = Arrivals::new();
        let arrived = completed.clone();
        tokio::spawn(async move {
            while let Some(message) = completions.next().await {
                if let Ok(envelope) = EventEnvelope::decode(message.payload.as_ref()) {
                    arrived.arrive(envelope.aggregate_id);
                }
            }
        });
        Ok(HandoffPath { xuanwu: xuanwu.clone(), completed, refused, retries: Default::default() })
    }

    async fn run(&self, cases: &[String], in_flight: usize) -> anyhow::Result<Figures> {
        let started = Instant::now();
        let latencies: Vec<anyhow::Result<f64>> = futures::stream::iter(cases.iter().map(|case_id| async move {
            let sent = Instant::now();
            // A case worker's client tries again when told the service is busy ("try again
            // shortly"); the retries are counted and the wait is part of the latency.
            let mut pause = Duration::from_millis(20);
            let handoff = loop {
                let request = RequestHandoffRequest {
                    case_id: case_id.clone(),
                    destination_region_code: "341221".into(),
                    reason: "家庭已返回户籍地".into(),
                    ..Default::default()
                };
                match self.xuanwu.transfer.clone().request_handoff(request).await {
                    Ok(response) => break response.into_inner().handoff.unwrap_or_default(),
                    Err(status)
                        if status.code() == tonic::Code::Unavailable && sent.elapsed() < Duration::from_secs(30) =>
                    {
                        if let Ok(mut retries) = self.retries.lock() {
                            *retries += 1;
                        }
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(500));
                    }
                    Err(status) => return Err(status.into()),
                }
            };
            let accepted = self.completed.wait(&handoff.handoff_id).await?;
            Ok(accepted.duration_since(sent).as_secs_f64() * 1000.0)
        }))
        .buffer_unordered(in_flight)
        .collect()
        .await;
        let elapsed = started.elapsed();
        Ok(Figures::from(latencies.into_iter().collect::<anyhow::Result<_>>()?, elapsed))
    }
}
