//! Bounded blocking workers: where every read of /proc, of a file a
//! process names, of the socket tables and of the GPU driver runs, so that
//! the event loop never waits on one.
//!
//! A job runs on tokio's blocking pool under a permit of a semaphore
//! ([`MAX_IN_FLIGHT`] at once) and a deadline. Its result comes back to the
//! event loop as a message; a job that misses its deadline is counted and
//! its result dropped when it finally comes. The permit is held until the
//! job really returns: a read stuck in the kernel (a process holding its
//! mmap lock for minutes) keeps its permit, so stuck reads can never pile
//! up past the bound. When every permit is taken, new jobs are skipped and
//! counted, never queued without bound.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::{Semaphore, mpsc};

/// Jobs running at once, at most.
pub const MAX_IN_FLIGHT: usize = 4;
/// How long the loop waits for a job's result before giving up on it.
pub const DEADLINE: Duration = Duration::from_secs(2);

/// What the workers did, for the exit summary and metrics.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub started: AtomicU64,
    pub finished: AtomicU64,
    /// Jobs that missed their deadline (their result was dropped).
    pub timed_out: AtomicU64,
    /// Jobs not started because every permit was taken.
    pub skipped: AtomicU64,
}

impl WorkerStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Runs jobs off the event loop; their results arrive on the receiver
/// returned by [`Workers::new`].
pub struct Workers<T> {
    permits: Arc<Semaphore>,
    deadline: Duration,
    results: mpsc::UnboundedSender<T>,
    pub stats: Arc<WorkerStats>,
}

impl<T: Send + 'static> Workers<T> {
    pub fn new(max_in_flight: usize, deadline: Duration) -> (Self, mpsc::UnboundedReceiver<T>) {
        let (results, receiver) = mpsc::unbounded_channel();
        (
            Self {
                permits: Arc::new(Semaphore::new(max_in_flight)),
                deadline,
                results,
                stats: Arc::default(),
            },
            receiver,
        )
    }

    /// Permits free now: a caller with background work (command lines to
    /// read) leaves some for the jobs that answer a live question.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Starts `job` on a blocking worker if a permit is free (else counts
    /// it skipped and returns false). Its result is sent to the loop if it
    /// comes within the deadline. Must be called within a tokio runtime.
    pub fn submit(&self, job: impl FnOnce() -> T + Send + 'static) -> bool {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        self.stats.started.fetch_add(1, Ordering::Relaxed);
        let stats = Arc::clone(&self.stats);
        let results = self.results.clone();
        let deadline = self.deadline;
        let blocking = tokio::task::spawn_blocking(move || {
            let result = job();
            drop(permit);
            result
        });
        tokio::spawn(async move {
            match tokio::time::timeout(deadline, blocking).await {
                Ok(Ok(result)) => {
                    stats.finished.fetch_add(1, Ordering::Relaxed);
                    // The loop may be gone (stopping): nothing to tell.
                    let _ = results.send(result);
                }
                // A job that panicked: counted as finished, no result.
                Ok(Err(_)) => {
                    stats.finished.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    stats.timed_out.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_stuck_job_times_out_holds_its_permit_and_the_rest_still_run() {
        let (workers, mut results) = Workers::<u32>::new(2, Duration::from_millis(100));
        let (release, stuck) = std_mpsc::channel::<()>();
        // A job stuck until released, like a read blocked in the kernel.
        assert!(workers.submit(move || {
            let _ = stuck.recv();
            0
        }));
        assert!(workers.submit(|| 7));
        assert_eq!(results.recv().await, Some(7));
        // One permit is still held by the stuck job: a third job runs, a
        // fourth at the same time would not.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(WorkerStats::get(&workers.stats.timed_out), 1);
        assert!(workers.submit(|| 8));
        assert_eq!(results.recv().await, Some(8));
        release.send(()).unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn jobs_beyond_the_bound_are_skipped_and_counted() {
        let (workers, _results) = Workers::<()>::new(1, Duration::from_secs(5));
        let (release, stuck) = std_mpsc::channel::<()>();
        assert!(workers.submit(move || {
            let _ = stuck.recv();
        }));
        assert!(!workers.submit(|| ()));
        assert_eq!(WorkerStats::get(&workers.stats.skipped), 1);
        release.send(()).unwrap();
    }
}
