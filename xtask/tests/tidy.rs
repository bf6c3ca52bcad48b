//! The architecture invariants of README.md ("Architecture invariants"), as a test: which crate may
//! depend on axum, the AWS SDK, SQLite and the Lambda runtime, that `domain` depends on none of
//! them, and that every crate's root file opens with a `//!` paragraph. The rules are read from
//! `cargo metadata`, so they hold whatever a crate's source imports: a crate cannot use what it
//! does not depend on.
//!
//! `violations` is pure (metadata in, messages out) so it is tested on hand-made metadata too;
//! otherwise a rule that silently stopped matching anything would pass forever.

use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// Crates whose job is to exercise everything (integration tests, benchmarks, test servers,
/// developer commands): they may depend on any adapter, so only the `domain` rule applies to them.
/// These are the package names in the metadata (`tests/` is the package `integration-tests`).
const TEST_AND_TOOL_CRATES: &[&str] = &["integration-tests", "testbed", "xtask", "fuzz"];

/// One "only these crates may depend on that" rule.
struct Only {
    what: &'static str,
    matches: fn(&str) -> bool,
    allowed: &'static [&'static str],
}

const RULES: &[Only] = &[
    Only {
        what: "axum",
        matches: |d| d == "axum",
        // `mailferry` calls `axum::serve(listener, web::router(..))` in `serve.rs`: it runs the
        // one router on a TCP listener and builds no routes, handlers or extractors of its own,
        // so "one router" holds. README says "only `web` imports axum", so this exception is
        // named here rather than hidden; `web` re-exporting a `serve` would let it go.
        allowed: &["web", "mailferry"],
    },
    Only {
        what: "aws-sdk-*/aws-config",
        matches: |d| d.starts_with("aws-sdk-") || d == "aws-config",
        allowed: &["aws"],
    },
    Only {
        what: "rusqlite",
        matches: |d| d == "rusqlite",
        allowed: &["embedded"],
    },
    Only {
        what: "lambda_*/aws_lambda_events",
        matches: is_lambda,
        allowed: &["api", "worker"],
    },
];

fn is_lambda(dep: &str) -> bool {
    dep.starts_with("lambda_") || dep == "aws_lambda_events"
}

/// `domain` is where behaviour lives, so it stays free of every transport, store and cloud SDK.
fn forbidden_in_domain(dep: &str) -> bool {
    matches!(
        dep,
        "axum" | "rusqlite" | "aws-config" | "imap-next" | "tokio-rustls" | "reqwest" | "hyper"
    ) || dep.starts_with("aws-sdk-")
        || is_lambda(dep)
}

/// Every broken invariant of the workspace described by `metadata` (`cargo metadata
/// --format-version 1` output), one message each, sorted.
fn violations(metadata: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let members: Vec<&Value> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .collect();
    let packages = metadata["packages"].as_array().expect("packages");
    for package in packages.iter().filter(|p| members.contains(&&p["id"])) {
        let name = package["name"].as_str().expect("package name");
        // Dev-dependencies do not count: a crate's tests may build whatever they exercise
        // against (web's tests use embedded), but the crate itself cannot reach it.
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].as_str() != Some("dev"))
            .map(|d| d["name"].as_str().expect("dependency name"));
        for dep in deps {
            if name == "domain" && forbidden_in_domain(dep) {
                out.push(format!("`domain` depends on `{dep}`"));
            }
            if TEST_AND_TOOL_CRATES.contains(&name) {
                continue;
            }
            for rule in RULES {
                if (rule.matches)(dep) && !rule.allowed.contains(&name) {
                    out.push(format!(
                        "`{name}` depends on `{dep}`; only {:?} may depend on {}",
                        rule.allowed, rule.what
                    ));
                }
            }
        }
        out.extend(root_doc_violation(name, package));
    }
    out.sort();
    out
}

const LIB_KINDS: &[&str] = &["lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro"];

