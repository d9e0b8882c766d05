//! The skill folder passes OpenClaw's own validator (`quick_validate.py` from the npm package's
//! skill-creator), both as it stands in the repository and as `seqctl install-skill` writes it.

use std::path::Path;
use std::time::Duration;

use crate::home::Home;
use crate::process;
use crate::tools::{skipped, Tools};

#[test]
fn the_skill_folder_passes_openclaws_own_validator() {
    let Some(tools) = Tools::find("the skill validator test") else {
        return;
    };
    if !["/usr/bin/python3", "/bin/python3"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        skipped("the skill validator test: no python3 in /usr/bin or /bin");
        return;
    }
    let validator = tools.openclaw_file("skills/skill-creator/scripts/quick_validate.py");
    let home = Home::new(&tools);
    let installed = home.path().join("agent-step-sequencer");
    process::run(
        home.command("seqctl").arg("install-skill").arg(&installed),
        Duration::from_secs(30),
    )
    .ok();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("skill");
    for folder in [repo, installed] {
        let out = process::run(
            home.command("python3").arg(&validator).arg(&folder),
            Duration::from_secs(30),
        );
        assert!(
            out.status.success() && out.stdout.contains("Skill is valid"),
            "OpenClaw's validator rejects {}:\n{}",
            folder.display(),
            out.describe()
        );
    }
}
