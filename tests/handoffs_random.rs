//! A seeded random driver over hand-offs between two and three provinces, on the real stack.
//!
//! Each step is one of: a new case at the origin (南京市玄武区 320102), a hand-off request, two
//! concurrent requests for one case, an accept, a rejection (any reason), a withdrawal, a
//! transfer-in request from a region that found the child, the owner's answer to one, a message of
//! a province's stream delivered again (a duplicate, and out of order when it is an old one), or a
//! SIGKILL of a transfer or case service of any province with a few steps done while it is down,
//! then its restart. After every step the driver checks through the API that each case it opened
//! has exactly one responsible region. At the end it answers whatever is still open, waits for
//! the system to settle, and checks that every hand-off and transfer-in is final and the same on
//! both sides, and that no dead letter sits anywhere. It prints its figures.
//!
//! `NOL_RANDOM_SEED` replays a run (the seed is printed, also on failure); `NOL_RANDOM_STEPS`
//! changes its length.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use common::handoffs::{
    all_cases, all_handoffs, all_transfer_ins, drained, migrant_case, settled_without_dead_letters,
};
use common::{TestOptions, TestStack, resident_id};
use nol_auth::Role;
use nol_proto::v1::*;
use nol_stack::Clients;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tonic::Code;

/// The origin county: every case the driver opens is opened here.
const ORIGIN: &str = "320102";
/// How long one call of the driver may take before the run fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_handoffs_between_two_provinces_never_lose_or_double_a_case() {
    // 临泉县 and 颍州区 (Anhui), and 秦淮区 in the origin's own province.
    run("two provinces", &[], &["341221", "341202", "320104"], 20261202, 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_handoffs_between_three_provinces_never_lose_or_double_a_case() {
    // Henan (410000) is a third leaf of the exchange's hub; 郑州市中原区 receives and asks too.
    run("three provinces", &["410000"], &["341221", "410102", "320104"], 7, 45).await;
}

async fn run(name: &str, more_provinces: &[&'static str], destinations: &[&'static str], seed: u64, steps: u32) {
    let seed = std::env::var("NOL_RANDOM_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or(seed);
    let steps = std::env::var("NOL_RANDOM_STEPS").ok().and_then(|steps| steps.parse().ok()).unwrap_or(steps);
    let test = TestStack::start_with(TestOptions {
        more_provinces: more_provinces.to_vec(),
        extra_env: BTreeMap::from([("NOL_HANDOFF_RESEND_SECS".to_owned(), "2".to_owned())]),
        ..TestOptions::default()
    })
    .await;
    println!("{name}: seed {seed} (rerun with NOL_RANDOM_SEED={seed}), {steps} steps");
    let mut driver = Driver {
        test,
        rng: StdRng::seed_from_u64(seed),
        seed,
        destinations: destinations.to_vec(),
        children: HashMap::new(),
        handoffs: BTreeMap::new(),
        next_sequence: 1,
        figures: Figures::default(),
        log: VecDeque::new(),
    };
    let started = Instant::now();
    for _ in 0..4 {
        driver.open().await;
    }
    for step in 1..=steps {
        driver.figures.steps = step;
        driver.step().await;
        driver.check_ownership().await;
    }
    driver.wind_down().await;
    settled_without_dead_letters(&driver.test).await;
    driver.check_ownership().await;
    let outcomes = driver.final_outcomes().await;
    let figures = &driver.figures;
    let operations: Vec<String> = figures
        .operations
        .iter()
        .map(|(name, (ok, refused, unavailable))| format!("{name} {ok} ok/{refused} refused/{unavailable} unavailable"))
        .collect();
    println!(
        "{name}: seed {seed}, {} steps in {:.0}s; {} SIGKILLs ({}), {} messages delivered again; {} ownership \
         checks, never two owners or none; {} cases; hand-offs by outcome: {}; transfer-ins: {}; calls: {}",
        figures.steps,
        started.elapsed().as_secs_f64(),
        figures.kills.values().sum::<u32>(),
        figures.kills.iter().map(|(what, count)| format!("{what} {count}")).collect::<Vec<_>>().join(", "),
        figures.replays,
        figures.checks,
        driver.children.len(),
        outcomes.handoffs.iter().map(|(what, count)| format!("{what} {count}")).collect::<Vec<_>>().join(", "),
        outcomes.transfer_ins.iter().map(|(what, count)| format!("{what} {count}")).collect::<Vec<_>>().join(", "),
        operations.join("; ")
    );
    assert!(outcomes.handoffs.values().sum::<u32>() > 0, "the run handed nothing over");
    driver.test.finish().await;
}

#[derive(Default)]
struct Figures {
    steps: u32,
    kills: BTreeMap<String, u32>,
    replays: u32,
    checks: u32,
    /// Per operation: answered OK, refused (FAILED_PRECONDITION, NOT_FOUND, ALREADY_EXISTS,
    /// ABORTED), unavailable (a service was down).
    operations: BTreeMap<&'static str, (u32, u32, u32)>,
}

#[derive(Default)]
struct Outcomes {
    handoffs: BTreeMap<String, u32>,
    transfer_ins: BTreeMap<String, u32>,
}

/// What the driver last saw of a hand-off.
#[derive(Clone)]
struct Seen {
    destination: String,
    state: HandoffState,
}

struct Driver {
    test: TestStack,
    rng: StdRng,
    seed: u64,
    /// Counties that receive hand-offs and ask for cases.
    destinations: Vec<&'static str>,
    /// The cases the driver opened at the origin, with the child's resident ID.
    children: HashMap<String, String>,
    handoffs: BTreeMap<String, Seen>,
    next_sequence: u16,
    figures: Figures,
    /// The last steps, for the failure message.
    log: VecDeque<String>,
}

/// How a call ended, as far as the driver is concerned.
enum Answer<T> {
    Ok(T),
    Refused,
    Unavailable,
}

fn province_of(county: &str) -> String {
    format!("{}0000", &county[..2])
}

impl Driver {
    fn clients(&self, county: &str) -> Clients {
        self.test.clients(&province_of(county), county, Role::Caseworker)
    }

    fn supervisor(&self, province: &str) -> Clients {
        self.test.clients(province, province, Role::Supervisor)
    }

    fn note(&mut self, entry: String) {
        if self.log.len() == 30 {
            self.log.pop_front();
        }
        self.log.push_back(format!("step {}: {entry}", self.figures.steps));
    }

    fn fail(&self, what: &str) -> ! {
        let log: Vec<&String> = self.log.iter().collect();
        panic!("seed {} (rerun with NOL_RANDOM_SEED={}): {what}\nlast steps: {log:#?}", self.seed, self.seed)
    }

    /// Classifies a call's answer; anything but a refusal or an outage fails the run.
    fn answer<T>(
        &mut self,
        operation: &'static str,
        result: Result<tonic::Result<T>, tokio::time::error::Elapsed>,
    ) -> Answer<T> {
        let answer = match result {
            Err(_) => self.fail(&format!("{operation}: no answer within {CALL_TIMEOUT:?}")),
            Ok(Ok(value)) => {
                self.note(format!("{operation} ok"));
                Answer::Ok(value)
            }
            Ok(Err(status))
                if matches!(
                    status.code(),
                    Code::FailedPrecondition | Code::NotFound | Code::AlreadyExists | Code::Aborted
                ) =>
            {
                self.note(format!("{operation} refused: {:?} {}", status.code(), status.message()));
                Answer::Refused
            }
            Ok(Err(status)) if status.code() == Code::Unavailable => {
                self.note(format!("{operation} unavailable: {}", status.message()));
                Answer::Unavailable
            }
            Ok(Err(status)) => self.fail(&format!("{operation}: {status:?}")),
        };
        let entry = self.figures.operations.entry(operation).or_default();
        match answer {
            Answer::Ok(_) => entry.0 += 1,
            Answer::Refused => entry.1 += 1,
            Answer::Unavailable => entry.2 += 1,
        }
        answer
    }

    async fn step(&mut self) {
        let open = self.open_cases().await;
        if open.len() < 2 {
            return self.open().await;
        }
        match self.rng.gen_range(0..100) {
            0..=5 => self.open().await,
            6..=85 => self.operation().await,
            86..=93 => self.replay().await,
            _ => self.kill().await,
        }
    }

    /// One operation of a case worker (never a kill).
    async fn operation(&mut self) {
        match self.rng.gen_range(0..100) {
            0..=21 => self.request().await,
            22..=27 => self.double_request().await,
            28..=45 => self.accept().await,
            46..=61 => self.reject().await,
            62..=73 => self.cancel().await,
            74..=83 => self.transfer_in().await,
            _ => self.answer_transfer_in().await,
        }
    }

    /// Registers a child at the origin whose hukou is in one of the other provinces' counties, and
    /// opens a case.
    async fn open(&mut self) {
        let counties: Vec<&'static str> =
            self.destinations.iter().copied().filter(|county| !county.starts_with("32")).collect();
        let hukou = *counties.choose(&mut self.rng).unwrap();
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let xuanwu = self.clients(ORIGIN);
        let case =
            tokio::time::timeout(CALL_TIMEOUT, migrant_case(&xuanwu, &format!("随迁子女{sequence}"), sequence, hukou))
                .await
                .unwrap_or_else(|_| self.fail("opening a case: no answer"));
        self.note(format!("opened case {} (hukou {hukou})", case.case_id));
        self.children.insert(case.case_id, resident_id(hukou, sequence));
    }

    /// The driver's cases the origin holds open, as its case worker reads them (none while its
    /// case service is down).
    async fn open_cases(&mut self) -> Vec<String> {
        let xuanwu = self.clients(ORIGIN);
        let cases = match tokio::time::timeout(CALL_TIMEOUT, all_cases(&xuanwu)).await {
            Ok(Ok(cases)) => cases,
            Ok(Err(error)) => {
                self.note(format!("the origin's cases could not be listed: {error:#}"));
                Vec::new()
            }
            Err(_) => self.fail("listing the origin's cases: no answer"),
        };
        cases
            .into_iter()
            .filter(|case| case.status == CaseStatus::Open as i32 && self.children.contains_key(&case.case_id))
            .map(|case| case.case_id)
            .collect()
    }

    /// A case of the driver's: usually one the origin holds open, sometimes any.
    async fn pick_case(&mut self) -> String {
        let open = self.open_cases().await;
        if !open.is_empty() && self.rng.gen_bool(0.85) {
            return open.choose(&mut self.rng).unwrap().clone();
        }
        let mut all: Vec<&String> = self.children.keys().collect();
        all.sort();
        all.choose(&mut self.rng).map(|id| (*id).clone()).unwrap()
    }

    /// A hand-off the driver knows of: usually one it last saw undecided, sometimes any.
    fn pick_handoff(&mut self) -> Option<(String, Seen)> {
        let undecided: Vec<(&String, &Seen)> = self
            .handoffs
            .iter()
            .filter(|(_, seen)| matches!(seen.state, HandoffState::Requested | HandoffState::Delivered))
            .collect();
        let pool: Vec<(&String, &Seen)> =
            if !undecided.is_empty() && self.rng.gen_bool(0.85) { undecided } else { self.handoffs.iter().collect() };
        pool.choose(&mut self.rng).map(|(id, seen)| ((*id).clone(), (*seen).clone()))
    }

    fn learn(&mut self, handoff: &Handoff) {
        self.handoffs.insert(
            handoff.handoff_id.clone(),
            Seen {
                destination: handoff.destination_region_code.clone(),
                state: HandoffState::try_from(handoff.state).unwrap_or_default(),
            },
        );
    }

    async fn request(&mut self) {
        let case_id = self.pick_case().await;
        let destination = *self.destinations.choose(&mut self.rng).unwrap();
        let mut transfer = self.clients(ORIGIN).transfer;
        self.note(format!("request {case_id} → {destination}"));
        let result =
            tokio::time::timeout(CALL_TIMEOUT, transfer.request_handoff(handoff_request(&case_id, destination))).await;
        if let Answer::Ok(response) = self.answer("request", result) {
            self.learn(&response.into_inner().handoff.unwrap());
        }
    }

    /// Two requests for one case at once, to two destinations: one wins at most.
    async fn double_request(&mut self) {
        let case_id = self.pick_case().await;
        let first = *self.destinations.choose(&mut self.rng).unwrap();
        let second = *self.destinations.choose(&mut self.rng).unwrap();
        self.note(format!("two requests at once for {case_id} → {first}, {second}"));
        let (mut one, mut two) = (self.clients(ORIGIN).transfer, self.clients(ORIGIN).transfer);
        let (a, b) = tokio::join!(
            tokio::time::timeout(CALL_TIMEOUT, one.request_handoff(handoff_request(&case_id, first))),
            tokio::time::timeout(CALL_TIMEOUT, two.request_handoff(handoff_request(&case_id, second))),
        );
        let (a, b) = (self.answer("double request", a), self.answer("double request", b));
        if let (Answer::Ok(_), Answer::Ok(_)) = (&a, &b) {
            self.fail(&format!("two concurrent requests for case {case_id} both succeeded"));
        }
        for answer in [a, b] {
            if let Answer::Ok(response) = answer {
                self.learn(&response.into_inner().handoff.unwrap());
            }
        }
    }

    async fn accept(&mut self) {
        let Some((handoff_id, seen)) = self.pick_handoff() else { return self.request().await };
        self.note(format!("accept {handoff_id} at {}", seen.destination));
        let mut transfer = self.clients(&seen.destination).transfer;
        let result = tokio::time::timeout(
            CALL_TIMEOUT,
            transfer.accept_handoff(AcceptHandoffRequest { handoff_id: handoff_id.clone() }),
        )
        .await;
        self.answer("accept", result);
    }

    async fn reject(&mut self) {
        let Some((handoff_id, seen)) = self.pick_handoff() else { return self.request().await };
        let reason = *[
            HandoffRejectReason::ChildNotFound,
            HandoffRejectReason::HukouNotHere,
            HandoffRejectReason::AlreadyHasCase,
            HandoffRejectReason::DataWrong,
            HandoffRejectReason::Other,
        ]
        .choose(&mut self.rng)
        .unwrap();
        self.note(format!("reject {handoff_id} at {} ({})", seen.destination, reason.as_str_name()));
        let mut transfer = self.clients(&seen.destination).transfer;
        let result = tokio::time::timeout(
            CALL_TIMEOUT,
            transfer.reject_handoff(RejectHandoffRequest {
                handoff_id,
                reason: reason as i32,
                note: "随机驱动：经核查不予接收".into(),
            }),
        )
        .await;
        self.answer("reject", result);
    }

    async fn cancel(&mut self) {
        let Some((handoff_id, _)) = self.pick_handoff() else { return self.request().await };
        self.note(format!("cancel {handoff_id}"));
        let mut transfer = self.clients(ORIGIN).transfer;
        let result = tokio::time::timeout(
            CALL_TIMEOUT,
            transfer.cancel_handoff(CancelHandoffRequest {
                handoff_id, reason: "家长表示暂不返回户籍地".into()
            }),
        )
        .await;
        self.answer("cancel", result);
    }

    /// A county of another province found a child (one of the driver's, or one unknown to the
    /// origin) and asks the origin for the case.
    async fn transfer_in(&mut self) {
        let askers: Vec<&'static str> =
            self.destinations.iter().copied().filter(|county| !county.starts_with("32")).collect();
        let asker = *askers.choose(&mut self.rng).unwrap();
        let resident_id = if self.rng.gen_bool(0.85) {
            let case_id = self.pick_case().await;
            self.children[&case_id].clone()
        } else {
            resident_id(asker, 900 + self.rng.gen_range(0..99))
        };
        self.note(format!("transfer-in asked by {asker}"));
        let mut transfer = self.clients(asker).transfer;
        let result = tokio::time::timeout(
            CALL_TIMEOUT,
            transfer.request_transfer_in(RequestTransferInRequest {
                resident_id,
                owner_region_code: ORIGIN.into(),
                reason: "该生已随父母返回本地居住".into(),
                region_code: String::new(),
            }),
        )
        .await;
        self.answer("transfer-in", result);
    }

    /// The origin's case worker answers a transfer-in request waiting for it: approves (a normal
    /// hand-off starts) or declines with a reason.
    async fn answer_transfer_in(&mut self) {
        let pending = match self.pending_transfer_ins().await {
            Some(pending) => pending,
            None => return,
        };
        let Some(request_id) = pending.choose(&mut self.rng).cloned() else { return self.transfer_in().await };
        let mut transfer = self.clients(ORIGIN).transfer;
        if self.rng.gen_bool(0.6) {
            self.note(format!("approve transfer-in {request_id}"));
            let result = tokio::time::timeout(
                CALL_TIMEOUT,
                transfer.approve_transfer_in(ApproveTransferInRequest { request_id, reason: String::new() }),
            )
            .await;
            if let Answer::Ok(response) = self.answer("approve transfer-in", result)
                && let Some(handoff) = response.into_inner().handoff
            {
                self.learn(&handoff);
            }
        } else {
            self.note(format!("decline transfer-in {request_id}"));
            let result = tokio::time::timeout(
                CALL_TIMEOUT,
                transfer
                    .decline_transfer_in(DeclineTransferInRequest {
                        request_id, reason: "该生仍在本地就读".into()
                    }),
            )
            .await;
            self.answer("decline transfer-in", result);
        }
    }

    /// Transfer-in requests waiting for the origin's case worker (None when its service is down).
    async fn pending_transfer_ins(&mut self) -> Option<Vec<String>> {
        let mut transfer = self.clients(ORIGIN).transfer;
        let listed = tokio::time::timeout(
            CALL_TIMEOUT,
            transfer.list_transfer_ins(ListTransferInsRequest {
                direction: HandoffDirection::Incoming as i32,
                state: TransferInState::Pending as i32,
                page_size: 500,
                ..Default::default()
            }),
        )
        .await;
        match self.answer("list transfer-ins", listed) {
            Answer::Ok(response) => {
                Some(response.into_inner().transfer_ins.into_iter().map(|request| request.request_id).collect())
            }
            _ => None,
        }
    }

    /// A message of a province's stream delivered again under a new message id: a duplicate, and
    /// out of order when it is not the newest.
    async fn replay(&mut self) {
        let index = self.rng.gen_range(0..self.test.provinces.len());
        let province = self.test.provinces[index];
        let client = nol_backbone::connect_nats(
            &self.test.stack().nats[index].client_url(),
            "random-driver",
            self.test.stack().nats[index].client_tls(),
        )
        .await
        .unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream =
            js.get_stream(format!("{}_{province}", self.test.subject_prefix.to_uppercase())).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        if state.messages == 0 {
            return;
        }
        let sequence = self.rng.gen_range(state.first_sequence..=state.last_sequence);
        let Ok(message) = stream.get_raw_message(sequence).await else { return };
        // As stored, signature included (a cross-province message is signed by its province), under
        // a new message id.
        let mut headers = message.headers.clone();
        headers.insert("Nats-Msg-Id", uuid::Uuid::new_v4().to_string().as_str());
        js.publish_with_headers(message.subject.to_string(), headers, message.payload.clone())
            .await
            .unwrap()
            .await
            .unwrap();
        self.figures.replays += 1;
        self.note(format!(
            "delivered {} of {province} again (#{sequence} of {})",
            message.subject, state.last_sequence
        ));
    }

    /// SIGKILL of a transfer or case service of any province; up to two operations while it is
    /// down; then its restart.
    async fn kill(&mut self) {
        let province = *self.test.provinces.choose(&mut self.rng).unwrap();
        let service = *["transfer", "cases"].choose(&mut self.rng).unwrap();
        self.note(format!("SIGKILL {service} of {province}"));
        process(&mut self.test, province, service).kill().await.unwrap();
        *self.figures.kills.entry(format!("{service}@{province}")).or_default() += 1;
        for _ in 0..self.rng.gen_range(0..=2) {
            self.operation().await;
        }
        process(&mut self.test, province, service)
            .restart()
            .await
            .unwrap_or_else(|error| panic!("{service} of {province} restarts: {error:#}"));
        self.note(format!("{service} of {province} restarted"));
    }

    /// After every step: each of the driver's cases has exactly one responsible region, read
    /// through the API (retrying while a restarted service is still coming up).
    async fn check_ownership(&mut self) {
        let roots: HashSet<String> = self.children.keys().cloned().collect();
        let readers: Vec<Clients> = self.test.provinces.iter().map(|province| self.supervisor(province)).collect();
        let sample = nol_stack::eventually("an ownership sample", Duration::from_secs(60), || {
            let (readers, roots) = (&readers, &roots);
            async move { ownership(readers, roots).await.map(Some) }
        })
        .await;
        let (violations, seen) = sample.unwrap_or_else(|error| self.fail(&format!("{error:#}")));
        self.figures.checks += 1;
        for handoff in &seen {
            self.learn(handoff);
        }
        if !violations.is_empty() {
            self.fail(&format!("ownership violated: {violations:#?}"));
        }
    }

    /// Answers whatever is still open (accepts or rejects at the destination, approves or
    /// declines transfer-ins) until every hand-off and transfer-in is final on both sides.
    async fn wind_down(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let (open_handoffs, open_transfer_ins) = self.unfinished().await;
            if open_handoffs.is_empty() && open_transfer_ins == 0 {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "still unfinished after 240 s: {open_handoffs:#?}, {open_transfer_ins} transfer-ins"
                ));
            }
            for (handoff_id, destination, actionable) in open_handoffs {
                if !actionable {
                    continue;
                }
                let mut transfer = self.clients(&destination).transfer;
                let result = if self.rng.gen_bool(0.5) {
                    self.note(format!("wind-down: accept {handoff_id}"));
                    tokio::time::timeout(CALL_TIMEOUT, transfer.accept_handoff(AcceptHandoffRequest { handoff_id }))
                        .await
                        .map(|result| result.map(|_| ()))
                } else {
                    self.note(format!("wind-down: reject {handoff_id}"));
                    tokio::time::timeout(
                        CALL_TIMEOUT,
                        transfer.reject_handoff(RejectHandoffRequest {
                            handoff_id,
                            reason: HandoffRejectReason::Other as i32,
                            note: "随机驱动收尾".into(),
                        }),
                    )
                    .await
                    .map(|result| result.map(|_| ()))
                };
                self.answer("wind-down answer", result);
            }
            if let Some(pending) = self.pending_transfer_ins().await {
                for request_id in pending {
                    let mut transfer = self.clients(ORIGIN).transfer;
                    let result = tokio::time::timeout(
                        CALL_TIMEOUT,
                        transfer.decline_transfer_in(DeclineTransferInRequest {
                            request_id,
                            reason: "随机驱动收尾".into(),
                        }),
                    )
                    .await;
                    self.answer("wind-down decline", result);
                }
            }
            drained(&self.test).await;
            self.check_ownership().await;
        }
    }

    /// Hand-offs not final on both sides — (id, destination county, waiting for a case worker
    /// there) — and how many transfer-ins are not final on both sides.
    async fn unfinished(&mut self) -> (Vec<(String, String, bool)>, usize) {
        let origin = self.supervisor("320000");
        let outgoing = all_handoffs(&origin, HandoffDirection::Outgoing)
            .await
            .unwrap_or_else(|error| self.fail(&format!("listing outgoing hand-offs: {error:#}")));
        let mut incoming = HashMap::new();
        for province in self.test.provinces.clone() {
            let handoffs = all_handoffs(&self.supervisor(province), HandoffDirection::Incoming)
                .await
                .unwrap_or_else(|error| self.fail(&format!("listing incoming hand-offs: {error:#}")));
            incoming.extend(handoffs.into_iter().map(|handoff| (handoff.handoff_id.clone(), handoff)));
        }
        let mut open = Vec::new();
        for handoff in outgoing {
            self.learn(&handoff);
            let there = incoming.get(&handoff.handoff_id);
            let both_final = there.is_some_and(|there| there.state == handoff.state) && is_final(handoff.state);
            if !both_final {
                let actionable = there.is_some_and(|there| {
                    there.state == HandoffState::Delivered as i32
                        && there.accept_time.is_none()
                        && !there.cancel_requested
                });
                open.push((handoff.handoff_id, handoff.destination_region_code, actionable));
            }
        }
        let mut open_transfer_ins = 0;
        let owner = all_transfer_ins(&origin, HandoffDirection::Incoming)
            .await
            .unwrap_or_else(|error| self.fail(&format!("listing transfer-ins: {error:#}")));
        let mut asked = HashMap::new();
        for province in self.test.provinces.clone() {
            let requests = all_transfer_ins(&self.supervisor(province), HandoffDirection::Outgoing)
                .await
                .unwrap_or_else(|error| self.fail(&format!("listing transfer-ins: {error:#}")));
            asked.extend(requests.into_iter().map(|request| (request.request_id.clone(), request.state)));
        }
        for (request_id, state) in &asked {
            let there = owner.iter().find(|request| &request.request_id == request_id).map(|request| request.state);
            let done = [TransferInState::Approved as i32, TransferInState::Declined as i32].contains(state);
            if !done || there != Some(*state) {
                open_transfer_ins += 1;
            }
        }
        (open, open_transfer_ins)
    }

    /// Every hand-off's and transfer-in's final state, counted (reject reasons named).
    async fn final_outcomes(&self) -> Outcomes {
        let mut outcomes = Outcomes::default();
        let origin = self.supervisor("320000");
        for handoff in all_handoffs(&origin, HandoffDirection::Outgoing).await.unwrap() {
            let state = HandoffState::try_from(handoff.state).unwrap_or_default();
            let name = match state {
                HandoffState::Completed => "completed".to_owned(),
                HandoffState::Cancelled => "cancelled".to_owned(),
                HandoffState::Rejected => {
                    let reason = HandoffRejectReason::try_from(handoff.reject_reason).unwrap_or_default();
                    format!(
                        "rejected ({})",
                        reason.as_str_name().trim_start_matches("HANDOFF_REJECT_REASON_").to_lowercase()
                    )
                }
                other => panic!("hand-off {} ended {}", handoff.handoff_id, other.as_str_name()),
            };
            *outcomes.handoffs.entry(name).or_default() += 1;
        }
        for request in all_transfer_ins(&origin, HandoffDirection::Incoming).await.unwrap() {
            let state = TransferInState::try_from(request.state).unwrap_or_default();
            *outcomes
                .transfer_ins
                .entry(state.as_str_name().trim_start_matches("TRANSFER_IN_STATE_").to_lowercase())
                .or_default() += 1;
        }
        outcomes
    }
}

