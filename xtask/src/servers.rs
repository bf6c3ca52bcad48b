//! Cyrus IMAP and Courier IMAP for the interop tests, from Debian's packages without installing
//! them: `dovecot-imapd`, `cyrus-imapd` and `courier-imap` each declare `Conflicts: imap-server`,
//! so installing either would remove Dovecot. Their libraries are installed with apt (see
//! `test::APT_PACKAGES`); the servers are downloaded and unpacked into the tools cache once, and
//! the tests run them from there (`tests/testbed/SERVERS.md`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::ctx::Ctx;
use crate::proc::{self, fmt_duration, step, timed};

/// One unpacked server: its folder in the tools cache, the packages in it, and a file that
/// proves the unpacking finished.
struct Unpacked {
    dir: &'static str,
    packages: &'static [&'static str],
    witness: &'static str,
}

const CYRUS: Unpacked = Unpacked {
    dir: "cyrus",
    packages: &["cyrus-imapd", "cyrus-common"],
    witness: "usr/lib/cyrus/bin/imapd",
};

const COURIER: Unpacked = Unpacked {
    dir: "courier",
    packages: &[
        "courier-imap",
        "courier-base",
        "courier-authlib",
        "courier-authdaemon",
        "courier-authlib-userdb",
        "libcourier-unicode4",
    ],
    witness: "usr/bin/imapd",
};

/// The unpacked Cyrus and Courier folders; with `install`, downloads and unpacks what is
/// missing (about 9 MB, a few seconds).
pub fn ensure(ctx: &Ctx, install: bool) -> Result<(PathBuf, PathBuf)> {
    let mut roots = Vec::new();
    for server in [CYRUS, COURIER] {
        let root = ctx.tools().join(server.dir);
        if install && !root.join(server.witness).is_file() {
            let (result, took) = timed(|| unpack(&server, &root));
            result.with_context(|| format!("unpacking {}", server.packages.join(", ")))?;
            step(format!(
                "{}: unpacked in {}",
                server.dir,
                fmt_duration(took)
            ));
        }
        roots.push(root);
    }
    Ok((roots[0].clone(), roots[1].clone()))
}

fn unpack(server: &Unpacked, root: &Path) -> Result<()> {
    let downloads = tempfile::tempdir()?;
    let download = || {
        let mut command = Command::new("apt-get");
        command
            .current_dir(downloads.path())
            .arg("download")
            .args(server.packages);
        proc::run_ok(&mut command)
    };
    // Stale package lists (apt-get update only runs when a package is missing) name versions
    // the mirror no longer has: refresh them once.
    if !download()? {
        proc::run(Command::new("apt-get").args(["update", "-qq"]))?;
        if !download()? {
            bail!("apt-get download {} failed", server.packages.join(" "));
        }
    }
    let partial = root.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial)?;
    for entry in std::fs::read_dir(downloads.path())? {
        let deb = entry?.path();
        if deb.extension().is_some_and(|e| e == "deb") {
            proc::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&partial))?;
        }
    }
    let _ = std::fs::remove_dir_all(root);
    std::fs::rename(&partial, root)?;
    if !root.join(server.witness).is_file() {
        bail!("{} has no {}", root.display(), server.witness);
    }
    Ok(())
}

/// The npm packages of the local OAuth authority (`tests/testbed/oidc/package.json`, pinned
/// there): oidc-provider and jose. The folder name carries the versions, so a new pin installs
/// anew.
const AUTHORITY_DIR: &str = "authority-oidc-provider-9.13.3-jose-6.2.19";

/// The folder whose `node_modules` holds the authority's packages; with `install`, runs
/// `npm ci` there (the versions of `tests/testbed/oidc/package-lock.json`) when they are
/// missing (about 40 small packages, a few seconds).
pub fn ensure_authority(ctx: &Ctx, install: bool) -> Result<PathBuf> {
    let root = ctx.tools().join(AUTHORITY_DIR);
    let witness = root.join("node_modules/oidc-provider/package.json");
    if install && !witness.is_file() {
        let npm = proc::which("npm").context("npm is not installed (the OAuth tests need it)")?;
        std::fs::create_dir_all(&root)?;
        // The lock file pins every transitive package: `npm ci` installs exactly those.
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(
                ctx.root.join("tests/testbed/oidc").join(file),
                root.join(file),
            )?;
        }
        let (ok, took) = timed(|| {
            proc::run_ok(Command::new(npm).current_dir(&root).args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ]))
        });
        if !ok? || !witness.is_file() {
            bail!(
                "npm ci of the OAuth authority's packages failed in {}",
                root.display()
            );
        }
        step(format!(
            "authority: npm packages installed in {}",
            fmt_duration(took)
        ));
    }
    Ok(root)
}
