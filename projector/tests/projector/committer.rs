//! Batches of several projections committed in one transaction: the same rows as one
//! transaction each, and a failing projection fails alone.
use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use eventstore::RecordedEvent;
use projector::{
    Batch, BatchOutcome, CatalogProjection, InventoryProjection, Projection, Projector,
    apply_batches,
};
use sqlx::{Any, Transaction};

use crate::support::{Backend, Db, Flaky, config, random_history, run_to_head};

crate::backend_tests!(
    batches_commit_in_one_transaction,
    a_failing_batch_fails_alone,
    two_batches_of_one_projection_apply_each_event_once,
    a_projector_reaches_the_head_past_a_failing_projection,
);

/// `synchronous_commit` is PostgreSQL's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_on_postgres_do_not_wait_for_the_wal_flush() {
    let Some(db) = Db::open(Backend::Postgres).await else {
        return;
    };
    batches_do_not_wait_for_the_wal_flush(db).await;
}

/// A projection that refuses every event.
struct Broken;

impl Broken {
    const NAME: &'static str = "broken";
}

#[async_trait]
impl Projection for Broken {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handles(&self, _event: &RecordedEvent) -> bool {
        true
    }

    async fn apply_many(
        &self,
        _tx: &mut Transaction<'_, Any>,
        _events: &[&RecordedEvent],
    ) -> anyhow::Result<()> {
        anyhow::bail!("broken on purpose")
    }
}

/// A projection that notes the `synchronous_commit` its batches run under.
#[derive(Default)]
struct SyncCommitProbe {
    seen: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl Projection for SyncCommitProbe {
    fn name(&self) -> &'static str {
        "sync_commit_probe"
    }

    fn handles(&self, _event: &RecordedEvent) -> bool {
        true
    }

    async fn apply_many(
        &self,
        tx: &mut Transaction<'_, Any>,
        _events: &[&RecordedEvent],
    ) -> anyhow::Result<()> {
        let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&mut **tx)
            .await?;
        self.seen.lock().unwrap().push(setting);
        Ok(())
    }
}

type Dump = BTreeMap<&'static str, Vec<Vec<String>>>;

/// The rows of each projection after one runner of its own went through the whole log;
/// then empties them again.
async fn references(db: &Db, projections: &[Arc<dyn Projection>]) -> Vec<Dump> {
    let mut dumps = Vec::new();
    for projection in projections {
        run_to_head(db, projection.clone(), 500).await;
        dumps.push(db.dump(projection.name()).await);
        db.reset(projection.name()).await;
    }
    dumps
}

/// Each projection's batch of `events`, from a runner that believes its checkpoint is 0.
fn from_zero<'a>(
    projections: &'a [Arc<dyn Projection>],
    events: &'a [RecordedEvent],
) -> Vec<Batch<'a>> {
    projections
        .iter()
        .map(|p| Batch {
            projection: &**p,
            committed: 0,
            events,
        })
        .collect()
}

async fn checkpoint_row(db: &Db, name: &str) {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, 0, '')",
    )
    .bind(name)
    .execute(&db.pool)
    .await
    .expect("checkpoint row");
}

async fn batches_commit_in_one_transaction(db: Db) {
    db.append_history(&random_history(21, 80)).await;
    let events = db.store.read_all(0, 10_000).await.expect("read");
    let last = events.last().expect("events").position;
    let projections: [Arc<dyn Projection>; 2] =
        [Arc::new(CatalogProjection), Arc::new(InventoryProjection)];
    let expected = references(&db, &projections).await;
    let batches = from_zero(&projections, &events);
    for outcome in apply_batches(&db.pool, &batches).await {
        assert!(
            matches!(outcome, Ok(BatchOutcome::Committed { checkpoint, applied }) if checkpoint == last && applied > 0),
            "{outcome:?}"
        );
    }
    for (projection, expected) in projections.iter().zip(&expected) {
        assert_eq!(&db.dump(projection.name()).await, expected);
    }
    if db.backend == Backend::Postgres {
        // Both checkpoint rows were last written by the same transaction.
        let writers: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT xmin::text FROM projection_checkpoints WHERE name IN ($1, $2)",
        )
        .bind(CatalogProjection::NAME)
        .bind(InventoryProjection::NAME)
        .fetch_all(&db.pool)
        .await
        .expect("xmin");
        assert_eq!(writers.len(), 1, "{writers:?}");
    }
    // Again, from a runner that lagged behind: nothing is applied twice.
    for outcome in apply_batches(&db.pool, &batches).await {
        assert!(
            matches!(outcome, Ok(BatchOutcome::Committed { checkpoint, applied: 0 }) if checkpoint == last),
            "{outcome:?}"
        );
    }
    for (projection, expected) in projections.iter().zip(&expected) {
        assert_eq!(&db.dump(projection.name()).await, expected);
    }
}

