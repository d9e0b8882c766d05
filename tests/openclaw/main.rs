//! End-to-end tests against the real OpenClaw CLI from npm (the versions
//! `tests/openclaw/install.sh` pins), with only loopback traffic: a fake OpenAI-compatible model,
//! a stub ClawHub registry and a webhook receiver, all on 127.0.0.1 in this process.
//!
//! Run alone with `cargo test --locked --test openclaw`; `.ci/run` installs the tools first.
//! Without them every test here passes with a "skipped: ..." line on stderr.

mod clawhub;
mod docs;
mod exec_marker;
mod fake_model;
mod gateway;
mod gateway_e2e;
mod home;
mod http;
mod process;
mod skill_folder;
mod tools;
