//! Text from agents made safe for where it goes. An agent's output is recorded (its tail, its
//! error) and comes back in the next prompt, on a terminal and in a chat: a NUL cannot be part
//! of a program argument (the next try would fail to start), and control or bidirectional
//! characters on a terminal can rewrite what a person sees (`\r\x1b[K` erases the real error).
//! JSON carries text as it is; these are for the other two.

use std::borrow::Cow;

/// Characters that reorder text on a screen (Unicode's bidirectional controls).
#[must_use]
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The text without NULs (each becomes U+FFFD), for what may end up in a program argument.
#[must_use]
pub fn without_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The text for one line of a terminal: control and bidirectional characters shown escaped
/// (`\u{1b}`, `\r`, `\n`), everything else as it is.
#[must_use]
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A count with its noun in the right number: `1 step`, `3 steps`, `1 try`, `2 tries`.
#[must_use]
pub fn count(n: impl TryInto<u64>, one: &str, many: &str) -> String {
    let n = n.try_into().unwrap_or(u64::MAX);
    format!("{n} {}", if n == 1 { one } else { many })
}

/// [`count`] for nouns that take an `s`.
#[must_use]
pub fn counted(n: impl TryInto<u64>, noun: &str) -> String {
    count(n, noun, &format!("{noun}s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nuls_go_and_controls_show() {
        assert_eq!(without_nul("a\0b"), "a\u{FFFD}b");
        assert_eq!(without_nul("plain"), "plain");
        assert_eq!(printable("ok\r\x1b[Kfake\n"), "ok\\r\\u{1b}[Kfake\\n");
        assert_eq!(printable("a\u{202E}b"), "a\\u{202e}b");
        assert_eq!(printable("héllo, wörld"), "héllo, wörld");
    }

    #[test]
    fn counts_take_the_right_number() {
        assert_eq!(counted(1u32, "step"), "1 step");
        assert_eq!(counted(0u32, "step"), "0 steps");
        assert_eq!(count(1u32, "try", "tries"), "1 try");
        assert_eq!(count(2u32, "try", "tries"), "2 tries");
    }
}
