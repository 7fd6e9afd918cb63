//! Replays (issue #4, invariant 5): a projection rebuilt from position 0 in shadow tables
//! and swapped in equals the live one; readers see the old or the new read model, never a
//! half-built one; the live runner keeps running through the swap without a gap or a double
//! apply; a crash mid-replay changes nothing live and the next replay succeeds.
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use domain::aggregate::{DomainEvent, encode};
use eventstore::{ExpectedVersion, NewEvent, Position, RecordedEvent};
use projector::{OrdersProjection, Projection, ReplayConfig, ReplayReport, Replayer};
use sqlx::{Any, AnyConnection, Connection, Row, Transaction};
use tokio::sync::Notify;

use crate::support::{Backend, Db, Step, config, random_history, run_to_head, spawn, tables_of};

crate::backend_tests!(
    replaying_each_projection_equals_live,
    replaying_all_rebuilds_every_projection,
    readers_see_the_old_or_the_new_read_model_never_a_half_built_one,
    the_live_runner_keeps_running_through_a_replay_without_gap_or_double_apply,
    the_whole_replay_can_happen_inside_the_swap,
    a_crash_mid_replay_changes_nothing_live_and_a_rerun_succeeds,
    a_failing_replay_changes_nothing_live_and_leaves_no_shadow,
    one_replay_at_a_time,
);

type Dump = BTreeMap<&'static str, Vec<Vec<String>>>;

fn replayer(db: &Db, batch_size: usize, swap_lag: u64) -> Replayer {
    Replayer::new(
        db.store.clone(),
        db.pool.clone(),
        ReplayConfig {
            batch_size,
            swap_lag,
            lock_wait: Duration::from_secs(5),
        },
    )
}

async fn replay(
    db: &Db,
    projections: &[Arc<dyn Projection>],
    batch_size: usize,
    swap_lag: u64,
) -> ReplayReport {
    replayer(db, batch_size, swap_lag)
        .run(projections, |_| {})
        .await
        .expect("replay")
}

async fn dump_all(db: &Db) -> BTreeMap<&'static str, Dump> {
    let mut dumps = BTreeMap::new();
    for projection in projector::default_projections() {
        dumps.insert(projection.name(), db.dump(projection.name()).await);
    }
    dumps
}

async fn checkpoints(db: &Db) -> BTreeMap<&'static str, Position> {
    let mut positions = BTreeMap::new();
    for projection in projector::default_projections() {
        let name = projection.name();
        positions.insert(name, projector::checkpoint(&db.pool, name).await.unwrap());
    }
    positions
}

/// What is left of shadows: PostgreSQL schemas or SQLite files.
async fn shadows(db: &Db) -> Vec<String> {
    match db.backend {
        Backend::Postgres => sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'emporium\\_replay\\_%'",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap(),
        Backend::Sqlite => {
            let file: String =
                sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                    .fetch_one(&db.pool)
                    .await
                    .unwrap();
            let prefix = format!("{file}.replay-");
            let folder = std::path::Path::new(&file).parent().unwrap();
            std::fs::read_dir(folder)
                .unwrap()
                .map(|entry| entry.unwrap().path().display().to_string())
                .filter(|path| path.starts_with(&prefix))
                .collect()
        }
    }
}

/// Wrecks every live read model (changed rows, missing rows, a row too many), as a bug
/// would: a replay must put every row right.
async fn damage(db: &Db) {
    for statement in [
        "UPDATE rm_products SET name = 'wrecked', version = 0",
        "DELETE FROM rm_variants",
        "DELETE FROM rm_product_categories",
        "UPDATE rm_inventory SET on_hand = on_hand + 1000",
        "DELETE FROM rm_reservations",
        "UPDATE rm_orders SET status = 'CANCELLED'",
        "INSERT INTO rm_customers (id, role, username, name, locked, registered_at, updated_at) \
         VALUES ('ghost', 'CUSTOMER', 'ghost', 'Ghost', 0, 'x', 'x')",
        "UPDATE rm_sales_days SET revenue = 0",
        "UPDATE rm_bought_together SET orders = orders + 10",
    ] {
        sqlx::query(statement).execute(&db.pool).await.unwrap();
    }
}

