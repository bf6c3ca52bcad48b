//! Installing the pinned tools into `~/.cache/mailferry/tools/<name>-<version>`.
//!
//! Each `ensure_*` asks the installed binary for its version first and installs only when the
//! answer differs from the pin, so a warm run costs one `--version` call per tool.

use crate::ctx::Ctx;
use crate::proc::{self, fmt_duration, step, timed, warn};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TRUNK_VERSION: &str = "0.21.14";
/// npm's `binaryen` package; trunk's name for this release is `version_132`.
pub const BINARYEN_VERSION: &str = "132";
/// Only installed when no `cargo nextest` is on PATH.
pub const NEXTEST_VERSION: &str = "0.9.143";
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Lockfile entries of wasm-bindgen-cli's published Cargo.lock that this machine's registry refuses
/// to serve, with the release to use instead: `(crate, refused, replacement)`.
const REFUSED_PINS: &[(&str, &str, &str)] = &[("webpki-roots", "1.0.11", "1.0.10")];

/// Adds the wasm32 target to the active toolchain when it is missing.
pub fn ensure_wasm_target(ctx: &Ctx) -> Result<()> {
    let Some(rustup) = proc::which("rustup") else {
        // Without rustup the target can only come with the toolchain itself.
        let sysroot = proc::output(Command::new("rustc").args(["--print", "sysroot"]))
            .context("neither rustup nor rustc is on PATH")?;
        if Path::new(&sysroot)
            .join("lib/rustlib")
            .join(WASM_TARGET)
            .is_dir()
        {
            step(format!("{WASM_TARGET}: installed"));
            return Ok(());
        }
        bail!("the {WASM_TARGET} target is missing and rustup is not installed to add it");
    };
    let installed = proc::output(Command::new(&rustup).current_dir(&ctx.root).args([
        "target",
        "list",
        "--installed",
    ]))
    .unwrap_or_default();
    if installed.lines().any(|l| l.trim() == WASM_TARGET) {
        step(format!("{WASM_TARGET}: installed"));
        return Ok(());
    }
    step(format!("{WASM_TARGET}: adding with rustup"));
    proc::run(
        Command::new(&rustup)
            .current_dir(&ctx.root)
            .args(["target", "add", WASM_TARGET]),
    )
}

/// trunk, built from crates.io with its own Cargo.lock. Returns the directory to put on PATH.
pub fn ensure_trunk(ctx: &Ctx) -> Result<PathBuf> {
    let root = ctx.tools().join(format!("trunk-{TRUNK_VERSION}"));
    ensure_cargo_tool(
        ctx,
        &root,
        "trunk",
        &format!("trunk {TRUNK_VERSION}"),
        "~4 min",
        "0",
        |cmd| {
            // Without `update_check` (a crates.io client): builds run offline.
            cmd.arg(format!("trunk@{TRUNK_VERSION}")).args([
                "--no-default-features",
                "--features",
                "rustls",
            ]);
            Ok(())
        },
    )
}

/// wasm-bindgen-cli of exactly `version` (the wasm-bindgen in Cargo.lock). It also brings
/// `wasm-bindgen-test-runner`, which the browser tests of the frontend use.
///
/// `cargo install wasm-bindgen-cli@V --locked` fails here because its published Cargo.lock pins a
/// crate release the registry refuses. So the source is fetched through a scratch project, copied,
/// the refused pins are moved to a release the registry serves, and that copy is installed with
/// `--locked` (every other dependency stays exactly as upstream locked it).
pub fn ensure_wasm_bindgen(ctx: &Ctx, version: &str) -> Result<PathBuf> {
    let root = ctx.tools().join(format!("wasm-bindgen-{version}"));
    let build = ctx.tools().join(".build");
    ensure_cargo_tool(
        ctx,
        &root,
        "wasm-bindgen",
        &format!("wasm-bindgen {version}"),
        "~3 min",
        "1",
        |cmd| {
            let src = fetch_crate_source(ctx, &build, "wasm-bindgen-cli", version)?;
            let lock = std::fs::read_to_string(src.join("Cargo.lock")).unwrap_or_default();
            for (name, refused, replacement) in REFUSED_PINS {
                if locked_versions(&lock, name).iter().any(|v| v == refused) {
                    step(format!(
                        "  moving {name} {refused} -> {replacement} (refused by this registry)"
                    ));
                    proc::run(
                        Command::new(&ctx.cargo)
                            .current_dir(&src)
                            .args(["update", "--quiet", "-p"])
                            .arg(format!("{name}@{refused}"))
                            .args(["--precise", replacement]),
                    )?;
                }
            }
            cmd.arg("--path").arg(&src);
            Ok(())
        },
    )
}

