//! The SAM template (`infra/template.yaml`) against the code it deploys and the linters an
//! infrastructure team runs: cfn-lint with no error, `sam validate --lint`, checkov with no
//! failed check (every skipped one carries a written reason), and the contract between the
//! binaries and the template — every environment variable each function reads is set (and no
//! unknown one), each names the resource the code expects, the table has the keys, index and TTL
//! the `aws` crate uses, every documented API operation reaches the function through a route
//! with the right authorization, and each function's role allows exactly the calls it makes.
//!
//! The template is read through cfn-lint's own YAML decoder (the venv's Python), so the short
//! forms (`!Ref`, `!Sub`, `!GetAtt`) arrive as their long JSON forms.

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml")
}

fn venv_bin(name: &str) -> PathBuf {
    // The SAM CLI has a venv of its own (its pins conflict with checkov's).
    let venv = match std::env::var_os("MAILFERRY_SAM_VENV").filter(|v| !v.is_empty()) {
        Some(dir) if name == "sam" => PathBuf::from(dir),
        _ if name == "sam" => aws::moto::venv().with_file_name("sam-venv"),
        _ => aws::moto::venv(),
    };
    let path = venv.join("bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: `cargo xtask test` installs it into the venv",
        path.display()
    );
    path
}

/// The template as JSON, intrinsic functions in their long form.
fn template() -> Value {
    let out = Command::new(venv_bin("python"))
        .args([
            "-c",
            "import json, sys\n\
             from cfnlint.decode import decode\n\
             t, errors = decode(sys.argv[1])\n\
             if errors: sys.exit('\\n'.join(str(e) for e in errors))\n\
             print(json.dumps(t))",
        ])
        .arg(template_path())
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "the template does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the decoder")
}

fn resource<'a>(t: &'a Value, id: &str) -> &'a Value {
    let r = &t["Resources"][id];
    assert!(r.is_object(), "the template has no resource {id}");
    r
}

fn props<'a>(t: &'a Value, id: &str) -> &'a Value {
    &resource(t, id)["Properties"]
}

