//! `cargo bench --bench exchange`: the national exchange with all 31 provinces.
//!
//! One hub (a nats-server of its own, no JetStream) and 31 province nats-servers (each its own
//! JetStream domain with its stream, linked to the hub as a leaf with its own user and the
//! production link permissions): real servers, real leaf links, on this machine. Each province is
//! played by a responder that speaks the protocol as the transfer service does — a durable pull
//! consumer on its stream, an inbox (event ids seen) so a redelivery has no second effect, every
//! cross-province message signed with the province's Ed25519 key and checked on arrival
//! (`nol_backbone::exchange`), the dossier and the child's summary sealed to the destination and
//! bound to the sender (`seal_from` / `open_from`):
//!
//! ```text
//! hand-off:   origin ─handoff_requested (dossier sealed)─► destination
//!             origin ◄─handoff_received, handoff_accepted── destination
//!             origin ─handoff_completed──────────────────► destination
//! assistance: owner ─assistance_requested (child sealed)─► helper
//!             owner ◄─assistance_answered (accepted)────── helper
//! ```
//!
//! Then the same with the real services for two of the 31 (`NOL_BENCH_EXCHANGE_REAL`, 400
//! operations, `NOL_BENCH_EXCHANGE_REAL_IN_FLIGHT`, 8; 0 skips it): see `with_real_provinces`.
//!
//! `NOL_BENCH_EXCHANGE_OPS` (10,000) operations over random pairs of provinces, half hand-offs,
//! half requests for help, `NOL_BENCH_EXCHANGE_IN_FLIGHT` (256) at a time. Timed: request sent →
//! the answer (acceptance) applied at the origin. Checked: every operation answered exactly once,
//! every hand-off's completion applied at its destination, no message refused. The baseline, in
//! the same run over the same servers and streams: a raw round trip (publish with awaited ack
//! into the other province's stream, its consumer publishing an answer back) without signature,
//! seal or inbox, at the same concurrency.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use nol_auth::Role;
use nol_backbone::exchange::{self, PeerDirectory};
use nol_events::{
    ASSISTANCE_ANSWERED, ASSISTANCE_ASKED, EventHeader, EventType, HANDOFF_ACCEPTED, HANDOFF_COMPLETED,
    HANDOFF_RECEIVED, HANDOFF_REQUESTED, SubjectScheme,
};
use nol_pii::{ExchangeSigningKey, ExchangeVerifyingKey, SealKeyPair, SealPublicKey};
use nol_proto::v1::{
    AssistanceAnswered, AssistanceAsked, ChildSummary, HandoffAccepted, HandoffCompleted, HandoffDossier,
    HandoffReceived, HandoffRequested,
};
use nol_proto::v1::{GetBackboneStatusRequest, RequestHandoffRequest};
use nol_region::RegionCode;
use nol_stack::nats::{NatsOptions, NatsServer, NatsTls, NatsUser};
use nol_stack::{Clients, Stack, StackKeys, StackSettings};
use prost::Message;
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// The 31 provincial-level regions of the mainland (GB/T 2260).
const PROVINCES: [&str; 31] = [
    "110000", "120000", "130000", "140000", "150000", "210000", "220000", "230000", "310000", "320000", "330000",
    "340000", "350000", "360000", "370000", "410000", "420000", "430000", "440000", "450000", "460000", "500000",
    "510000", "520000", "530000", "540000", "610000", "620000", "630000", "640000", "650000",
];

const PREFIX: &str = "sim";

struct Directory(HashMap<RegionCode, ExchangeVerifyingKey>);

impl PeerDirectory for Directory {
    fn verifying_key(&self, province: &RegionCode) -> Option<ExchangeVerifyingKey> {
        self.0.get(province).cloned()
    }
}

/// One province as the responder plays it.
struct Province {
    code: RegionCode,
    js: jetstream::Context,
    sign: ExchangeSigningKey,
    seal: SealKeyPair,
}

/// What every responder shares: the provinces, the keys, and the operations under way.
struct Simulation {
    scheme: SubjectScheme,
    provinces: Vec<Province>,
    directory: Directory,
    seal_keys: HashMap<RegionCode, SealPublicKey>,
    /// Operation id → when it was sent, and the permit that frees its in-flight slot.
    pending: Mutex<HashMap<String, (Instant, OwnedSemaphorePermit)>>,
    answered: Mutex<HashSet<String>>,
    latencies: Mutex<Vec<f64>>,
    doubled: AtomicU64,
    refused: AtomicU64,
    completed: AtomicU64,
    redelivered: AtomicU64,
    publish_failures: AtomicU64,
    /// Operations whose request could not be made (a refused RPC).
    failed: AtomicU64,
}

