//! SQS and Lambda: how long a message waits once visible, and how many deliveries waiting jobs
//! make without being simulated one by one.
//!
//! A job that finds no slot goes back to the queue for `schedule::wait_delay` (2–6 s at
//! first, at most `schedule::LONGEST_WAIT`). With a million jobs waiting, the pool of `MaxConcurrentMailboxes`
//! invocations cannot deliver them that often: visible messages queue for invocations, each
//! waiting delivery taking one for ~0.1 s. Every tick the model finds the queueing time `q`
//! at which the waiting jobs' deliveries, each job coming back after `wait_delay + q`, are as
//! many as the free invocations can serve:
//!
//! ```text
//!   Σ_jobs 1 / (delay_j + q) = (concurrency − long invocations) / 0.1 s
//! ```
//!
//! A waiting user whose slot cannot come free (its own jobs hold its mailbox, or other users
//! are ahead of it in a server's line) is not simulated delivery by delivery: the deliveries
//! it makes meanwhile are counted from that formula, each costing what its last real failed
//! attempt cost. The simulation wakes it when a slot it could take comes free.

use std::time::Duration;

use domain::schedule;

/// The longest `wait_delay`, in seconds.
pub const LONGEST: usize = schedule::LONGEST_WAIT.as_secs() as usize;

/// The backlog model (see the module's documentation).
#[derive(Debug)]
pub struct Backlog {
    /// Concurrent invocations and how long a waiting one takes.
    pub concurrency: u32,
    pub waiting_invocation_s: f64,
    /// Seconds a visible message waits for an invocation, now.
    pub q: f64,
    /// The largest `q` seen while an invocation was free.
    pub peak_q: f64,
    /// (time, ∫₀ᵗ ds / (d + q(s)) for each steady delay d, q from then on): deliveries per
    /// job coming back every d seconds.
    history: Vec<(f64, [f64; 6], f64)>,
}

/// Waiting jobs by their delay in whole seconds: index 0 holds the new messages (no delay).
pub type Histogram = [f64; LONGEST + 1];

/// `schedule::wait_delay` in seconds.
pub fn delay_s(waited: f64, spread: u64, near_front: bool) -> f64 {
    schedule::wait_delay(Duration::from_secs_f64(waited.max(0.0)), spread, near_front).as_secs_f64()
}

/// The constant delays the history integrates: the five base delays (2–6 s, a job near the
/// front of its line) and the longest.
const STEADY: [f64; 6] = [2.0, 3.0, 4.0, 5.0, 6.0, LONGEST as f64];

fn steady_index(delay: f64) -> usize {
    STEADY
        .iter()
        .position(|d| *d >= delay)
        .unwrap_or(STEADY.len() - 1)
}

impl Backlog {
    pub fn new(concurrency: u32, waiting_invocation_s: f64) -> Self {
        Backlog {
            concurrency,
            waiting_invocation_s,
            q: 0.0,
            peak_q: 0.0,
            history: vec![(0.0, [0.0; 6], 0.0)],
        }
    }

    /// Deliveries the free invocations serve per second with `running` long ones.
    pub fn capacity(&self, running: u32) -> f64 {
        f64::from(self.concurrency.saturating_sub(running)) / self.waiting_invocation_s
    }

