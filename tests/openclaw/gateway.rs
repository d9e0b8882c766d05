//! `openclaw gateway run` in the background for the length of a test: started in a process
//! group of its own, waited for until it logs `[gateway] ready`, and stopped when dropped, also
//! when the test panics.

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::home::Home;
use crate::process::{self, tail};

/// The gateway is ready in 10-20 s on a 2-core machine; allow for a slow one.
const START_LIMIT: Duration = Duration::from_secs(120);

pub struct Gateway {
    child: Child,
    output: PathBuf,
    pub started_in: Duration,
}

impl Gateway {
    pub fn start(home: &Home) -> Self {
        let output = home.path().join("gateway.out");
        let file = File::create(&output).expect("gateway output file");
        let start = Instant::now();
        let child = home
            .command("openclaw")
            .args(["gateway", "run"])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("gateway output file"))
            .stderr(file)
            .process_group(0)
            .spawn()
            .expect("start openclaw gateway run");
        let mut gateway = Self {
            child,
            output,
            started_in: Duration::ZERO,
        };
        let deadline = start + START_LIMIT;
        loop {
            if gateway
                .output()
                .lines()
                .any(|l| l.ends_with("[gateway] ready"))
            {
                break;
            }
            if let Some(status) = gateway.child.try_wait().expect("try_wait") {
                panic!(
                    "the gateway exited ({status}) before it was ready:\n{}",
                    gateway.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the gateway was not ready within {} s:\n{}",
                START_LIMIT.as_secs(),
                gateway.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        gateway.started_in = start.elapsed();
        gateway
    }

    /// What the gateway printed, with colour codes removed.
    pub fn output(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.output).unwrap_or_default())
    }

    pub fn log_tail(&self) -> String {
        tail(&self.output(), 8000)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // SIGTERM lets it close its databases; an idle gateway exits in a second or two. A busy
        // one would drain for minutes, so SIGKILL after a few seconds. What it started outside
        // its group is stopped by Home's drop.
        process::kill_group(&self.child, libc::SIGTERM);
        if process::wait_for(&mut self.child, Instant::now() + Duration::from_secs(5)).is_none() {
            process::kill_group(&self.child, libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// `text` without ANSI escape sequences (ESC [ ... letter).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