/// wasm-opt from npm's `binaryen` (Debian's binaryen is too old to read wasm-bindgen's output).
/// Optional: without npm, or if the install fails, the frontend is built without wasm-opt.
pub fn ensure_wasm_opt(ctx: &Ctx) -> Result<Option<PathBuf>> {
    let prefix = ctx.tools().join(format!("binaryen-{BINARYEN_VERSION}"));
    let bin = prefix.join("node_modules").join(".bin");
    let expected = format!("version {BINARYEN_VERSION}");
    let probe = || proc::version_of(bin.join("wasm-opt"), "--version");
    if probe().is_some_and(|v| v.contains(&expected)) {
        step(format!("wasm-opt {BINARYEN_VERSION}: installed"));
        return Ok(Some(bin));
    }
    let Some(npm) = proc::which("npm") else {
        warn("npm is not installed: building the frontend without wasm-opt (larger .wasm)");
        return Ok(None);
    };
    step(format!(
        "wasm-opt {BINARYEN_VERSION}: installing npm binaryen@{BINARYEN_VERSION} into {}",
        prefix.display()
    ));
    std::fs::create_dir_all(&prefix)?;
    let (ok, took) = timed(|| {
        proc::run_ok(
            Command::new(npm)
                .current_dir(&prefix)
                .args(["install", "--prefix"])
                .arg(&prefix)
                .args(["--no-audit", "--no-fund", "--loglevel=error"])
                .arg(format!("binaryen@{BINARYEN_VERSION}")),
        )
    });
    match (ok?, probe()) {
        (true, Some(v)) if v.contains(&expected) => {
            step(format!(
                "wasm-opt {BINARYEN_VERSION}: installed in {}",
                fmt_duration(took)
            ));
            Ok(Some(bin))
        }
        (_, got) => {
            warn(format!(
                "wasm-opt {BINARYEN_VERSION} could not be installed (found {got:?}): building without it"
            ));
            Ok(None)
        }
    }
}

/// `cargo nextest`, when it can be had: the one on PATH, else one installed into the cache.
/// Returns the extra PATH directory (if any) and whether nextest is available at all.
pub fn ensure_nextest(ctx: &Ctx) -> Result<(Option<PathBuf>, bool)> {
    if let Some(v) = proc::output(Command::new(&ctx.cargo).args(["nextest", "--version"])) {
        step(format!(
            "{}: on PATH",
            v.lines().next().unwrap_or("cargo-nextest")
        ));
        return Ok((None, true));
    }
    let root = ctx.tools().join(format!("cargo-nextest-{NEXTEST_VERSION}"));
    let installed = ensure_cargo_tool(
        ctx,
        &root,
        "cargo-nextest",
        &format!("cargo-nextest {NEXTEST_VERSION}"),
        "~5 min",
        "1",
        |cmd| {
            cmd.arg(format!("cargo-nextest@{NEXTEST_VERSION}"));
            Ok(())
        },
    );
    match installed {
        Ok(dir) => Ok((Some(dir), true)),
        Err(err) => {
            warn(format!(
                "cargo-nextest unavailable ({err:#}): using `cargo test`"
            ));
            Ok((None, false))
        }
    }
}

