//! The backbone's promises, on a real nats-server and a real PostgreSQL database: every committed
//! event is delivered, and its effect is applied exactly once, whatever dies when.

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use nol_backbone::consumer::{Consumer, ConsumerSpec, Disposition, EventHandler, HandlerError};
use nol_backbone::relay::{self, Relay, RelaySettings};
use nol_backbone::{BackboneStats, StreamSettings};
use nol_events::{EventEnvelope, EventHeader, PUPIL_REGISTERED, SubjectScheme};
use nol_proto::v1::PupilRegistered;
use nol_region::RegionCode;
use nol_stack::nats::{NatsOptions, NatsServer, NatsTls};
use nol_stack::{eventually, postgres};
use prost::Message;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Records one row per applied event, with no unique key: a double effect would show.
struct RecordEffect;

impl EventHandler for RecordEffect {
    async fn handle(&self, conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        let payload: PupilRegistered = nol_events::decode_payload(envelope, PUPIL_REGISTERED)?;
        sqlx::query("INSERT INTO effect (event_id, pupil_id) VALUES ($1, $2)")
            .bind(Uuid::parse_str(&envelope.event_id).map_err(|error| HandlerError::Permanent(error.to_string()))?)
            .bind(payload.pupil_id)
            .execute(conn)
            .await?;
        Ok(())
    }
}

struct Fixture {
    nats: NatsServer,
    pool: PgPool,
    database: String,
    js: jetstream::Context,
    scheme: SubjectScheme,
    stream: jetstream::stream::Stream,
    province: RegionCode,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let nats = NatsServer::start(
            &dir.path().join("nats"),
            NatsOptions {
                name: "backbone".into(),
                tls: Some(NatsTls::standalone(&dir.path().join("tls")).unwrap()),
                ..NatsOptions::default()
            },
        )
        .await
        .unwrap();
        let id = Uuid::new_v4().simple().to_string()[..12].to_owned();
        let database = format!("nol_backbone_{id}");
        let url = postgres::create_database(&postgres::default_admin_url(), &database).await.unwrap();
        let pool = nol_runtime::database::connect(&url, "svc", 8).await.unwrap();
        nol_backbone::migrate(&pool).await.unwrap();
        sqlx::query("CREATE TABLE effect (event_id uuid NOT NULL, pupil_id text NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        let client = nol_backbone::connect_nats(&nats.client_url(), "test", nats.client_tls()).await.unwrap();
        let js = nol_backbone::jetstream_context(client, Duration::from_secs(5));
        let scheme = SubjectScheme::new(&format!("t{id}")).unwrap();
        let province = RegionCode::parse("320000").unwrap();
        let stream =
            nol_backbone::ensure_province_stream(&js, &scheme, &province, &StreamSettings::default()).await.unwrap();
        Fixture { nats, pool, database, js, scheme, stream, province, _dir: dir }
    }

    fn relay(&self, stats: &BackboneStats) -> Relay {
        let settings = RelaySettings { poll_interval: Duration::from_millis(50), ..RelaySettings::default() };
        Relay::new(self.pool.clone(), self.js.clone(), Default::default(), settings, stats.clone())
    }

    fn consumer(&self, ack_wait: Duration, stats: &BackboneStats) -> Consumer<RecordEffect> {
        self.consumer_with(RecordEffect, ack_wait, 100, stats)
    }

    fn consumer_with<H: EventHandler>(
        &self,
        handler: H,
        ack_wait: Duration,
        max_deliveries: u64,
        stats: &BackboneStats,
    ) -> Consumer<H> {
        let spec = ConsumerSpec {
            durable_name: "effects".into(),
            filter_subjects: vec![self.scheme.local_filter(&self.province, PUPIL_REGISTERED)],
            ack_wait,
            max_batch: 64,
            max_deliveries,
            crash_after_batches: None,
        };
        Consumer::new(self.pool.clone(), self.stream.clone(), spec, handler, stats.clone(), Default::default())
    }