impl Simulation {
    fn is_responder(&self, code: &RegionCode) -> bool {
        self.provinces.iter().any(|province| province.code == code.province())
    }

    /// An operation that could not start: its slot back, counted as failed.
    fn give_up(&self, key: &str) {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(key);
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    fn province(&self, code: &RegionCode) -> &Province {
        let province = code.province();
        &self.provinces[self.provinces.iter().position(|known| known.code == province).unwrap_or_default()]
    }

    /// Signs and publishes a message from `from` to `to`, waiting for the destination stream's ack
    /// in the background.
    async fn send<M: Message>(&self, event_type: EventType, from: RegionCode, to: RegionCode, id: &str, payload: &M) {
        let subject = self.scheme.cross(event_type, &from, &to);
        let header = EventHeader {
            event_type,
            source_region: from,
            aggregate_type: "sim",
            aggregate_id: id,
            aggregate_sequence: 1,
            actor: "bench",
        };
        let envelope = nol_events::envelope(header, payload, chrono::Utc::now(), HashMap::new()).encode_to_vec();
        let sender = self.province(&from);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            exchange::SIGNATURE_HEADER,
            sender.sign.sign_base64(&exchange::signing_input(&subject, &envelope)).as_str(),
        );
        let signer = from.province();
        headers.insert(exchange::SIGNER_HEADER, signer.as_str());
        headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
        self.publish(&sender.js, subject, headers, envelope).await;
    }