/// A history, run live into every projection; returns the live rows.
async fn live_history(db: &Db, seed: u64, steps: usize) -> BTreeMap<&'static str, Dump> {
    db.append_history(&random_history(seed, steps)).await;
    for projection in projector::default_projections() {
        run_to_head(db, projection, 3).await;
    }
    let live = dump_all(db).await;
    for (name, dump) in &live {
        assert!(
            dump.values().all(|rows| !rows.is_empty()),
            "{name}: the history fills every table"
        );
    }
    live
}

async fn replaying_each_projection_equals_live(db: Db) {
    let live = live_history(&db, 21, 150).await;
    let head = db.head().await;
    damage(&db).await;
    for projection in projector::default_projections() {
        let name = projection.name();
        assert_ne!(db.dump(name).await, live[name], "{name} is damaged");
        let report = replay(&db, &[projection], 7, 0).await;
        assert_eq!(report.checkpoints, vec![(name, head)]);
        assert_eq!(report.events, head);
        assert_eq!(
            db.dump(name).await,
            live[name],
            "{name}: replay equals live"
        );
        assert_eq!(projector::checkpoint(&db.pool, name).await.unwrap(), head);
    }
    assert!(shadows(&db).await.is_empty(), "no shadow is left");
}

async fn replaying_all_rebuilds_every_projection(db: Db) {
    let live = live_history(&db, 22, 150).await;
    let head = db.head().await;
    damage(&db).await;
    let report = replay(&db, &projector::default_projections(), 11, 5).await;
    assert_eq!(
        report.checkpoints,
        projector::default_projections()
            .iter()
            .map(|p| (p.name(), head))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.events, head, "each log event is counted once");
    assert_eq!(dump_all(&db).await, live);
    assert!(shadows(&db).await.is_empty());
    // A replay of an unchanged log changes nothing.
    replay(&db, &projector::default_projections(), 10_000, 2_000).await;
    assert_eq!(dump_all(&db).await, live);
}

/// What a wrapped projection does at its `at`-th `apply_many` call of a replay.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trap {
    /// Stop, inside the transaction, until released.
    Pause,
    /// Stop for ever (the test kills the replay).
    Hang,
    /// Fail after writing the batch.
    Fail,
}

/// A projection that springs a trap at its `at`-th `apply_many` call.
struct Trapped {
    inner: Arc<dyn Projection>,
    trap: Trap,
    at: usize,
    calls: AtomicUsize,
    reached: Notify,
    release: Notify,
}

impl Trapped {
    fn new(inner: Arc<dyn Projection>, trap: Trap, at: usize) -> Arc<Self> {
        Arc::new(Self {
            inner,
            trap,
            at,
            calls: AtomicUsize::new(0),
            reached: Notify::new(),
            release: Notify::new(),
        })
    }

    async fn reached(&self) {
        tokio::time::timeout(Duration::from_secs(30), self.reached.notified())
            .await
            .unwrap_or_else(|_| panic!("{} never reached its trap", self.inner.name()));
    }
}

#[async_trait]
impl Projection for Trapped {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        self.inner.handles(event)
    }

    fn tables(&self) -> &'static [&'static str] {
        self.inner.tables()
    }

    async fn apply_many(
        &self,
        tx: &mut Transaction<'_, Any>,
        events: &[&RecordedEvent],
    ) -> anyhow::Result<()> {
        self.inner.apply_many(tx, events).await?;
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
            self.reached.notify_one();
            match self.trap {
                Trap::Pause => self.release.notified().await,
                Trap::Hang => std::future::pending::<()>().await,
                Trap::Fail => anyhow::bail!("injected failure"),
            }
        }
        Ok(())
    }
}

