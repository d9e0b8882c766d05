//! The layers keep their promises: the decision core (and the format and report layers it
//! works with) touch no files, processes, environment, clock or libc; every change goes
//! through the core.

use std::fs;
use std::path::Path;

/// Words that mean I/O, a clock or the environment.
const IMPURE: &[&str] = &[
    "std::fs",
    "std::process",
    "std::env",
    "std::net",
    "std::thread",
    "std::io",
    "SystemTime::now",
    "Utc::now",
    "Local::now",
    "Instant::now",
    "libc::",
    "Command::new",
    "File::",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_core_format_and_report_layers_are_pure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offences = Vec::new();
    for layer in ["core", "format", "report"] {
        let mut files = Vec::new();
        rust_files(&root.join(layer), &mut files);
        assert!(!files.is_empty(), "src/{layer} has no files");
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            // Unit tests may use temp files; the code they test may not.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for word in IMPURE {
                    if line.contains(word) {
                        offences.push(format!("{}:{}: {word}: {line}", file.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "impure code in a pure layer:\n{}",
        offences.join("\n")
    );
}
