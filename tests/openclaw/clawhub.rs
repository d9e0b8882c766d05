//! `clawhub skill publish --dry-run` accepts the skill folder, against a stub registry on
//! 127.0.0.1 (a dry run still asks the registry whether the slug exists; the stub says no).
//! A dry run needs no token: clawhub reads one if stored, and asks `whoami` only then.

use std::path::Path;
use std::time::Duration;

use crate::home::Home;
use crate::http::{Response, Server};
use crate::process;
use crate::tools::Tools;

#[test]
fn clawhub_would_publish_the_skill_folder() {
    let Some(tools) = Tools::find("the ClawHub publish test") else {
        return;
    };
    // clawhub treats exactly "Skill not found" (or a bare 404) as "not published yet".
    let registry = Server::start(|_| Response::text(404, "Skill not found"));
    let home = Home::new(&tools);
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("skill");
    let version = env!("CARGO_PKG_VERSION");
    let out = process::run(
        home.command("clawhub")
            .args(["skill", "publish"])
            .arg(&folder)
            .args(["--slug", "agent-step-sequencer", "--version", version])
            .args(["--dry-run", "--json", "--registry", &registry.url()]),
        Duration::from_secs(60),
    )
    .ok();
    let result = out.json();
    assert_eq!(result["status"], "would-publish", "{}", out.describe());
    assert_eq!(result["slug"], "agent-step-sequencer", "{}", out.describe());
    assert_eq!(result["version"], version, "{}", out.describe());
    assert_eq!(result["fileCount"], files_in(&folder), "{}", out.describe());
    let requests = registry.requests();
    assert!(
        requests.iter().all(|r| r.method == "GET")
            && requests.iter().any(|r| r
                .path
                .starts_with("/api/v1/resolve?slug=agent-step-sequencer")),
        "a dry run asks for the slug and uploads nothing: {requests:#?}"
    );
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("skill folder")
        .map(|entry| entry.expect("skill folder entry").path())
        .map(|path| if path.is_dir() { files_in(&path) } else { 1 })
        .sum()
}
