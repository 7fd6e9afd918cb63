//! A `BEGIN` whose future is dropped before PostgreSQL answers (a client that disconnects,
//! a timeout, a stopped runner) must not leave its pooled connection inside a transaction.
//! sqlx 0.9.0 did (transact-rs/sqlx#4393): the next borrower's autocommit writes then ran
//! inside that forgotten transaction, invisible to everyone and lost when it rolled back.
//! This pins the fixed sqlx (0.9.1) for both kinds of pool Emporium uses.
use std::time::Duration;

use eventstore::testsupport::{TcpProxy, TestPostgres};
use sqlx::{Acquire, Connection, Database, Executor, PgConnection, Pool, any::AnyPoolOptions};

/// Drops the `BEGIN` of `pool`'s only connection (which goes through `proxy`) while the
/// proxy holds its answer back, then creates `table` through the pool (autocommit) and
/// checks that a session of its own sees it.
async fn autocommit_after_a_cancelled_begin<DB: Database>(
    pool: &Pool<DB>,
    proxy: &TcpProxy,
    direct_url: &str,
    table: &str,
) where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let mut conn = pool.acquire().await.expect("connection");
    proxy.hold_replies();
    let answered = tokio::time::timeout(Duration::from_millis(200), conn.begin())
        .await
        .is_ok();
    assert!(!answered, "BEGIN was answered while replies were held");
    drop(conn);
    proxy.release_replies();

    // The pool has one connection: this is the one whose BEGIN was dropped.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE TABLE {table} (x int)")))
        .execute(pool)
        .await
        .expect("create table");

    let mut observer = PgConnection::connect(direct_url).await.expect("observer");
    let visible: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(&mut observer)
        .await
        .expect("to_regclass");
    assert!(
        visible,
        "{table}: an autocommit statement ran inside the cancelled BEGIN's transaction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_begin_leaves_no_transaction_open_on_a_pg_pool() {
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    let proxy = TcpProxy::start(db.server_addr()).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url_via(proxy.addr()))
        .await
        .expect("pool");
    autocommit_after_a_cancelled_begin(&pool, &proxy, &db.url, "after_cancelled_pg_begin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_begin_leaves_no_transaction_open_on_an_any_pool() {
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    sqlx::any::install_default_drivers();
    let proxy = TcpProxy::start(db.server_addr()).await;
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&db.url_via(proxy.addr()))
        .await
        .expect("pool");
    autocommit_after_a_cancelled_begin(&pool, &proxy, &db.url, "after_cancelled_any_begin").await;
}
