//! Reading a program's options the way its parser would: getopt clusters (`-ec` is `-e -c`),
//! a short option taking the rest of its cluster or the next word, `--long=value`, one-dash
//! long options (`find -exec`, `gdb -ex`), and getopt_long's unambiguous abbreviations.

/// How a program's options are read. Short options may be clustered (`-Ic`) and a short
/// option taking an argument takes the rest of the cluster, or else the next word
/// (getopt). Long options (`--name`, `--name=value`, or `-name` when `name` is in a long
/// table) take the next word unless given `=value`.
pub(super) struct Opts {
    /// Short options taking an argument that is data.
    pub arg_short: &'static str,
    pub arg_long: &'static [&'static str],
    /// Options that are code (interpreters, tools), or that start a shell (wrappers).
    pub code_short: &'static str,
    pub code_long: &'static [&'static str],
    /// Options whose argument names the program to run: `awk -f`, `python -m`.
    pub file_short: &'static str,
    pub file_long: &'static [&'static str],
}

/// Options taking a data argument; the others are added with `code` and `file`.
pub(super) const fn opts(arg_short: &'static str, arg_long: &'static [&'static str]) -> Opts {
    Opts {
        arg_short,
        arg_long,
        code_short: "",
        code_long: &[],
        file_short: "",
        file_long: &[],
    }
}

impl Opts {
    pub const fn code(self, code_short: &'static str, code_long: &'static [&'static str]) -> Self {
        Opts {
            code_short,
            code_long,
            ..self
        }
    }

    pub const fn file(self, file_short: &'static str, file_long: &'static [&'static str]) -> Self {
        Opts {
            file_short,
            file_long,
            ..self
        }
    }
}

/// What one option word means.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Opt {
    Flag,
    /// Takes an argument; `next` when it is the following word.
    Arg {
        next: bool,
    },
    /// Names the program file/module; `next` when it is the following word.
    File {
        next: bool,
    },
    /// Code (or a shell), named as written.
    Code(String),
}

/// The name of a long option word: `--eval=x` → `eval`.
pub(super) fn long_name(word: &str) -> &str {
    let body = word.trim_start_matches('-');
    body.split_once('=').map_or(body, |(n, _)| n)
}

/// Whether `name` is a long option of the table (so `-name`, with one dash, is one too).
pub(super) fn in_long(o: &Opts, name: &str) -> bool {
    name.len() > 1
        && [o.arg_long, o.code_long, o.file_long]
            .iter()
            .any(|t| t.contains(&name))
}

/// Reads one option word (not `-` or `--`) against a table.
pub(super) fn classify(word: &str, o: &Opts) -> Opt {
    let body = word.trim_start_matches('-');
    let name = long_name(word);
    let glued = body.contains('=');
    if word.starts_with("--") || in_long(o, name) {
        // getopt_long takes any unambiguous prefix (`--adj` is `--adjustment`); a prefix of
        // several is read as the most dangerous of them, so an abbreviation never hides one.
        let matches = |table: &[&str]| {
            table.contains(&name) || (!name.is_empty() && table.iter().any(|t| t.starts_with(name)))
        };
        return if matches(o.code_long) {
            Opt::Code(word.split('=').next().unwrap_or(word).to_string())
        } else if matches(o.file_long) {
            Opt::File { next: !glued }
        } else if matches(o.arg_long) {
            Opt::Arg { next: !glued }
        } else {
            Opt::Flag
        };
    }
    // A getopt cluster: `-Ic` is `-I -c`; `-W ignore` and `-Wignore` are the same.
    for (i, c) in body.char_indices() {
        let next = i + c.len_utf8() == body.len();
        if o.code_short.contains(c) {
            return Opt::Code(format!("-{c}"));
        } else if o.file_short.contains(c) {
            return Opt::File { next };
        } else if o.arg_short.contains(c) {
            return Opt::Arg { next };
        }
    }
    Opt::Flag
}

/// Whether a word is an option word to read (not an operand, `-` or `--`).
pub(super) fn is_option(word: &str) -> bool {
    word.starts_with('-') && word != "-" && word != "--"
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Opts = opts("n", &["adjustment"])
        .code("c", &["eval", "exec"])
        .file("m", &[]);

    #[test]
    fn clusters_long_names_and_abbreviations_read_as_getopt_does() {
        assert_eq!(classify("-ec", &T), Opt::Code("-c".into()));
        assert_eq!(classify("-xc", &T), Opt::Code("-c".into()));
        assert_eq!(classify("-n", &T), Opt::Arg { next: true });
        assert_eq!(classify("-n5", &T), Opt::Arg { next: false });
        assert_eq!(classify("--adj", &T), Opt::Arg { next: true });
        assert_eq!(classify("--adj=5", &T), Opt::Arg { next: false });
        assert_eq!(classify("--ev=1", &T), Opt::Code("--ev".into()));
        assert_eq!(classify("-exec", &T), Opt::Code("-exec".into()));
        assert_eq!(classify("-m", &T), Opt::File { next: true });
        assert_eq!(classify("-x", &T), Opt::Flag);
        assert!(is_option("-x") && !is_option("-") && !is_option("--") && !is_option("x"));
    }
}