async fn a_failing_batch_fails_alone(db: Db) {
    db.append_history(&random_history(22, 60)).await;
    let events = db.store.read_all(0, 10_000).await.expect("read");
    let last = events.last().expect("events").position;
    let projections: [Arc<dyn Projection>; 3] = [
        Arc::new(CatalogProjection),
        Arc::new(Broken),
        Arc::new(InventoryProjection),
    ];
    let expected = references(&db, &[projections[0].clone(), projections[2].clone()]).await;
    checkpoint_row(&db, Broken::NAME).await;
    let batches = from_zero(&projections, &events);
    let outcomes = apply_batches(&db.pool, &batches).await;
    assert!(
        outcomes[1]
            .as_ref()
            .is_err_and(|err| format!("{err:#}").contains("broken on purpose")),
        "{:?}",
        outcomes[1]
    );
    for i in [0, 2] {
        assert!(
            matches!(outcomes[i], Ok(BatchOutcome::Committed { checkpoint, .. }) if checkpoint == last),
            "{:?}",
            outcomes[i]
        );
    }
    assert_eq!(db.dump(CatalogProjection::NAME).await, expected[0]);
    assert_eq!(db.dump(InventoryProjection::NAME).await, expected[1]);
    assert_eq!(
        projector::checkpoint(&db.pool, Broken::NAME).await.unwrap(),
        0
    );
}

async fn two_batches_of_one_projection_apply_each_event_once(db: Db) {
    db.append_history(&random_history(24, 60)).await;
    let events = db.store.read_all(0, 10_000).await.expect("read");
    let projection: Arc<dyn Projection> = Arc::new(InventoryProjection);
    let handled = events.iter().filter(|e| projection.handles(e)).count();
    let expected = references(&db, std::slice::from_ref(&projection)).await;
    let twice = [projection.clone(), projection.clone()];
    let applied: Vec<usize> = apply_batches(&db.pool, &from_zero(&twice, &events))
        .await
        .into_iter()
        .map(|outcome| match outcome {
            Ok(BatchOutcome::Committed { applied, .. }) => applied,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(applied.iter().sum::<usize>(), handled, "{applied:?}");
    assert_eq!(db.dump(projection.name()).await, expected[0]);
}

async fn a_projector_reaches_the_head_past_a_failing_projection(db: Db) {
    db.append_history(&random_history(23, 120)).await;
    let mut projections = projector::default_projections();
    let expected = references(&db, &projections).await;
    // The catalogue fails its first applications and is retried; `broken` never succeeds.
    let flaky: Arc<dyn Projection> = Flaky::new(projections[0].clone(), 3);
    projections[0] = flaky;
    projections.push(Arc::new(Broken));
    let projector = Projector::new(db.store.clone(), db.pool.clone(), &config(7), projections);
    let positions = projector.positions();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(projector.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let head = db.head().await;
    for (projection, expected) in projector::default_projections().iter().zip(&expected) {
        let name = projection.name();
        let reached = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            positions.wait_for(name, head),
        )
        .await;
        assert_eq!(reached, Ok(true), "{name} reaches the head");
        assert_eq!(&db.dump(name).await, expected, "{name}");
    }
    assert_eq!(positions.current(Broken::NAME), Some(0));
    let _ = stop.send(());
    task.await.expect("projector task");
}

/// Read models are derived from the log, so their batches commit without waiting for the
/// WAL flush, and only inside the batch: the connection goes back to the pool as it was.
async fn batches_do_not_wait_for_the_wal_flush(db: Db) {
    db.append_history(&random_history(25, 20)).await;
    let events = db.store.read_all(0, 10_000).await.expect("read");
    let probe = Arc::new(SyncCommitProbe::default());
    checkpoint_row(&db, probe.name()).await;
    checkpoint_row(&db, CatalogProjection::NAME).await;
    let alone: [Arc<dyn Projection>; 1] = [probe.clone()];
    let together: [Arc<dyn Projection>; 2] = [probe.clone(), Arc::new(CatalogProjection)];
    for batches in [from_zero(&alone, &events), from_zero(&together, &events)] {
        for outcome in apply_batches(&db.pool, &batches).await {
            assert!(
                matches!(outcome, Ok(BatchOutcome::Committed { .. })),
                "{outcome:?}"
            );
        }
        sqlx::query("UPDATE projection_checkpoints SET position = 0 WHERE name = $1")
            .bind(probe.name())
            .execute(&db.pool)
            .await
            .expect("reset the probe");
    }
    assert_eq!(*probe.seen.lock().unwrap(), ["off", "off"]);
    let after: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&db.pool)
        .await
        .expect("setting");
    assert_eq!(after, "on");
}