/// A projection's rows and checkpoint, read in one snapshot.
async fn snapshot(conn: &mut AnyConnection, backend: Backend, name: &str) -> (Dump, i64) {
    let mut tx = match backend {
        Backend::Postgres => conn
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ")
            .await
            .unwrap(),
        // A SQLite read transaction sees one snapshot of the WAL.
        Backend::Sqlite => conn.begin().await.unwrap(),
    };
    let mut dump = BTreeMap::new();
    for &table in tables_of(name) {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        let mut rows: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        row.try_get::<Option<String>, _>(i)
                            .map(|v| v.unwrap_or_else(|| "NULL".into()))
                            .or_else(|_| row.try_get::<i64, _>(i).map(|v| v.to_string()))
                            .unwrap()
                    })
                    .collect()
            })
            .collect();
        rows.sort();
        dump.insert(table, rows);
    }
    let checkpoint: i64 =
        sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    (dump, checkpoint)
}

async fn readers_see_the_old_or_the_new_read_model_never_a_half_built_one(db: Db) {
    // The old read models: complete, at the middle of the history.
    let history = random_history(23, 200);
    let (first, second) = history.split_at(100);
    db.append_history(first).await;
    for projection in projector::default_projections() {
        run_to_head(&db, projection, 500).await;
    }
    let mut conn = db.pool.acquire().await.unwrap().detach();
    let mut old = BTreeMap::new();
    for projection in projector::default_projections() {
        let name = projection.name();
        old.insert(name, snapshot(&mut conn, db.backend, name).await);
    }
    db.append_history(second).await;

    // The replay stops in the middle of building the orders shadow.
    let trapped = Trapped::new(Arc::new(OrdersProjection), Trap::Pause, 3);
    let projections: Vec<Arc<dyn Projection>> = projector::default_projections()
        .into_iter()
        .map(|p| {
            if p.name() == OrdersProjection::NAME {
                trapped.clone() as Arc<dyn Projection>
            } else {
                p
            }
        })
        .collect();
    let replaying = {
        let replayer = replayer(&db, 9, 0);
        tokio::spawn(async move { replayer.run(&projections, |_| {}).await })
    };
    trapped.reached().await;
    if db.backend == Backend::Postgres {
        let building: i64 =
            sqlx::query_scalar("SELECT count(*) FROM emporium_replay_orders.rm_orders")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert!(building > 0, "the shadow is half built");
    }
    // Meanwhile a reader keeps reading every read model.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (done, backend) = (done.clone(), db.backend);
        let mut conn = db.pool.acquire().await.unwrap().detach();
        tokio::spawn(async move {
            let mut seen: BTreeMap<&'static str, BTreeSet<(Dump, i64)>> = BTreeMap::new();
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) || reads < 10 {
                for projection in projector::default_projections() {
                    let name = projection.name();
                    let state = snapshot(&mut conn, backend, name).await;
                    seen.entry(name).or_default().insert(state);
                }
                reads += 1;
            }
            seen
        })
    };
    for projection in projector::default_projections() {
        let name = projection.name();
        assert_eq!(
            snapshot(&mut conn, db.backend, name).await,
            old[name],
            "{name}: the old read model keeps serving, whole"
        );
    }
    trapped.release.notify_one();
    let report = replaying.await.unwrap().expect("replay");
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let head = db.head().await;
    assert!(report.checkpoints.iter().all(|(_, at)| *at == head));
    for projection in projector::default_projections() {
        let name = projection.name();
        let new = snapshot(&mut conn, db.backend, name).await;
        assert_ne!(new, old[name], "{name} changed");
        assert_eq!(new.1, i64::try_from(head).unwrap());
        for state in &seen[name] {
            assert!(
                *state == old[name] || *state == new,
                "{name}: a reader saw a read model that is neither the old nor the new one"
            );
        }
    }
    // And the new read models are what the live runners build.
    let replayed = dump_all(&db).await;
    for projection in projector::default_projections() {
        let name = projection.name();
        db.reset(name).await;
        run_to_head(&db, projection, 500).await;
    }
    assert_eq!(replayed, dump_all(&db).await);
}

fn encoded<E: DomainEvent>(event: &E) -> NewEvent {
    let (event_type, data) = encode(event);
    NewEvent::new(event_type, E::schema_version(event.event_type()), data)
}

