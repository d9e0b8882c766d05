//! The syntax by which an instruction asks for an earlier step's result:
//! `{{steps.<id>.result}}`. Validation checks what each names; the prompt replaces each.

/// The references `{{steps.<id>.result}}` in an instruction: where each is, and the id.
#[must_use]
pub fn references(instruction: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    const OPEN: &str = "{{steps.";
    const CLOSE: &str = ".result}}";
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(start) = instruction[from..].find(OPEN).map(|i| from + i) {
        let id_at = start + OPEN.len();
        let Some(end) = instruction[id_at..].find(CLOSE).map(|i| id_at + i) else {
            break;
        };
        found.push((start..end + CLOSE.len(), &instruction[id_at..end]));
        from = end + CLOSE.len();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_in_order_and_an_unclosed_one_is_text() {
        assert_eq!(
            references("use {{steps.a.result}} and {{steps.b c.result}}, not {{steps.x"),
            [(4..22, "a"), (27..47, "b c")]
        );
        assert!(references("{{steps.result}} {{ steps.a.result }}").is_empty());
    }
}
