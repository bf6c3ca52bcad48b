//! `cargo xtask test`: what CI runs on a fresh clone.
//!
//! Setup (Debian packages, the Python venv, the frontend toolchain and build) must succeed before
//! any test tier runs. The tiers then all run even when one fails, and each gets a summary line.
//!
//! Environment the tests can rely on:
//! - `MAILFERRY_VENV`: the venv with `moto_server`, `cfn-lint` and `checkov` in its `bin/`;
//! - `MAILFERRY_SAM_VENV`: the venv with the SAM CLI (`sam`) in its `bin/`;
//! - `MAILFERRY_FRONTEND_DIST`: absolute path of the built frontend (`frontend/dist`);
//! - `CHROMIUM`, `CHROMEDRIVER`: absolute paths of Debian's chromium and chromedriver;
//! - `PATH` starts with the frontend tools (trunk, wasm-bindgen, wasm-bindgen-test-runner, wasm-opt).

use crate::ctx::Ctx;
use crate::frontend;
use crate::proc::{self, fmt_duration, step, timed, warn};
use crate::tools;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Debian packages the tests drive: Dovecot (IMAP source/target), headless Chromium, and the
/// libraries of Cyrus and Courier, which run unpacked from their packages (`servers.rs`; never
/// installed: they would remove Dovecot).
const APT_PACKAGES: &[&str] = &[
    "dovecot-imapd",
    "chromium",
    "chromium-driver",
    "libical3",
    "libxapian30",
    "libpcre3",
    "libltdl7",
    "libidn12",
    "libgamin0",
    "libgdbm6",
    "sasl2-bin",
    "libsasl2-modules",
    "libsasl2-modules-db",
    "openssl",
    "util-linux",
];

/// PyPI pins of the test venv, as `(distribution, requirement, version)`. Current releases when
/// pinned; bump together and the next run reinstalls.
const PY_PINS: &[(&str, &str, &str)] = &[
    ("moto", "moto[server]", "5.2.5"),
    ("cfn-lint", "cfn-lint", "1.58.0"),
    ("checkov", "checkov", "3.3.30"),
];

/// The SAM CLI (`sam validate --lint`) in a venv of its own: it pins boto3 and packaging to
/// versions checkov's pins exclude, so one venv cannot hold both.
const SAM_PINS: &[(&str, &str, &str)] = &[("aws-sam-cli", "aws-sam-cli", "1.170.0")];

#[derive(Debug, Default)]
pub struct Options {
    /// Skip the installs and the frontend build; trust what earlier runs left.
    pub quick: bool,
    /// Extra arguments for the test runner (usually a filter). When given, the other tiers
    /// (doc tests, fmt, clippy) are skipped.
    pub test_args: Vec<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut opts = Options::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--" => opts.test_args.extend(it.by_ref().cloned()),
                other => bail!(
                    "unknown option `{other}` for `cargo xtask test` (test arguments go after `--`)"
                ),
            }
        }
        Ok(opts)
    }
}

#[derive(Debug)]
struct Tier {
    name: &'static str,
    ok: bool,
    took: Duration,
    note: String,
}

/// `cargo xtask setup`: only the setup part of `test`, to prepare a machine (or check it is).
pub fn setup_only(ctx: &Ctx) -> Result<()> {
    let env = setup(ctx, &Options::default())?;
    step(format!("ready: {}", env.note));
    step(format!("MAILFERRY_VENV={}", env.venv.display()));
    step(format!("MAILFERRY_FRONTEND_DIST={}", env.dist.display()));
    step(format!("CHROMIUM={}", env.chromium.display()));
    step(format!("CHROMEDRIVER={}", env.chromedriver.display()));
    Ok(())
}

