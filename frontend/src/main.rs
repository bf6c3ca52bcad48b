//! mailferry's browser frontend: the admin console (sign-in, projects) and the end user's
//! credential page (`/migrate/{token}`). It is a Yew app that trunk builds for wasm32 and the
//! `mailferry` binary (or S3 + CloudFront) serves; every request and response body is a type from
//! the `contract` crate, never a copy of one.
//!
//! The crate is split so that the workspace's host `cargo test` stays cheap: `api` (error mapping),
//! `format` and `state` (the page reducers) are plain Rust and unit-tested on the host, while `app`,
//! `pages` and `components` (Yew, web-sys) compile for wasm32 only. It must never import server
//! crates (`domain`, `web`, tokio, SQLite, AWS).

// On the host only the portable half is compiled, and only its tests use it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod api;
mod chart;
mod format;
mod signin;
mod state;
mod validate;

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod components;
#[cfg(target_arch = "wasm32")]
mod hooks;
#[cfg(target_arch = "wasm32")]
mod pages;

#[cfg(target_arch = "wasm32")]
fn main() {
    yew::Renderer::<app::App>::new().render();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the frontend runs in a browser: build it with `cargo xtask run` (trunk, wasm32)");
    std::process::exit(2);
}