    /// An envelope for a new event, and the subject it goes to.
    fn event(&self) -> (String, EventEnvelope) {
        let region = RegionCode::parse("320102").unwrap();
        let payload = PupilRegistered {
            pupil_id: Uuid::now_v7().to_string(),
            enrollment_region_code: "320102".into(),
            hukou_region_code: "341221".into(),
            migrant: true,
            ..Default::default()
        };
        let envelope = nol_events::envelope(
            EventHeader {
                event_type: PUPIL_REGISTERED,
                source_region: region,
                aggregate_type: "pupil",
                aggregate_id: &payload.pupil_id,
                aggregate_sequence: 1,
                actor: "test",
            },
            &payload,
            chrono::Utc::now(),
            Default::default(),
        );
        (self.scheme.local(PUPIL_REGISTERED, &region), envelope)
    }

    /// Commits `count` events to the outbox in one transaction.
    async fn enqueue(&self, count: usize) -> Vec<String> {
        let mut tx = self.pool.begin().await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..count {
            let (subject, envelope) = self.event();
            nol_backbone::outbox::enqueue(&mut tx, &subject, &envelope).await.unwrap();
            ids.push(envelope.event_id);
        }
        tx.commit().await.unwrap();
        ids
    }

    async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    async fn stream_messages(&self) -> u64 {
        self.js
            .get_stream(self.stream.cached_info().config.name.clone())
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap()
            .state
            .messages
    }

    /// Waits until the durable consumer has nothing pending or unacknowledged.
    async fn drained(&self) {
        eventually("the consumer to ack everything", Duration::from_secs(30), || async {
            let mut consumer: jetstream::consumer::PullConsumer =
                self.stream.get_consumer("effects").await.map_err(|error| anyhow::anyhow!("{error}"))?;
            let info = consumer.info().await.map_err(|error| anyhow::anyhow!("{error}"))?;
            Ok((info.num_pending == 0 && info.num_ack_pending == 0).then_some(()))
        })
        .await
        .unwrap();
    }

    async fn finish(self) {
        self.pool.close().await;
        postgres::drop_database(&postgres::default_admin_url(), &self.database).await.unwrap();
        drop(self.nats);
    }
}

async fn run_consumer_until_applied(fixture: &Fixture, expected: i64, stats: &BackboneStats) -> CancellationToken {
    let shutdown = CancellationToken::new();
    tokio::spawn(fixture.consumer(Duration::from_secs(1), stats).run(shutdown.clone()));
    eventually("the effects to be applied", Duration::from_secs(30), || async {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM effect").fetch_one(&fixture.pool).await?;
        Ok((applied >= expected).then_some(()))
    })
    .await
    .unwrap();
    shutdown
}

