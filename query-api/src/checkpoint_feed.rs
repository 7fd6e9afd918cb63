//! Committed checkpoints pushed to the node: `LISTEN` on PostgreSQL.
//!
//! A split query node learns where the read models stand from `projection_checkpoints`.
//! Reading the table for each batch of requests ([`CheckpointReads`]) put a PostgreSQL
//! round trip in front of every cached page. On PostgreSQL a trigger on that table
//! (`migrations/postgres/0008_checkpoint_notify.sql`, `0010_checkpoint_notify_position.sql`)
//! notifies [`CHANNEL`] in every transaction that moves a checkpoint, and this feed keeps
//! the latest reading in memory, so a request reads the checkpoints without a round trip.
//! A checkpoint that moved forward names its new position in the notification
//! (`name=position`), and the feed applies it to its reading; any other notification (a
//! row added, removed or moved back, or a trigger that predates the payload) makes it
//! read the whole table again. It also reads it at least every [`RESYNC`], in case
//! notifications stop arriving on a half-open connection.
//!
//! The feed is *live* only while its listening connection is up and its reading started
//! after that connection's `LISTEN`: every commit since is either in the reading or has
//! notified it. Forward moves are applied as maxima, so a notification delivered after a
//! read that already holds its commit changes nothing. (Projections only move forward; a
//! checkpoint moved back by hand can leave a reading ahead of the table until that
//! move's own notification, right behind, makes the feed read it again.) A reading is
//! thus behind the table by at most one notification's delivery (and a read, for the
//! others), which is the eventual consistency the query API promises; a client that must
//! see its own write sends `X-Emporium-Min-Position` and is woken by the first reading
//! that reaches it. When the connection drops the feed stops being live at once, callers
//! fall back to reading the table themselves, and it reconnects with a back-off.
//!
//! [`CheckpointReads`]: crate::checkpoint_reads::CheckpointReads
use std::{
    collections::HashMap,
    str::FromStr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use sqlx::{
    AnyPool, ConnectOptions,
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
};
use tokio::{sync::watch, task::AbortHandle};

use crate::checkpoint_reads::{Snapshot, read_all};

/// The channel the checkpoint trigger notifies.
pub const CHANNEL: &str = "emporium_checkpoints";

/// The `application_name` of the listening connection (so operators can tell it apart).
pub const APPLICATION_NAME: &str = "emporium-checkpoint-feed";

/// The longest a live reading goes without being refreshed.
pub const RESYNC: Duration = Duration::from_secs(1);

const BACKOFF_INITIAL: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What the listening task tells the reading task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Link {
    /// Counts connections: a reading is live only if its connection is still the current.
    connection: u64,
    /// Whether `connection` is up and listening.
    listening: bool,
    /// Counts notifications (a change of this wakes the reader).
    notifications: u64,
}

/// What one notification asks of the reading.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Notice {
    /// A checkpoint moved forward to this position.
    Moved(String, u64),
    /// Something else changed: read the whole table.
    Reread,
}

impl Notice {
    fn parse(payload: &str) -> Self {
        payload
            .rsplit_once('=')
            .and_then(|(name, position)| Some((name, position.parse().ok()?)))
            .filter(|(name, _)| !name.is_empty())
            .map_or(Self::Reread, |(name, position)| {
                Self::Moved(name.to_owned(), position)
            })
    }
}

/// Notices delivered and not yet applied, in delivery order.
#[derive(Debug, Default)]
struct Notices(Mutex<Vec<Notice>>);

impl Notices {
    fn push(&self, notice: Notice) {
        self.queue().push(notice);
    }

    fn take(&self) -> Vec<Notice> {
        std::mem::take(&mut *self.queue())
    }