/// A function's environment: the Globals' variables overlaid with its own.
fn environment(t: &Value, function: &str) -> BTreeMap<String, Value> {
    let mut vars = BTreeMap::new();
    for source in [
        &t["Globals"]["Function"]["Environment"]["Variables"],
        &props(t, function)["Environment"]["Variables"],
    ] {
        if let Some(map) = source.as_object() {
            vars.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    vars
}

/// Whether `value` refers to resource `id` (`Ref`, `Fn::GetAtt` or a `${id…}` in `Fn::Sub`).
fn refers_to(value: &Value, id: &str) -> bool {
    match value {
        Value::Object(map) => {
            if map.get("Ref").and_then(Value::as_str) == Some(id) {
                return true;
            }
            if let Some(att) = map.get("Fn::GetAtt") {
                let first = match att {
                    Value::Array(a) => a.first().and_then(Value::as_str),
                    Value::String(s) => s.split('.').next(),
                    _ => None,
                };
                if first == Some(id) {
                    return true;
                }
            }
            if let Some(sub) = map.get("Fn::Sub") {
                let text = match sub {
                    Value::String(s) => s.as_str(),
                    Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or(""),
                    _ => "",
                };
                if text.contains(&format!("${{{id}}}")) || text.contains(&format!("${{{id}.")) {
                    return true;
                }
            }
            map.values().any(|v| refers_to(v, id))
        }
        Value::Array(items) => items.iter().any(|v| refers_to(v, id)),
        _ => false,
    }
}

#[test]
fn every_variable_the_binaries_read_is_set_and_names_the_right_resource() {
    let t = template();
    let common: BTreeSet<&str> = aws::Settings::VARIABLES.into_iter().collect();
    let api_only: BTreeSet<&str> = aws::SignInSettings::VARIABLES.into_iter().collect();
    // Read by the Rust runtime's logging, not by mailferry's settings.
    let runtime = BTreeSet::from(["RUST_LOG", "AWS_LAMBDA_LOG_LEVEL", "AWS_LAMBDA_LOG_FORMAT"]);

    for (function, wanted) in [
        ("ApiFunction", common.union(&api_only).copied().collect()),
        ("WorkerFunction", common.clone()),
    ] {
        let env = environment(&t, function);
        let set: BTreeSet<&str> = env.keys().map(String::as_str).collect();
        let missing: Vec<_> = wanted.difference(&set).collect();
        assert!(
            missing.is_empty(),
            "{function} lacks {missing:?}: it would stop at start"
        );
        let unknown: Vec<_> = set
            .iter()
            .filter(|v| !wanted.contains(*v) && !runtime.contains(*v))
            .collect();
        assert!(
            unknown.is_empty(),
            "{function} sets {unknown:?}, which no code reads (a typo?)"
        );

        for (var, id) in [
            ("TABLE_NAME", "Table"),
            ("QUEUE_URL", "JobQueue"),
            ("DEAD_LETTER_QUEUE_URL", "DeadLetterQueue"),
            ("KMS_KEY_ID", "VaultKey"),
            ("SES_CONFIGURATION_SET", "SesConfigurationSet"),
        ] {
            assert!(
                refers_to(&env[var], id),
                "{function}: {var} = {} does not name {id}",
                env[var]
            );
            resource(&t, id);
        }
        let max_receives = env["MAX_RECEIVES"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| env["MAX_RECEIVES"].as_u64().map(|n| n.to_string()))
            .expect("MAX_RECEIVES is a literal");
        let redrive = &props(&t, "JobQueue")["RedrivePolicy"];
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            max_receives,
            "MAX_RECEIVES must equal the redrive maxReceiveCount, or the worker misjudges the last delivery"
        );
        assert!(refers_to(redrive, "DeadLetterQueue"));
    }
    let api = environment(&t, "ApiFunction");
    assert!(refers_to(&api["COGNITO_CLIENT_ID"], "UserPoolClient"));
    assert!(
        refers_to(&api["COGNITO_DOMAIN"], "UserPoolDomain")
            || refers_to(&api["COGNITO_DOMAIN"], "CognitoDomainPrefix"),
        "COGNITO_DOMAIN = {}",
        api["COGNITO_DOMAIN"]
    );
}

#[test]
fn the_table_has_the_keys_index_and_ttl_the_store_uses() {
    let t = template();
    let table = props(&t, "Table");
    let attrs: BTreeMap<&str, &str> = table["AttributeDefinitions"]
        .as_array()
        .expect("attribute definitions")
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap(),
                a["AttributeType"].as_str().unwrap(),
            )
        })
        .collect();
    for key in ["pk", "sk", "gsi1pk", "gsi1sk"] {
        assert_eq!(attrs.get(key), Some(&"S"), "{key} is a string key");
    }
    assert_eq!(
        table["KeySchema"],
        json!([{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    );
    let gsi = table["GlobalSecondaryIndexes"]
        .as_array()
        .expect("indexes")
        .iter()
        .find(|i| i["IndexName"] == "gsi1")
        .expect("index gsi1");
    assert_eq!(
        gsi["KeySchema"],
        json!([{"AttributeName": "gsi1pk", "KeyType": "HASH"}, {"AttributeName": "gsi1sk", "KeyType": "RANGE"}])
    );
    assert_eq!(gsi["Projection"]["ProjectionType"], "ALL");
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], "expires");
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"], true);
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(resource(&t, "Table")["DeletionPolicy"], "Retain");
}

#[test]
fn the_worker_reports_partial_batches_and_outlives_no_visibility_timeout() {
    let t = template();
    let worker = props(&t, "WorkerFunction");
    let timeout = worker["Timeout"]
        .as_u64()
        .or_else(|| t["Globals"]["Function"]["Timeout"].as_u64())
        .expect("a literal worker timeout");
    let events = worker["Events"].as_object().expect("worker events");
    let sqs: Vec<&Value> = events.values().filter(|e| e["Type"] == "SQS").collect();
    assert_eq!(sqs.len(), 1, "one SQS trigger");
    let p = &sqs[0]["Properties"];
    assert!(refers_to(&p["Queue"], "JobQueue"));
    assert!(
        p["FunctionResponseTypes"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("ReportBatchItemFailures"))),
        "without ReportBatchItemFailures one failed job would redeliver the whole batch"
    );
    assert!(
        p["ScalingConfig"]["MaximumConcurrency"].is_object(),
        "the maximum concurrency is a parameter"
    );
    let visibility = props(&t, "JobQueue")["VisibilityTimeout"]
        .as_u64()
        .expect("a literal visibility timeout");
    assert!(
        visibility >= 6 * timeout,
        "visibility {visibility} s < 6 × the worker's {timeout} s"
    );
}

