//! A `BEGIN` whose future is dropped before PostgreSQL answers (a client that disconnects,
//! a timeout, a stopped runner) must not leave its pooled connection inside a transaction.
//! sqlx 0.9.0 did (transact-rs/sqlx#4393): the next borrower's autocommit writes then ran
//! inside that forgotten transaction, invisible to everyone and lost when it rolled back.
//! This pins the fixed sqlx (0.9.1) for both kinds of pool Emporium uses.
use eventstore::testsupport::TestPostgres;
use futures::FutureExt;
use sqlx::{Acquire, Connection, Database, Executor, PgConnection, Pool, any::AnyPoolOptions};

/// Drops `pool`'s only connection's `BEGIN` while it waits for the answer, then creates
/// `table` through the pool (autocommit) and reports whether another session sees it.
async fn autocommit_after_a_cancelled_begin<DB: Database>(pool: &Pool<DB>, url: &str, table: &str)
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let mut cancelled = false;
    for _ in 0..100 {
        let mut conn = pool.acquire().await.expect("connection");
        // One poll sends the BEGIN; its answer cannot have arrived yet, so this almost
        // always stops it in flight. When it did complete, roll back and try again.
        match conn.begin().now_or_never() {
            None => {
                cancelled = true;
                break;
            }
            Some(tx) => tx.expect("begin").rollback().await.expect("rollback"),
        }
    }
    assert!(cancelled, "never caught a BEGIN in flight");

    // The pool has one connection: this is the one whose BEGIN was dropped.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE TABLE {table} (x int)")))
        .execute(pool)
        .await
        .expect("create table");

    let mut observer = PgConnection::connect(url).await.expect("observer");
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
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .expect("pool");
    autocommit_after_a_cancelled_begin(&pool, &db.url, "after_cancelled_pg_begin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_begin_leaves_no_transaction_open_on_an_any_pool() {
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .expect("pool");
    autocommit_after_a_cancelled_begin(&pool, &db.url, "after_cancelled_any_begin").await;
}