    fn queue(&self) -> MutexGuard<'_, Vec<Notice>> {
        // A panic while holding this lock cannot leave the queue inconsistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies forward moves to `reading`; `false` when a notice asks for a whole read.
fn apply(reading: &mut HashMap<String, u64>, notices: Vec<Notice>) -> bool {
    for notice in notices {
        match notice {
            Notice::Moved(name, position) => {
                let stored = reading.entry(name).or_default();
                *stored = (*stored).max(position);
            }
            Notice::Reread => return false,
        }
    }
    true
}

/// The live checkpoints of a PostgreSQL read-model database; see the module doc.
#[derive(Clone, Debug)]
pub struct CheckpointFeed {
    reading: watch::Receiver<Option<Snapshot>>,
    _tasks: Arc<Tasks>,
}

/// Stops the feed's tasks when the last clone of the feed is dropped.
#[derive(Debug)]
struct Tasks(Vec<AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl CheckpointFeed {
    /// Starts a feed for `pool` when it is a PostgreSQL pool and a tokio runtime is
    /// running; `None` otherwise (callers then read the table).
    pub fn start(pool: &AnyPool) -> Option<Self> {
        Self::start_with(pool, RESYNC)
    }

    /// [`Self::start`], refreshing a live reading at least every `resync` instead of
    /// [`RESYNC`].
    pub fn start_with(pool: &AnyPool, resync: Duration) -> Option<Self> {
        if !projector::is_postgres(pool) {
            return None;
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let options = PgConnectOptions::from_str(pool.connect_options().database_url.as_str())
            .ok()?
            .application_name(APPLICATION_NAME)
            .disable_statement_logging();
        let (link_sender, link) = watch::channel(Link::default());
        let (reading_sender, reading) = watch::channel(None);
        let notices = Arc::new(Notices::default());
        let listening = runtime.spawn(listen(options, link_sender, notices.clone()));
        let reading_task = runtime.spawn(keep_reading(
            pool.clone(),
            resync,
            link,
            notices,
            reading_sender,
        ));
        Some(Self {
            reading,
            _tasks: Arc::new(Tasks(vec![
                listening.abort_handle(),
                reading_task.abort_handle(),
            ])),
        })
    }

    /// The latest live reading, or `None` while the feed is not live.
    pub fn current(&self) -> Option<Snapshot> {
        self.reading.borrow().clone()
    }

    /// Watches the readings (`None` while the feed is not live).
    pub fn subscribe(&self) -> watch::Receiver<Option<Snapshot>> {
        self.reading.clone()
    }
}

/// Holds a listening connection, reconnecting with a back-off, queues each
/// notification's notice and reports it and each change of connection through `link`.
async fn listen(options: PgConnectOptions, link: watch::Sender<Link>, notices: Arc<Notices>) {
    let mut backoff = BACKOFF_INITIAL;
    loop {
        match subscribe(&options).await {
            Ok(mut listener) => {
                backoff = BACKOFF_INITIAL;
                link.send_modify(|link| {
                    link.connection += 1;
                    link.listening = true;
                });
                // `Ok(None)`: the connection was lost (it is not re-established here, see
                // `subscribe`); an error ends this connection too.
                while let Ok(Some(notification)) = listener.try_recv().await {
                    notices.push(Notice::parse(notification.payload()));
                    link.send_modify(|link| link.notifications += 1);
                }
                link.send_modify(|link| link.listening = false);
                tracing::warn!("checkpoint feed: the listening connection was lost; reconnecting");
            }
            Err(error) => {
                tracing::warn!(%error, "checkpoint feed: cannot listen; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// A listener on [`CHANNEL`] over a connection of its own, which it does not replace
/// when lost: the caller starts over, so a lost connection is always noticed.
async fn subscribe(options: &PgConnectOptions) -> sqlx::Result<PgListener> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Reads the table, then applies the notices as they come, reading the whole table again
/// when one asks for it or `resync` passes; publishes each reading that is live.
async fn keep_reading(
    pool: AnyPool,
    resync: Duration,
    mut link: watch::Receiver<Link>,
    notices: Arc<Notices>,
    reading: watch::Sender<Option<Snapshot>>,
) {
    let mut backoff = BACKOFF_INITIAL;
    loop {
        let before = *link.borrow_and_update();
        // Delivered before the read begins, so their commits are in it.
        notices.take();
        if !before.listening {
            reading.send_replace(None);
            if link.changed().await.is_err() {
                return;
            }
            continue;
        }
        let resync_at = tokio::time::Instant::now() + resync;
        let mut current = match read_all(&pool).await {
            Ok(table) => {
                backoff = BACKOFF_INITIAL;
                table
            }
            Err(error) => {
                reading.send_replace(None);
                tracing::warn!(%error, "checkpoint feed: cannot read the checkpoints; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        // Applies what arrives until a whole read is due.
        loop {
            let after = *link.borrow_and_update();
            let still_listening = after.listening && after.connection == before.connection;
            if !still_listening || !apply(&mut current, notices.take()) {
                break;
            }
            reading.send_replace(Some(Arc::new(current.clone())));
            match tokio::time::timeout_at(resync_at, link.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forward_move_names_its_checkpoint_and_position() {
        assert_eq!(
            Notice::parse("orders=42"),
            Notice::Moved("orders".into(), 42)
        );
        assert_eq!(
            Notice::parse("bus:search=a=7"),
            Notice::Moved("bus:search=a".into(), 7)
        );
    }

    #[test]
    fn anything_else_asks_for_a_whole_read() {
        for payload in ["", "orders", "orders=", "=42", "orders=-1", "orders=x"] {
            assert_eq!(Notice::parse(payload), Notice::Reread, "{payload:?}");
        }
    }

    #[test]
    fn moves_apply_as_maxima_until_a_whole_read_is_asked_for() {
        let mut reading = HashMap::from([("orders".to_owned(), 10)]);
        let notices = vec![
            Notice::Moved("orders".into(), 12),
            Notice::Moved("orders".into(), 11),
            Notice::Moved("sales".into(), 3),
        ];
        assert!(apply(&mut reading, notices));
        assert_eq!(reading["orders"], 12);
        assert_eq!(reading["sales"], 3);
        assert!(!apply(&mut reading, vec![Notice::Reread]));
    }
}
