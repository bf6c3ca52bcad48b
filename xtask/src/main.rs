//! `cargo xtask`: the commands a person (or CI) types to get mailferry running and tested.
//!
//! - `cargo xtask run [ARGS…]` installs whatever is missing (the wasm32 target, trunk, the
//!   wasm-bindgen-cli that matches Cargo.lock, wasm-opt), builds the frontend with trunk and starts
//!   `mailferry serve ARGS…` from the repository root.
//! - `cargo xtask test [--quick] [-- TEST-ARGS…]` is what CI runs: it installs the Debian packages,
//!   the Python venv (moto, cfn-lint, checkov) and the frontend toolchain, builds the frontend, then
//!   runs every test tier and prints one summary line per tier.
//! - `cargo xtask bench NAME` runs one benchmark (status, copy, interop, frontend).
//! - `cargo xtask fuzz [TARGET…]` fuzzes for a bounded time (see `fuzz.rs`); not part of `test`.
//! - `cargo xtask setup` and `cargo xtask frontend` run only the setup, or only the frontend build.
//!
//! Every tool lives under `~/.cache/mailferry/tools/<name>-<version>` and is installed only when the
//! version it reports differs from the pinned one, so a second run installs nothing. trunk is never
//! allowed to download anything itself (this machine kind has no GitHub access): it gets its tools on
//! `PATH` and runs `--offline`.
//!
//! This crate is a build helper: it must never depend on mailferry's own crates, so it still builds
//! when they do not.

mod bench;
mod ctx;
mod frontend;
mod fuzz;
mod proc;
mod servers;
mod test;
mod tools;

use anyhow::{Result, bail};
use ctx::Ctx;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  run [ARGS…]                 install what is missing, build the frontend, start `mailferry serve ARGS…`
  test [--quick] [-- ARGS…]   CI: install packages and tools, build the frontend, run all test tiers
                                --quick   skip installs and the frontend build (reuse what is there)
                                ARGS      passed to the test runner (a filter); other tiers are skipped
  bench NAME                  run one benchmark: status, copy, interop, frontend
  fuzz [TARGET…] [--secs N]   bounded fuzzing: imap, csv, tokens (proptest, N s each) and api
                                (schemathesis against a local server); figures in target/fuzz/
  setup                       only the installs and frontend build of `test` (prepare a machine)
  frontend                    only build the frontend (installing its tools if needed)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(err) = dispatch(&args) {
        eprintln!("xtask: error: {err:#}");
        std::process::exit(1);
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        bail!("no command given");
    };
    match command.as_str() {
        "run" => frontend::run(&Ctx::new()?, rest),
        "test" => test::test(&Ctx::new()?, &test::Options::parse(rest)?),
        "bench" => match rest {
            [name] => bench::bench(&Ctx::new()?, name),
            _ => bail!("usage: cargo xtask bench <{}>", bench::NAMES.join("|")),
        },
        "fuzz" => fuzz::fuzz(&Ctx::new()?, rest),
        "setup" => test::setup_only(&Ctx::new()?),
        "frontend" => frontend::build(&Ctx::new()?).map(|_| ()),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            print!("{USAGE}");
            bail!("unknown command `{other}`")
        }
    }
}