fn process<'a>(test: &'a mut TestStack, province: &str, service: &str) -> &'a mut nol_stack::process::ServiceProcess {
    let stack = test.stack_mut().province_mut(province);
    if service == "transfer" { &mut stack.transfer } else { &mut stack.cases }
}

fn handoff_request(case_id: &str, destination: &str) -> RequestHandoffRequest {
    RequestHandoffRequest {
        case_id: case_id.into(),
        destination_region_code: destination.into(),
        reason: "家庭已返回户籍地".into(),
        ..Default::default()
    }
}

fn is_final(state: i32) -> bool {
    [HandoffState::Completed as i32, HandoffState::Rejected as i32, HandoffState::Cancelled as i32].contains(&state)
}

/// One ownership sample over every province: the violations found, and every hand-off read.
///
/// Reads the origin's cases first, then each province's cases taken in from them, its incoming
/// hand-offs, and its taken-in cases again. A case is the origin's while open (or in any status
/// but handed over), or pending until some destination has taken it in; a destination's once it
/// has. The destination takes a case in only after its case worker accepted, in one commit with
/// the case it opens, and nothing moves back, so a move between the reads cannot look like two
/// owners or none.
async fn ownership(readers: &[Clients], roots: &HashSet<String>) -> anyhow::Result<(Vec<String>, Vec<Handoff>)> {
    let origin: Vec<DropoutCase> =
        all_cases(&readers[0]).await?.into_iter().filter(|case| roots.contains(&case.case_id)).collect();
    let mut taken_in: HashMap<String, usize> = HashMap::new();
    let mut taken_in_after: HashSet<String> = HashSet::new();
    let mut incoming = Vec::new();
    for reader in readers {
        for case in all_cases(reader).await? {
            if roots.contains(&case.origin_case_id) {
                *taken_in.entry(case.origin_case_id).or_default() += 1;
            }
        }
        incoming.extend(all_handoffs(reader, HandoffDirection::Incoming).await?);
        for case in all_cases(reader).await? {
            if roots.contains(&case.origin_case_id) {
                taken_in_after.insert(case.origin_case_id);
            }
        }
    }
    let mut outgoing = all_handoffs(&readers[0], HandoffDirection::Outgoing).await?;
    let accepted = |handoff: &Handoff| {
        [HandoffState::Accepted as i32, HandoffState::Completed as i32].contains(&handoff.state)
            || (handoff.state == HandoffState::Delivered as i32 && handoff.accept_time.is_some())
    };
    let mut violations = Vec::new();
    for handoff in incoming
        .iter()
        .filter(|handoff| [HandoffState::Accepted as i32, HandoffState::Completed as i32].contains(&handoff.state))
    {
        if !taken_in_after.contains(&handoff.case_id) {
            violations.push(format!("hand-off {} accepted without its case taken in", handoff.handoff_id));
        }
    }
    for case in &origin {
        let status = CaseStatus::try_from(case.status).unwrap_or_default();
        let times_taken = taken_in.get(&case.case_id).copied().unwrap_or(0);
        let origin_owns = match status {
            CaseStatus::HandedOver => false,
            CaseStatus::HandoffPending => times_taken == 0,
            _ => true,
        };
        if usize::from(origin_owns) + times_taken != 1 {
            violations.push(format!(
                "case {}: origin {}, taken in {times_taken} times",
                case.case_id,
                status.as_str_name()
            ));
        }
        if times_taken > 0 && !incoming.iter().any(|handoff| handoff.case_id == case.case_id && accepted(handoff)) {
            violations.push(format!("case {} taken in without an accept", case.case_id));
        }
    }
    if origin.len() != roots.len() {
        violations.push(format!("the origin lists {} of the driver's {} cases", origin.len(), roots.len()));
    }
    incoming.append(&mut outgoing);
    Ok((violations, incoming))
}
