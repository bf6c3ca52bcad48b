//! The run's figures as a readable table.

use crate::report::Report;

fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n.round());
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

impl Report {
    /// Prints the scenario, the figures, the hosts and the bill.
    pub fn print(&self) {
        self.print_assumptions();
        self.print_figures();
        self.print_hosts();
        self.print_bill();
    }

    fn print_assumptions(&self) {
        let s = &self.scenario;
        let z = &self.sizes;
        println!("scale simulation: {}", s.name);
        println!(
            "  assumptions: mailbox size lognormal, median {} GB, sigma {}, at most {} GB; {}–{} folders each (one job each);",
            s.median_gb, s.sigma, s.max_gb, s.folders_min, s.folders_max
        );
        println!(
            "    {} source hosts ({} Google Workspace), users per host ∝ 1/rank^{}; IMAP host cap {}, per mailbox: the profiles (IMAP 4, Google 15, Microsoft 365 8);",
            s.hosts,
            s.google_hosts,
            s.host_skew,
            s.source_server_cap
                .map_or("16 (profile)".to_string(), |c| c.to_string())
        );
        println!(
            "    a connection reads {} MB/s and appends {} MB/s in turn; an IMAP host serves {}–{} MB/s in all; Gmail reads {} MB/s per connection;",
            s.source_read_mbps,
            s.target_append_mbps,
            s.ceiling_min_mbps,
            s.ceiling_max_mbps,
            s.google_read_mbps
        );
        println!(
            "    the tenant throttles logins beyond {} MB/s taken (Suggested Backoff {}–{} s); {} concurrent invocations of {} s, {} GB; login {} s, a waiting invocation {} s;",
            s.tenant_budget_mbps,
            s.throttle_hint_s.0,
            s.throttle_hint_s.1,
            s.lambda_concurrency,
            s.lambda_timeout_s,
            s.worker_memory_gb,
            s.login_s,
            s.waiting_invocation_s
        );
        println!(
            "    {:.0} s of copying per invocation; {:.0} % of users at priority {}; every user started at once.",
            s.copy_window_s(),
            s.priority_share * 100.0,
            s.priority
        );
        println!(
            "  mailboxes: {} ({:.1} TB): mean {:.2} GB, median {:.2}, p99 {:.1}, largest {:.1}; {:.2} % over 50 GB; {:.1} folders each, {} folder jobs",
            thousands(z.mailboxes as f64),
            z.total_tb,
            z.mean_gb,
            z.median_gb,
            z.p99_gb,
            z.largest_gb,
            z.share_over_50_gb * 100.0,
            z.folders_mean,
            thousands(z.folder_jobs as f64)
        );
        println!();
    }

    fn print_figures(&self) {
        let f = &self.figures;
        let i = &self.invocations;
        println!("  {:<52} {:>14}", "figure", "value");
        let row = |k: &str, v: String| println!("  {k:<52} {v:>14}");
        row(
            "time until every mailbox is done (h)",
            format!("{:.1}", f.total_hours),
        );
        row(
            "  … every mailbox but Google Workspace's (h)",
            format!("{:.1}", f.total_hours_without_google),
        );
        row(
            "  … throughput until then (GB/h)",
            format!("{:.0}", f.throughput_gb_per_hour_without_google),
        );
        row(
            "throughput (GB/h, over the whole run)",
            format!("{:.0}", f.throughput_gb_per_hour),
        );
        row(
            "mailbox done after Start: p50 / p99 (h)",
            format!("{:.1} / {:.1}", f.mailbox_hours_p50, f.mailbox_hours_p99),
        );
        row(
            "mailbox first byte to done: p50 / p99 (h)",
            format!("{:.1} / {:.1}", f.copying_hours_p50, f.copying_hours_p99),
        );
        row(
            "wait for the first byte: p50 / longest (h)",
            format!(
                "{:.1} / {:.1}",
                f.first_byte_hours_p50, f.longest_wait_for_first_byte_hours
            ),
        );
        row(
            &format!("priority users ({}) done, p50 (h)", f.priority_users),
            format!("{:.1}", f.priority_done_hours_p50),
        );
        row(
            "other users done, p50 (h)",
            format!("{:.1}", f.others_done_hours_p50),
        );
        row(
            "idle slot time while users waited (share)",
            format!("{:.1} %", f.idle_slot_share * 100.0),
        );
        row(
            "peak invocations holding slots",
            thousands(f64::from(f.peak_invocations)),
        );
        row(
            "peak queueing of a visible message (s)",
            format!("{:.0}", f.peak_queueing_seconds),
        );
        row(
            "time with every invocation busy (h)",
            format!("{:.1}", f.pool_full_hours),
        );
        row("tenant throttles", thousands(f.throttles as f64));
        row(
            "Google mailboxes / paused for the budget",
            format!("{} / {}", f.google_mailboxes, f.google_paused_mailboxes),
        );
        row(
            "  longest pause (h) / largest (GB)",
            format!(
                "{:.1} / {:.1}",
                f.google_longest_pause_hours, f.google_largest_gb
            ),
        );
        row("invocations in all", thousands(i.total));
        row(
            "  plan / copy (of which throttled)",
            format!(
                "{} / {} ({})",
                thousands(i.plan as f64),
                thousands(i.copy as f64),
                thousands(i.throttled as f64)
            ),
        );
        row(
            "  continuations at the deadline",
            thousands(i.continuations as f64),
        );
        row(
            "  wasted: no slot (simulated + counted)",
            format!(
                "{} + {}",
                thousands(i.waiting_simulated as f64),
                thousands(i.waiting_counted)
            ),
        );
        row("  wasted: budget spent", thousands(i.paused));
        println!();
    }

    fn print_hosts(&self) {
        println!(
            "  {:<22} {:<16} {:>8} {:>7} {:>5} {:>5} {:>7} {:>8}",
            "host", "kind", "users", "TB", "cap", "peak", "idle", "done h"
        );
        for h in &self.hosts {
            let cap = h.cap.map_or("-".to_string(), |c| c.to_string());
            println!(
                "  {:<22} {:<16} {:>8} {:>7.1} {:>5} {:>5} {:>6.1}% {:>8.1}",
                h.name,
                h.kind,
                h.mailboxes,
                h.tb,
                cap,
                h.peak_connections,
                h.idle_share * 100.0,
                h.done_hours
            );
        }
        println!();
    }

    fn print_bill(&self) {
        println!(
            "  {:<34} {:>18} {:<9} {:>12}",
            "bill (list prices, COSTS.md)", "quantity", "unit", "USD"
        );
        for l in &self.bill {
            println!(
                "  {:<34} {:>18} {:<9} {:>12}",
                l.what,
                thousands(l.quantity),
                l.unit,
                format!("{:.2}", l.usd)
            );
        }
        println!(
            "  {:<34} {:>41}",
            "AWS without egress",
            format!("{:.2} ({:.2}/TB)", self.aws_usd, self.aws_usd_per_tb)
        );
        println!(
            "  {:<34} {:>41}",
            "  of which attempts that waited",
            format!("{:.2}", self.waiting_usd)
        );
        println!(
            "  {:<34} {:>41}",
            "total with egress",
            format!("{:.2}", self.total_usd)
        );
        println!();
        let held = if self.cap_held { "held" } else { "EXCEEDED" };
        println!(
            "  caps (per host, per mailbox): {held}; every mailbox done: {}",
            self.all_done
        );
        for v in &self.violations {
            println!("    {v}");
        }
        println!(
            "  simulated {} events in {:.1} s of wall time",
            thousands(self.counts.events as f64),
            self.wall_seconds
        );
    }
}