/// Appends `history` from a task, event by event, as a shop keeps selling during a replay.
fn keep_selling(db: &Db, history: Vec<Step>) -> tokio::task::JoinHandle<()> {
    let store = db.store.clone();
    tokio::spawn(async move {
        for step in history {
            let (stream, event) = match &step {
                Step::Product(stream, event) => (stream, encoded(event)),
                Step::Stock(stream, event) => (stream, encoded(event)),
                Step::Order(stream, event) => (stream, encoded(event)),
                Step::Account(stream, event) => (stream, encoded(event)),
            };
            store
                .append(stream, ExpectedVersion::Any, vec![event])
                .await
                .expect("append");
        }
    })
}

/// The rows every projection has once its runner, started from scratch, reaches the head.
async fn rebuilt_from_scratch(db: &Db) -> BTreeMap<&'static str, Dump> {
    for projection in projector::default_projections() {
        db.reset(projection.name()).await;
        run_to_head(db, projection, 500).await;
    }
    dump_all(db).await
}

async fn the_live_runner_keeps_running_through_a_replay_without_gap_or_double_apply(db: Db) {
    let history = random_history(29, 300);
    let (first, rest) = history.split_at(100);
    let (during, after) = rest.split_at(100);
    let (while_paused, while_finishing) = during.split_at(40);
    db.append_history(first).await;
    let runners: Vec<_> = projector::default_projections()
        .into_iter()
        .map(|p| spawn(db.runner(p, config(4))))
        .collect();
    let head = db.head().await;
    for projection in projector::default_projections() {
        db.wait_for_checkpoint(projection.name(), head).await;
    }

    // Every shadow stops mid-build while the shop keeps selling: the live runners follow.
    let trapped: Vec<Arc<Trapped>> = projector::default_projections()
        .into_iter()
        .map(|p| Trapped::new(p, Trap::Pause, 1))
        .collect();
    let projections: Vec<Arc<dyn Projection>> = trapped
        .iter()
        .map(|t| t.clone() as Arc<dyn Projection>)
        .collect();
    let replaying = {
        let replayer = replayer(&db, 8, 0);
        tokio::spawn(async move { replayer.run(&projections, |_| {}).await })
    };
    for trap in &trapped {
        trap.reached().await;
    }
    db.append_history(while_paused).await;
    let head = db.head().await;
    for projection in projector::default_projections() {
        db.wait_for_checkpoint(projection.name(), head).await;
    }
    // The shop keeps selling while the replay catches up and swaps.
    let selling = keep_selling(&db, while_finishing.to_vec());
    for trap in &trapped {
        trap.release.notify_one();
    }
    replaying.await.unwrap().expect("replay");
    selling.await.unwrap();
    // And after it: the runners still run.
    db.append_history(after).await;
    let head = db.head().await;
    for projection in projector::default_projections() {
        db.wait_for_checkpoint(projection.name(), head).await;
    }
    for (task, stop) in runners {
        let _ = stop.send(());
        task.await.expect("runner task");
    }
    let result = dump_all(&db).await;
    assert_eq!(
        result,
        rebuilt_from_scratch(&db).await,
        "every event applied exactly once"
    );
}

async fn the_whole_replay_can_happen_inside_the_swap(db: Db) {
    // A swap lag larger than the log: every event is applied inside the swap transaction,
    // while the live runners wait on their checkpoint rows.
    let history = random_history(31, 260);
    let (first, rest) = history.split_at(120);
    let (during, after) = rest.split_at(120);
    db.append_history(first).await;
    let runners: Vec<_> = projector::default_projections()
        .into_iter()
        .map(|p| spawn(db.runner(p, config(5))))
        .collect();
    let selling = keep_selling(&db, during.to_vec());
    let report = replay(&db, &projector::default_projections(), 50, u64::MAX).await;
    assert!(report.events > 0);
    selling.await.unwrap();
    // The runners carry on after the swap. (Waiting for events appended after the
    // replay also means that they are idle, not inside a transaction, when stopped.)
    db.append_history(after).await;
    let head = db.head().await;
    for projection in projector::default_projections() {
        db.wait_for_checkpoint(projection.name(), head).await;
    }
    for (task, stop) in runners {
        let _ = stop.send(());
        task.await.expect("runner task");
    }
    let result = dump_all(&db).await;
    assert_eq!(result, rebuilt_from_scratch(&db).await);
}