/// The template's HTTP API routes as (method, path, has the JWT authorizer).
fn routes(t: &Value) -> Vec<(String, String, bool)> {
    let events = props(t, "ApiFunction")["Events"]
        .as_object()
        .expect("api events");
    events
        .values()
        .filter(|e| e["Type"] == "HttpApi")
        .map(|e| {
            let p = &e["Properties"];
            assert!(refers_to(&p["ApiId"], "HttpApi"), "route on HttpApi: {p}");
            let auth = p["Auth"]["Authorizer"].as_str().unwrap_or("NONE");
            (
                p["Method"].as_str().unwrap_or("ANY").to_ascii_lowercase(),
                p["Path"].as_str().expect("a path").to_owned(),
                auth != "NONE",
            )
        })
        .collect()
}

/// API Gateway's route selection: an exact path first, then the greedy `{proxy+}` route with
/// the longest prefix; a route's method must match or be `any`.
fn select<'a>(
    routes: &'a [(String, String, bool)],
    method: &str,
    path: &str,
) -> Option<&'a (String, String, bool)> {
    let method_ok = |m: &str| m == "any" || m == method;
    let segments_match = |pattern: &str| {
        let (p, q): (Vec<_>, Vec<_>) = (pattern.split('/').collect(), path.split('/').collect());
        p.len() == q.len()
            && p.iter()
                .zip(&q)
                .all(|(a, b)| a == b || (a.starts_with('{') && !a.ends_with("+}")))
    };
    routes
        .iter()
        .filter(|r| method_ok(&r.0) && !r.1.ends_with("+}") && segments_match(&r.1))
        .max_by_key(|r| (r.1.matches('{').count() == 0, r.0 != "any"))
        .or_else(|| {
            routes
                .iter()
                .filter(|r| method_ok(&r.0) && r.1.ends_with("{proxy+}"))
                .filter(|r| path.starts_with(r.1.trim_end_matches("{proxy+}")))
                .max_by_key(|r| r.1.len())
        })
}

#[test]
fn every_operation_is_routed_to_the_api_with_the_right_authorization() {
    let t = template();
    let routes = routes(&t);
    for op in web::openapi::OPERATIONS {
        let (method, path, admin) = (op.method, op.path, &op.admin);
        // Path parameters become sample values.
        let concrete = path
            .replace("{id}", "p1")
            .replace("{uid}", "u1")
            .replace("{token}", "t1")
            .replace("{action}", "start")
            .replace("{side}", "source");
        let route = select(&routes, method, &concrete)
            .unwrap_or_else(|| panic!("{method} {path} reaches no route of the template"));
        assert_eq!(
            route.2, *admin,
            "{method} {path} (admin: {admin}) goes through {route:?}: admin operations need the \
             JWT authorizer, the public ones (sign-in, self-service) must not have it"
        );
    }
    // The authorizer is the user pool's, for the console's client.
    let auth = &props(&t, "HttpApi")["Auth"]["Authorizers"];
    let jwt = auth
        .as_object()
        .and_then(|m| m.values().next())
        .expect("an authorizer");
    assert!(
        refers_to(&jwt["JwtConfiguration"]["issuer"], "UserPool"),
        "{jwt}"
    );
    assert!(
        refers_to(&jwt["JwtConfiguration"]["audience"], "UserPoolClient"),
        "{jwt}"
    );
}

/// The actions a function's inline policies allow, with their resources.
fn allowed(t: &Value, function: &str) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let policies = props(t, function)["Policies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for policy in policies {
        assert!(
            policy.get("Statement").is_some(),
            "{function}: only inline statements, no managed or SAM policy templates: {policy}"
        );
        for st in policy["Statement"].as_array().expect("statements") {
            if st["Effect"] != "Allow" {
                continue;
            }
            let actions = match &st["Action"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                other => panic!("{function}: action {other}"),
            };
            for a in actions {
                out.entry(a).or_default().push(st.clone());
            }
        }
    }
    out
}

