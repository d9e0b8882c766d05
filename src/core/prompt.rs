//! The prompt of a step's next try.

use super::model::Step;

/// The instruction, or on a retry the Python version's troubleshoot prompt word for word, so
/// agents tuned to it keep working. A person's note (`seqctl retry --note`) follows it.
#[must_use]
pub fn prompt(step: &Step) -> String {
    let run = &step.run;
    let instruction = &step.spec.instruction;
    let mut prompt = match run.error() {
        Some(error) if run.tries() > 0 => format!(
            "Step {} failed (tries: {}). Previous run ended with: {error}. \
             Please troubleshoot and retry: {instruction}",
            step.id,
            run.tries()
        ),
        _ => instruction.clone(),
    };
    if let Some(note) = run.note().filter(|n| !n.trim().is_empty()) {
        prompt.push_str("\n\nNote from the person supervising this plan: ");
        prompt.push_str(note);
    }
    // The error is an agent's output: a NUL in it must not keep the next try from starting.
    crate::format::text::without_nul(&prompt).into_owned()
}
