//! A fixed set of search threads, one per CPU, that live as long as the index.
//!
//! A search is CPU work: more of them at once than there are CPUs only queue in the
//! kernel. On tokio's blocking pool, even behind a semaphore of one permit per CPU, they
//! spread over up to 9 threads under `browse` (a finished search's thread is not yet idle
//! when the next search is handed out, so the pool starts another), and every such thread
//! keeps an allocator heap of its own (bench/HISTORY.md has the numbers).
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The job could not be run: its thread panicked, or the threads are gone.
#[derive(Debug, thiserror::Error)]
#[error("the search threads could not run the search")]
pub struct NotRun;

/// Hands jobs to the threads; cheap to clone. The threads end when the last clone drops.
#[derive(Clone, Debug)]
pub struct SearchThreads {
    jobs: mpsc::Sender<Job>,
}

impl SearchThreads {
    /// Starts `count` threads (at least one), named `search-N`.
    ///
    /// # Errors
    /// When the operating system refuses a thread.
    pub fn start(count: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..count.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("search-{n}"))
                .spawn(move || work(&queue))?;
        }
        Ok(Self { jobs })
    }

    /// Runs `job` on one of the threads once one is free. A job whose caller has gone
    /// (the request was cancelled) before a thread takes it is skipped.
    ///
    /// # Errors
    /// [`NotRun`] when the job panicked or the threads are gone.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NotRun> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                if !answer.is_closed() {
                    let _ = answer.send(job());
                }
            }))
            .map_err(|_| NotRun)?;
        answered.await.map_err(|_| NotRun)
    }
}

/// One thread's loop: take the next job, run it, until every sender is gone.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = next else { return };
        // A panicking job drops its answer (its caller gets `NotRun`); the thread goes on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashSet, thread::ThreadId};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_jobs_at_once_run_on_the_fixed_threads() {
        let threads = SearchThreads::start(2).unwrap();
        let mut running = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let threads = threads.clone();
            running.spawn(async move {
                threads
                    .run(|| {
                        std::thread::yield_now();
                        std::thread::current().id()
                    })
                    .await
            });
        }
        let used: Vec<ThreadId> = running.join_all().await.into_iter().flatten().collect();
        assert_eq!(used.len(), 64, "every job answered");
        assert!(used.iter().collect::<HashSet<_>>().len() <= 2, "{used:?}");
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let threads = SearchThreads::start(1).unwrap();
        let failed = threads.run(|| -> u32 { panic!("a broken search") }).await;
        assert!(failed.is_err());
        assert_eq!(threads.run(|| 7).await.unwrap(), 7, "the thread lives on");
    }
}