#[test]
fn each_function_may_make_exactly_the_calls_its_code_makes() {
    let t = template();
    // The SDK calls in functions/aws (grep `.send()` there): both write in batches (the api
    // deletes a user's items, the worker stores a folder's skipped items and copy-map pages);
    // the worker never seals credentials and never reads queues by hand (the event source
    // mapping does).
    // `TransactWriteItems` is no IAM action: a transaction is authorised as its Put and
    // Delete items.
    let dynamo_worker = [
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    ];
    let api: BTreeSet<&str> = dynamo_worker
        .iter()
        .copied()
        .chain([
            "sqs:SendMessage",
            "ses:SendEmail",
            "kms:GenerateDataKey",
            "kms:Decrypt",
        ])
        .collect();
    let worker: BTreeSet<&str> = dynamo_worker
        .iter()
        .copied()
        .chain([
            "sqs:SendMessage",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
            "ses:SendEmail",
            "kms:Decrypt",
        ])
        .collect();
    // Logging and tracing need no resource of ours.
    let infrastructure = |a: &str| a.starts_with("logs:") || a.starts_with("xray:");

    for (function, wanted) in [("ApiFunction", api), ("WorkerFunction", worker)] {
        let allowed = allowed(&t, function);
        let granted: BTreeSet<&str> = allowed
            .keys()
            .map(String::as_str)
            .filter(|a| !infrastructure(a))
            .collect();
        assert_eq!(granted, wanted, "{function}'s actions");
        for (action, statements) in &allowed {
            assert!(
                !action.contains('*'),
                "{function}: wildcard action {action}"
            );
            if infrastructure(action) {
                continue;
            }
            for st in statements {
                let resources = &st["Resource"];
                assert!(
                    !resources.to_string().contains("\"*\""),
                    "{function}: {action} on every resource"
                );
                let own = match action.split(':').next().unwrap() {
                    "dynamodb" => "Table",
                    "sqs" => "JobQueue",
                    "kms" => "VaultKey",
                    "ses" => "SesConfigurationSet",
                    other => panic!("unexpected service {other}"),
                };
                assert!(
                    refers_to(resources, own)
                        || (own == "SesConfigurationSet"
                            && resources.to_string().contains("identity/")),
                    "{function}: {action} on {resources}, not on {own}"
                );
                if action.starts_with("kms:") {
                    assert_eq!(
                        st["Condition"]["StringEquals"]["kms:EncryptionContext:purpose"],
                        "mailferry-vault",
                        "{function}: {action} only for the vault's encryption context"
                    );
                }
            }
        }
    }
}

/// Runs a venv tool on the template; (exit code, stdout + stderr).
fn lint(tool: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(venv_bin(tool))
        .args(args)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn cfn_lint_finds_no_error_or_warning() {
    // Exit code bits: 2 errors, 4 warnings, 8 informational.
    let (code, output) = lint(
        "cfn-lint",
        &["--format", "parseable", "infra/template.yaml"],
    );
    assert_eq!(code & 6, 0, "cfn-lint:\n{output}");
}

#[test]
fn sam_validate_lint_passes() {
    let (code, output) = lint(
        "sam",
        &[
            "validate",
            "--lint",
            "--region",
            "us-east-1",
            "-t",
            "infra/template.yaml",
        ],
    );
    assert_eq!(code, 0, "sam validate --lint:\n{output}");
    assert!(output.contains("is a valid SAM Template"), "{output}");
}

#[test]
fn checkov_fails_no_check_and_every_skip_has_a_reason() {
    let (_, output) = lint(
        "checkov",
        &[
            "-f",
            "infra/template.yaml",
            "--framework",
            "cloudformation",
            "--skip-download",
            "--output",
            "json",
        ],
    );
    let start = output
        .find('{')
        .unwrap_or_else(|| panic!("checkov said: {output}"));
    let report: Value = serde_json::Deserializer::from_str(&output[start..])
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("checkov JSON: {output}"));
    let summary = &report["summary"];
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {} ({})", c["check_id"], c["resource"], c["check_name"]))
        .collect();
    assert_eq!(summary["failed"], 0, "checkov failed checks: {failed:#?}");
    assert!(
        summary["passed"].as_u64().unwrap_or(0) >= 30,
        "checkov ran its checks: {summary}"
    );
    for skipped in report["results"]["skipped_checks"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let reason = skipped["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("");
        assert!(
            reason.split_whitespace().count() >= 5,
            "{} on {} is skipped without a written reason: {reason:?}",
            skipped["check_id"],
            skipped["resource"]
        );
    }
}
