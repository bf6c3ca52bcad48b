//! The small scenario (300 mailboxes, 4 hosts capped at 3 connections, a tenant that
//! throttles): the caps hold, every mailbox finishes, nobody waits unboundedly, and priority
//! shows.

use scale_sim::{Scenario, simulate};

#[test]
fn a_small_migration_keeps_every_cap_finishes_and_serves_priority_first() {
    let scenario = Scenario::small();
    let report = simulate(&scenario);
    assert!(report.all_done, "every mailbox finishes");
    assert!(report.cap_held, "caps held: {:?}", report.violations);
    for host in &report.hosts {
        let cap = host.cap.expect("IMAP hosts are capped");
        assert_eq!(cap, 3);
        assert!(host.peak_connections <= cap, "{host:?}");
        assert!(host.peak_connections > 0, "{host:?}");
    }
    let f = &report.figures;
    // Nobody starves: the last first byte comes within twice what the busiest host (or the
    // tenant's budget) needs to copy everything, plus a quarter of an hour.
    let per_connection =
        1.0 / (1.0 / scenario.source_read_mbps + 1.0 / scenario.target_append_mbps);
    let busiest = report
        .hosts
        .iter()
        .map(|h| h.tb * 1e6 / (f64::from(h.cap.unwrap_or(1)) * per_connection) / 3600.0)
        .fold(0.0, f64::max);
    let tenant = report.sizes.total_tb * 1e6 / scenario.tenant_budget_mbps / 3600.0;
    let bound = 2.0 * busiest.max(tenant) + 0.25;
    assert!(
        f.longest_wait_for_first_byte_hours <= bound,
        "longest wait {} h, bound {bound} h",
        f.longest_wait_for_first_byte_hours
    );
    assert!(f.priority_users > 0);
    assert!(
        f.priority_done_hours_p50 < f.others_done_hours_p50,
        "priority p50 {} h, others {} h",
        f.priority_done_hours_p50,
        f.others_done_hours_p50
    );
    assert!(
        f.throttles > 0,
        "the tenant's budget is below the hosts' sum"
    );
    assert!(report.invocations.waiting_simulated > 0);
    assert!(report.aws_usd > 0.0 && report.total_usd > report.aws_usd);
    let json = serde_json::to_value(&report).expect("the report serialises");
    assert_eq!(json["bench"], "scale");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let a = simulate(&Scenario::small());
    let b = simulate(&Scenario::small());
    assert_eq!(a.figures.total_hours, b.figures.total_hours);
    assert_eq!(a.invocations.total, b.invocations.total);
}
