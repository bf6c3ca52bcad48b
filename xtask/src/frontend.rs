//! Building the Yew frontend with trunk, and `cargo xtask run`.

use crate::ctx::Ctx;
use crate::proc::{self, fmt_duration, step, timed};
use crate::tools::{self, BINARYEN_VERSION};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a frontend build produced.
#[derive(Debug)]
pub struct Built {
    pub dist: PathBuf,
    pub wasm_bindgen: String,
    /// Whether wasm-opt ran (`data-wasm-opt="z"`) or was unavailable (`"0"`).
    pub wasm_opt: bool,
    /// PATH directories of the frontend tools (wasm-bindgen-test-runner lives in one of them).
    pub tool_dirs: Vec<PathBuf>,
}

/// `cargo xtask run`: tools, frontend, then `mailferry serve` in place of this process.
pub fn run(ctx: &Ctx, args: &[String]) -> Result<()> {
    // `cargo xtask run -- --data-dir x` and `cargo xtask run --data-dir x` mean the same.
    let args = match args.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => args,
    };
    let built = build(ctx)?;
    step(format!(
        "starting `mailferry serve {}` (frontend: {})",
        args.join(" "),
        built.dist.display()
    ));
    let mut cmd = ctx.cargo();
    cmd.args(["run", "--release", "--package", "mailferry"]);
    cmd.args(ctx.locked_flag());
    cmd.args(["--", "serve"]).args(args);
    // The server's defaults (./mailferry-data, frontend/dist) are relative to the repository root,
    // which `ctx.cargo()` already uses as the working directory. The frontend directory is also
    // given absolutely through the server's env fallback; a `--frontend` argument still wins.
    cmd.env("MAILFERRY_FRONTEND_DIR", &built.dist);
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(err).context("could not start cargo run -p mailferry")
}

