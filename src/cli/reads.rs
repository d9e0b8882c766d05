//! What the decision core may read (`core::decide::Io`), from the sidecar and the workspace:
//! a DONE step's result, and a file a `forEach` names. Both bounded, both never through a
//! link out of where they belong (see `store::results` and `exec::outputs`).

use std::io::Read;

use crate::core::decide::Io;
use crate::core::StepId;
use crate::exec::outputs;
use crate::store::results::{self, RESULT_MAX_BYTES};
use crate::store::Store;

/// Reads for the core on behalf of one store.
#[derive(Debug)]
pub struct Reads<'a> {
    pub store: &'a Store,
}

impl Io for Reads<'_> {
    fn result(&self, step: &StepId) -> Option<String> {
        let dir = self.store.results_if_any()?;
        results::result(&dir, step.as_str()).ok().flatten()
    }

    fn file(&self, path: &str) -> Result<String, String> {
        let store = self.store;
        let real = outputs::resolve(path, store.workspace(), &[store.path(), store.sidecar()])
            .map_err(|m| match m.why() {
                "" => "no such file".to_owned(),
                why => why.to_owned(),
            })?;
        let mut text = String::new();
        crate::store::read::open_regular(&real)
            .and_then(|f| f.take(RESULT_MAX_BYTES + 1).read_to_string(&mut text))
            .map_err(|e| e.to_string())?;
        if text.len() as u64 > RESULT_MAX_BYTES {
            return Err(format!("over {} MiB", RESULT_MAX_BYTES >> 20));
        }
        Ok(text)
    }
}
