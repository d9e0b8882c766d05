//! placeholder until the policy branch lands
use std::path::PathBuf;
#[derive(Debug)]
pub struct Rejection {
    pub program: String,
    pub reason: String,
}
impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "`{}` {}", self.program, self.reason)
    }
}
pub fn judge(
    words: &[String],
    _resolve: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<(), Rejection> {
    if ["bash", "sh"].contains(&words[0].as_str()) {
        return Err(Rejection {
            program: words[0].clone(),
            reason: "is a shell".into(),
        });
    }
    Ok(())
}
