//! What a person at `seq-check --wait` sees of a try while it runs: a line on a terminal's
//! stderr that says which step runs and for how long (updated in place, about once a second),
//! and with `-v` the agent's own output as it comes. Agent bytes reach the terminal made
//! printable, a line at a time (control and bidirectional characters escaped, as everywhere
//! agent text is shown: see `format::text`).

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::exec::pipes::Echo;
use crate::format::text::printable;
use crate::report::text::duration_ms;

/// A line longer than this is shown in pieces (an agent that never prints a newline).
const MAX_LINE: usize = 8 << 10;

/// Whether the progress line is on the terminal now (and must be cleared before other output).
static SHOWN: AtomicBool = AtomicBool::new(false);

/// Told the step, the attempt and the time so far, while a try runs.
pub type Tick = Rc<dyn Fn(&str, u32, Duration)>;

/// The watcher of a try: none for a detached runner, nobody sees it.
#[derive(Clone, Default)]
pub struct Watch {
    /// Called about once a second, at least, while a try runs.
    pub tick: Option<Tick>,
    /// The agent's output as it comes.
    pub echo: Option<Echo>,
}

impl Watch {
    /// For `seq-check --wait`: with `verbose`, the agent's output on stdout; otherwise, when
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
        let last = RefCell::new(None);
        let tick = move |step: &str, attempt: u32, ran: Duration| {
            let seconds = ran.as_secs();
            if *last.borrow() == Some(seconds) {
                return;
            }
            *last.borrow_mut() = Some(seconds);
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
            tick: Some(Rc::new(tick)),
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

/// An echo that hands `show` whole lines (each ending in a newline), made printable; what is
/// left of a line at the end of a try (an empty chunk) is shown too.
fn echo(show: impl Fn(&str) + 'static) -> Echo {
    let pending: RefCell<[Vec<u8>; 2]> = RefCell::default();
    Rc::new(move |stream: usize, bytes: &[u8]| {
        let mut pending = pending.borrow_mut();
        let buf = &mut pending[stream.min(1)];
        buf.extend_from_slice(bytes);
        while let Some(end) = buf
            .iter()
            .position(|b| *b == b'\n')
            .or((buf.len() >= MAX_LINE).then_some(MAX_LINE - 1))
            .or((bytes.is_empty() && !buf.is_empty()).then(|| buf.len() - 1))
        {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            show(&format!("{}\n", printable(text.trim_end_matches('\n'))));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_shows_whole_lines_made_printable_and_the_rest_at_the_end() {
        let seen = Rc::new(RefCell::new(String::new()));
        let into = seen.clone();
        let echo = echo(move |line| into.borrow_mut().push_str(line));
        echo(0, b"hel");
        echo(1, b"warn\n");
        echo(0, b"lo \x1b[2Jworld\nand ");
        assert_eq!(*seen.borrow(), "warn\nhello \\u{1b}[2Jworld\n");
        echo(0, b"");
        assert_eq!(*seen.borrow(), "warn\nhello \\u{1b}[2Jworld\nand \n");
    }
}
