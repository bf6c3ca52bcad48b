//! mailferry's integration tests: the real local server (`mailferry serve` as a library, on
//! port 0 with a temporary data folder) against real Dovecot servers started by each test.

mod aws_mode;
mod browser;
mod browser_sign_in;
mod cli;
mod copy;
mod crash;
mod cutover;
mod infra;
mod interop;
mod limits;
mod oauth;
mod preflight;
mod security;
mod selfservice;
mod sign_in;
mod unchanged;
