//! The checkpoint feed on a real PostgreSQL: checkpoint moves reach a split query node by
//! notification, and a lost listening connection is noticed and replaced.
use std::time::Duration;

use eventstore::testsupport::TestPostgres;
use query_api::checkpoint_feed::{APPLICATION_NAME, CheckpointFeed};
use sqlx::{AnyPool, any::AnyPoolOptions};

/// Long enough for any healthy machine; a broken feed fails here instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

/// Feeds under test never re-read on their own within a test: only notifications (and
/// new connections) move them.
const NO_RESYNC: Duration = Duration::from_secs(3600);

async fn database() -> Option<(TestPostgres, AnyPool)> {
    sqlx::any::install_default_drivers();
    let db = TestPostgres::new().await?;
    let pool = AnyPoolOptions::new()
        .max_connections(2)
        .connect(&db.url)
        .await
        .expect("pool");
    Some((db, pool))
}

async fn set_checkpoint(pool: &AnyPool, name: &str, position: i64) {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, $2, 'now') \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position",
    )
    .bind(name)
    .bind(position)
    .execute(pool)
    .await
    .expect("set checkpoint");
}

/// Sends a checkpoint notification with `payload`, as the trigger would.
async fn notify(pool: &AnyPool, payload: &str) {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(query_api::checkpoint_feed::CHANNEL)
        .bind(payload)
        .execute(pool)
        .await
        .expect("notify");
}

/// Waits until the feed is live with `name` at `position`.
async fn reading_reaches(feed: &CheckpointFeed, name: &str, position: u64) {
    let mut readings = feed.subscribe();
    tokio::time::timeout(
        PATIENCE,
        readings.wait_for(|reading| {
            reading
                .as_ref()
                .is_some_and(|reading| reading.get(name) == Some(&position))
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("the feed never read {name} at {position}"))
    .expect("feed stopped");
}

async fn listening_backend(pool: &AnyPool) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(APPLICATION_NAME)
    .fetch_optional(pool)
    .await
    .expect("pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_moves_reach_the_feed_without_anyone_asking() {
    let Some((_db, pool)) = database().await else {
        return;
    };
    set_checkpoint(&pool, "catalog", 3).await;
    let feed = CheckpointFeed::start_with(&pool, NO_RESYNC).expect("a PostgreSQL pool has a feed");
    reading_reaches(&feed, "catalog", 3).await;

    // Each move is pushed: no caller reads the table meanwhile.
    for position in [4, 9, 30] {
        set_checkpoint(&pool, "catalog", position).await;
        reading_reaches(&feed, "catalog", u64::try_from(position).unwrap()).await;
    }
    set_checkpoint(&pool, "inventory", 7).await;
    reading_reaches(&feed, "inventory", 7).await;
    assert_eq!(feed.current().expect("live")["catalog"], 30);

    // A rolled-back move is never read.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("UPDATE projection_checkpoints SET position = 99 WHERE name = 'catalog'")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    set_checkpoint(&pool, "inventory", 8).await;
    reading_reaches(&feed, "inventory", 8).await;
    assert_eq!(feed.current().expect("live")["catalog"], 30);
}

/// A forward move names its position, and the feed takes it from the notification: a
/// notification for a checkpoint the table does not hold shows in the reading, which a
/// read of the table could never give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_move_is_taken_from_its_notification() {
    let Some((_db, pool)) = database().await else {
        return;
    };
    set_checkpoint(&pool, "catalog", 3).await;
    let feed = CheckpointFeed::start_with(&pool, NO_RESYNC).expect("feed");
    reading_reaches(&feed, "catalog", 3).await;
    notify(&pool, "not-in-the-table=12").await;
    reading_reaches(&feed, "not-in-the-table", 12).await;
    // A late notification of an older position does not move a reading back.
    notify(&pool, "catalog=2").await;
    set_checkpoint(&pool, "inventory", 1).await;
    reading_reaches(&feed, "inventory", 1).await;
    assert_eq!(feed.current().expect("live")["catalog"], 3);
}

/// A checkpoint moved back (by hand: projections only move forward) notifies without a
/// position, and the feed reads the table again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_moved_back_is_read_from_the_table() {
    let Some((_db, pool)) = database().await else {
        return;
    };
    set_checkpoint(&pool, "catalog", 30).await;
    let feed = CheckpointFeed::start_with(&pool, NO_RESYNC).expect("feed");
    reading_reaches(&feed, "catalog", 30).await;
    set_checkpoint(&pool, "catalog", 4).await;
    reading_reaches(&feed, "catalog", 4).await;
    sqlx::query("DELETE FROM projection_checkpoints WHERE name = 'catalog'")
        .execute(&pool)
        .await
        .unwrap();
    set_checkpoint(&pool, "inventory", 2).await;
    reading_reaches(&feed, "inventory", 2).await;
    assert!(!feed.current().expect("live").contains_key("catalog"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listening_connection_is_replaced_and_the_moves_made_meanwhile_are_read() {
    let Some((_db, pool)) = database().await else {
        return;
    };
    set_checkpoint(&pool, "catalog", 1).await;
    let feed = CheckpointFeed::start_with(&pool, NO_RESYNC).expect("feed");
    reading_reaches(&feed, "catalog", 1).await;
    let first = listening_backend(&pool)
        .await
        .expect("a listening connection");

    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(killed);
    // Moved while the feed is between connections: its notification is lost, and only the
    // reading that follows the new connection's LISTEN can see it.
    set_checkpoint(&pool, "catalog", 2).await;
    reading_reaches(&feed, "catalog", 2).await;
    let second = tokio::time::timeout(PATIENCE, async {
        loop {
            match listening_backend(&pool).await {
                Some(pid) if pid != first => break pid,
                _ => tokio::task::yield_now().await,
            }
        }
    })
    .await
    .expect("the feed never listened again");
    assert_ne!(first, second);

    // And the new connection carries notifications again.
    set_checkpoint(&pool, "catalog", 5).await;
    reading_reaches(&feed, "catalog", 5).await;
}

#[tokio::test]
async fn sqlite_has_no_feed() {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .connect("sqlite::memory:")
        .await
        .unwrap();
    assert!(CheckpointFeed::start(&pool).is_none());
}