/// Installs the frontend tools if needed, checks the wasm-bindgen pins agree, and runs
/// `trunk build --release --offline` in `frontend/`.
pub fn build(ctx: &Ctx) -> Result<Built> {
    let frontend = ctx.frontend();
    let wasm_bindgen = check_pins(ctx)?;

    let lane = "build";
    proc::timed_step(lane, "wasm32 target", || tools::ensure_wasm_target(ctx))?;
    let opt_dir = proc::timed_step(lane, "wasm-opt (npm)", || tools::ensure_wasm_opt(ctx))?;
    let trunk_dir = proc::timed_step(lane, "trunk", || tools::ensure_trunk(ctx))?;
    let bindgen_dir = proc::timed_step(lane, "wasm-bindgen-cli", || {
        tools::ensure_wasm_bindgen(ctx, &wasm_bindgen)
    })?;
    let wasm_opt = opt_dir.is_some();
    let tool_dirs: Vec<PathBuf> = [Some(trunk_dir.clone()), Some(bindgen_dir), opt_dir]
        .into_iter()
        .flatten()
        .collect();

    // Without wasm-opt, build from a copy of index.html that turns it off; trunk would otherwise
    // try to download wasm-opt, which cannot work offline.
    let noopt = frontend.join(".index.no-wasm-opt.html");
    let mut cmd = Command::new(trunk_dir.join("trunk"));
    cmd.current_dir(&frontend)
        .env("PATH", proc::path_with(&tool_dirs)?)
        .env("TRUNK_SKIP_VERSION_CHECK", "true")
        .env("CARGO_TARGET_DIR", &ctx.target_dir)
        .arg("build");
    // The target comes first: trunk's boolean flags take an optional value and would swallow it.
    if !wasm_opt {
        let html = std::fs::read_to_string(frontend.join("index.html"))?;
        std::fs::write(
            &noopt,
            html.replace(r#"data-wasm-opt="z""#, r#"data-wasm-opt="0""#),
        )?;
        cmd.arg(&noopt).args(["--html-output", "index.html"]);
    }
    cmd.args(["--release", "--offline"]);
    if ctx.ci {
        cmd.arg("--locked");
    }
    step(format!(
        "building the frontend (trunk, release, wasm-bindgen {wasm_bindgen})"
    ));
    let (result, took) = proc::timed_step(lane, "frontend (trunk build)", || {
        timed(|| proc::run(&mut cmd))
    });
    if !wasm_opt {
        let _ = std::fs::remove_file(&noopt);
    }
    result?;
    let dist = frontend.join("dist");
    externalise_start_script(&dist)?;
    let wasm = find_wasm(&dist)?;
    let size = std::fs::metadata(&wasm)?.len();
    step(format!(
        "frontend built in {}: {} ({} KiB)",
        fmt_duration(took),
        wasm.file_name().unwrap_or_default().to_string_lossy(),
        size / 1024
    ));
    Ok(Built {
        dist,
        wasm_bindgen,
        wasm_opt,
        tool_dirs,
    })
}

/// Moves trunk's inline start-up `<script type="module">` out of index.html into
/// `start-<content hash>.js`, so every Content-Security-Policy of the console (the local
/// server's and CloudFront's response-headers policy in the SAM template, fixed at deploy time)
/// can be `script-src 'self' 'wasm-unsafe-eval'` with no per-build hash and no inline script.
pub fn externalise_start_script(dist: &Path) -> Result<()> {
    let index = dist.join("index.html");
    let html =
        std::fs::read_to_string(&index).with_context(|| format!("reading {}", index.display()))?;
    if let Some((html, name, script)) = split_start_script(&html) {
        std::fs::write(dist.join(&name), script)?;
        std::fs::write(&index, html)?;
    }
    Ok(())
}

/// index.html without its inline module script, the script's file name and its body; `None`
/// when there is no inline script (already moved).
fn split_start_script(html: &str) -> Option<(String, String, String)> {
    use sha2::{Digest, Sha256};
    const OPEN: &str = "<script type=\"module\">";
    let start = html.find(OPEN)?;
    let body_start = start + OPEN.len();
    let body_len = html[body_start..].find("</script>")?;
    let script = &html[body_start..body_start + body_len];
    let digest = Sha256::digest(script.as_bytes());
    let name = format!(
        "start-{}.js",
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let tag = format!("<script type=\"module\" src=\"/{name}\"></script>");
    let rest = &html[body_start + body_len + "</script>".len()..];
    Some((
        format!("{}{tag}{rest}", &html[..start]),
        name,
        script.to_owned(),
    ))
}

/// The wasm-bindgen version trunk must run: the one in Cargo.lock, which frontend/Trunk.toml must
/// pin too (trunk would otherwise look for, and try to download, a different one).
fn check_pins(ctx: &Ctx) -> Result<String> {
    let lock =
        std::fs::read_to_string(ctx.root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let locked = tools::locked_versions(&lock, "wasm-bindgen");
    let version = match locked.as_slice() {
        [one] => one.clone(),
        [] => bail!("Cargo.lock has no wasm-bindgen; is `frontend` a workspace member?"),
        many => bail!("Cargo.lock has several wasm-bindgen versions {many:?}; unify them to one"),
    };
    let trunk_toml_path = ctx.frontend().join("Trunk.toml");
    let trunk_toml =
        std::fs::read_to_string(&trunk_toml_path).context("reading frontend/Trunk.toml")?;
    let pinned = toml_string(&trunk_toml, "tools", "wasm_bindgen");
    if pinned.as_deref() != Some(version.as_str()) {
        bail!(
            "frontend/Trunk.toml pins [tools] wasm_bindgen = {pinned:?} but Cargo.lock has wasm-bindgen \
             {version}: set wasm_bindgen = \"{version}\" in {}",
            trunk_toml_path.display()
        );
    }
    let opt = toml_string(&trunk_toml, "tools", "wasm_opt");
    let want_opt = format!("version_{BINARYEN_VERSION}");
    if opt.as_deref() != Some(want_opt.as_str()) {
        bail!("frontend/Trunk.toml pins [tools] wasm_opt = {opt:?}; xtask installs {want_opt}");
    }
    Ok(version)
}

/// The release .wasm trunk wrote into `dist` (its name carries a content hash).
pub fn find_wasm(dist: &Path) -> Result<PathBuf> {
    find_with_ext(dist, "wasm")
}

pub fn find_with_ext(dist: &Path, ext: &str) -> Result<PathBuf> {
    let mut found = std::fs::read_dir(dist)
        .with_context(|| format!("reading {}", dist.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect::<Vec<_>>();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("no .{ext} file in {}", dist.display()),
        _ => bail!("several .{ext} files in {}: {found:?}", dist.display()),
    }
}

/// A `key = "value"` string inside `[section]` of a small TOML file. Trunk.toml is ours and flat, so
/// this is enough and keeps a TOML parser out of xtask.
fn toml_string(text: &str, section: &str, key: &str) -> Option<String> {
    let header = format!("[{section}]");
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == header;
            continue;
        }
        if !in_section {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() == key {
            let v = v.split('#').next().unwrap_or_default().trim();
            return Some(v.trim_matches('"').to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_script_moves_to_a_content_addressed_file() {
        let html = "<head>\n<script type=\"module\">\nimport init from '/f-1.js';\nawait init();\n</script>\n<link rel=\"stylesheet\" href=\"/s.css\"/></head>";
        let (out, name, script) = split_start_script(html).expect("an inline script");
        assert_eq!(script, "\nimport init from '/f-1.js';\nawait init();\n");
        assert!(
            name.starts_with("start-") && name.ends_with(".js") && name.len() == 25,
            "{name}"
        );
        assert_eq!(
            out,
            format!(
                "<head>\n<script type=\"module\" src=\"/{name}\"></script>\n<link rel=\"stylesheet\" href=\"/s.css\"/></head>"
            )
        );
        assert!(split_start_script(&out).is_none(), "nothing inline is left");
        let (_, other, _) = split_start_script(&html.replace("f-1", "f-2")).unwrap();
        assert_ne!(name, other, "another build, another name");
    }

    #[test]
    fn toml_string_reads_only_the_named_section() {
        let text = "[build]\nwasm_bindgen = \"wrong\"\n\n[tools]\n# pinned\nwasm_bindgen = \"0.2.130\" # Cargo.lock\nwasm_opt = \"version_132\"\n";
        assert_eq!(
            toml_string(text, "tools", "wasm_bindgen").as_deref(),
            Some("0.2.130")
        );
        assert_eq!(
            toml_string(text, "tools", "wasm_opt").as_deref(),
            Some("version_132")
        );
        assert_eq!(toml_string(text, "tools", "sass"), None);
        assert_eq!(
            toml_string(text, "build", "wasm_bindgen").as_deref(),
            Some("wrong")
        );
    }

    #[test]
    fn the_committed_trunk_toml_matches_the_committed_lockfile() {
        // Arrange
        let ctx = Ctx::new().unwrap();
        // Act
        let version = check_pins(&ctx);
        // Assert
        assert!(version.is_ok(), "{version:?}");
    }
}