pub fn test(ctx: &Ctx, opts: &Options) -> Result<()> {
    step(format!(
        "target dir {}{}",
        ctx.target_dir.display(),
        if ctx.ci { " (CI: --locked)" } else { "" }
    ));
    let mut tiers = Vec::new();

    // Setup: everything after this point assumes it worked, so the first failure stops the run.
    let (env, setup_took) = timed(|| setup(ctx, opts));
    let env = match env {
        Ok(env) => {
            tiers.push(Tier {
                name: "setup",
                ok: true,
                took: setup_took,
                note: env.note.clone(),
            });
            env
        }
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            tiers.push(Tier {
                name: "setup",
                ok: false,
                took: setup_took,
                note: format!("{err:#}"),
            });
            return summary(&tiers);
        }
    };

    let with_env = |cmd: &mut Command| -> Result<()> {
        cmd.env("PATH", proc::path_with(&env.path_dirs)?)
            .env("MAILFERRY_VENV", &env.venv)
            .env("MAILFERRY_SAM_VENV", &env.sam_venv)
            .env("MAILFERRY_FRONTEND_DIST", &env.dist)
            .env("CHROMIUM", &env.chromium)
            .env("CHROMEDRIVER", &env.chromedriver)
            .env("MAILFERRY_CYRUS_ROOT", &env.cyrus)
            .env("MAILFERRY_COURIER_ROOT", &env.courier)
            .env("MAILFERRY_AUTHORITY_DIR", &env.authority);
        Ok(())
    };
    let mut tier = |name: &'static str, args: Vec<String>| -> Result<()> {
        let mut cmd = ctx.cargo();
        cmd.args(&args);
        with_env(&mut cmd)?;
        step(format!("tier {name}: cargo {}", args.join(" ")));
        let (ok, took) = timed(|| proc::run_ok(&mut cmd));
        let ok = ok?;
        tiers.push(Tier {
            name,
            ok,
            took,
            note: String::new(),
        });
        Ok(())
    };
    let locked: Vec<String> = ctx.locked_flag().into_iter().map(String::from).collect();
    let strings = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // Tests first: they are what a red CI most often needs to show.
    let mut args = if env.nextest {
        strings(&["nextest", "run", "--workspace", "--no-fail-fast"])
    } else {
        strings(&["test", "--workspace", "--no-fail-fast"])
    };
    args.extend(locked.iter().cloned());
    if !opts.test_args.is_empty() {
        if !env.nextest {
            args.push("--".into());
        }
        args.extend(opts.test_args.iter().cloned());
    }
    tier("tests", args)?;
    // A filtered run is a developer focusing on some tests: the other tiers are skipped.
    if opts.test_args.is_empty() {
        if env.nextest {
            // nextest does not run doc tests.
            let mut args = strings(&["test", "--workspace", "--doc", "--no-fail-fast"]);
            args.extend(locked.iter().cloned());
            tier("doctests", args)?;
        }
        // `-l` lists the files to format instead of printing every diff.
        tier("fmt", strings(&["fmt", "--all", "--check", "--", "-l"]))?;
        let mut args = strings(&["clippy", "--workspace", "--all-targets"]);
        args.extend(locked.iter().cloned());
        args.extend(strings(&["--", "-D", "warnings"]));
        tier("clippy", args)?;
        // The host build compiles only the frontend's portable half; lint the browser half too.
        let mut args = strings(&[
            "clippy",
            "--package",
            "frontend",
            "--target",
            tools::WASM_TARGET,
        ]);
        args.extend(locked.iter().cloned());
        args.extend(strings(&["--", "-D", "warnings"]));
        tier("clippy-wasm", args)?;
    }
    summary(&tiers)
}

fn summary(tiers: &[Tier]) -> Result<()> {
    eprintln!();
    for t in tiers {
        let status = if t.ok { "PASS" } else { "FAIL" };
        let note = if t.note.is_empty() {
            String::new()
        } else {
            format!("  {}", t.note)
        };
        eprintln!(
            "xtask: {status} {:<12} {:>8}{note}",
            t.name,
            fmt_duration(t.took)
        );
    }
    let failed: Vec<_> = tiers.iter().filter(|t| !t.ok).map(|t| t.name).collect();
    if failed.is_empty() {
        eprintln!("xtask: all tiers passed");
        Ok(())
    } else {
        bail!("failed tiers: {}", failed.join(", "))
    }
}

/// What setup hands to the test tiers.
#[derive(Debug)]
struct TestEnv {
    path_dirs: Vec<PathBuf>,
    venv: PathBuf,
    sam_venv: PathBuf,
    dist: PathBuf,
    chromium: PathBuf,
    chromedriver: PathBuf,
    cyrus: PathBuf,
    courier: PathBuf,
    authority: PathBuf,
    nextest: bool,
    note: String,
}

