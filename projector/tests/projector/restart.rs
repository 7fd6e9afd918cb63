//! Invariants 4 and 5: a runner killed at any point and restarted, or a replay from 0 into
//! empty tables, gives exactly the rows of an uninterrupted run.
use std::{sync::Arc, time::Duration};

use projector::Projection;

use crate::support::{Db, Flaky, Killer, config, eventually, random_history, run_to_head, spawn};

crate::backend_tests!(
    killed_and_restarted_equals_uninterrupted,
    replay_from_zero_equals_live,
    a_failing_batch_is_rolled_back_and_retried,
);

/// Runs until the runner has committed at least `target`, then stops it gracefully.
async fn run_until(db: &Db, projection: Arc<dyn Projection>, batch: usize, target: u64) {
    let runner = db.runner(projection, config(batch));
    let position = runner.subscribe();
    let (task, stop) = spawn(runner);
    eventually("a graceful stop point", || {
        let reached = *position.borrow() >= target;
        async move { reached }
    })
    .await;
    let _ = stop.send(());
    task.await.expect("runner task");
}

async fn killed_and_restarted_equals_uninterrupted(db: Db) {
    db.append_history(&random_history(7, 160)).await;
    let head = db.head().await;
    let events = db.store.read_all(0, 10_000).await.expect("read");
    for projection in projector::default_projections() {
        let name = projection.name();
        let handled = events.iter().filter(|e| projection.handles(e)).count();
        assert!(
            handled > 25,
            "{name}: only {handled} events to kill between"
        );
        run_to_head(&db, projection.clone(), 500).await;
        let reference = db.dump(name).await;
        assert!(
            reference.values().all(|rows| !rows.is_empty()),
            "{name}: the history fills every table"
        );
        for batch in 1..=7 {
            for kill_after in [0, 1, 9, 25] {
                db.reset(name).await;
                // Killed in the middle of a batch, inside its transaction.
                let killer = Killer::new(projection.clone(), kill_after);
                let (task, _stop) = spawn(db.runner(killer.clone(), config(batch)));
                tokio::time::timeout(Duration::from_secs(30), killer.hung.notified())
                    .await
                    .expect("the runner reaches the kill point");
                task.abort();
                let _ = task.await;
                let killed_at = projector::checkpoint(&db.pool, name).await.unwrap();
                assert!(killed_at < head, "{name}: killed before the end");
                // Stopped gracefully a few batches later.
                let target = (killed_at + 2 * batch as u64).min(head);
                run_until(&db, projection.clone(), batch, target).await;
                // And restarted to the end.
                run_to_head(&db, projection.clone(), batch).await;
                assert_eq!(
                    db.dump(name).await,
                    reference,
                    "{name}: batch size {batch}, killed after {kill_after} events"
                );
            }
        }
    }
}

async fn replay_from_zero_equals_live(db: Db) {
    let history = random_history(11, 120);
    let (first, second) = history.split_at(50);
    db.append_history(first).await;
    // Live: the runners follow the log while it is written.
    let runners: Vec<_> = projector::default_projections()
        .into_iter()
        .map(|p| spawn(db.runner(p, config(4))))
        .collect();
    for step in second.chunks(7) {
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
        let live = db.dump(name).await;
        db.reset(name).await;
        assert!(db.dump(name).await.values().all(Vec::is_empty));
        run_to_head(&db, projection, 500).await;
        assert_eq!(db.dump(name).await, live, "{name}: replay equals live");
    }
}

async fn a_failing_batch_is_rolled_back_and_retried(db: Db) {
    db.append_history(&random_history(3, 40)).await;
    for projection in projector::default_projections() {
        let name = projection.name();
        run_to_head(&db, projection.clone(), 500).await;
        let reference = db.dump(name).await;
        db.reset(name).await;
        // Every failure happens after the event's rows were written: they must roll back.
        run_to_head(&db, Flaky::new(projection, 5), 6).await;
        assert_eq!(
            db.dump(name).await,
            reference,
            "{name}: retried batches applied once"
        );
    }
}
