//! Faults the test suite injects on purpose, where no real fault can be made to order (a
//! folder's fsync failing after a rename). Only debug builds read `SEQ_TEST_FAULTS` (a comma-
//! separated list of fault names); release builds never do, and cannot be made to fail so.

/// Whether the test suite asked for fault `name`.
#[must_use]
pub fn injected(name: &str) -> bool {
    cfg!(debug_assertions)
        && std::env::var("SEQ_TEST_FAULTS").is_ok_and(|v| v.split(',').any(|f| f == name))
}

/// Whether the test suite asked for fault `name` at its `n`th occasion (`name:n`, e.g.
/// `save:2`: the second state save of the process fails).
#[must_use]
pub fn injected_at(name: &str, n: u32) -> bool {
    injected(&format!("{name}:{n}"))
}
