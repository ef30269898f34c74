//! The inputs a bridge runs, hosted under one shutdown: each input is a task that serves until asked to stop, then
//! finishes what it accepted (answers its clients, within its own drain bound) and ends. `app::run` stops every
//! input and waits for all of them before it lets the sink drain, so nothing accepted is left without an answer.
//!
//! Adding an input: build it over [`crate::ingest::Ingest`] (admit, decode, submit), give it the
//! [`Inputs::stopping`] future, and [`Inputs::spawn`] it in `app::run`.

pub(crate) mod file;
pub(crate) mod grpc;

use std::future::Future;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The running inputs and their shared stop signal.
#[derive(Debug)]
pub(crate) struct Inputs {
    stop: watch::Sender<bool>,
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Inputs {
    /// No inputs yet.
    pub(crate) fn new() -> Inputs {
        Inputs { stop: watch::channel(false).0, running: Vec::new() }
    }

    /// Resolves once the inputs are asked to stop: what an input's serve loop waits for to stop accepting.
    pub(crate) fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.subscribe();
        async move {
            // An error means the sender is gone, which also means stop.
            let _ = stop.wait_for(|stop| *stop).await;
        }
    }

    /// Runs `input` (named `name` in the logs) until it ends; it must end soon after [`Inputs::stopping`] resolves.
    pub(crate) fn spawn(&mut self, name: &'static str, input: impl Future<Output = ()> + Send + 'static) {
        self.running.push((name, tokio::spawn(input)));
    }

    /// Asks every input to stop and waits until each has answered what it accepted and ended.
    pub(crate) async fn stop(self) {
        self.stop.send_replace(true);
        for (name, task) in self.running {
            if let Err(e) = task.await {
                tracing::error!(input = name, "input ended abnormally: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn stop_waits_for_every_input_to_finish_what_it_accepted() {
        let mut inputs = Inputs::new();
        let finished = Arc::new(AtomicBool::new(false));
        for name in ["a", "b"] {
            let stopping = inputs.stopping();
            let finished = Arc::clone(&finished);
            inputs.spawn(name, async move {
                stopping.await;
                // Answering an in-flight request after the stop signal.
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                finished.store(true, Ordering::SeqCst);
            });
        }
        tokio::task::yield_now().await;
        assert!(!finished.load(Ordering::SeqCst), "inputs run until asked to stop");
        inputs.stop().await;
        assert!(finished.load(Ordering::SeqCst), "stop returned only after the inputs had finished");
    }
}