/// Shared logic of the cargo-installed tools: probe `root/bin/<bin> --version`, and if the first
/// line is not `expected`, run `cargo install --locked --root root` with what `configure` adds.
/// Builds in a target directory under the cache, so an interrupted install resumes instead of
/// restarting, and removes it after success.
fn ensure_cargo_tool(
    ctx: &Ctx,
    root: &Path,
    bin: &str,
    expected: &str,
    estimate: &str,
    opt_level: &str,
    configure: impl FnOnce(&mut Command) -> Result<()>,
) -> Result<PathBuf> {
    let bin_dir = root.join("bin");
    let probe = || {
        proc::version_of(bin_dir.join(bin), "--version")
            .map(|v| v.lines().next().unwrap_or_default().trim().to_owned())
    };
    match probe() {
        Some(v) if v == expected => {
            step(format!("{expected}: installed"));
            return Ok(bin_dir);
        }
        Some(other) => step(format!("{expected}: found `{other}`, reinstalling")),
        None => step(format!(
            "{expected}: installing into {} ({estimate}, once)",
            root.display()
        )),
    }
    let build = ctx.tools().join(".build");
    let target = build.join(format!("target-{bin}"));
    std::fs::create_dir_all(&build)?;
    let mut cmd = Command::new(&ctx.cargo);
    cmd.current_dir(ctx.tools())
        .env_remove("CARGO_TARGET_DIR")
        .args(["install", "--locked", "--force", "--root"])
        .arg(root)
        .arg("--target-dir")
        .arg(&target);
    lean_release(&mut cmd, opt_level);
    configure(&mut cmd)?;
    let (result, took) = timed(|| proc::run(&mut cmd));
    result?;
    match probe() {
        Some(v) if v == expected => {
            step(format!("{expected}: installed in {}", fmt_duration(took)));
            let _ = std::fs::remove_dir_all(&target);
            Ok(bin_dir)
        }
        got => bail!(
            "installed {bin} into {} but it reports {got:?}, not `{expected}`",
            root.display()
        ),
    }
}

/// Builds a tool lean: the tools' own release profiles ask for fat LTO and a single codegen unit
/// (trunk took 18 of a cold setup's 26 minutes on two cores), which buys nothing for programs
/// that run for seconds per build. Cargo's environment settings override the profile of the
/// package's manifest; the version and the lock file stay exactly as pinned.
fn lean_release(cmd: &mut Command, opt_level: &str) {
    cmd.env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", opt_level)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "false");
}

/// Downloads a crate's source through cargo (a scratch project that depends on it, then
/// `cargo fetch`) and copies it to `build/<name>-<version>`, a directory we may modify.
fn fetch_crate_source(ctx: &Ctx, build: &Path, name: &str, version: &str) -> Result<PathBuf> {
    let scratch = build.join(format!("fetch-{name}-{version}"));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("src"))?;
    // `[workspace]` keeps the scratch project out of any workspace above the cache directory.
    std::fs::write(
        scratch.join("Cargo.toml"),
        format!(
            "[package]\nname = \"fetch-scratch\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\n{name} = \"={version}\"\n\n[workspace]\n"
        ),
    )?;
    std::fs::write(scratch.join("src").join("main.rs"), "fn main() {}\n")?;
    step(format!("  fetching {name} {version} source"));
    proc::run(
        Command::new(&ctx.cargo)
            .current_dir(&scratch)
            .args(["fetch", "--quiet"]),
    )?;
    let meta = Command::new(&ctx.cargo)
        .current_dir(&scratch)
        .args(["metadata", "--format-version", "1", "--offline"])
        .output()
        .context("cargo metadata")?;
    if !meta.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&meta.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&meta.stdout)?;
    let manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name && p["version"] == version)
        .and_then(|p| p["manifest_path"].as_str())
        .with_context(|| format!("{name} {version} not found after cargo fetch"))?;
    let from = Path::new(manifest)
        .parent()
        .context("manifest without a directory")?;
    let to = build.join(format!("{name}-{version}"));
    let _ = std::fs::remove_dir_all(&to);
    copy_dir(from, &to)?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(to)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The versions of package `name` in a Cargo.lock.
pub fn locked_versions(lock: &str, name: &str) -> Vec<String> {
    let quoted = |line: &str, key: &str| {
        line.strip_prefix(key)
            .map(str::trim)
            .and_then(|rest| rest.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_owned())
    };
    lock.split("[[package]]")
        .filter_map(|block| {
            let mut lines = block.lines().map(str::trim);
            let pkg = lines.clone().find_map(|l| quoted(l, "name"))?;
            let version = lines.find_map(|l| quoted(l, "version"))?;
            (pkg == name).then_some(version)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = [
 "wasm-bindgen-macro",
]

[[package]]
name = "wasm-bindgen-macro"
version = "0.2.130"

[[package]]
name = "webpki-roots"
version = "1.0.11"
"#;

    #[test]
    fn locked_versions_finds_exact_package_names() {
        assert_eq!(locked_versions(LOCK, "wasm-bindgen"), vec!["0.2.130"]);
        assert_eq!(locked_versions(LOCK, "webpki-roots"), vec!["1.0.11"]);
        assert!(locked_versions(LOCK, "wasm").is_empty());
    }
}
