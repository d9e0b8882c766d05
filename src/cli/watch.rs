//! What a person at `seq-check --wait` sees of the tries while they run: a line on a
//! terminal's stderr that says which step runs and for how long (updated in place, about once a
//! second), and with `-v` the agents' own output as it comes, each line headed by its step.
//! Agent bytes reach the terminal made printable, a line at a time (control and bidirectional
//! characters escaped, as everywhere agent text is shown: see `format::text`). Tries may run
//! on several threads at once (`maxParallel`), so everything here is shared and locked.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::exec::pipes::Echo;
use crate::format::text::printable;
use crate::report::text::duration_ms;

/// A line longer than this is shown in pieces (an agent that never prints a newline).
const MAX_LINE: usize = 8 << 10;

/// Whether the progress line is on the terminal now (and must be cleared before other output).
static SHOWN: AtomicBool = AtomicBool::new(false);

/// Told the step, the attempt and the time so far, while a try runs.
pub type Tick = Arc<dyn Fn(&str, u32, Duration) + Send + Sync>;

/// The watcher of the tries: none for a detached runner, nobody sees it.
#[derive(Clone, Default)]
pub struct Watch {
    /// Called about once a second, at least, while a try runs.
    pub tick: Option<Tick>,
    /// The agents' output as it comes.
    pub echo: Option<Echo>,
}

impl Watch {
    /// For `seq-check --wait`: with `verbose`, the agents' output on stdout; otherwise, when
    /// stderr is a terminal, the progress line there.
    #[must_use]
    pub fn terminal(verbose: bool) -> Self {
        if verbose {
            return Self {
                tick: None,
                echo: Some(echo(|line| {
                    clear();
                    let mut out = std::io::stdout().lock();
                    drop(out.write_all(line.as_bytes()).and_then(|()| out.flush()));
                })),
            };
        }
        if !std::io::stderr().is_terminal() {
            return Self::default();
        }
        let last: Mutex<HashMap<String, u64>> = Mutex::default();
        let tick = move |step: &str, attempt: u32, ran: Duration| {
            let seconds = ran.as_secs();
            let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.insert(step.to_owned(), seconds) == Some(seconds) {
                return;
            }
            let text = format!(
                "\r\x1b[K  step {} try {attempt}: running for {}",
                printable(step),
                duration_ms(seconds * 1000)
            );
            SHOWN.store(true, Ordering::Relaxed);
            let mut err = std::io::stderr().lock();
            drop(err.write_all(text.as_bytes()).and_then(|()| err.flush()));
        };
        Self {
            tick: Some(Arc::new(tick)),
            echo: None,
        }
    }

    /// Tells the watcher how long the try has run.
    pub fn tick(&self, step: &str, attempt: u32, ran: Duration) {
        if let Some(tick) = &self.tick {
            tick(step, attempt, ran);
        }
    }
}

/// Clears the progress line, if one is shown, before something else is printed.
pub fn clear() {
    if SHOWN.swap(false, Ordering::Relaxed) {
        let mut err = std::io::stderr().lock();
        drop(err.write_all(b"\r\x1b[K").and_then(|()| err.flush()));
    }
}

/// An echo that hands `show` whole lines (each ending in a newline), headed by their step and
/// made printable; what is left of a line at the end of a try (an empty chunk) is shown too.
fn echo(show: impl Fn(&str) + Send + Sync + 'static) -> Echo {
    let pending: Mutex<HashMap<(String, usize), Vec<u8>>> = Mutex::default();
    Arc::new(move |step: &str, stream: usize, bytes: &[u8]| {
        let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
        let buf = pending.entry((step.to_owned(), stream)).or_default();
        buf.extend_from_slice(bytes);
        while let Some(end) = buf
            .iter()
            .position(|b| *b == b'\n')
            .or((buf.len() >= MAX_LINE).then_some(MAX_LINE - 1))
            .or((bytes.is_empty() && !buf.is_empty()).then(|| buf.len() - 1))
        {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            show(&format!(
                "[{}] {}\n",
                printable(step),
                printable(text.trim_end_matches('\n'))
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_shows_whole_lines_made_printable_and_the_rest_at_the_end() {
        let seen = Arc::new(Mutex::new(String::new()));
        let into = seen.clone();
        let echo = echo(move |line| into.lock().unwrap().push_str(line));
        echo("a", 0, b"hel");
        echo("a", 1, b"warn\n");
        echo("b", 0, b"other\n");
        echo("a", 0, b"lo \x1b[2Jworld\nand ");
        assert_eq!(
            *seen.lock().unwrap(),
            "[a] warn\n[b] other\n[a] hello \\u{1b}[2Jworld\n"
        );
        echo("a", 0, b"");
        assert!(seen.lock().unwrap().ends_with("[a] and \n"));
    }
}