/// The relay's passes step over the rows they sent instead of reading them again on every pass
/// until the outbox is vacuumed (issue 13). A row marked sent leaves a dead entry in the queue's
/// partial index, `outbox_unsent`. Only an index scan marks such an entry dead for the scans
/// after it, and PostgreSQL chose a bitmap scan for the claim of an outbox never analysed: after
/// a burst, every pass read every row of the burst again (40 ms a pass at the province's scale).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_burst_the_relay_steps_over_the_rows_it_sent() {
    let fixture = Fixture::start().await;
    // Neither vacuumed nor analysed meanwhile, as while autovacuum is busy with a province's tables.
    sqlx::query("ALTER TABLE outbox SET (autovacuum_enabled = false)").execute(&fixture.pool).await.unwrap();
    sqlx::query("CREATE EXTENSION pageinspect").execute(&fixture.pool).await.unwrap();
    let stats = BackboneStats::default();
    let relay = fixture.relay(&stats);
    // A burst of events committed at once, as an import's or a cross-check's (their bodies do not
    // matter here: nothing consumes them).
    let burst = 20_000;
    let subject = fixture.event().0;
    sqlx::query(
        "INSERT INTO outbox (id, subject, event_type, envelope)
         SELECT gen_random_uuid(), $1, 'registry.pupil_registered.v1', decode(repeat('ab', 600), 'hex') FROM generate_series(1, $2)",
    )
    .bind(&subject)
    .bind(burst as i32)
    .execute(&fixture.pool)
    .await
    .unwrap();
    // The claim, planned as a pass plans it: for its first calls with its limit, then as the
    // prepared statement's generic plan. Either way a plain index scan of the queue.
    for (how, explain) in [
        (
            "custom",
            "EXPLAIN (FORMAT JSON) SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= clock_timestamp() ORDER BY next_attempt_at, created_at LIMIT 256 FOR UPDATE SKIP LOCKED",
        ),
        ("generic", "EXPLAIN (FORMAT JSON) EXECUTE claim(256)"),
    ] {
        let mut tx = fixture.pool.begin_with(relay::BEGIN_PASS).await.unwrap();
        sqlx::raw_sql(
            "PREPARE claim(int8) AS SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= clock_timestamp()
              ORDER BY next_attempt_at, created_at LIMIT $1 FOR UPDATE SKIP LOCKED;
             SET LOCAL plan_cache_mode TO force_generic_plan",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        let plan: serde_json::Value = sqlx::query_scalar(explain).fetch_one(&mut *tx).await.unwrap();
        tx.rollback().await.unwrap();
        let plan = plan.to_string();
        assert!(
            plan.contains(r#""Node Type":"Index Scan""#) && plan.contains(r#""Index Name":"outbox_unsent""#),
            "the {how} plan of the claim is not an index scan of the queue: {plan}"
        );
    }
    let mut sent = 0;
    while sent < burst {
        sent += relay.publish_due().await.unwrap();
    }
    // A pass with nothing left to send walks the queue's index to its end.
    assert_eq!(relay.publish_due().await.unwrap(), 0);
    assert_eq!(fixture.stream_messages().await, burst as u64);

    // The entries the burst left in the index are marked dead: the next pass reads none of their
    // rows. (A few may wait for a later pass: an index scan marks an entry only once its row is
    // dead to every transaction, and a page's marks only if the page did not change meanwhile.)
    let (dead, entries): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE item.dead), count(*)
           FROM generate_series(1, (pg_relation_size('outbox_unsent') / current_setting('block_size')::int - 1)::int)
                AS page,
                LATERAL bt_page_items('outbox_unsent', page) AS item
          WHERE item.htid IS NOT NULL",
    )
    .fetch_one(&fixture.pool)
    .await
    .unwrap();
    assert!(entries >= burst as i64 * 99 / 100, "the burst's entries are in the index, none vacuumed away: {entries}");
    assert!(
        dead >= entries * 99 / 100,
        "{dead} of {entries} entries marked dead; the rest are read again on every pass"
    );
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_between_publish_and_mark_sent_causes_no_duplicate_effect() {
    let fixture = Fixture::start().await;
    let stats = BackboneStats::default();
    let relay = fixture.relay(&stats);
    let ids = fixture.enqueue(50).await;

    // Claim and publish, then die before marking sent: the transaction never commits.
    let mut tx = fixture.pool.begin().await.unwrap();
    let claimed = relay::claim(&mut tx, 256).await.unwrap();
    assert_eq!(claimed.len(), 50);
    let outcomes = relay.publish(&claimed).await;
    assert!(outcomes.iter().all(|outcome| matches!(outcome, relay::PublishOutcome::Acked { .. })));
    // What PostgreSQL sees when the process dies: the transaction ends without a commit.
    tx.rollback().await.unwrap();
    assert_eq!(fixture.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL").await, 50);

    // The restarted relay publishes everything again; the stream drops the copies by Nats-Msg-Id.
    assert_eq!(relay.publish_due().await.unwrap(), 50);
    assert_eq!(fixture.scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL").await, 0);
    assert_eq!(fixture.stream_messages().await, 50);

    // Even a copy that slips past the stream's window (here: a new message id) has no effect.
    let first = claimed[0].clone();
    fixture.js.publish(first.subject.clone(), first.envelope.clone().into()).await.unwrap().await.unwrap();
    let consumer_stats = BackboneStats::default();
    let shutdown = run_consumer_until_applied(&fixture, 50, &consumer_stats).await;
    fixture.drained().await;
    shutdown.cancel();
    assert_eq!(fixture.scalar("SELECT count(*) FROM effect").await, 50);
    assert_eq!(fixture.scalar("SELECT count(DISTINCT event_id) FROM effect").await, 50);
    let snapshot = consumer_stats.snapshot();
    assert_eq!((snapshot.applied, snapshot.duplicates), (50, 1));
    println!(
        "relay crash: {} events, {} published twice, stream kept {}, effects {}, duplicates dropped by inbox {}",
        ids.len(),
        claimed.len(),
        fixture.stream_messages().await,
        snapshot.applied,
        snapshot.duplicates
    );
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_commits_after_a_later_one_is_still_published() {
    let fixture = Fixture::start().await;
    let stats = BackboneStats::default();
    let relay = fixture.relay(&stats);

    // A starts first (its row is older) but commits last.
    let mut slow = fixture.pool.begin().await.unwrap();
    let (subject, late) = fixture.event();
    nol_backbone::outbox::enqueue(&mut slow, &subject, &late).await.unwrap();
    let early = fixture.enqueue(1).await;
    assert_eq!(relay.publish_due().await.unwrap(), 1, "only the committed row is visible");
    slow.commit().await.unwrap();
    assert_eq!(relay.publish_due().await.unwrap(), 1, "the late commit is found, not skipped");

    let sent: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM outbox WHERE sent_at IS NOT NULL ORDER BY stream_sequence")
        .fetch_all(&fixture.pool)
        .await
        .unwrap();
    let sent: Vec<String> = sent.into_iter().map(|(id,)| id.to_string()).collect();
    assert_eq!(sent, vec![early[0].clone(), late.event_id.clone()]);
    assert_eq!(fixture.stream_messages().await, 2);
    fixture.finish().await;
}

/// A fallback event (`outbox::enqueue_after`) commits with its transaction like any other, but the
/// relay leaves it until it is due: a pass right after the commit publishes only the event beside
/// it, and a pass once the delay has passed publishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_due_later_is_published_once_it_is_due_and_not_before() {
    let fixture = Fixture::start().await;
    let stats = BackboneStats::default();
    let relay = fixture.relay(&stats);
    let mut tx = fixture.pool.begin().await.unwrap();
    let (subject, now) = fixture.event();
    nol_backbone::outbox::enqueue(&mut tx, &subject, &now).await.unwrap();
    let (subject, later) = fixture.event();
    nol_backbone::outbox::enqueue_after(&mut tx, &subject, &later, Duration::from_secs(1)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(relay.publish_due().await.unwrap(), 1, "only the event due now");
    let later_id = Uuid::parse_str(&later.event_id).unwrap();
    let mut conn = fixture.pool.acquire().await.unwrap();
    assert_eq!(nol_backbone::outbox::sent(&mut conn, later_id).await.unwrap(), Some(false), "still waiting");
    drop(conn);
    eventually("the later event to be published", Duration::from_secs(30), || async {
        Ok((relay.publish_due().await? == 1).then_some(()))
    })
    .await
    .unwrap();
    let waited: f64 =
        sqlx::query_scalar("SELECT EXTRACT(EPOCH FROM sent_at - created_at)::float8 FROM outbox WHERE id = $1")
            .bind(later_id)
            .fetch_one(&fixture.pool)
            .await
            .unwrap();
    assert!(waited >= 1.0, "published {waited} s after it was written, before it was due");
    assert_eq!(fixture.stream_messages().await, 2);
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_dies_between_commit_and_ack_applies_its_effect_once() {
    let fixture = Fixture::start().await;
    let relay_stats = BackboneStats::default();
    fixture.enqueue(20).await;
    fixture.relay(&relay_stats).publish_due().await.unwrap();

    // Apply and commit a batch, then "die" without acking.
    let dying_stats = BackboneStats::default();
    let dying = fixture.consumer(Duration::from_secs(1), &dying_stats);
    let pull = dying.bind().await.unwrap();
    let batch: Vec<jetstream::Message> =
        pull.fetch().max_messages(20).messages().await.unwrap().map(|message| message.unwrap()).collect().await;
    assert_eq!(batch.len(), 20);
    let dispositions = dying.apply(&batch).await.unwrap();
    assert!(dispositions.iter().all(|disposition| *disposition == Disposition::Applied));
    drop(batch);
    assert_eq!(fixture.scalar("SELECT count(*) FROM effect").await, 20);

    // The server redelivers after ack_wait; the restarted consumer finds every id in its inbox.
    let stats = BackboneStats::default();
    let shutdown = CancellationToken::new();
    tokio::spawn(fixture.consumer(Duration::from_secs(1), &stats).run(shutdown.clone()));
    fixture.drained().await;
    shutdown.cancel();
    let snapshot = stats.snapshot();
    assert_eq!(fixture.scalar("SELECT count(*) FROM effect").await, 20);
    assert_eq!((snapshot.applied, snapshot.duplicates), (0, 20));
    assert!(snapshot.redelivered >= 20);
    println!(
        "consumer crash: 20 events applied before the crash, {} redelivered, {} dropped by the inbox, effects 20",
        snapshot.redelivered, snapshot.duplicates
    );
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_relays_share_one_outbox_without_publishing_a_row_twice() {
    let fixture = Fixture::start().await;
    fixture.enqueue(600).await;
    let stats = BackboneStats::default();
    let shutdown = CancellationToken::new();
    for _ in 0..3 {
        let settings =
            RelaySettings { batch_size: 50, poll_interval: Duration::from_millis(20), ..RelaySettings::default() };
        let relay = Relay::new(fixture.pool.clone(), fixture.js.clone(), Default::default(), settings, stats.clone());
        tokio::spawn(relay.run(shutdown.clone()));
    }
    eventually("three relays to empty the outbox", Duration::from_secs(30), || async {
        let unsent: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetch_one(&fixture.pool).await?;
        Ok((unsent == 0).then_some(()))
    })
    .await
    .unwrap();
    shutdown.cancel();
    assert_eq!(stats.snapshot().published, 600, "each row acknowledged once");
    assert_eq!(fixture.stream_messages().await, 600);
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_parked_with_a_reason_and_the_stream_keeps_flowing() {
    let fixture = Fixture::start().await;
    let (subject, mut newer) = fixture.event();
    newer.schema_version = 99;
    fixture.js.publish(subject.clone(), "\u{1}not protobuf".into()).await.unwrap().await.unwrap();
    fixture.js.publish(subject.clone(), newer.encode_to_vec().into()).await.unwrap().await.unwrap();
    fixture.enqueue(5).await;
    fixture.relay(&BackboneStats::default()).publish_due().await.unwrap();

    let stats = BackboneStats::default();
    let shutdown = run_consumer_until_applied(&fixture, 5, &stats).await;
    fixture.drained().await;
    shutdown.cancel();
    let parked = nol_backbone::consumer::dead_letters(&fixture.pool, 10).await.unwrap();
    assert_eq!(parked.len(), 2);
    assert!(parked.iter().any(|letter| letter.reason.contains("not an event envelope")));
    assert!(parked.iter().any(|letter| letter.reason.contains("schema version 99")));
    assert_eq!(stats.snapshot().dead_letters, 2);
    assert_eq!(fixture.scalar("SELECT count(*) FROM effect").await, 5);
    fixture.finish().await;
}

/// Records the effect, except for the pupil named `poison`: for it the data breaks a constraint
/// (a permanent error PostgreSQL reports), or the handler fails transiently every time.
struct FailsFor {
    transiently: bool,
}

impl EventHandler for FailsFor {
    async fn handle(&self, conn: &mut PgConnection, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        let payload: PupilRegistered = nol_events::decode_payload(envelope, PUPIL_REGISTERED)?;
        if payload.pupil_id == "poison" && self.transiently {
            return Err(HandlerError::Transient(anyhow::anyhow!("the registry is not answering")));
        }
        // The table refuses 'poison' (SQLSTATE 23514, a check violation).
        RecordEffect.handle(conn, envelope).await
    }
}

/// Publishes the poison event between `before` and `after` ordinary ones, runs a consumer with
/// `handler`, and returns the dead letters once the others are applied and everything is acked.
async fn poison_among_others(handler: FailsFor, max_deliveries: u64) -> Vec<nol_backbone::consumer::DeadLetter> {
    let fixture = Fixture::start().await;
    sqlx::query("ALTER TABLE effect ADD CONSTRAINT no_poison CHECK (pupil_id <> 'poison')")
        .execute(&fixture.pool)
        .await
        .unwrap();
    fixture.enqueue(3).await;
    let (subject, mut poison) = fixture.event();
    let mut payload = PupilRegistered::decode(poison.payload.as_slice()).unwrap();
    payload.pupil_id = "poison".into();
    poison.payload = payload.encode_to_vec();
    let mut tx = fixture.pool.begin().await.unwrap();
    nol_backbone::outbox::enqueue(&mut tx, &subject, &poison).await.unwrap();
    tx.commit().await.unwrap();
    fixture.enqueue(3).await;
    fixture.relay(&BackboneStats::default()).publish_due().await.unwrap();

    let (stats, shutdown) = (BackboneStats::default(), CancellationToken::new());
    tokio::spawn(
        fixture.consumer_with(handler, Duration::from_millis(500), max_deliveries, &stats).run(shutdown.clone()),
    );
    let letters = eventually("the poison event to be parked", Duration::from_secs(60), || async {
        let letters = nol_backbone::consumer::dead_letters(&fixture.pool, 10).await?;
        Ok((!letters.is_empty()).then_some(letters))
    })
    .await
    .unwrap();
    fixture.drained().await;
    shutdown.cancel();
    assert_eq!(fixture.scalar("SELECT count(*) FROM effect").await, 6, "the others applied, once each");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event_id.as_deref(), Some(poison.event_id.as_str()));
    fixture.finish().await;
    letters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_the_database_refuses_is_parked_at_once_not_retried_forever() {
    let letters = poison_among_others(FailsFor { transiently: false }, 100).await;
    assert!(letters[0].reason.contains("SQLSTATE 23514"), "{}", letters[0].reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_is_parked_after_the_delivery_cap() {
    let letters = poison_among_others(FailsFor { transiently: true }, 3).await;
    assert!(letters[0].reason.contains("still failing after 3 deliveries"), "{}", letters[0].reason);
    assert!(letters[0].reason.contains("the registry is not answering"), "{}", letters[0].reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_cannot_be_published_is_parked_after_its_attempts_and_a_resend_revives_it() {
    let fixture = Fixture::start().await;
    // No stream stores this subject: every publish of it fails.
    let (_, stray) = fixture.event();
    let mut tx = fixture.pool.begin().await.unwrap();
    nol_backbone::outbox::enqueue(&mut tx, &format!("{}.nowhere", fixture.scheme.prefix()), &stray).await.unwrap();
    tx.commit().await.unwrap();
    fixture.enqueue(2).await;
    let settings = RelaySettings {
        min_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        max_attempts: 3,
        ..RelaySettings::default()
    };
    let relay =
        Relay::new(fixture.pool.clone(), fixture.js.clone(), Default::default(), settings, BackboneStats::default());
    let backlog = eventually("the stray event to be parked", Duration::from_secs(30), || async {
        relay.publish_due().await?;
        let backlog = nol_backbone::outbox::backlog(&fixture.pool).await?;
        Ok((backlog.parked == 1).then_some(backlog))
    })
    .await
    .unwrap();
    assert_eq!((backlog.unsent, backlog.parked), (1, 1), "the others were published");
    assert_eq!(fixture.stream_messages().await, 2);
    let id = Uuid::parse_str(&stray.event_id).unwrap();
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(&fixture.pool)
            .await
            .unwrap();
    assert_eq!(attempts, 3);
    assert!(error.is_some_and(|error| !error.is_empty()));
    // Parked rows are out of the relay's queue: more passes leave them alone.
    relay.publish_due().await.unwrap();
    let mut conn = fixture.pool.acquire().await.unwrap();
    assert_eq!(nol_backbone::outbox::sent(&mut conn, id).await.unwrap(), Some(true), "out of the relay's hands");
    // A deliberate re-send (a hand-off's sweeper) puts it back in the queue.
    assert!(nol_backbone::outbox::resend(&mut conn, id).await.unwrap());
    drop(conn);
    let backlog = nol_backbone::outbox::backlog(&fixture.pool).await.unwrap();
    assert_eq!((backlog.unsent, backlog.parked), (1, 0));
    fixture.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_payload_limit_fails_its_transaction_and_nothing_is_written() {
    let fixture = Fixture::start().await;
    let envelope = |bytes: usize| EventEnvelope {
        event_id: Uuid::now_v7().to_string(),
        event_type: "registry.pupil_registered".into(),
        payload: vec![b'x'; bytes],
        ..Default::default()
    };
    let subject = fixture.scheme.local(PUPIL_REGISTERED, &RegionCode::parse("320102").unwrap());
    let mut tx = fixture.pool.begin().await.unwrap();
    nol_backbone::outbox::enqueue(&mut tx, &subject, &envelope(1024)).await.unwrap();
    let error = nol_backbone::outbox::enqueue(&mut tx, &subject, &envelope(nol_backbone::outbox::MAX_EVENT_BYTES))
        .await
        .unwrap_err();
    let sqlx::Error::Encode(inner) = &error else { panic!("not an encode error: {error:?}") };
    assert!(inner.downcast_ref::<nol_backbone::outbox::EventTooLarge>().is_some(), "{error}");
    drop(tx);
    let many = [(subject.clone(), envelope(10)), (subject.clone(), envelope(2 << 20))];
    let mut tx = fixture.pool.begin().await.unwrap();
    assert!(nol_backbone::outbox::enqueue_many(&mut tx, &many).await.is_err());
    drop(tx);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&fixture.pool).await.unwrap();
    assert_eq!(rows, 0, "the failed transactions wrote nothing, the small events included");
    fixture.finish().await;
}

/// A relay pass and a consumer batch count how long each of their stages took (for `/metrics` and
/// the backbone bench), and the pass's `synchronous_commit = off` ends with its transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_pass_and_a_consumer_batch_time_their_stages() {
    let fixture = Fixture::start().await;
    let stats = BackboneStats::default();
    // One connection, so that the statement after the pass runs on the pass's own connection.
    let relay_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(fixture.pool.connect_options().as_ref().clone())
        .await
        .unwrap();
    let wake = nol_backbone::outbox::RelayWake::default();
    let relay =
        Relay::new(relay_pool.clone(), fixture.js.clone(), wake.clone(), RelaySettings::default(), stats.clone());
    fixture.enqueue(5).await;
    wake.notify();
    assert_eq!(relay.publish_due().await.unwrap(), 5);
    for (setting, default) in [("synchronous_commit", "on"), ("plan_cache_mode", "force_custom_plan")] {
        let now: String =
            sqlx::query_scalar("SELECT current_setting($1)").bind(setting).fetch_one(&relay_pool).await.unwrap();
        assert_eq!(now, default, "the pass's {setting} stays inside its transaction");
    }
    assert_eq!(relay.publish_due().await.unwrap(), 0, "a pass that finds nothing times nothing");
    let shutdown = run_consumer_until_applied(&fixture, 5, &stats).await;
    shutdown.cancel();

    let mut registry = prometheus_client::registry::Registry::default();
    registry.register("nol_relay_stage_seconds", "relay", stats.stages().relay().clone());
    registry.register("nol_consumer_stage_seconds", "consumer", stats.stages().consumer().clone());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let count = |metric: &str, stage: &str| -> u64 {
        let prefix = format!("{metric}_count{{stage=\"{stage}\"}} ");
        text.lines().find_map(|line| line.strip_prefix(&prefix)).and_then(|value| value.parse().ok()).unwrap_or(0)
    };
    for stage in ["woken", "claim", "publish", "mark"] {
        assert_eq!(count("nol_relay_stage_seconds", stage), 1, "relay {stage}:\n{text}");
    }
    for stage in ["waited", "begin", "apply", "commit", "ack"] {
        assert!(count("nol_consumer_stage_seconds", stage) >= 1, "consumer {stage}:\n{text}");
    }
    relay_pool.close().await;
    fixture.finish().await;
}

/// Records the planner setting each event's handler ran under, and each batch's commit.
struct PlanModeSeen(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl EventHandler for PlanModeSeen {
    async fn handle(&self, conn: &mut PgConnection, _envelope: &EventEnvelope) -> Result<(), HandlerError> {
        let mode: String = sqlx::query_scalar("SELECT current_setting('plan_cache_mode')").fetch_one(conn).await?;
        self.0.lock().unwrap().push(mode);
        Ok(())
    }

    fn batch_committed(&self) {
        self.0.lock().unwrap().push("committed".into());
    }
}

/// A consumer's batch lets PostgreSQL keep generic plans (`plan_cache_mode = auto`) for its own
/// statements only: the connection goes back to the pool planning every statement for its values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_batch_plans_its_statements_as_postgresql_chooses_and_only_inside_it() {
    let fixture = Fixture::start().await;
    let one_connection = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(fixture.pool.connect_options().as_ref().clone())
        .await
        .unwrap();
    fixture.enqueue(3).await;
    fixture.relay(&BackboneStats::default()).publish_due().await.unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let spec = ConsumerSpec {
        durable_name: "plans".into(),
        filter_subjects: vec![fixture.scheme.local_filter(&fixture.province, PUPIL_REGISTERED)],
        ack_wait: Duration::from_secs(5),
        max_batch: 64,
        max_deliveries: 100,
        crash_after_batches: None,
    };
    let consumer = Consumer::new(
        one_connection.clone(),
        fixture.stream.clone(),
        spec,
        PlanModeSeen(seen.clone()),
        BackboneStats::default(),
        Default::default(),
    );
    let pull = consumer.bind().await.unwrap();
    let batch: Vec<jetstream::Message> =
        pull.fetch().max_messages(3).messages().await.unwrap().map(|message| message.unwrap()).collect().await;
    assert_eq!(batch.len(), 3);
    consumer.apply(&batch).await.unwrap();
    // The handler is told once, after the batch (what the transfer service's waiting accepts
    // listen for).
    assert_eq!(*seen.lock().unwrap(), ["auto", "auto", "auto", "committed"]);
    let after: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&one_connection).await.unwrap();
    assert_eq!(after, "force_custom_plan");
    one_connection.close().await;
    fixture.finish().await;
}