fn setup(ctx: &Ctx, opts: &Options) -> Result<TestEnv> {
    if ctx.ci {
        check_lockfile(ctx)?;
    }
    let venv = ctx.venv();
    let sam_venv = ctx.sam_venv();
    let mut path_dirs = Vec::new();
    // Cyrus, Courier and the OAuth authority's packages: (cyrus, courier, authority).
    let mut servers = None;
    let note = if opts.quick {
        step("--quick: skipping apt, venv, tool installs and the frontend build");
        // Still put the cached frontend tools on PATH for wasm-bindgen-test-runner.
        let tools_dir = ctx.tools();
        if let Ok(entries) = std::fs::read_dir(&tools_dir) {
            for e in entries.flatten() {
                let bin = e.path().join("bin");
                if bin.is_dir() {
                    path_dirs.push(bin);
                }
            }
        }
        "quick".to_owned()
    } else {
        // The downloads (apt, PyPI, npm) wait on the network and the disk, compiling the
        // frontend tools waits on the CPU: the downloads run on a thread of their own while the
        // tools build here, so a cold setup costs about the longer of the two, not their sum.
        let (downloads, built) = std::thread::scope(|scope| {
            let downloads = scope.spawn(|| downloads_lane(ctx, &venv, &sam_venv));
            let built = frontend::build(ctx);
            let downloads = downloads
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the download lane panicked")));
            (downloads, built)
        });
        let built = built?;
        let (cyrus, courier, authority) = downloads?;
        servers = Some((cyrus, courier, authority));
        path_dirs.extend(built.tool_dirs);
        format!(
            "wasm-bindgen {}, wasm-opt {}",
            built.wasm_bindgen,
            if built.wasm_opt { "on" } else { "off" }
        )
    };
    let (nextest_dir, nextest) =
        proc::timed_step("build", "cargo-nextest", || tools::ensure_nextest(ctx))?;
    path_dirs.extend(nextest_dir);
    if !opts.quick {
        proc::print_step_times();
    }

    let dist = ctx.frontend().join("dist");
    if !dist.join("index.html").is_file() {
        if opts.quick {
            warn("frontend/dist is missing: browser tests will fail (run without --quick once)");
        } else {
            bail!("trunk finished but {} has no index.html", dist.display());
        }
    }
    let chromium = find_program(&["chromium", "chromium-browser"])?;
    let chromedriver = find_program(&["chromedriver"])?;
    let (cyrus, courier, authority) = match servers {
        Some(found) => found,
        None => {
            let (cyrus, courier) = crate::servers::ensure(ctx, false)?;
            (
                cyrus,
                courier,
                crate::servers::ensure_authority(ctx, false)?,
            )
        }
    };
    Ok(TestEnv {
        cyrus,
        courier,
        authority,
        path_dirs,
        venv,
        sam_venv,
        dist,
        chromium,
        chromedriver,
        nextest,
        note,
    })
}

/// What setup downloads and unpacks (no compiling): the Debian packages, Cyrus and Courier, the
/// OAuth authority's npm packages and the two venvs. Returns the Cyrus, Courier and authority
/// folders.
fn downloads_lane(ctx: &Ctx, venv: &Path, sam_venv: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let lane = |name, f: &dyn Fn() -> Result<()>| proc::timed_step("downloads", name, f);
    lane("apt packages", &ensure_apt_packages)?;
    let (cyrus, courier) = proc::timed_step("downloads", "cyrus, courier (unpack)", || {
        crate::servers::ensure(ctx, true)
    })?;
    let authority = proc::timed_step("downloads", "oidc-provider (npm ci)", || {
        crate::servers::ensure_authority(ctx, true)
    })?;
    lane("venv (moto, cfn-lint, checkov)", &|| {
        ensure_venv(venv, PY_PINS, "moto_server")
    })?;
    lane("venv (sam)", &|| ensure_venv(sam_venv, SAM_PINS, "sam"))?;
    Ok((cyrus, courier, authority))
}

/// Under CI every cargo command gets `--locked`; a stale Cargo.lock would fail each tier with the
/// same message, so it is reported once, up front.
fn check_lockfile(ctx: &Ctx) -> Result<()> {
    let mut cmd = ctx.cargo();
    cmd.args(["metadata", "--format-version", "1", "--locked"])
        .stdout(std::process::Stdio::null());
    if !proc::run_ok(&mut cmd)? {
        bail!(
            "Cargo.lock does not match the Cargo.toml files: run `cargo check --workspace` (or \
             `cargo update --workspace`) and commit Cargo.lock"
        );
    }
    step("Cargo.lock matches the manifests");
    Ok(())
}

