//! The re-encryption after a key rotation, on a real PostgreSQL table spanning many batches: every
//! row under an older key (v1 included) is brought to the current key, bound to the same row; a
//! row no key opens is counted and left; a second pass changes nothing.

use std::collections::BTreeMap;

use nol_pii::{DataKey, ExchangeSigningKey, Keyring, SealKeyPair};
use nol_runtime::ProvinceKeys;
use nol_runtime::keys::{DATA_KEYS, rotate, write_key};
use nol_runtime::reencrypt::{Column, pass};
use sqlx::{Connection, PgConnection, Row};

const CONTEXT: &str = "svc.item.resident_id";

fn admin_url() -> String {
    std::env::var("NOL_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_comes_to_the_current_key_in_batches_and_a_second_pass_changes_nothing() {
    let name = format!("nol_reencrypt_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    let url = format!("{}/{name}", admin_url().rsplit_once('/').unwrap().0);
    let pool = nol_runtime::database::connect(&url, "svc", 4).await.unwrap();
    sqlx::query(
        "CREATE TABLE item (id bigint PRIMARY KEY, resident_id_index bytea, resident_id_cipher bytea, filler text)",
    )
    .execute(&pool)
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (_, public_pem) = nol_auth::generate_signing_key_pem().unwrap();
    ProvinceKeys::write_new(dir.path(), &public_pem, &SealKeyPair::generate(), &ExchangeSigningKey::generate(), &[])
        .unwrap();
    let folder = dir.path().join("registry");
    let legacy = DataKey::generate_base64();
    write_key(&folder, DATA_KEYS, 0, &legacy).unwrap();
    let legacy = DataKey::from_base64(&legacy).unwrap();
    let keys = ProvinceKeys::load(&folder).unwrap().data().unwrap();

    // 3,000 rows under key 1, 20 of before (v1), 5 that no key opens, and a row without a number.
    let clear = |id: i64| format!("3201022013050{id:05}");
    let mut expected = BTreeMap::new();
    for id in 0..3_025i64 {
        let index = keys.blind_index(&clear(id));
        let cipher = match id {
            0..3_000 => keys.encrypt(clear(id).as_bytes(), CONTEXT, &index),
            3_000..3_020 => legacy.encrypt(clear(id).as_bytes(), CONTEXT),
            // Bound to another row: no key opens it here.
            _ => keys.encrypt(clear(id).as_bytes(), CONTEXT, b"another row"),
        };
        if id < 3_020 {
            expected.insert(id, clear(id));
        }
        sqlx::query("INSERT INTO item VALUES ($1, $2, $3, repeat('x', 300))")
            .bind(id)
            .bind(&index)
            .bind(&cipher)
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO item VALUES (-1, NULL, NULL, 'provisional')").execute(&pool).await.unwrap();
    let pages: i64 = sqlx::query_scalar("SELECT pg_relation_size('item') / 8192").fetch_one(&pool).await.unwrap();
    assert!(pages > 64, "the table spans several batches ({pages} pages)");

    let columns = vec![Column::by_index("item", CONTEXT)];
    let before = pass(&pool, &keys.keyring, &columns).await.unwrap();
    assert_eq!((before.rewritten, before.failed), (20, 0), "key 1 is current: only v1 rows are rewritten");

    assert_eq!(rotate(std::slice::from_ref(&folder), DATA_KEYS).unwrap(), 2);
    keys.keyring.reload().unwrap();
    let done = pass(&pool, &keys.keyring, &columns).await.unwrap();
    assert_eq!(done.rewritten, 3_020);
    assert_eq!(done.failed, 5);
    assert_eq!(done.remaining, BTreeMap::from([(1, 5)]), "what no key opens stays, counted under its key");
    let again = pass(&pool, &keys.keyring, &columns).await.unwrap();
    assert_eq!((again.rewritten, again.failed), (0, 5), "a second pass changes nothing");

    // Every row opens with key 2 alone, at its own row.
    std::fs::remove_file(folder.join("data/0.key")).unwrap();
    std::fs::remove_file(folder.join("data/1.key")).unwrap();
    keys.keyring.reload().unwrap();
    let rows = sqlx::query("SELECT id, resident_id_index, resident_id_cipher FROM item WHERE id BETWEEN 0 AND 3019")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3_020);
    for row in rows {
        let (id, index, cipher): (i64, Vec<u8>, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(Keyring::key_id_of(&cipher), Ok(2));
        assert_eq!(keys.decrypt(&cipher, CONTEXT, &index).unwrap(), expected[&id].as_bytes());
    }
    pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&mut admin).await.unwrap();
}
