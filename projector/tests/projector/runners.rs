//! Several runners of one projection: never an event applied twice, and a standby takes
//! over from a dead owner.
use std::{sync::Arc, time::Duration};

use projector::{
    BatchOutcome, CatalogProjection, InventoryProjection, Projection, Stalls, apply_batch,
};

use crate::support::{Backend, Db, Flaky, config, eventually, random_history, run_to_head, spawn};

crate::backend_tests!(
    two_runners_produce_the_rows_of_one,
    concurrent_batches_apply_each_event_once,
    a_standby_takes_over_when_the_owner_dies,
    a_projection_that_cannot_apply_an_event_reports_a_stall_until_it_can,
);

/// The rows of one runner replaying the whole log.
async fn reference(
    db: &Db,
    projection: Arc<dyn Projection>,
) -> std::collections::BTreeMap<&'static str, Vec<Vec<String>>> {
    let name = projection.name();
    db.reset(name).await;
    run_to_head(db, projection, 500).await;
    db.dump(name).await
}

async fn two_runners_produce_the_rows_of_one(db: Db) {
    let history = random_history(5, 100);
    let (first, second) = history.split_at(30);
    db.append_history(first).await;
    let runners: Vec<_> = projector::default_projections()
        .into_iter()
        .flat_map(|p| {
            [
                spawn(db.runner(p.clone(), config(1))),
                spawn(db.runner(p, config(3))),
            ]
        })
        .collect();
    for step in second.chunks(5) {
        db.append_history(step).await;
    }
    let head = db.head().await;
    for projection in projector::default_projections() {
        db.wait_for_checkpoint(projection.name(), head).await;
    }
    for (task, stop) in runners {
        let _ = stop.send(());
        task.await.expect("runner task");
    }
    for projection in projector::default_projections() {
        let name = projection.name();
        let together = db.dump(name).await;
        assert_eq!(
            together,
            reference(&db, projection).await,
            "{name}: two runners equal one"
        );
    }
}

async fn concurrent_batches_apply_each_event_once(db: Db) {
    db.append_history(&random_history(9, 60)).await;
    let events = db.store.read_all(0, 10_000).await.expect("read");
    for projection in projector::default_projections() {
        let name = projection.name();
        let handled = events.iter().filter(|e| projection.handles(e)).count();
        let expected = reference(&db, projection.clone()).await;
        db.reset(name).await;
        // Two transactions race over the same batch: the second one finds the checkpoint
        // moved and applies nothing.
        let (a, b) = tokio::join!(
            apply_batch(&db.pool, &*projection, 0, &events),
            apply_batch(&db.pool, &*projection, 0, &events),
        );
        let applied: Vec<usize> = [a, b]
            .into_iter()
            .map(|outcome| match outcome.expect("batch") {
                BatchOutcome::Committed {
                    checkpoint,
                    applied,
                } => {
                    assert_eq!(checkpoint, events.last().unwrap().position);
                    applied
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            applied.iter().sum::<usize>(),
            handled,
            "{name}: {applied:?}"
        );
        assert!(applied.contains(&0));
        assert_eq!(db.dump(name).await, expected, "{name}: applied once");
        // A batch below the checkpoint, from a runner that lagged behind, changes nothing.
        let again = apply_batch(&db.pool, &*projection, 0, &events[..10])
            .await
            .expect("batch");
        assert_eq!(
            again,
            BatchOutcome::Committed {
                checkpoint: events.last().unwrap().position,
                applied: 0
            }
        );
        assert_eq!(db.dump(name).await, expected);
    }
    // A runner whose checkpoint was moved back (a replay) is told so and writes nothing.
    db.reset(CatalogProjection::NAME).await;
    let outcome = apply_batch(&db.pool, &CatalogProjection, 5, &events[5..])
        .await
        .expect("batch");
    assert_eq!(outcome, BatchOutcome::CheckpointMovedBack { stored: 0 });
    assert!(
        db.dump(CatalogProjection::NAME)
            .await
            .values()
            .all(Vec::is_empty)
    );
}

async fn a_standby_takes_over_when_the_owner_dies(db: Db) {
    let history = random_history(13, 80);
    let (first, second) = history.split_at(40);
    db.append_history(first).await;
    let projection: Arc<dyn Projection> = Arc::new(InventoryProjection);
    let name = projection.name();
    let owner = db.runner(projection.clone(), config(2));
    let (owner_task, _owner_stop) = spawn(owner);
    let head = db.head().await;
    db.wait_for_checkpoint(name, head).await;
    let standby = db.runner(projection.clone(), config(2));
    let standby_position = standby.subscribe();
    let (standby_task, standby_stop) = spawn(standby);
    // The standby reports the owner's progress (PostgreSQL) or runs too (SQLite).
    eventually("the standby sees the checkpoint", || {
        let seen = *standby_position.borrow();
        async move { seen >= head }
    })
    .await;
    if db.backend == Backend::Postgres {
        // One owner: a single advisory lock is held in this database.
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&db.pool)
        .await
        .expect("locks");
        assert_eq!(held, 1);
    }
    // The owner dies (its lock connection closes with it); the standby carries on.
    owner_task.abort();
    let _ = owner_task.await;
    db.append_history(second).await;
    let head = db.head().await;
    eventually("the standby takes over", || {
        let seen = *standby_position.borrow();
        async move { seen >= head }
    })
    .await;
    assert_eq!(projector::checkpoint(&db.pool, name).await.unwrap(), head);
    let _ = standby_stop.send(());
    standby_task.await.expect("standby task");
    let rows = db.dump(name).await;
    assert_eq!(rows, reference(&db, projection).await);
}

async fn a_projection_that_cannot_apply_an_event_reports_a_stall_until_it_can(db: Db) {
    db.append_history(&random_history(3, 20)).await;
    let head = db.head().await;
    let name = CatalogProjection::NAME;
    let expected = reference(&db, Arc::new(CatalogProjection)).await;
    db.reset(name).await;

    let failing = Flaky::new(Arc::new(CatalogProjection), usize::MAX);
    let runner = db.runner(failing.clone(), config(500));
    let mut stall = runner.watch_stall();
    let stalls = Stalls::of([&runner]);
    assert_eq!(stalls.check(), Ok(()), "nothing has failed yet");
    let (task, stop) = spawn(runner);

    let seen = tokio::time::timeout(
        Duration::from_secs(30),
        stall.wait_for(|s| s.as_ref().is_some_and(|s| s.attempts >= 3)),
    )
    .await
    .expect("a stall within 30 s")
    .expect("runner alive")
    .clone()
    .expect("stalled");
    assert_eq!(seen.checkpoint, 0, "nothing committed");
    assert!(
        seen.error.starts_with("catalog: applying ") && seen.error.ends_with("injected failure"),
        "{}",
        seen.error
    );
    let report = stalls.check().expect_err("the check names the stall");
    assert!(report.starts_with("catalog: failing since "), "{report}");
    assert!(
        db.dump(name).await.values().all(Vec::is_empty),
        "every failed batch was rolled back"
    );

    failing.heal();
    tokio::time::timeout(Duration::from_secs(30), stall.wait_for(Option::is_none))
        .await
        .expect("the stall ends within 30 s")
        .expect("runner alive");
    db.wait_for_checkpoint(name, head).await;
    assert_eq!(stalls.check(), Ok(()));
    let _ = stop.send(());
    task.await.expect("runner task");
    assert_eq!(
        db.dump(name).await,
        expected,
        "the same rows, once it can apply"
    );
}