/// The crate's root file (the library's, else each binary's) must open with a `//!` paragraph
/// saying what the crate is, since that is what a reader of the layout opens first.
fn root_doc_violation(name: &str, package: &Value) -> Vec<String> {
    let targets = package["targets"].as_array().expect("targets");
    let kinds = |t: &Value, wanted: &[&str]| {
        t["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| wanted.contains(&k.as_str().unwrap_or(""))))
    };
    let libs: Vec<&Value> = targets.iter().filter(|t| kinds(t, LIB_KINDS)).collect();
    let roots = if libs.is_empty() {
        targets.iter().filter(|t| kinds(t, &["bin"])).collect()
    } else {
        libs
    };
    let mut out = Vec::new();
    for target in roots {
        let path = Path::new(target["src_path"].as_str().expect("src_path"));
        let first = std::fs::read_to_string(path).map(|text| {
            let line = text.lines().find(|l| !l.trim().is_empty());
            line.unwrap_or("").trim_start().to_owned()
        });
        match first {
            Ok(line) if line.starts_with("//!") => {}
            Ok(_) => out.push(format!(
                "`{name}`: {} does not open with a `//!` paragraph",
                path.display()
            )),
            Err(e) => out.push(format!("`{name}`: cannot read {}: {e}", path.display())),
        }
    }
    out
}

#[test]
fn architecture_invariants_hold() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // Without --no-deps: the dependency lists are only filled in with resolution. --offline first
    // so the test needs no network when the registry cache is warm.
    let run = |extra: &[&str]| {
        Command::new(&cargo)
            .current_dir(root)
            .args(["metadata", "--format-version", "1"])
            .args(extra)
            .output()
            .expect("run cargo metadata")
    };
    let mut output = run(&["--offline"]);
    if !output.status.success() {
        output = run(&[]);
    }
    assert!(
        output.status.success(),
        "cargo metadata failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata JSON");
    let found = violations(&metadata);
    assert!(
        found.is_empty(),
        "architecture invariants broken (README.md, \"Architecture invariants\"):\n  {}",
        found.join("\n  ")
    );
}

/// A package of hand-made metadata; `root` is its library's root file.
fn package(name: &str, deps: &[(&str, Option<&str>)], root: &str) -> Value {
    let deps: Vec<Value> = deps
        .iter()
        .map(|(dep, kind)| json!({ "name": dep, "kind": kind }))
        .collect();
    json!({
        "id": format!("{name} 0.1.0"),
        "name": name,
        "dependencies": deps,
        "targets": [{ "kind": ["lib"], "name": name, "src_path": root }],
    })
}

/// Hand-made metadata: `members` are the workspace, `others` its dependencies.
fn metadata(members: Vec<Value>, others: Vec<Value>) -> Value {
    let ids: Vec<Value> = members.iter().map(|p| p["id"].clone()).collect();
    let packages: Vec<Value> = members.into_iter().chain(others).collect();
    json!({ "packages": packages, "workspace_members": ids })
}

/// This file opens with `//!`; the manifest does not.
const DOCUMENTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tidy.rs");
const UNDOCUMENTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");

#[test]
fn violations_are_reported() {
    let bad = metadata(
        vec![
            package("domain", &[("rusqlite", None), ("serde", None)], DOCUMENTED),
            package("embedded", &[("rusqlite", None)], DOCUMENTED),
            package(
                "web",
                &[("axum", None), ("embedded", Some("dev"))],
                UNDOCUMENTED,
            ),
        ],
        vec![],
    );
    let found = violations(&bad);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found.contains(&"`domain` depends on `rusqlite`".to_owned()));
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("`domain` depends on `rusqlite`; only"))
    );
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("`web`: ") && v.contains("`//!`"))
    );
}

#[test]
fn allowed_and_exempt_dependencies_pass() {
    let good = metadata(
        vec![
            package("web", &[("axum", None)], DOCUMENTED),
            // A dev-dependency is not the crate's own dependency.
            package(
                "domain",
                &[("tokio", None), ("rusqlite", Some("dev"))],
                DOCUMENTED,
            ),
            package("integration-tests", &[("axum", None)], DOCUMENTED),
        ],
        // A package outside the workspace is not checked.
        vec![package("some-dep", &[("axum", None)], UNDOCUMENTED)],
    );
    assert_eq!(violations(&good), Vec::<String>::new());
}
