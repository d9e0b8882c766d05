//! A throw-away HOME for OpenClaw (`$HOME/.openclaw/openclaw.json`, its state, its logs) and
//! the commands a test runs in it: with a clean environment (nothing of the developer's own
//! OpenClaw, PATH or config leaks in), a deadline, and the marker that lets `Drop` stop every
//! process the test left behind.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::fake_model::{FakeModel, MODEL};
use crate::process::{self, Finished, MARKER};
use crate::tools::Tools;

/// Keeps every Node process on 127.0.0.1 (see the file).
const LOOPBACK_ONLY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/openclaw/loopback-only.cjs"
);

/// How long one CLI call may take (a Node start, a config read, a gateway round trip: 1-5 s).
pub const CLI_LIMIT: Duration = Duration::from_secs(90);

pub struct Home {
    dir: tempfile::TempDir,
    path: std::ffi::OsString,
    marker: String,
}

impl Home {
    pub fn new(tools: &Tools) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let dir = tempfile::Builder::new()
            .prefix("seq-openclaw-")
            .tempdir()
            .expect("temp HOME");
        fs::create_dir_all(dir.path().join("tmp")).expect("TMPDIR");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let marker = format!(
            "{}-{}-{nanos}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        let home = Self {
            dir,
            path: tools.path(),
            marker,
        };
        // Without a config OpenClaw logs to /tmp/openclaw/, outside the test's HOME.
        home.write_json_config(&json!({"logging": {"file": home.log_file()}}));
        home
    }

    /// The HOME folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// OpenClaw's default agent workspace, `~/.openclaw/workspace`.
    pub fn workspace(&self) -> PathBuf {
        self.path().join(".openclaw/workspace")
    }

    /// The name lookups beyond localhost that Node processes tried (and were refused).
    pub fn network_log(&self) -> PathBuf {
        self.path().join("network.log")
    }

    /// Where the config sends OpenClaw's own log (instead of `/tmp/openclaw/`).
    pub fn log_file(&self) -> PathBuf {
        self.path().join("openclaw.log")
    }

    /// `program` with this HOME's environment and nothing else.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .current_dir(self.path())
            .env("HOME", self.path())
            .env("PATH", &self.path)
            .env("TMPDIR", self.path().join("tmp"))
            .env("LANG", "C.UTF-8")
            .env("TERM", "dumb")
            .env("NO_COLOR", "1")
            .env("OPENCLAW_NO_AUTO_UPDATE", "1")
            .env("NODE_OPTIONS", format!("--require \"{LOOPBACK_ONLY}\""))
            .env("SEQ_E2E_NETWORK_LOG", self.network_log())
            .env(MARKER, &self.marker);
        if let Some(user) = std::env::var_os("USER") {
            cmd.env("USER", user);
        }
        cmd
    }

    /// Runs `openclaw args...`.
    pub fn openclaw(&self, args: &[&str]) -> Finished {
        process::run(self.command("openclaw").args(args), CLI_LIMIT)
    }

    /// Runs `openclaw args...` and returns its JSON output; panics unless it exits 0.
    pub fn openclaw_json(&self, args: &[&str]) -> Value {
        self.openclaw(args).ok().json()
    }

    /// Runs one line of the docs through `sh -c`, as a reader pasting it would.
    pub fn sh(&self, line: &str) -> Finished {
        process::run(self.command("/bin/sh").args(["-c", line]), CLI_LIMIT)
    }

    /// Writes `~/.openclaw/openclaw.json`: a local gateway on `port` with token auth, the fake
    /// model as the only model, and nothing that reaches beyond 127.0.0.1 (no update check, no
    /// remote model catalog; webhooks allowed to the loopback receiver only).
    pub fn write_config(&self, gateway_port: u16, model: &FakeModel) {
        let config = json!({
            "gateway": {
                "mode": "local", "port": gateway_port, "bind": "loopback",
                "auth": {"mode": "token", "token": "seq-e2e-token"},
            },
            "logging": {"file": self.log_file()},
            "update": {"checkOnStart": false},
            "agents": {"defaults": {
                "model": {"primary": format!("fake/{MODEL}")},
                // No chat channel is configured: deliver heartbeat results nowhere instead of
                // skipping the turn for want of an owner to tell.
                "heartbeat": {"target": "none"},
            }},
            "models": {
                "mode": "merge",
                "catalogRefresh": {"enabled": false},
                "providers": {"fake": {
                    "baseUrl": model.base_url(), "apiKey": "seq-e2e-key",
                    "api": "openai-completions",
                    "models": [{
                        "id": MODEL, "name": "Echo", "reasoning": false, "input": ["text"],
                        "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                        "contextWindow": 128_000, "maxTokens": 4096,
                    }],
                }},
            },
            "cron": {"webhookSsrfPolicy": {"allowedHostnames": ["127.0.0.1"]}},
        });
        self.write_json_config(&config);
    }

    fn write_json_config(&self, config: &Value) {
        let file = self.path().join(".openclaw/openclaw.json");
        fs::create_dir_all(file.parent().expect("config folder")).expect("config folder");
        fs::write(
            &file,
            serde_json::to_string_pretty(config).expect("config JSON"),
        )
        .expect("write config");
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        process::stop_marked(&self.marker);
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the gateway takes it moments later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
