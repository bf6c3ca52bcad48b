//! `cargo xtask bench NAME`. Each benchmark is one match arm and writes its figures as JSON to
//! `target/bench/NAME.json` under the repository root, so results can be compared across commits.

use crate::ctx::Ctx;
use crate::frontend;
use crate::proc::step;
use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Every benchmark name, for usage messages.
pub const NAMES: &[&str] = &["status", "copy", "interop", "frontend", "scale"];

pub fn bench(ctx: &Ctx, name: &str) -> Result<()> {
    let report = match name {
        "frontend" => frontend_size(ctx)?,
        "status" => package_bench(ctx, "integration-tests", "bench_status")?,
        "copy" => package_bench(ctx, "integration-tests", "bench_copy")?,
        "interop" => package_bench(ctx, "integration-tests", "bench_interop")?,
        // The 100,000-mailbox simulation (functions/scale-sim): no server, about a minute.
        "scale" => package_bench(ctx, "scale-sim", "bench_scale")?,
        other => bail!("unknown bench `{other}`; known: {}", NAMES.join(", ")),
    };
    let path = write_report(ctx, name, &report)?;
    step(format!("wrote {}", path.display()));
    Ok(())
}

/// Builds the release binaries of `package` and runs one benchmark binary of it; it prints its
/// figures and writes its own JSON to `BENCH_OUT`, which is returned here.
fn package_bench(ctx: &Ctx, package: &str, bin: &str) -> Result<serde_json::Value> {
    crate::proc::run(
        ctx.cargo()
            .args(["build", "--release", "-p", package, "--bins"]),
    )?;
    let out = ctx
        .root
        .join("target")
        .join("bench")
        .join(format!("{bin}.raw.json"));
    std::fs::create_dir_all(out.parent().context("bench folder")?)?;
    let exe = ctx.target_dir.join("release").join(bin);
    crate::proc::run(
        std::process::Command::new(&exe)
            .current_dir(&ctx.root)
            .env("BENCH_OUT", &out),
    )?;
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out)?)?;
    std::fs::remove_file(&out)?;
    Ok(report)
}

/// Size of the release frontend as a browser downloads it: raw and gzip-compressed (level 9, what
/// a static host or CDN pre-compresses with).
fn frontend_size(ctx: &Ctx) -> Result<serde_json::Value> {
    let built = frontend::build(ctx)?;
    let wasm = frontend::find_wasm(&built.dist)?;
    // The wasm-bindgen glue is named like the wasm (`x.js` for `x_bg.wasm`); trunk also
    // writes a small `start-*.js` loader beside it.
    let stem = wasm
        .file_stem()
        .and_then(|s| s.to_str())
        .context("wasm file name")?
        .trim_end_matches("_bg");
    let js = wasm.with_file_name(format!("{stem}.js"));
    let css = frontend::find_with_ext(&built.dist, "css")?;
    let (wasm_raw, wasm_gz) = sizes(&wasm)?;
    let (js_raw, js_gz) = sizes(&js)?;
    let (css_raw, css_gz) = sizes(&css)?;
    step(format!(
        "frontend .wasm: {wasm_raw} bytes raw, {wasm_gz} bytes gzip ({} / {} KiB)",
        wasm_raw / 1024,
        wasm_gz / 1024
    ));
    step(format!(
        "frontend .js:   {js_raw} bytes raw, {js_gz} bytes gzip"
    ));
    step(format!(
        "frontend .css:  {css_raw} bytes raw, {css_gz} bytes gzip"
    ));
    Ok(serde_json::json!({
        "bench": "frontend",
        "wasm_bindgen": built.wasm_bindgen,
        "wasm_opt": if built.wasm_opt { "z" } else { "0" },
        "wasm_file": file_name(&wasm),
        "wasm_bytes": wasm_raw,
        "wasm_gzip_bytes": wasm_gz,
        "js_bytes": js_raw,
        "js_gzip_bytes": js_gz,
        "css_bytes": css_raw,
        "css_gzip_bytes": css_gz,
        "measured_at_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
    }))
}

fn sizes(path: &Path) -> Result<(u64, u64)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok((bytes.len() as u64, gzip_len(&bytes)?))
}

fn gzip_len(bytes: &[u8]) -> Result<u64> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?.len() as u64)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn write_report(ctx: &Ctx, name: &str, report: &serde_json::Value) -> Result<PathBuf> {
    let dir = ctx.root.join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(report)? + "\n")?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_shrinks_repetitive_input() {
        let input = vec![b'a'; 10_000];
        let len = gzip_len(&input).unwrap();
        assert!(len > 0 && len < 200, "{len}");
    }
}
