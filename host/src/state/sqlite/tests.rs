//! The SQLite store on real files: old files brought up to date, page and WAL settings, counts kept across reopening and connections, refunds, an unwritable location named.

use super::*;
use crate::state::Algorithm;

fn request(limit: u64) -> TakeRequest {
    TakeRequest {
        key: "k".into(),
        cost: 1,
        limit,
        window: Duration::from_secs(60),
        algorithm: Algorithm::FixedWindow,
    }
}

#[tokio::test]
async fn a_file_made_before_counters_kept_their_limits_is_brought_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE counters (key TEXT PRIMARY KEY, start_ms INTEGER NOT NULL,
                   used INTEGER NOT NULL, prev_used INTEGER NOT NULL) WITHOUT ROWID;
                 INSERT INTO counters VALUES ('old', 0, 5, 0);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let again = SqliteStore::open(&path).unwrap();
    store.take(&request(7)).await.unwrap();
    let listed = again.counters(10).await.unwrap();
    assert_eq!(
        listed.len(),
        1,
        "the old row has no limit and is not listed: {listed:?}"
    );
    assert_eq!(
        (listed[0].key.as_str(), listed[0].used, listed[0].limit),
        ("k", 1, 7)
    );
}

#[test]
fn new_files_use_small_pages_and_one_btree() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("c.sqlite")).unwrap();
    let conn = store.conn.lock().unwrap();
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page, 512);
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'counters'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.ends_with("WITHOUT ROWID"), "{sql}");
}

#[test]
fn the_wal_is_checkpointed_off_the_call_path_when_calls_pause() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("c.sqlite")).unwrap();
    let automatic: i64 = store
        .conn
        .lock()
        .unwrap()
        .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        automatic,
        checkpoint::BACKSTOP_FRAMES,
        "commits checkpoint only as a backstop"
    );
    let background = store.checkpointer.as_ref().expect("a checkpointing thread");
    // Enough takes to make a checkpoint due, not enough for the backstop; then a pause.
    let takes = checkpoint::EVERY_COMMITS + 100;
    assert!((takes as i64) < checkpoint::BACKSTOP_FRAMES);
    for i in 0..takes {
        store.take_at(&request(u64::MAX), 60_000 + i).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while background.completed() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no background checkpoint after {takes} takes and a pause"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn counts_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/counters.sqlite");
    let now = 1_000 * 60_000;
    {
        let store = SqliteStore::open(&path).unwrap();
        assert!(store.take_at(&request(2), now).unwrap().0.granted);
        assert!(store.take_at(&request(2), now).unwrap().0.granted);
    }
    let reopened = SqliteStore::open(&path).unwrap();
    let (taken, reservation) = reopened.take_at(&request(2), now + 1).unwrap();
    assert!(!taken.granted, "the limit holds across a restart");
    assert!(reservation.is_none());
}

#[test]
fn two_connections_to_one_file_enforce_one_limit_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counters.sqlite");
    let now = 2_000 * 60_000;
    let granted: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                s.spawn(move || {
                    let store = SqliteStore::open(&path).unwrap();
                    (0..50)
                        .filter(|_| store.take_at(&request(100), now).unwrap().0.granted)
                        .count() as u64
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(
        granted, 100,
        "200 attempts from 4 connections, exactly the limit granted"
    );
}

#[tokio::test]
async fn refunds_give_units_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("c.sqlite")).unwrap();
    let (_, reservation) = store.take(&request(1)).await.unwrap();
    assert!(!store.take(&request(1)).await.unwrap().0.granted);
    store.refund(&reservation.unwrap()).await.unwrap();
    assert!(store.take(&request(1)).await.unwrap().0.granted);
}

#[test]
fn an_unwritable_location_is_a_clear_error() {
    let err = SqliteStore::open(Path::new("/proc/tollgate/counters.sqlite"))
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .starts_with("counter store error: sqlite: cannot create /proc/tollgate"),
        "{err}"
    );
}