    /// Finds `q` for the waiting jobs in `waiting` (see the module's documentation) and
    /// starts a new piece of the history at `now`.
    pub fn tick(&mut self, now: f64, running: u32, waiting: &Histogram) {
        let capacity = self.capacity(running);
        let demand = |q: f64| -> f64 {
            waiting
                .iter()
                .enumerate()
                .map(|(d, n)| {
                    if *n > 0.0 {
                        n / (d as f64 + q).max(1e-9)
                    } else {
                        0.0
                    }
                })
                .sum()
        };
        let q = if capacity <= 0.0 {
            1e7
        } else if waiting[0] == 0.0 && demand(0.0) <= capacity {
            0.0
        } else {
            let (mut lo, mut hi) = (0.0f64, 1e7f64);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                if demand(mid) > capacity {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            hi
        };
        let g = std::array::from_fn(|i| self.g_at(now, i));
        self.history.push((now, g, q));
        self.q = q;
        if q < 1e6 {
            self.peak_q = self.peak_q.max(q);
        }
    }

    /// ∫₀ᵗ ds / (STEADY[k] + q(s)).
    fn g_at(&self, t: f64, k: usize) -> f64 {
        let i = self.history.partition_point(|(at, _, _)| *at <= t).max(1) - 1;
        let (at, g, q) = self.history[i];
        g[k] + (t - at).max(0.0) / (STEADY[k] + q)
    }

    /// Deliveries one job makes over `[from, to]` while it waits, its user waiting since
    /// `since` with delay spread `spread`; `near_front`: it comes back after its base delay.
    pub fn deliveries(&self, from: f64, to: f64, since: f64, spread: u64, near_front: bool) -> f64 {
        if to <= from {
            return 0.0;
        }
        let base = delay_s(0.0, spread, false);
        if near_front {
            let k = steady_index(base);
            return self.g_at(to, k) - self.g_at(from, k);
        }
        let minute = STEADY.len() - 1;
        // From `since + 10 × LONGEST` on, every delay is the longest: the history answers.
        let minute_from = since + 10.0 * LONGEST as f64;
        let mut n = 0.0;
        if from < minute_from {
            let end = to.min(minute_from);
            n += self.early(from - since, end - since, base);
        }
        if to > minute_from {
            n += self.g_at(to, minute) - self.g_at(from.max(minute_from), minute);
        }
        n
    }

    /// Deliveries over waited times `[w1, w2]` before the delay reaches the longest, with
    /// today's `q`: the base delay up to 10 × base, then a tenth of the time waited.
    fn early(&self, w1: f64, w2: f64, base: f64) -> f64 {
        let q = self.q;
        let knee = 10.0 * base;
        let mut n = 0.0;
        if w1 < knee {
            n += (w2.min(knee) - w1) / (base + q);
        }
        if w2 > knee {
            let a = w1.max(knee);
            n += 10.0 * ((w2 / 10.0 + q) / (a / 10.0 + q)).ln();
        }
        n.max(0.0)
    }

    /// How long until the first of `n` waiting jobs of a user comes back: each comes back
    /// every `delay + q`, at a phase of its own (`u` uniform in [0, 1)).
    pub fn first_of(&self, n: usize, delay: f64, u: f64) -> f64 {
        let q = if self.q >= 1e6 { 0.0 } else { self.q };
        let cycle = delay + q;
        cycle * (1.0 - (1.0 - u).powf(1.0 / n.max(1) as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_pool_adds_no_queueing_and_a_full_one_queues_the_surplus() {
        let mut b = Backlog::new(1_000, 0.1);
        let mut waiting: Histogram = [0.0; LONGEST + 1];
        let longest = LONGEST as f64;
        waiting[LONGEST] = 1_000.0 * longest; // 1,000 deliveries a second wanted, 10,000 possible
        b.tick(0.0, 0, &waiting);
        assert_eq!(b.q, 0.0);
        waiting[LONGEST] = 20_000.0 * longest; // 20,000 a second wanted
        b.tick(10.0, 0, &waiting);
        assert!((b.q - longest).abs() < 0.01, "the cycle doubles: {}", b.q);
        waiting[0] = 10_000.0;
        waiting[LONGEST] = 0.0;
        b.tick(20.0, 0, &waiting);
        assert!(
            (b.q - 1.0).abs() < 0.01,
            "10,000 new messages drain in 1 s: {}",
            b.q
        );
    }

    #[test]
    fn deliveries_follow_the_delays_then_the_longest() {
        let mut b = Backlog::new(1_000, 0.1);
        b.tick(0.0, 0, &[0.0; LONGEST + 1]);
        // spread 0: base 2 s up to 20 s waited, then waited/10 up to 10 × LONGEST, then LONGEST.
        let longest = LONGEST as f64;
        let early = b.deliveries(0.0, 20.0, 0.0, 0, false);
        assert!((early - 10.0).abs() < 1e-9, "{early}");
        let knee = b.deliveries(20.0, 10.0 * longest, 0.0, 0, false);
        assert!((knee - 10.0 * (longest / 2.0).ln()).abs() < 1e-9, "{knee}");
        let late = b.deliveries(10.0 * longest, 20.0 * longest, 0.0, 0, false);
        assert!((late - 10.0).abs() < 1e-9, "{late}");
        assert_eq!(b.deliveries(5.0, 5.0, 0.0, 0, false), 0.0);
        // Near the front of its line a job comes back every base delay, however long it waited.
        let front = b.deliveries(3_600.0, 3_610.0, 0.0, 0, true);
        assert!((front - 5.0).abs() < 1e-9, "{front}");
    }
}