async fn a_crash_mid_replay_changes_nothing_live_and_a_rerun_succeeds(db: Db) {
    let live = live_history(&db, 37, 150).await;
    let positions = checkpoints(&db).await;
    let trapped = Trapped::new(Arc::new(OrdersProjection), Trap::Hang, 2);
    let projections: Vec<Arc<dyn Projection>> = projector::default_projections()
        .into_iter()
        .map(|p| {
            if p.name() == OrdersProjection::NAME {
                trapped.clone() as Arc<dyn Projection>
            } else {
                p
            }
        })
        .collect();
    let replaying = {
        let replayer = replayer(&db, 6, 0);
        tokio::spawn(async move { replayer.run(&projections, |_| {}).await })
    };
    trapped.reached().await;
    // Killed in the middle of writing a shadow.
    replaying.abort();
    assert!(replaying.await.unwrap_err().is_cancelled());
    assert_eq!(dump_all(&db).await, live, "the live tables are untouched");
    assert_eq!(checkpoints(&db).await, positions);
    assert!(!shadows(&db).await.is_empty(), "the crash left its shadows");

    let report = replay(&db, &projector::default_projections(), 6, 0).await;
    assert_eq!(
        report.checkpoints.len(),
        projector::default_projections().len()
    );
    assert_eq!(dump_all(&db).await, live);
    assert!(shadows(&db).await.is_empty(), "the stale shadows are gone");
}

async fn a_failing_replay_changes_nothing_live_and_leaves_no_shadow(db: Db) {
    let live = live_history(&db, 41, 120).await;
    let positions = checkpoints(&db).await;
    damage(&db).await;
    let damaged = dump_all(&db).await;
    let projections: Vec<Arc<dyn Projection>> = projector::default_projections()
        .into_iter()
        .map(|p| {
            if p.name() == OrdersProjection::NAME {
                Trapped::new(p, Trap::Fail, 2) as Arc<dyn Projection>
            } else {
                p
            }
        })
        .collect();
    let err = replayer(&db, 5, 0)
        .run(&projections, |_| {})
        .await
        .expect_err("the replay fails");
    assert!(format!("{err:#}").contains("injected failure"), "{err:#}");
    assert_eq!(dump_all(&db).await, damaged, "nothing was swapped");
    assert_eq!(checkpoints(&db).await, positions);
    assert!(shadows(&db).await.is_empty());
    replay(&db, &projector::default_projections(), 5, 0).await;
    assert_eq!(dump_all(&db).await, live);
}

async fn one_replay_at_a_time(db: Db) {
    let live = live_history(&db, 43, 80).await;
    let trapped = Trapped::new(Arc::new(OrdersProjection), Trap::Pause, 1);
    let first = {
        let (replayer, trapped) = (replayer(&db, 5, 0), trapped.clone());
        tokio::spawn(async move {
            replayer
                .run(&[trapped as Arc<dyn Projection>], |_| {})
                .await
        })
    };
    trapped.reached().await;
    let impatient = Replayer::new(
        db.store.clone(),
        db.pool.clone(),
        ReplayConfig {
            lock_wait: Duration::ZERO,
            ..ReplayConfig::default()
        },
    );
    let err = impatient
        .run(&projector::default_projections(), |_| {})
        .await
        .expect_err("a second replay is refused");
    assert!(
        err.to_string().contains("another replay is running"),
        "{err}"
    );
    trapped.release.notify_one();
    first.await.unwrap().expect("the first replay");
    // Free again (waiting a moment for the first one's lock connection to close).
    replay(&db, &projector::default_projections(), 5, 0).await;
    assert_eq!(dump_all(&db).await, live);
}
