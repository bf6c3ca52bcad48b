//! A time-bounded fuzzing loop on proptest: rounds of generated cases, each round from a fresh
//! seed, until the time is up. A failing case (a broken property, a panic, a hang the property
//! reports) is shrunk by proptest to a minimal input, which is reported and ends the target.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// Cases in one round: small enough to stop close to the deadline.
const ROUND: u32 = 128;

/// What one target did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub target: &'static str,
    pub executions: u64,
    pub seconds: f64,
    pub per_second: f64,
    /// The minimal failing input and why, when one was found.
    pub failure: Option<String>,
}

pub fn run<S>(
    target: &'static str,
    budget: Duration,
    seed: u64,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> Outcome
where
    S: Strategy,
    S::Value: Debug,
{
    let start = Instant::now();
    let mut executions = 0u64;
    let mut failure = None;
    let mut round = 0u64;
    // Panics are failures the runner catches and shrinks; their default report would print
    // once per shrinking step.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    while start.elapsed() < budget {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8..16].copy_from_slice(&round.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        let config = Config {
            cases: ROUND,
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(config, rng);
        match runner.run(&strategy, &test) {
            Ok(()) => executions += u64::from(ROUND),
            Err(TestError::Fail(why, input)) => {
                failure = Some(format!("{why}\nminimal input: {input:#?}"));
                break;
            }
            Err(TestError::Abort(why)) => {
                failure = Some(format!("aborted: {why}"));
                break;
            }
        }
        round += 1;
    }
    std::panic::set_hook(hook);
    let seconds = start.elapsed().as_secs_f64();
    Outcome {
        target,
        executions,
        seconds,
        per_second: executions as f64 / seconds.max(1e-9),
        failure,
    }
}