    async fn publish(&self, js: &jetstream::Context, subject: String, headers: async_nats::HeaderMap, body: Vec<u8>) {
        match js.publish_with_headers(subject, headers, body.into()).await {
            Ok(ack) => {
                if ack.await.is_err() {
                    self.publish_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                self.publish_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// An operation's answer reached its origin: once, or it is counted as doubled.
    fn answer(&self, id: &str) {
        let sent = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(id);
        match sent {
            Some((started, _permit)) => {
                self.latencies
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(started.elapsed().as_secs_f64() * 1000.0);
                self.answered.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(id.to_owned());
            }
            None => {
                self.doubled.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One message arriving at province `index`'s stream.
    async fn handle(&self, index: usize, message: &jetstream::Message, inbox: &mut HashSet<String>) {
        let own = self.provinces[index].code;
        let subject = message.subject.as_str();
        // The raw baseline: no envelope, no signature, no inbox.
        if subject.ends_with(".raw.ping") || subject.ends_with(".raw.pong") {
            let mut tokens = subject.split('.');
            let origin = tokens.nth(3).unwrap_or_default().to_owned();
            let id = String::from_utf8_lossy(&message.payload).into_owned();
            if subject.ends_with(".raw.ping") {
                let pong = format!("{PREFIX}.{origin}.xp.{own}.raw.pong");
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
                self.publish(&self.provinces[index].js, pong, headers, message.payload.to_vec()).await;
            } else {
                self.answer(&id);
            }
            return;
        }
        let Ok(envelope) = nol_events::decode_envelope(&message.payload) else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if exchange::verify_with(&self.directory, subject, message.headers.as_ref(), &message.payload, Some(&envelope))
            .is_err()
        {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !inbox.insert(envelope.event_id.clone()) {
            self.redelivered.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let sender = RegionCode::parse(&envelope.source_region_code).unwrap_or(own);
        let kind = envelope.event_type.as_str();
        if HANDOFF_REQUESTED.matches(kind) {
            let Ok(request) = HandoffRequested::decode(envelope.payload.as_slice()) else { return };
            let dossier = self.provinces[index].seal.open_from(&request.sealed_dossier, sender.province().as_str());
            if dossier.is_err() {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let (id, origin) = (request.handoff_id.clone(), request.origin_region_code.clone());
            // Answered as the county addressed.
            let own = RegionCode::parse(&request.destination_region_code).unwrap_or(own);
            let received = HandoffReceived {
                handoff_id: id.clone(),
                origin_region_code: origin.clone(),
                destination_region_code: own.to_string(),
            };
            self.send(HANDOFF_RECEIVED, own, sender, &id, &received).await;
            let accepted = HandoffAccepted {
                handoff_id: id.clone(),
                case_id: request.case_id.clone(),
                origin_region_code: origin,
                destination_region_code: own.to_string(),
                accepted_by: format!("caseworker@{own}"),
                ..Default::default()
            };
            self.send(HANDOFF_ACCEPTED, own, sender, &id, &accepted).await;
        } else if HANDOFF_ACCEPTED.matches(kind) {
            let Ok(accepted) = HandoffAccepted::decode(envelope.payload.as_slice()) else { return };
            self.answer(&accepted.handoff_id);
            let completed = HandoffCompleted {
                handoff_id: accepted.handoff_id.clone(),
                case_id: accepted.case_id.clone(),
                origin_region_code: own.to_string(),
                destination_region_code: accepted.destination_region_code.clone(),
            };
            self.send(HANDOFF_COMPLETED, own, sender, &accepted.handoff_id, &completed).await;
        } else if HANDOFF_COMPLETED.matches(kind) {
            self.completed.fetch_add(1, Ordering::Relaxed);
            // From a province running the real services: the completion ends the timed operation,
            // keyed by the origin's case (known before the request was made).
            if !self.is_responder(&sender) {
                let Ok(completed) = HandoffCompleted::decode(envelope.payload.as_slice()) else { return };
                self.answer(&completed.case_id);
            }
        } else if ASSISTANCE_ASKED.matches(kind) {
            let Ok(asked) = AssistanceAsked::decode(envelope.payload.as_slice()) else { return };
            if self.provinces[index].seal.open_from(&asked.sealed_child, sender.province().as_str()).is_err() {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let own = RegionCode::parse(&asked.assisting_region_code).unwrap_or(own);
            let answered = AssistanceAnswered {
                assistance_id: asked.assistance_id.clone(),
                case_id: asked.case_id.clone(),
                owner_region_code: asked.owner_region_code.clone(),
                assisting_region_code: own.to_string(),
                state: 3,
                ..Default::default()
            };
            self.send(ASSISTANCE_ANSWERED, own, sender, &asked.assistance_id, &answered).await;
        } else if ASSISTANCE_ANSWERED.matches(kind) {
            let Ok(answered) = AssistanceAnswered::decode(envelope.payload.as_slice()) else { return };
            self.answer(&answered.assistance_id);
        }
        // Receipts need no answer.
    }

    /// Starts operation `id` from `origin` to `destination`.
    async fn start(&self, raw: bool, handoff: bool, origin: RegionCode, destination: RegionCode, id: String) {
        if raw {
            let subject = format!("{PREFIX}.{destination}.xp.{origin}.raw.ping");
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
            self.publish(&self.province(&origin).js, subject, headers, id.into_bytes()).await;
            return;
        }
        let seal = &self.seal_keys[&destination.province()];
        let child = ChildSummary {
            full_name: "模拟学生".into(),
            resident_id_masked: format!("{}********0000", &destination.as_str()[..6]),
            sex: 1,
            birth_date: "2013-05-02".into(),
            hukou_region_code: destination.to_string(),
            ..Default::default()
        };
        if handoff {
            // A dossier of a realistic size: the child, a history and attempts as text.
            let dossier = HandoffDossier {
                child: Some(child),
                notes: "家庭已返回户籍地，劝返记录见附。".repeat(40),
                ..Default::default()
            };
            let request = HandoffRequested {
                handoff_id: id.clone(),
                case_id: Uuid::now_v7().to_string(),
                origin_region_code: origin.to_string(),
                destination_region_code: destination.to_string(),
                reason: "家庭已返回户籍地".into(),
                sealed_dossier: seal.seal_from(&dossier.encode_to_vec(), origin.province().as_str()),
                // The cross-province copy carries the child only inside the sealed dossier.
                ..Default::default()
            };
            self.send(HANDOFF_REQUESTED, origin, destination, &id, &request).await;
        } else {
            let asked = AssistanceAsked {
                assistance_id: id.clone(),
                case_id: Uuid::now_v7().to_string(),
                owner_region_code: origin.to_string(),
                assisting_region_code: destination.to_string(),
                reason: 1,
                needs: vec![1],
                due_date: "2027-03-15".into(),
                note: "孩子随父母到当地务工，请协助查找".into(),
                sealed_child: seal.seal_from(&child.encode_to_vec(), origin.province().as_str()),
                ..Default::default()
            };
            self.send(ASSISTANCE_ASKED, origin, destination, &id, &asked).await;
        }
    }
}

struct Figures {
    operations: usize,
    p50: f64,
    p99: f64,
    rate: f64,
    lost: usize,
}

impl Figures {
    fn print(&self, what: &str) {
        println!(
            "  {what:<58} p50 {:>7.2} ms  p99 {:>7.2} ms  {:>7.0} /s  ({} answered, {} lost)",
            self.p50, self.p99, self.rate, self.operations, self.lost
        );
    }
}

type Operation = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs `count` operations, `in_flight` at a time — `next` gives each one's key (what its answer
/// names) and the future that starts it — and waits for every answer (two minutes at most).
async fn timed(
    exchange: &Arc<Simulation>,
    count: usize,
    in_flight: usize,
    mut next: impl FnMut(usize) -> (String, Operation),
) -> anyhow::Result<Figures> {
    exchange.latencies.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    let slots = Arc::new(Semaphore::new(in_flight));
    let started = Instant::now();
    for number in 0..count {
        let permit = slots.clone().acquire_owned().await?;
        let (key, operation) = next(number);
        exchange.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(key, (Instant::now(), permit));
        tokio::spawn(operation);
    }
    // Every slot back means every operation answered (or the wait gave up).
    let everything = slots.acquire_many(in_flight as u32);
    let _ = tokio::time::timeout(Duration::from_secs(120), everything).await;
    let elapsed = started.elapsed();
    let lost = exchange.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len();
    let mut latencies = exchange.latencies.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    latencies.sort_by(f64::total_cmp);
    anyhow::ensure!(!latencies.is_empty(), "nothing was answered");
    let at = |fraction: f64| latencies[((latencies.len() as f64 - 1.0) * fraction).round() as usize];
    Ok(Figures {
        operations: latencies.len(),
        p50: at(0.50),
        p99: at(0.99),
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        lost,
    })
}

/// `operations` between random pairs of the responders, alternately hand-offs and requests for
/// help (or raw round trips).
async fn run(exchange: &Arc<Simulation>, operations: usize, in_flight: usize, raw: bool) -> anyhow::Result<Figures> {
    let mut rng = rand::thread_rng();
    let count = exchange.provinces.len();
    timed(exchange, operations, in_flight, |number| {
        let origin = rng.gen_range(0..count);
        let destination = (origin + rng.gen_range(1..count)) % count;
        let (origin, destination) = (exchange.provinces[origin].code, exchange.provinces[destination].code);
        let id = Uuid::now_v7().to_string();
        let exchange = exchange.clone();
        let key = id.clone();
        (key, Box::pin(async move { exchange.start(raw, number % 2 == 0, origin, destination, id).await }))
    })
    .await
}

/// A responder province's nats-server, linked to `hub` as `user`, and its stream.
async fn responder_server(
    dir: &std::path::Path,
    hub: &NatsServer,
    user: &NatsUser,
    scheme: &SubjectScheme,
    code: &RegionCode,
    tls: &NatsTls,
) -> anyhow::Result<(NatsServer, jetstream::Context, jetstream::stream::Stream)> {
    let server = NatsServer::start(
        &dir.join(code.to_string()),
        NatsOptions {
            name: format!("p{code}"),
            leaf_remotes: hub.leaf_url_as(user).into_iter().collect(),
            tls: Some(tls.clone()),
            ..NatsOptions::default()
        },
    )
    .await?;
    let client =
        nol_backbone::connect_nats(&server.client_url(), &format!("responder-{code}"), server.client_tls()).await?;
    let js = nol_backbone::jetstream_context(client, Duration::from_secs(10));
    let stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: scheme.stream_name(code),
            subjects: vec![format!("{}.{code}.xp.>", scheme.prefix())],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
    Ok((server, js, stream))
}

/// One task per responder province: a durable pull consumer on its stream, applying and acking.
async fn spawn_responders(
    exchange: &Arc<Simulation>,
    streams: Vec<jetstream::stream::Stream>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut responders = Vec::new();
    for (index, stream) in streams.into_iter().enumerate() {
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some("transfer".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 10_000,
                ..Default::default()
            })
            .await?;
        let exchange = exchange.clone();
        responders.push(tokio::spawn(async move {
            let mut inbox = HashSet::new();
            let Ok(mut messages) = consumer.stream().max_messages_per_batch(256).messages().await else { return };
            while let Some(Ok(message)) = messages.next().await {
                exchange.handle(index, &message, &mut inbox).await;
                let _ = message.ack().await;
            }
        }));
    }
    Ok(responders)
}

fn new_exchange(
    scheme: SubjectScheme,
    provinces: Vec<Province>,
    directory: HashMap<RegionCode, ExchangeVerifyingKey>,
    seal_keys: HashMap<RegionCode, SealPublicKey>,
) -> Arc<Simulation> {
    Arc::new(Simulation {
        scheme,
        provinces,
        directory: Directory(directory),
        seal_keys,
        pending: Default::default(),
        answered: Default::default(),
        latencies: Default::default(),
        doubled: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        redelivered: AtomicU64::new(0),
        publish_failures: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    })
}

/// The first county-level unit of `province` in the GB/T 2260 tree.
fn county_of(province: &RegionCode) -> RegionCode {
    nol_region::RegionTree::global()
        .nodes()
        .filter(|node| node.county_level && node.code.province() == *province && node.code != *province)
        .map(|node| node.code)
        .min_by(|one, other| one.as_str().cmp(other.as_str()))
        .unwrap_or(*province)
}

/// Two of the 31 provinces run the real services (江苏 and 安徽: eight release-build processes,
/// their databases, the hub of the stack); the other 29 are responders on the same hub, joined to
/// it at run time (their users added to the hub, their keys to the real provinces' peers). Timed:
/// hand-offs from 南京市玄武区 to a county of a random responder province, from the
/// `RequestHandoff` call until the completion reaches the destination (the real origin recorded the
/// acceptance and handed the case over); requests for help from a random responder province to
/// 临泉县, until 安徽's transfer service has recorded them and its receipt is back.
async fn with_real_provinces(operations: usize, in_flight: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tag = format!("x{}", &Uuid::new_v4().simple().to_string()[..8]);
    let codes: Vec<RegionCode> = PROVINCES.iter().map(|code| RegionCode::parse(code)).collect::<Result<_, _>>()?;
    // Every province's keys first, so the real provinces know all 31 as peers from the start.
    StackKeys::ensure(&dir.path().join("keys"), &codes)?;
    let mut settings = StackSettings::bench(env!("CARGO_BIN_EXE_nol").into(), dir.path().to_path_buf(), &tag);
    settings.extra_env.insert("NOL_DATABASE_POOL_SIZE".into(), "12".into());
    let mut stack = Stack::start(settings).await?;
    let result = real_run(&mut stack, dir.path(), &tag, &codes, operations, in_flight).await;
    stack.stop().await?;
    for province in ["320000", "340000"] {
        nol_stack::postgres::drop_database(&nol_stack::postgres::default_admin_url(), &format!("nol_{tag}_{province}"))
            .await?;
    }
    result
}

async fn real_run(
    stack: &mut Stack,
    dir: &std::path::Path,
    tag: &str,
    codes: &[RegionCode],
    operations: usize,
    in_flight: usize,
) -> anyhow::Result<()> {
    let scheme = SubjectScheme::new(tag)?;
    let real = ["320000", "340000"];
    let keys_dir = dir.join("keys");
    let read = |code: &RegionCode, name: &str| {
        std::fs::read_to_string(keys_dir.join(code.to_string()).join("transfer").join(name))
    };
    let (mut directory, mut seal_keys) = (HashMap::new(), HashMap::new());
    let (mut provinces, mut streams, mut servers) = (Vec::new(), Vec::new(), Vec::new());
    for code in codes {
        let sign =
            ExchangeSigningKey::from_base64(&read(code, "sign.key")?).map_err(|error| anyhow::anyhow!("{error}"))?;
        let seal = SealKeyPair::from_base64(&read(code, "seal.key")?).map_err(|error| anyhow::anyhow!("{error}"))?;
        directory.insert(*code, sign.verifying_key());
        seal_keys.insert(*code, seal.public_key());
        if real.contains(&code.as_str()) {
            continue;
        }
        let user = NatsUser {
            user: format!("p{code}"),
            password: stack.keys.link_password(code)?,
            permissions: Some(scheme.link_permissions(code)),
        };
        stack.hub.add_user(user.clone()).await?;
        let tls = NatsTls { server: stack.keys.nats_tls(code)?, client: stack.keys.tools_tls()? };
        let (server, js, stream) =
            responder_server(&dir.join("responders"), &stack.hub, &user, &scheme, code, &tls).await?;
        provinces.push(Province { code: *code, js, sign, seal });
        streams.push(stream);
        servers.push(server);
    }
    let exchange = new_exchange(scheme, provinces, directory, seal_keys);
    let responders = spawn_responders(&exchange, streams).await?;
    let hour = Duration::from_secs(3600);
    let xuanwu = Clients::for_province(
        stack.province("320000"),
        &stack.keys.token("bench-origin", RegionCode::parse("320102")?, Role::Caseworker, hour)?,
    )?;
    xuanwu.ensure_school("3201020001", "南京市玄武区示范小学", "320102").await?;
    let handoffs = operations.div_ceil(2);
    let cases = xuanwu.open_cases(handoffs, "3201020001", "320102", 8).await?;
    println!();
    println!("  with the real services: 江苏 and 安徽 (8 processes, PostgreSQL) and 29 responders on one hub");
    println!("  {handoffs} hand-offs and {} requests for help, {in_flight} in flight", operations - handoffs);
    let mut rng = rand::thread_rng();
    let responder_codes: Vec<RegionCode> = exchange.provinces.iter().map(|province| province.code).collect();
    let handed = timed(&exchange, handoffs, in_flight, |number| {
        let case_id = cases[number].clone();
        let destination = county_of(&responder_codes[rng.gen_range(0..responder_codes.len())]);
        let (exchange, mut transfer, key) = (exchange.clone(), xuanwu.transfer.clone(), case_id.clone());
        let operation: Operation = Box::pin(async move {
            let request = RequestHandoffRequest {
                case_id: case_id.clone(),
                destination_region_code: destination.to_string(),
                reason: "家庭已返回户籍地".into(),
                ..Default::default()
            };
            if let Err(status) = transfer.request_handoff(request).await {
                eprintln!("hand-off refused: {status:?}");
                exchange.give_up(&case_id);
            }
        });
        (key, operation)
    })
    .await?;
    let linquan = RegionCode::parse("341221")?;
    let helped = timed(&exchange, operations - handoffs, in_flight, |_| {
        let origin = county_of(&responder_codes[rng.gen_range(0..responder_codes.len())]);
        let id = Uuid::now_v7().to_string();
        let exchange = exchange.clone();
        let key = id.clone();
        (key, Box::pin(async move { exchange.start(false, false, origin, linquan, id).await }) as Operation)
    })
    .await?;
    handed.print("hand-off, RequestHandoff → completion at the destination:");
    helped.print("request for help → 安徽's receipt back:");
    let token = stack.keys.token("bench-operator", RegionCode::parse("320000")?, Role::Operator, hour)?;
    let mut dead_letters = 0;
    for (province, operator) in [
        ("320000", token.clone()),
        ("340000", stack.keys.token("bench-operator", RegionCode::parse("340000")?, Role::Operator, hour)?),
    ] {
        let mut admin = nol_stack::client::admin(
            &stack.province(province).transfer.url(),
            &stack.province(province).client_tls,
            &operator,
        )?;
        let status =
            admin.get_backbone_status(GetBackboneStatusRequest {}).await?.into_inner().status.unwrap_or_default();
        dead_letters += status.dead_letters;
    }
    println!(
        "  requests refused: {}; answers doubled: {}; messages refused by a responder: {}; dead letters in the real services: {dead_letters}",
        exchange.failed.load(Ordering::Relaxed),
        exchange.doubled.load(Ordering::Relaxed),
        exchange.refused.load(Ordering::Relaxed),
    );
    for responder in responders {
        responder.abort();
    }
    for server in servers.iter_mut() {
        server.stop().await?;
    }
    anyhow::ensure!(handed.lost == 0 && helped.lost == 0, "operations were lost");
    anyhow::ensure!(exchange.failed.load(Ordering::Relaxed) == 0, "requests were refused");
    anyhow::ensure!(
        exchange.doubled.load(Ordering::Relaxed) == 0 && dead_letters == 0,
        "answers doubled or dead letters"
    );
    Ok(())
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|text| text.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let operations = env_number("NOL_BENCH_EXCHANGE_OPS", 10_000);
    let in_flight = env_number("NOL_BENCH_EXCHANGE_IN_FLIGHT", 256).max(1);
    let dir = tempfile::tempdir()?;
    let scheme = SubjectScheme::new(PREFIX)?;
    let codes: Vec<RegionCode> = PROVINCES.iter().map(|code| RegionCode::parse(code)).collect::<Result<_, _>>()?;
    println!("Not One Less national exchange simulation ({})", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
    println!("  31 provinces: a hub of its own and 31 province nats-servers (JetStream, one domain each), leaf links");

    let users: Vec<NatsUser> = codes
        .iter()
        .map(|code| NatsUser {
            user: format!("p{code}"),
            password: format!("bench-{code}"),
            permissions: Some(scheme.link_permissions(code)),
        })
        .collect();
    // Every server and link over TLS, as deployed: one CA, one certificate for every server.
    let tls = NatsTls::standalone(&dir.path().join("tls"))?;
    let mut hub = NatsServer::start(
        &dir.path().join("hub"),
        NatsOptions {
            name: "nol-exchange".into(),
            leaf_listen: Some(None),
            users: users.clone(),
            no_jetstream: true,
            tls: Some(tls.clone()),
            ..NatsOptions::default()
        },
    )
    .await?;
    let mut servers = Vec::new();
    let mut provinces = Vec::new();
    let mut directory = HashMap::new();
    let mut seal_keys = HashMap::new();
    let mut streams = Vec::new();
    for (code, user) in codes.iter().zip(&users) {
        let (server, js, stream) = responder_server(dir.path(), &hub, user, &scheme, code, &tls).await?;
        let (sign, seal) = (ExchangeSigningKey::generate(), SealKeyPair::generate());
        directory.insert(*code, sign.verifying_key());
        seal_keys.insert(*code, seal.public_key());
        provinces.push(Province { code: *code, js, sign, seal });
        streams.push(stream);
        servers.push(server);
    }
    let exchange = new_exchange(scheme, provinces, directory, seal_keys);
    let responders = spawn_responders(&exchange, streams).await?;
    // Every leaf link up before timing: each province reaches a province at the other end.
    let warm = run(&exchange, 200, 32, true).await?;
    anyhow::ensure!(warm.lost == 0, "the warm-up lost {} round trips", warm.lost);

    println!("  {operations} operations over random pairs, {in_flight} in flight");
    let raw = run(&exchange, operations, in_flight, true).await?;
    let signed = run(&exchange, operations, in_flight, false).await?;
    let handoffs = operations.div_ceil(2) as u64;
    let completed = nol_stack::eventually("every completion at its destination", Duration::from_secs(60), || {
        let exchange = exchange.clone();
        async move {
            let completed = exchange.completed.load(Ordering::Relaxed);
            Ok((completed >= handoffs).then_some(completed))
        }
    })
    .await
    .unwrap_or_else(|_| exchange.completed.load(Ordering::Relaxed));
    raw.print("raw round trip (no signature, seal or inbox):");
    signed.print("hand-offs and requests for help, request → answer:");
    println!(
        "  ratio: p50 {:.1}×, p99 {:.1}×, throughput {:.2}",
        signed.p50 / raw.p50,
        signed.p99 / raw.p99,
        signed.rate / raw.rate
    );
    println!(
        "  hand-offs completed at their destination: {completed} of {handoffs}; answers doubled: {}; messages refused: {}; \
         redeliveries dropped by an inbox: {}; publishes failed: {}",
        exchange.doubled.load(Ordering::Relaxed),
        exchange.refused.load(Ordering::Relaxed),
        exchange.redelivered.load(Ordering::Relaxed),
        exchange.publish_failures.load(Ordering::Relaxed),
    );
    let answered = exchange.answered.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len();
    println!("  operations answered once: {answered} of {}", operations * 2 + 200);
    for responder in responders {
        responder.abort();
    }
    for server in servers.iter_mut() {
        server.stop().await?;
    }
    hub.stop().await?;
    anyhow::ensure!(raw.lost == 0 && signed.lost == 0, "operations were lost");
    anyhow::ensure!(exchange.doubled.load(Ordering::Relaxed) == 0, "answers were doubled");
    anyhow::ensure!(completed == handoffs, "hand-offs not completed at their destination");
    let real = env_number("NOL_BENCH_EXCHANGE_REAL", 400);
    if real > 0 {
        with_real_provinces(real, env_number("NOL_BENCH_EXCHANGE_REAL_IN_FLIGHT", 8).max(1)).await?;
    }
    Ok(())
}