fn find_program(names: &[&str]) -> Result<PathBuf> {
    names
        .iter()
        .find_map(|n| proc::which(n))
        .with_context(|| format!("{} not found on PATH", names.join(" / ")))
}

/// Installs the Debian packages that are not installed yet; `apt-get update` runs only then.
fn ensure_apt_packages() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|pkg| {
            proc::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
                .is_none_or(|s| s != "install ok installed")
        })
        .collect();
    if missing.is_empty() {
        step(format!("apt: {} installed", APT_PACKAGES.join(", ")));
        return Ok(());
    }
    step(format!("apt: installing {}", missing.join(", ")));
    // Root in CI containers; elsewhere sudo, which may ask for a password on a terminal.
    let is_root = proc::output(Command::new("id").arg("-u")).as_deref() == Some("0");
    let apt = |args: &[&str]| -> Command {
        let mut cmd = if is_root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        cmd
    };
    if !is_root && proc::which("sudo").is_none() {
        bail!(
            "apt packages {} are missing and neither root nor sudo is available",
            missing.join(", ")
        );
    }
    let (result, took) = timed(|| -> Result<()> {
        proc::run(&mut apt(&["update", "-qq"]))?;
        let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
        install.args(&missing);
        proc::run(&mut install)
    });
    result?;
    step(format!("apt: installed in {}", fmt_duration(took)));
    Ok(())
}

/// A venv under `~/.cache/mailferry` with the pinned PyPI packages and the program `marker` in
/// its `bin/`; reinstalled only when a pin differs from what is installed.
pub(crate) fn ensure_venv(venv: &Path, pins: &[(&str, &str, &str)], marker: &str) -> Result<()> {
    let python = venv.join("bin").join("python");
    let wanted: Vec<String> = pins.iter().map(|(d, _, v)| format!("{d}=={v}")).collect();
    if installed_pins(&python, pins).as_ref() == Some(&wanted)
        && venv.join("bin").join(marker).is_file()
    {
        step(format!("venv: {} installed", wanted.join(", ")));
        return Ok(());
    }
    if !python.is_file() {
        let system_python =
            proc::which("python3").context("python3 is needed to create the test venv")?;
        step(format!("venv: creating {}", venv.display()));
        proc::run(Command::new(system_python).args(["-m", "venv"]).arg(venv))?;
    }
    let reqs: Vec<String> = pins.iter().map(|(_, r, v)| format!("{r}=={v}")).collect();
    step(format!("venv: installing {} (~1 min)", reqs.join(" ")));
    let (result, took) = timed(|| {
        proc::run(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(&reqs),
        )
    });
    result?;
    match installed_pins(&python, pins) {
        Some(got) if got == wanted => {
            step(format!("venv: installed in {}", fmt_duration(took)));
            Ok(())
        }
        got => bail!(
            "venv {} has {got:?} after pip install, wanted {wanted:?}",
            venv.display()
        ),
    }
}

/// `["moto==5.2.5", …]` as installed in the venv, in `pins` order; `None` if Python fails.
fn installed_pins(python: &Path, pins: &[(&str, &str, &str)]) -> Option<Vec<String>> {
    if !python.is_file() {
        return None;
    }
    let names: Vec<&str> = pins.iter().map(|(d, _, _)| *d).collect();
    let script = "import sys, importlib.metadata as m\n\
                  for n in sys.argv[1:]:\n    \
                  try: print(n + '==' + m.version(n))\n    \
                  except m.PackageNotFoundError: print(n + '==missing')";
    let out = proc::output(Command::new(python).arg("-c").arg(script).args(&names))?;
    Some(out.lines().map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_xtask_flags_from_test_arguments() {
        let args: Vec<String> = ["--quick", "--", "imap", "--nocapture"]
            .map(String::from)
            .into();
        let opts = Options::parse(&args).unwrap();
        assert!(opts.quick);
        assert_eq!(opts.test_args, vec!["imap", "--nocapture"]);
        assert!(Options::parse(&["--fast".to_owned()]).is_err());
    }
}
