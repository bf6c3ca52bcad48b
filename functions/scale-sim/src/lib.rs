//! The scale simulation behind `cargo xtask bench scale`: the domain's own scheduling rules
//! (`domain::schedule`: caps per host and per mailbox, fair lines with priority, waiting delays,
//! throttling delays, daily budgets) and its `Limiter` port, kept in memory, driven by a
//! virtual clock against simulated mail servers (a connection cap, a rate per connection, a
//! ceiling per host, Exchange Online's throttling, Gmail's daily budget) and a simulated SQS
//! queue feeding a bounded pool of Lambda invocations. It exists because a migration of
//! 100,000 mailboxes cannot be tried for real before it is sold: this answers how long it
//! takes, whether a server's cap ever breaks, who waits how long, and what AWS bills for it,
//! from the same code that decides in production. See `infra/COSTS.md` section 3.

pub mod backlog;
pub mod cost;
mod engine;
pub mod limiter;
mod print;
mod queue;
pub mod report;
mod runs;
pub mod scenario;
pub mod servers;
pub mod world;

pub use limiter::MemoryLimiter;
pub use report::Report;
pub use scenario::Scenario;

/// Runs `scenario` to the end and reports.
pub fn simulate(scenario: &Scenario) -> Report {
    let started = std::time::Instant::now();
    let population = scenario::generate(scenario);
    let mut world = world::World::new(scenario, population.clone());
    world.run();
    Report::new(&world, &population, started.elapsed().as_secs_f64())
}
