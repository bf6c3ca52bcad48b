//! The AWS bill of a run: what the simulation counted (invocations, their seconds, queue
//! requests, the limiter's DynamoDB requests) plus the engine's measured work per GB, priced
//! with the list prices of `infra/COSTS.md` section 2 (us-east-1, 2026-11-21; re-check).

use serde::Serialize;

/// List prices (COSTS.md section 2).
pub const LAMBDA_GB_S: f64 = 0.000_016_666_7;
pub const LAMBDA_PER_M_REQUESTS: f64 = 0.20;
pub const SQS_PER_M: f64 = 0.40;
pub const DDB_PER_M_WRU: f64 = 0.625;
pub const DDB_PER_M_RRU: f64 = 0.125;
pub const KMS_PER_10K: f64 = 0.03;
pub const LOGS_PER_GB: f64 = 0.50;
pub const XRAY_PER_M: f64 = 5.0;

/// The engine's work per GB copied and per job (COSTS.md section 1, from the benchmark and the
/// code): a chunk is at most 6 MiB, so at least 159 chunks per GB, each writing 3 rows plus the
/// user's index entry and reading the user once; a copy invocation reads ~8 items (user,
/// folder, project, credentials, the completion check) and writes ~4 (lease, audit, release,
/// done); a plan writes a row per folder plus ~3.
pub const CHUNKS_PER_GB: f64 = 159.0;
pub const WRU_PER_CHUNK: f64 = 4.0;
pub const RRU_PER_CHUNK: f64 = 1.0;
pub const COPY_JOB_RRU: f64 = 8.0;
pub const COPY_JOB_WRU: f64 = 4.0;
/// KMS Decrypts of a copying invocation (its sealed credentials and admin secrets: 1–3).
pub const KMS_PER_COPY_JOB: f64 = 2.0;
/// Log bytes per invocation (COSTS.md's assumption).
pub const LOG_BYTES_PER_INVOCATION: f64 = 2_000.0;

/// What a run used, as AWS counts it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub invocations: f64,
    pub gb_seconds: f64,
    pub sqs_requests: f64,
    /// DynamoDB request units of the engine's own items (users, folders, checkpoints).
    pub engine_wru: f64,
    pub engine_rru: f64,
    /// DynamoDB request units of the limiter (slots, lines, usage).
    pub limiter_wru: f64,
    pub limiter_rru: f64,
    pub kms_requests: f64,
    pub bytes_copied: f64,
}

/// One line of the bill.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub what: &'static str,
    pub quantity: f64,
    pub unit: &'static str,
    pub usd: f64,
}

/// Data transfer out to the internet for `gb` in one month: $0.09 the first 10 TB, $0.085 the
/// next 40, $0.07 the next 100, $0.05 above 150 TB.
pub fn egress_usd(gb: f64) -> f64 {
    let tiers = [
        (10_000.0, 0.09),
        (40_000.0, 0.085),
        (100_000.0, 0.07),
        (f64::INFINITY, 0.05),
    ];
    let mut left = gb;
    let mut usd = 0.0;
    for (size, price) in tiers {
        let here = left.min(size);
        usd += here * price;
        left -= here;
        if left <= 0.0 {
            break;
        }
    }
    usd
}

impl Usage {
    /// The bill, line by line: the AWS lines first, egress (the target outside AWS) last.
    pub fn bill(&self) -> Vec<Line> {
        let gb = self.bytes_copied / 1e9;
        let logs_gb = self.invocations * LOG_BYTES_PER_INVOCATION / 1e9;
        vec![
            Line {
                what: "Lambda requests",
                quantity: self.invocations,
                unit: "requests",
                usd: self.invocations / 1e6 * LAMBDA_PER_M_REQUESTS,
            },
            Line {
                what: "Lambda duration",
                quantity: self.gb_seconds,
                unit: "GB-s",
                usd: self.gb_seconds * LAMBDA_GB_S,
            },
            Line {
                what: "SQS requests",
                quantity: self.sqs_requests,
                unit: "requests",
                usd: (self.sqs_requests - 1e6).max(0.0) / 1e6 * SQS_PER_M,
            },
            Line {
                what: "DynamoDB writes: engine",
                quantity: self.engine_wru,
                unit: "WRU",
                usd: self.engine_wru / 1e6 * DDB_PER_M_WRU,
            },
            Line {
                what: "DynamoDB writes: limiter",
                quantity: self.limiter_wru,
                unit: "WRU",
                usd: self.limiter_wru / 1e6 * DDB_PER_M_WRU,
            },
            Line {
                what: "DynamoDB reads: engine",
                quantity: self.engine_rru,
                unit: "RRU",
                usd: self.engine_rru / 1e6 * DDB_PER_M_RRU,
            },
            Line {
                what: "DynamoDB reads: limiter",
                quantity: self.limiter_rru,
                unit: "RRU",
                usd: self.limiter_rru / 1e6 * DDB_PER_M_RRU,
            },
            Line {
                what: "KMS Decrypt",
                quantity: self.kms_requests,
                unit: "requests",
                usd: self.kms_requests / 1e4 * KMS_PER_10K,
            },
            Line {
                what: "CloudWatch Logs",
                quantity: logs_gb,
                unit: "GB",
                usd: logs_gb * LOGS_PER_GB,
            },
            Line {
                what: "X-Ray (upper bound)",
                quantity: self.invocations,
                unit: "traces",
                usd: self.invocations / 1e6 * XRAY_PER_M,
            },
            Line {
                what: "Egress (target outside AWS)",
                quantity: gb,
                unit: "GB",
                usd: egress_usd(gb),
            },
        ]
    }
}

/// The AWS lines without egress, and with it.
pub fn totals(lines: &[Line]) -> (f64, f64) {
    let all: f64 = lines.iter().map(|l| l.usd).sum();
    let egress: f64 = lines
        .iter()
        .filter(|l| l.what.starts_with("Egress"))
        .map(|l| l.usd)
        .sum();
    (all - egress, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_follows_the_monthly_tiers() {
        assert!((egress_usd(10_000.0) - 900.0).abs() < 1e-6);
        // COSTS.md section 3, column A: 500 TB in one month ≈ $28,800.
        let usd = egress_usd(500_000.0);
        assert!((usd - 28_800.0).abs() < 1.0, "{usd}");
    }

    #[test]
    fn a_bill_prices_every_line() {
        let usage = Usage {
            invocations: 2e6,
            gb_seconds: 1e6,
            sqs_requests: 3e6,
            bytes_copied: 1e12,
            ..Usage::default()
        };
        let lines = usage.bill();
        let (aws, all) = totals(&lines);
        assert!((lines[0].usd - 0.4).abs() < 1e-9);
        assert!((lines[1].usd - 16.6667).abs() < 1e-3);
        assert!(
            (lines[2].usd - 0.8).abs() < 1e-9,
            "the first million is free"
        );
        assert!((all - aws - 90.0).abs() < 1e-6, "1,000 GB at $0.09");
    }
}
