//! The floor the benchmark measures a heartbeat against: one process start plus one durable
//! replace of a file that size (temp file, write, fsync, rename, fsync of the folder), with
//! nothing parsed, decided or serialised. Run as `durable_replace FILE`: it rewrites FILE with
//! its own bytes.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let target = std::env::args_os()
        .nth(1)
        .expect("usage: durable_replace FILE");
    let target = Path::new(&target);
    let bytes = fs::read(target)?;
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = dir.join(".durable_replace.tmp");
    let mut file = File::create(&temp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    fs::rename(&temp, target)?;
    File::open(dir)?.sync_all()
}
