//! The service's background loops (the webhook worker, the broker relay): each runs rounds
//! until stopped, resting when a round found nothing to do. Their state is in the database,
//! so stopping one (or the process dying) loses nothing: the next start resumes there.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// A running loop; [`Handle::stop`] ends it after its current round.
#[derive(Debug)]
pub struct Handle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stops the loop and waits for its current round to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Stops it at once, as a crash would.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Runs `round` (which returns how much it did) until stopped, resting `idle` after a round
/// that did nothing or failed (the failure is logged under `label`).
pub fn spawn<F, Fut>(label: &'static str, idle: Duration, mut round: F) -> Handle
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<usize, String>> + Send,
{
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        tracing::info!(label, "background loop started");
        loop {
            let done = round().await.unwrap_or_else(|e| {
                tracing::error!(label, error = %e, "background round failed");
                0
            });
            if *stopped.borrow() {
                break;
            }
            if done == 0 {
                tokio::select! {
                    () = tokio::time::sleep(idle) => {}
                    _ = stopped.changed() => break,
                }
            }
        }
        tracing::info!(label, "background loop stopped");
    });
    Handle { stop, task }
}
