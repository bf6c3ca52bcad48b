//! Runs named checks, catching each one's panic so every failure is reported together.

use futures::FutureExt;
use futures::future::BoxFuture;
use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

/// A hung adapter call should fail its check, not the whole test binary's patience.
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// The outcome of a suite: names and reasons of the failed checks.
pub(crate) struct Report {
    suite: &'static str,
    ran: usize,
    failures: Vec<(&'static str, String)>,
}

impl Report {
    pub(crate) fn new(suite: &'static str) -> Self {
        Report {
            suite,
            ran: 0,
            failures: Vec::new(),
        }
    }

    /// Whether the check with this name is selected by `CONFORMANCE_ONLY` (all are by default).
    pub(crate) fn selected(name: &str) -> bool {
        match std::env::var("CONFORMANCE_ONLY") {
            Ok(filter) if !filter.trim().is_empty() => filter
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .any(|f| name.contains(f)),
            _ => true,
        }
    }

    pub(crate) async fn run(&mut self, name: &'static str, check: BoxFuture<'static, ()>) {
        self.ran += 1;
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(CHECK_TIMEOUT, AssertUnwindSafe(check).catch_unwind()).await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(panic)) => Some(panic_message(panic.as_ref())),
            Err(_) => Some(format!(
                "did not finish within {} s",
                CHECK_TIMEOUT.as_secs()
            )),
        };
        let ms = started.elapsed().as_millis();
        match failure {
            None => eprintln!("{} conformance: ok     {name} ({ms} ms)", self.suite),
            Some(why) => {
                eprintln!("{} conformance: FAILED {name} ({ms} ms): {why}", self.suite);
                self.failures.push((name, why));
            }
        }
    }

    /// Panics naming every failed check; returns quietly when all passed.
    pub(crate) fn finish(self) {
        assert!(
            self.ran > 0,
            "{} conformance: no check selected (CONFORMANCE_ONLY filters out all)",
            self.suite
        );
        if self.failures.is_empty() {
            eprintln!("{} conformance: all {} checks passed", self.suite, self.ran);
            return;
        }
        let list: Vec<String> = self
            .failures
            .iter()
            .map(|(name, why)| format!("  - {name}: {why}"))
            .collect();
        panic!(
            "{} conformance: {} of {} checks failed:\n{}",
            self.suite,
            self.failures.len(),
            self.ran,
            list.join("\n")
        );
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked".to_owned()
    }
}
