//! The contract suite, run against every backend this machine can reach.
use std::sync::Arc;

use eventstore::{
    EventStore, contract_suite,
    postgres::PostgresConfig,
    shared_tail::SharedTail,
    testsupport::{TcpProxy, TestPostgres, TestSqlite},
};

async fn sqlite() -> Option<(Arc<dyn EventStore>, TestSqlite)> {
    let db = TestSqlite::new().await;
    let store = eventstore::sqlite::SqliteEventStore::open(&db.path)
        .await
        .expect("open");
    Some((Arc::new(store), db))
}

async fn postgres() -> Option<(Arc<dyn EventStore>, TestPostgres)> {
    let db = TestPostgres::new().await?;
    Some((Arc::new(db.store(&PostgresConfig::default())), db))
}

/// A backend behind a [`SharedTail`]: it must pass the same contract.
async fn shared<G>(backend: Option<(Arc<dyn EventStore>, G)>) -> Option<(Arc<dyn EventStore>, G)> {
    let (store, guard) = backend?;
    Some((Arc::new(SharedTail::with_capacity(store, 64)), guard))
}

async fn shared_tail_sqlite() -> Option<(Arc<dyn EventStore>, TestSqlite)> {
    shared(sqlite().await).await
}

async fn shared_tail_postgres() -> Option<(Arc<dyn EventStore>, TestPostgres)> {
    shared(postgres().await).await
}

contract_suite!(sqlite, super::sqlite);
contract_suite!(postgres, super::postgres);
contract_suite!(shared_tail_sqlite, super::shared_tail_sqlite);
contract_suite!(shared_tail_postgres, super::shared_tail_postgres);

#[cfg(feature = "kurrentdb")]
mod kurrent_backend {
    use super::*;

    pub(super) async fn kurrent() -> Option<(Arc<dyn EventStore>, ())> {
        let Ok(url) = std::env::var("EMPORIUM_TEST_EVENTSTORE_URL") else {
            eprintln!(
                "skipped: EMPORIUM_TEST_EVENTSTORE_URL is not set (no KurrentDB / EventStoreDB server)"
            );
            return None;
        };
        let prefix = format!("t{}-", uuid::Uuid::now_v7().simple());
        let store = eventstore::kurrent::KurrentEventStore::connect(&url)
            .expect("kurrentdb")
            .scoped(&prefix);
        Some((Arc::new(store), ()))
    }
}
#[cfg(feature = "kurrentdb")]
contract_suite!(kurrent, super::kurrent_backend::kurrent);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_recovers_after_outage() {
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    let proxy = TcpProxy::start(db.server_addr()).await;
    let config = PostgresConfig {
        max_connections: 4,
        acquire_timeout: std::time::Duration::from_secs(2),
    };
    let store =
        eventstore::postgres::PostgresEventStore::connect(&db.url_via(proxy.addr()), &config)
            .unwrap();
    eventstore::contract::recovers_after_outage(Arc::new(store), &proxy).await;
}
