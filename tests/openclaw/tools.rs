//! Where the OpenClaw tool chain is, and the PATH the test gives it. The tests never install
//! anything: without the tools they pass with a "skipped: ..." line on stderr, so
//! `cargo test --locked` stays green and offline on a machine without them.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The versions `tests/openclaw/install.sh` pins, and this test was written against.
pub const OPENCLAW_VERSION: &str = "2026.9.6";
pub const CLAWHUB_VERSION: &str = "0.23.3";

/// An npm prefix holding `bin/node`, `bin/openclaw` and `bin/clawhub`.
pub struct Tools {
    pub dir: PathBuf,
}

impl Tools {
    /// The tools from `SEQ_OPENCLAW_TOOLS`, else `<target dir>/openclaw-tools`; `None` (with
    /// the reason on stderr) when they are not installed. Installed but at other versions is a
    /// failure, not a skip: the test's expectations are those of the pinned versions.
    pub fn find(test: &str) -> Option<Self> {
        let dir = env::var_os("SEQ_OPENCLAW_TOOLS")
            .map_or_else(|| target_dir().join("openclaw-tools"), PathBuf::from);
        let missing: Vec<&str> = ["node", "openclaw", "clawhub"]
            .into_iter()
            .filter(|bin| !dir.join("bin").join(bin).exists())
            .collect();
        if !missing.is_empty() {
            skipped(&format!(
                "{test}: no {} in {} (install them with tests/openclaw/install.sh, or \
                 set SEQ_OPENCLAW_TOOLS to an npm prefix that has them)",
                missing.join(", "),
                dir.join("bin").display(),
            ));
            return None;
        }
        let tools = Self { dir };
        for (package, pinned) in [("openclaw", OPENCLAW_VERSION), ("clawhub", CLAWHUB_VERSION)] {
            let found = tools.version(package);
            assert_eq!(
                found.as_deref(),
                Some(pinned),
                "{} holds {package} {found:?}, but this test is written for {pinned}; run \
                 tests/openclaw/install.sh",
                tools.dir.display(),
            );
        }
        Some(tools)
    }

    /// A package's version from its installed package.json.
    fn version(&self, package: &str) -> Option<String> {
        let manifest = self
            .dir
            .join("lib/node_modules")
            .join(package)
            .join("package.json");
        let manifest: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(manifest).ok()?).ok()?;
        Some(manifest["version"].as_str()?.to_owned())
    }

    /// A file inside the installed openclaw package.
    pub fn openclaw_file(&self, relative: &str) -> PathBuf {
        self.dir.join("lib/node_modules/openclaw").join(relative)
    }

    /// The PATH everything runs with: the tools (their Node first), this build's binaries, and
    /// the system's basics; nothing else from the developer's PATH.
    pub fn path(&self) -> OsString {
        env::join_paths([
            self.dir.join("bin"),
            binaries_dir().to_path_buf(),
            PathBuf::from("/usr/bin"),
            PathBuf::from("/bin"),
        ])
        .expect("PATH")
    }
}

/// The folder holding the `seq-check`, `seq-runner` and `seqctl` this test was built with.
pub fn binaries_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_seq-check"))
        .parent()
        .expect("binaries folder")
}

/// Cargo's target dir (`CARGO_TARGET_DIR` or `target`): the binaries are in its `debug/`.
fn target_dir() -> PathBuf {
    binaries_dir().parent().expect("target dir").to_path_buf()
}

/// Says on stderr that a test is skipped, and why. Written to the stream itself, not through
/// `eprintln!`, which the test harness captures (and shows only for failing tests).
pub fn skipped(why: &str) {
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}
