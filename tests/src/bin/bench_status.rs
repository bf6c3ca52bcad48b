//! Benchmark of the self-service status read (`GET /api/migrate/{token}/status`), the request
//! every open credential page polls. Starts the real local server (SQLite, outbox) on loopback,
//! creates a project and an invited user, then:
//!
//! 1. an open-loop run at a fixed rate (default 500 requests/s for 10 s): latency p50/p99/max
//!    measured from each request's scheduled start, so a slow server cannot hide queueing;
//! 2. a closed-loop run with 32 concurrent clients for 5 s: the most requests/s it serves.
//!
//! Prints the figures and writes them as JSON to `target/bench/status.json` (or the path in
//! `BENCH_OUT`). Run with `cargo xtask bench status`. Targets (2-core machine): p99 ≤ 5 ms at
//! 500 requests/s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use integration_tests::spawn_app;
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let rate: u64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);

    // Arrange: a project whose servers are never contacted, one invited user.
    let mut app = spawn_app(None).await?;
    app.login().await?;
    let p = app
        .create_project(json!({
            "name": "bench",
            "source": {"host": "127.0.0.1", "port": 1, "security": "plaintext", "auth": {"mode": "per_user"}},
            "target": {"host": "127.0.0.1", "port": 1, "security": "plaintext", "auth": {"mode": "per_user"}},
            "invite_to": "source"
        }))
        .await?;
    let r = app
        .post(
            &format!("/api/admin/projects/{p}/users"),
            json!({"source_email": "bench@old.example", "target_email": "bench@new.example"}),
        )
        .await?;
    let uid = r.body["id"].as_str().context("user id")?.to_owned();
    app.post(
        &format!("/api/admin/projects/{p}/users/{uid}/actions/start"),
        json!(null),
    )
    .await?;
    let token = app.invite_token_for("bench@old.example").await?;
    let url = Arc::new(app.url(&format!("/api/migrate/{token}/status")));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    // Warm up connections and caches.
    for _ in 0..200 {
        client.get(url.as_str()).send().await?.bytes().await?;
    }

    // 1. Open loop at a fixed rate.
    let total = rate * secs;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let client = client.clone();
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            let ok = match client.get(url.as_str()).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            (due.elapsed(), ok)
        }));
    }
    let mut lat = Vec::with_capacity(handles.len());
    let mut errors = 0u64;
    for h in handles {
        let (d, ok) = h.await?;
        if !ok {
            errors += 1;
        }
        lat.push(d);
    }
    let wall = start.elapsed();
    lat.sort();
    let achieved = total as f64 / wall.as_secs_f64();
    let (p50, p99, max) = (
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        *lat.last().unwrap_or(&Duration::ZERO),
    );

    // 2. Closed loop: as fast as 32 clients can go.
    let stop_at = Instant::now() + Duration::from_secs(5);
    let mut workers = Vec::new();
    for _ in 0..32 {
        let client = client.clone();
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < stop_at {
                if let Ok(r) = client.get(url.as_str()).send().await
                    && r.bytes().await.is_ok()
                {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut served = 0;
    for w in workers {
        served += w.await?;
    }
    let max_rps = served as f64 / 5.0;

    println!(
        "status read, open loop at {rate} req/s for {secs} s: {achieved:.0} req/s achieved, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {errors} errors",
        ms(p50),
        ms(p99),
        ms(max)
    );
    println!("status read, closed loop with 32 clients: {max_rps:.0} req/s");
    let out = std::env::var("BENCH_OUT").unwrap_or_else(|_| "target/bench/status.json".into());
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let report = json!({
        "benchmark": "status_read",
        "rate_target_rps": rate,
        "seconds": secs,
        "requests": total,
        "achieved_rps": achieved,
        "p50_ms": ms(p50),
        "p99_ms": ms(p99),
        "max_ms": ms(max),
        "errors": errors,
        "closed_loop_max_rps": max_rps,
        "target_p99_ms": 5.0,
        "meets_target": ms(p99) <= 5.0 && errors == 0,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("written to {out}");
    app.stop().await?;
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}
