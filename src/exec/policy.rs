//! The policy for `STEP_AGENT_CMD`: which agent commands may be handed a prompt.
//!
//! # Threat model
//!
//! A step's prompt is untrusted *data*: it may have been written from web content by a
//! stranger. The command is split into argv words (no shell is involved) and the prompt is
//! passed as one argument: in place of a word holding `{prompt}`, as a file named by
//! `{prompt_file}`, or appended last. Passing data as an argument is only safe if the program
//! treats that argument as data. This module refuses every command where the prompt could
//! become *code*: a shell, an interpreter given inline code (`python3 -c`, `perl -e`) or no
//! script at all (`python3` + prompt runs the prompt), a wrapper (`env`, `nice`, `sudo`…)
//! whose wrapped command is a shell or the prompt itself, `awk`/`sed` taking their program
//! from the command line, and the legacy rule that `-c`/`-e` anywhere is refused.
//!
//! This closes the holes a check of the first word's name leaves (the Python version's):
//! wrappers are looked through with their option tables (`env bash`, `nice -n 10 sh`),
//! names are normalised and short-flag clusters read (`python3.12 -Ic`, `perl -pe`), and the
//! resolved path is judged as well as the word (`myagent -> /bin/bash`).
//!
//! Deliberately strict: wrappers nested more than 8 deep are refused; `php -f`
//! and `R -f` are refused (both keep reading options after the file, where a prompt could
//! be `-r code`; use `php agent.php`, `Rscript agent.R`); `awk -f prog.awk` and
//! `sed -f script.sed` need a `--` before the prompt (see below).
//!
//! # Limits
//!
//! We judge the command, not what a program does with its arguments:
//! - a copy of `bash` under another name (not a symlink) is not recognised; a symlink to
//!   busybox/toybox is judged by its own name, which is the applet they run;
//! - a user's own script that `eval`s its arguments, or a program outside these tables that
//!   runs its arguments (`npx`, `find -exec`, `make`), is allowed;
//! - an option this module does not know is assumed to take no argument;
//! - an ordinary program receiving a bare `{prompt}` may read it as one of its options:
//!   prefer `--message={prompt}` or `-- {prompt}`. For `awk`/`sed`, where such an option
//!   would be code (`--source=…`, `--expression=…`), the `--` is required.
use std::path::{Path, PathBuf};

const PROMPT: &str = "{prompt}";
const PROMPT_FILE: &str = "{prompt_file}";
/// Wrappers nested deeper than this are refused rather than followed.
const MAX_DEPTH: usize = 8;

/// Why `STEP_AGENT_CMD` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The word of the command that was judged (e.g. "bash", "perl").
    pub program: String,
    /// Why, in plain words, e.g. "is a shell: it would run the prompt as shell code".
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` {}", self.program, self.reason)
    }
}

impl std::error::Error for Rejection {}

const IS_SHELL: &str = "is a shell: it would run the prompt as shell code";
const HANDS_TO_SHELL: &str = "hands its arguments to a shell";
const NO_COMMAND: &str = "has no command of its own: the prompt would be run as a program";
const NO_SCRIPT: &str = "has no script before the prompt: the prompt would be run as code";
const FROM_STDIN: &str = "would read its program from stdin (`-`)";
const PROGRAM_TEXT: &str = "takes its program from the command line";
const PROMPT_AS_PROGRAM: &str = "is the prompt itself: the prompt would be run as a program";
const TOO_DEEP: &str = "is nested too deeply in wrappers to be judged";

/// Shells, and the shell builtins that only make sense as a shell's first word.
#[rustfmt::skip]
const SHELLS: &[&str] = &[
    "sh", "bash", "rbash", "dash", "ash", "zsh", "ksh", "mksh", "pdksh", "oksh", "loksh", "posh",
    "hush", "yash", "fish", "csh", "tcsh", "pwsh", "powershell", "nu", "xonsh", "elvish", "osh",
    "ysh", "busybox", "toybox", "eval", "exec", "command", "builtin",
];

/// Programs that always hand their arguments (or their session) to a shell.
#[rustfmt::skip]
const ALWAYS_SHELL: &[&str] = &[
    "watch", "ssh", "rsh", "su", "runuser", "script", "at", "batch", "parallel", "sg", "tmux",
    "screen",
];

/// Multi-call binaries pick the applet from argv[0], so a symlink to them runs the applet
/// its *word* names: the resolved name says nothing (and the word is judged anyway).
const MULTI_CALL: &[&str] = &["busybox", "toybox"];

/// How a program's options are read. Short options may be clustered (`-Ic`) and a short
/// option taking an argument takes the rest of the cluster, or else the next word
/// (getopt). Long options (`--name`, `--name=value`, or `-name` when `name` is in a long
/// table) take the next word unless given `=value`.
struct Opts {
    /// Short options taking an argument that is data.
    arg_short: &'static str,
    arg_long: &'static [&'static str],
    /// Options that are code (interpreters), or that start a shell (wrappers).
    code_short: &'static str,
    code_long: &'static [&'static str],
    /// Options whose argument names the program to run: `python -m`, `awk -f`.
    file_short: &'static str,
    file_long: &'static [&'static str],
}

/// Options taking a data argument; the others are added with `code` and `file`.
const fn opts(arg_short: &'static str, arg_long: &'static [&'static str]) -> Opts {
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
    const fn code(self, code_short: &'static str, code_long: &'static [&'static str]) -> Self {
        Opts {
            code_short,
            code_long,
            ..self
        }
    }

    const fn file(self, file_short: &'static str, file_long: &'static [&'static str]) -> Self {
        Opts {
            file_short,
            file_long,
            ..self
        }
    }
}

/// What one option word means.
#[derive(Debug, PartialEq, Eq)]
enum Opt {
    Flag,
    /// Takes an argument; `next` when it is the following word.
    Arg {
        next: bool,
    },
    /// Names the program file/module; `next` when it is the following word.
    File {
        next: bool,
    },
    /// Inline code (or a shell), named as written.
    Code(String),
}

/// A program that runs another: judged by looking through to the command it runs.
struct Wrapper {
    names: &'static [&'static str],
    /// `code` options here are the ones that start a shell or parse a command line.
    opts: Opts,
    /// Positional operands before the command: timeout's DURATION, flock's FILE…
    operands: usize,
    /// `NAME=value` words before the command are settings, not the command (env, sudo).
    assignments: bool,
}

const fn wrap(names: &'static [&'static str], opts: Opts, operands: usize) -> Wrapper {
    Wrapper {
        names,
        opts,
        operands,
        assignments: false,
    }
}

impl Wrapper {
    const fn assigning(self) -> Self {
        Wrapper {
            assignments: true,
            ..self
        }
    }
}

#[rustfmt::skip]
const WRAPPERS: &[Wrapper] = &[
    // `-S` splits a string into a command line: the one env option that is a parser.
    wrap(&["env"], opts("uC", &["unset", "chdir"]).code("S", &["split-string"]), 0).assigning(),
    wrap(&["sudo"], opts("aCcDgpRrTtUu", &[
        "user", "group", "prompt", "close-from", "chdir", "chroot", "role", "type", "host",
        "command-timeout", "other-user", "auth-type", "login-class",
    ]).code("si", &["shell", "login"]), 0).assigning(),
    wrap(&["doas"], opts("aCu", &[]).code("s", &[]), 0),
    // flock's `-c`/`--command` runs its argument through `sh -c`.
    wrap(&["flock"], opts("wE", &["timeout", "wait", "conflict-exit-code"]).code("c", &["command"]), 1),
    wrap(&["systemd-run"], opts("upHME", &[
        "unit", "property", "host", "machine", "setenv", "description", "slice", "uid", "gid",
        "nice", "working-directory", "service-type", "on-active", "on-boot", "on-startup",
        "on-unit-active", "on-unit-inactive", "on-calendar", "timer-property", "path-property",
        "socket-property",
    ]).code("S", &["shell"]), 0),
    wrap(&["torsocks"], opts("upaP", &["user", "pass", "address", "port"]).code("", &["shell"]), 0),
    wrap(&["nohup", "setsid", "catchsegv", "unbuffer", "eatmydata", "nocache", "firejail", "valgrind"],
        opts("", &[]), 0),
    wrap(&["nice"], opts("n", &["adjustment"]), 0),
    wrap(&["timeout"], opts("sk", &["signal", "kill-after"]), 1),
    wrap(&["stdbuf"], opts("ioe", &["input", "output", "error"]), 0),
    wrap(&["ionice"], opts("cnpPu", &["class", "classdata", "pid", "pgid", "uid"]), 0),
    wrap(&["taskset"], opts("", &[]), 1),
    wrap(&["chrt"], opts("TPD", &["sched-runtime", "sched-period", "sched-deadline"]), 1),
    wrap(&["time"], opts("fo", &["format", "output"]), 0),
    wrap(&["strace"], opts("abeEIoOpPsSuUX", &[
        "output", "string-limit", "trace", "signal", "status", "user", "env", "attach",
        "trace-path", "columns",
    ]), 0),
    wrap(&["ltrace"], opts("aADeFlnopsuwx", &["output", "library", "align", "indent"]), 0),
    wrap(&["unshare"], opts("SGRw", &[
        "setuid", "setgid", "root", "wd", "map-user", "map-group", "map-users", "map-groups",
        "propagation", "setgroups", "monotonic", "boottime",
    ]), 0),
    wrap(&["nsenter"], opts("tSG", &["target", "setuid", "setgid"]), 0),
    wrap(&["chroot"], opts("", &["userspec", "groups"]), 1),
    wrap(&["xargs"], opts("aEdILnPs", &[
        "arg-file", "delimiter", "max-args", "max-procs", "max-chars", "process-slot-var",
    ]), 0),
    wrap(&["prlimit"], opts("po", &["pid", "output"]), 0),
    wrap(&["setpriv"], opts("", &[
        "reuid", "regid", "ruid", "euid", "rgid", "egid", "groups", "inh-caps", "ambient-caps",
        "bounding-set", "securebits", "pdeathsig", "selinux-label", "apparmor-profile",
        "landlock-access", "landlock-rule",
    ]), 0),
    wrap(&["chpst"], opts("ubUe/nlLmdofcprt", &[]), 0),
    wrap(&["pkexec"], opts("u", &["user"]), 0),
    wrap(&["run0"], opts("ugDp", &[
        "user", "group", "chdir", "setenv", "property", "unit", "nice", "slice", "description",
        "background", "machine",
    ]), 0),
    wrap(&["caffeinate"], opts("tw", &[]), 0),
    wrap(&["faketime"], opts("", &["date-prog"]), 1),
    wrap(&["proxychains"], opts("f", &[]), 0),
    wrap(&["tini"], opts("pe", &[]), 0),
    wrap(&["dumb-init"], opts("r", &["rewrite"]), 0),
    wrap(&["numactl"], opts("iNmpCP", &[
        "interleave", "cpunodebind", "membind", "preferred", "physcpubind", "preferred-many",
    ]), 0),
    wrap(&["cgexec"], opts("g", &[]), 0),
    wrap(&["sandbox-exec"], opts("fpD", &[]), 0),
    wrap(&["aa-exec"], opts("pn", &["profile", "namespace"]), 0),
    wrap(&["gosu", "su-exec", "setuidgid", "envdir"], opts("", &[]), 1),
];

/// A program that runs a script named by its first operand (or by an option like `-m`).
struct Interpreter {
    names: &'static [&'static str],
    opts: Opts,
    /// First operands that are inline code, a REPL or a shell (`deno eval`, `bun exec`).
    code_words: &'static [&'static str],
    /// First operands after which the script follows (`deno run agent.ts`).
    run_words: &'static [&'static str],
}

const fn interp(names: &'static [&'static str], opts: Opts) -> Interpreter {
    Interpreter {
        names,
        opts,
        code_words: &[],
        run_words: &[],
    }
}

impl Interpreter {
    const fn words(
        self,
        code_words: &'static [&'static str],
        run_words: &'static [&'static str],
    ) -> Self {
        Interpreter {
            code_words,
            run_words,
            ..self
        }
    }
}

#[rustfmt::skip]
const INTERPRETERS: &[Interpreter] = &[
    interp(&["python", "pypy"], opts("WXQ", &["check-hash-based-pycs"]).code("c", &[]).file("m", &[])),
    interp(&["perl"], opts("IMm", &[]).code("eE", &[])),
    interp(&["raku"], opts("IM", &[]).code("e", &[])),
    interp(&["ruby", "jruby"], opts("IrCE", &[]).code("e", &[])),
    // `--run` runs a package.json script through a shell.
    interp(&["node", "nodejs"], opts("rC", &[
        "require", "import", "loader", "experimental-loader", "conditions", "title", "input-type",
        "env-file", "icu-data-dir", "openssl-config", "redirect-warnings",
    ]).code("ep", &["eval", "print", "run"])),
    interp(&["deno"], opts("", &["config", "import-map", "cert", "location", "seed", "ext"])
        .code("", &["eval", "eval-file"])).words(&["eval", "repl", "task"], &["run", "serve"]),
    interp(&["bun"], opts("r", &["preload", "cwd", "config", "env-file", "tsconfig-override"])
        .code("ep", &["eval", "print"])).words(&["repl", "exec"], &["run"]),
    // php and R keep reading options after `-f file`, so a prompt there could be `-r code`:
    // `-f` is treated as a plain option and the script must be an operand.
    interp(&["php"], opts("cdfFztS", &[]).code("rBREa", &[])),
    interp(&["lua", "luajit"], opts("lj", &[]).code("e", &[])),
    interp(&["rscript"], opts("", &[]).code("e", &[])),
    // `R CMD` runs any executable.
    interp(&["r"], opts("fdg", &["file"]).code("e", &[])).words(&["CMD"], &[]),
    interp(&["julia"], opts("JCLpt", &["sysimage", "load", "threads", "procs", "machine-file", "cpu-target"])
        .code("eE", &["eval", "print"])),
    interp(&["tclsh", "wish", "jimsh"],
        opts("", &["encoding", "display", "geometry", "name", "use", "visual", "colormap"])),
    interp(&["expect"], opts("bfD", &[]).code("c", &[])),
    interp(&["osascript"], opts("ls", &[]).code("e", &[])),
];

/// awk and sed: the first operand is the program unless it comes from a file (`-f`).
#[rustfmt::skip]
const PROGRAM_TEXT_TOOLS: &[(&[&str], Opts)] = &[
    (&["awk", "gawk", "mawk", "nawk", "goawk"],
        opts("FvWilZ", &["assign", "field-separator", "include", "load"])
            .code("e", &["source"]).file("fE", &["file", "exec"])),
    (&["sed", "gsed"], opts("l", &["line-length"]).code("e", &["expression"]).file("f", &["file"])),
];

/// Judges the agent command template. `words` is the parsed `STEP_AGENT_CMD`. If no word
/// contains `{prompt}` or `{prompt_file}`, the prompt will be appended last: judge as if a
/// final `{prompt}` word were there. `resolve(word)` returns the canonical real path
/// (symlinks resolved) of a program word if it can be found (on PATH, or as a path); judge
/// BOTH the word's basename and the resolved basename, so that `ln -s /bin/bash myagent`
/// is caught.
pub fn judge(words: &[String], resolve: &dyn Fn(&str) -> Option<PathBuf>) -> Result<(), Rejection> {
    let mut words = words.to_vec();
    if !words.iter().any(|w| has_placeholder(w)) {
        words.push(PROMPT.to_string());
    }
    judge_command(&words, resolve, 0)?;
    refuse_dash_c_e(&words)
}

fn rejection(program: &str, reason: impl Into<String>) -> Rejection {
    Rejection {
        program: program.to_string(),
        reason: reason.into(),
    }
}

fn has_placeholder(word: &str) -> bool {
    word.contains(PROMPT) || word.contains(PROMPT_FILE)
}

/// The families a program may belong to: its basename, lowercased, without `.exe` and a
/// trailing version (`python3.12`, `perl5.36.0` and `node20` are `python`, `perl` and
/// `node`), and, when different, the part before its first digit, for ABI and build
/// suffixes (`python3.7m`, `python3-dbg`).
fn families(path: &Path) -> Vec<String> {
    let base = path
        .file_name()
        .map(|b| b.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let base = base.strip_suffix(".exe").unwrap_or(&base);
    let versionless =
        base.trim_end_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    let mut out = vec![versionless.to_string()];
    match base.find(|c: char| c.is_ascii_digit()) {
        Some(i) if i > 0 && base[..i] != *versionless => out.push(base[..i].to_string()),
        _ => {}
    }
    out
}

/// Shells and always-shell programs, whatever their arguments.
fn shell_reason(family: &str) -> Option<&'static str> {
    if SHELLS.contains(&family) {
        Some(IS_SHELL)
    } else if ALWAYS_SHELL.contains(&family) {
        Some(HANDS_TO_SHELL)
    } else {
        None
    }
}

/// Judges `words[0]` run with `words[1..]`, by its word's families and its resolved ones.
fn judge_command(
    words: &[String],
    resolve: &dyn Fn(&str) -> Option<PathBuf>,
    depth: usize,
) -> Result<(), Rejection> {
    let (program, args) = (&words[0], &words[1..]);
    if has_placeholder(program) {
        return Err(rejection(program, PROMPT_AS_PROGRAM));
    }
    let word_families = families(Path::new(program));
    for family in &word_families {
        judge_as(program, family, args, resolve, depth)?;
    }
    let Some(real) = resolve(program) else {
        return Ok(());
    };
    for family in families(&real) {
        if word_families.contains(&family) || MULTI_CALL.contains(&family.as_str()) {
            continue;
        }
        judge_as(program, &family, args, resolve, depth).map_err(|mut r| {
            if r.program == *program {
                r.reason = format!("{} (it resolves to `{}`)", r.reason, real.display());
            }
            r
        })?;
    }
    Ok(())
}

fn judge_as(
    program: &str,
    family: &str,
    args: &[String],
    resolve: &dyn Fn(&str) -> Option<PathBuf>,
    depth: usize,
) -> Result<(), Rejection> {
    if let Some(reason) = shell_reason(family) {
        return Err(rejection(program, reason));
    }
    if let Some(w) = WRAPPERS.iter().find(|w| w.names.contains(&family)) {
        return judge_wrapper(program, w, args, resolve, depth);
    }
    if let Some(it) = INTERPRETERS.iter().find(|i| i.names.contains(&family)) {
        return judge_interpreter(program, it, args);
    }
    if let Some((_, o)) = PROGRAM_TEXT_TOOLS
        .iter()
        .find(|(names, _)| names.contains(&family))
    {
        return judge_program_text(program, o, args);
    }
    Ok(())
}

/// The name of a long option word: `--eval=x` → `eval`.
fn long_name(word: &str) -> &str {
    let body = word.trim_start_matches('-');
    body.split_once('=').map_or(body, |(n, _)| n)
}

/// Whether `name` is a long option of the table (so `-name`, with one dash, is one too).
fn in_long(o: &Opts, name: &str) -> bool {
    name.len() > 1
        && [o.arg_long, o.code_long, o.file_long]
            .iter()
            .any(|t| t.contains(&name))
}

/// Reads one option word (not `-` or `--`) against a table.
fn classify(word: &str, o: &Opts) -> Opt {
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

/// Finds the command a wrapper runs and judges it with its own arguments.
fn judge_wrapper(
    program: &str,
    w: &Wrapper,
    args: &[String],
    resolve: &dyn Fn(&str) -> Option<PathBuf>,
    depth: usize,
) -> Result<(), Rejection> {
    if depth >= MAX_DEPTH {
        return Err(rejection(program, TOO_DEEP));
    }
    let mut operands = w.operands;
    let (mut pending, mut options_done) = (false, false);
    for (i, a) in args.iter().enumerate() {
        if has_placeholder(a) {
            return Err(rejection(program, NO_COMMAND));
        }
        // Belt and braces: whatever an option table gets wrong, a shell word between the
        // wrapper and its command is never let through.
        if let Some(reason) = families(Path::new(a)).iter().find_map(|f| shell_reason(f)) {
            return Err(rejection(a, reason));
        }
        if pending {
            pending = false;
        } else if !options_done && a == "--" {
            options_done = true;
        } else if !options_done && a.starts_with('-') {
            // A lone `-` lands here as a flag: env's synonym for `-i`.
            match classify(a, &w.opts) {
                Opt::Code(o) => {
                    let why = format!("is refused with `{o}`: it would start a shell or split a string into a command line");
                    return Err(rejection(program, why));
                }
                Opt::Arg { next } | Opt::File { next } => pending = next,
                Opt::Flag => {}
            }
        } else if w.assignments && a.contains('=') {
            // NAME=value: a setting, still before the command.
        } else if operands > 0 {
            operands -= 1;
        } else {
            return judge_command(&args[i..], resolve, depth + 1);
        }
    }
    Err(rejection(program, NO_COMMAND))
}

/// Refuses inline code anywhere in the arguments, written as a whole option word
/// (`-e`, `--eval=…`); clusters are only read before the script, where they are options.
fn refuse_code_options(program: &str, o: &Opts, args: &[String]) -> Result<(), Rejection> {
    for a in args
        .iter()
        .filter(|a| a.starts_with('-') && *a != "-" && *a != "--")
    {
        let whole_word = a.starts_with("--") || a.len() == 2 || in_long(o, long_name(a));
        if let (true, Opt::Code(c)) = (whole_word, classify(a, o)) {
            return Err(rejection(program, format!("runs inline code (`{c}`)")));
        }
    }
    Ok(())
}

/// An interpreter must be given a script (or module) before the prompt, and no inline code.
fn judge_interpreter(program: &str, it: &Interpreter, args: &[String]) -> Result<(), Rejection> {
    refuse_code_options(program, &it.opts, args)?;
    let script_at = |i: usize| match args.get(i).map(String::as_str) {
        None => Err(rejection(program, NO_SCRIPT)),
        Some(s) if has_placeholder(s) => Err(rejection(program, NO_SCRIPT)),
        Some("-") => Err(rejection(program, FROM_STDIN)),
        Some(_) => Ok(()),
    };
    let (mut pending, mut subcommand) = (false, false);
    for (i, a) in args.iter().enumerate() {
        if has_placeholder(a) {
            return Err(rejection(program, NO_SCRIPT));
        }
        if pending {
            pending = false;
            continue;
        }
        match a.as_str() {
            "-" => return Err(rejection(program, FROM_STDIN)),
            "--" => return script_at(i + 1),
            _ if a.starts_with('-') => match classify(a, &it.opts) {
                Opt::Code(c) => {
                    return Err(rejection(program, format!("runs inline code (`{c}`)")))
                }
                Opt::File { next: true } => return script_at(i + 1),
                Opt::File { next: false } => return Ok(()),
                Opt::Arg { next } => pending = next,
                Opt::Flag => {}
            },
            _ if !subcommand && it.code_words.contains(&a.as_str()) => {
                return Err(rejection(
                    program,
                    format!("runs inline code, a REPL or a shell (`{a}`)"),
                ));
            }
            _ if !subcommand && it.run_words.contains(&a.as_str()) => subcommand = true,
            _ => return Ok(()),
        }
    }
    Err(rejection(program, NO_SCRIPT))
}

/// awk/sed need their program from a file, and the prompt behind a `--`: GNU getopt would
/// otherwise read a prompt like `--expression=1e id` as an option, i.e. as code.
fn judge_program_text(program: &str, o: &Opts, args: &[String]) -> Result<(), Rejection> {
    let (mut has_file, mut pending, mut options_done) = (false, false, false);
    for a in args {
        if pending {
            if has_placeholder(a) {
                return Err(rejection(
                    program,
                    "would take the prompt as an option's value or its program file",
                ));
            }
            pending = false;
        } else if !options_done && a == "--" {
            options_done = true;
        } else if !options_done && a.starts_with('-') && a != "-" {
            match classify(a, o) {
                Opt::Code(c) => return Err(rejection(program, format!("{PROGRAM_TEXT} (`{c}`)"))),
                Opt::File { next } => (has_file, pending) = (true, next),
                Opt::Arg { next } => pending = next,
                Opt::Flag => {}
            }
        } else if !has_file {
            return Err(rejection(program, PROGRAM_TEXT));
        } else if !options_done && a.starts_with(PROMPT) {
            return Err(rejection(
                program,
                "would read the prompt as its own options: put `--` before the prompt",
            ));
        }
    }
    if has_file {
        Ok(())
    } else {
        Err(rejection(program, PROGRAM_TEXT))
    }
}

/// The legacy rule, kept: a bare `-c` or `-e` makes some argument code in too many programs.
fn refuse_dash_c_e(words: &[String]) -> Result<(), Rejection> {
    match words.iter().find(|w| *w == "-c" || *w == "-e") {
        Some(flag) => Err(rejection(
            &words[0],
            format!("is given `{flag}`: `-c`/`-e` anywhere is refused, as it turns an argument into code"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (command line, allowed?)
    #[rustfmt::skip]
    const CASES: &[(&str, bool)] = &[
        // Allowed: agents, scripts run by an interpreter, wrappers around an agent.
        ("openclaw agent --session-key s --message", true),
        ("openclaw agent --session-key s --message={prompt}", true),
        ("openclaw agent --session-key s --message-file {prompt_file}", true),
        ("openclaw agent exec", true), ("claude -p", true), ("codex exec", true), ("gemini -p", true),
        ("python3 agent.py --message", true), ("python3 -u agent.py", true),
        ("python3 -m my.agent", true), ("python3 -W ignore -X dev agent.py", true),
        ("/usr/bin/python3.12 agent.py", true), ("python3.7m agent.py", true),
        ("node agent.js", true), ("node --require dotenv/config agent.js", true),
        ("env OPENAI_KEY=x myagent", true), ("env -u HOME myagent --flag", true),
        ("timeout 600 myagent", true), ("timeout -k 5 600 myagent", true),
        ("nice -n 10 myagent", true), ("nohup myagent", true), ("sudo -u bob myagent", true),
        // Not `awk -f prog.awk` / `sed -f script.sed`: see the rejected cases below.
        ("awk -f prog.awk --", true), ("sed -f script.sed --", true),
        ("perl agent.pl", true), ("myagent -- {prompt}", true), ("/home/u/bin/my-agent.sh", true),
        ("timeout 600 env A=1 nice myagent", true), ("deno run agent.ts", true),
        ("bun agent.ts", true), ("Rscript agent.R", true),
        ("strace -o /tmp/x -s 100 myagent", true), ("flock -w 5 /tmp/l myagent", true),
        ("xargs -n 1 myagent", true), ("pkexec myagent", true), ("tini -- myagent", true),
        ("valgrind --tool=memcheck myagent", true), ("proxychains4 -q myagent", true),
        ("faketime 2020-01-01 myagent", true), ("chroot /srv/jail myagent", true),
        ("setpriv --reuid=1000 myagent", true),
        // MAX_DEPTH (8) nested wrappers are followed; one more is refused.
        ("nice nice nice nice nice nice nice nice myagent", true),
        ("nice nice nice nice nice nice nice nice nice myagent", false),
        ("nice nice nice nice nice nice nice nice nice nice myagent", false),
        // Shells, however named; `sh script.sh` too: a shell with a script is still a shell.
        ("/bin/bash", false), ("BASH", false), ("bash5.2 agent", false), ("bash -lc", false),
        ("sh script.sh", false), ("fish --command", false), ("busybox sh", false),
        ("busybox awk", false), ("toybox sh", false), ("eval", false), ("exec myagent", false),
        ("pwsh -Command", false),
        // Programs that hand their arguments to a shell.
        ("watch", false), ("watch -n 1 myagent", false), ("ssh host", false), ("su", false),
        ("runuser -u bob myagent", false), ("script", false), ("at now", false), ("batch", false),
        ("parallel", false), ("tmux new", false),
        // Interpreters: inline code, stdin, or no script before the prompt.
        ("python3", false), ("python3 -c", false), ("python3.12 -Ic", false),
        ("python3 -Icprint(1)", false), ("python3 -", false), ("python3 {prompt}", false),
        ("python3 {prompt_file}", false), ("python3 -u", false), ("python3 -m", false),
        ("python3 -W ignore", false), ("python3.7m", false), ("python3-dbg", false),
        ("perl -e", false), ("perl -E", false), ("perl -pe", false),
        ("perl5.36.0 -Mstrict -E", false), ("perl agent.pl -E", false), ("ruby -e", false),
        ("node", false), ("node --eval", false), ("node -p", false), ("node --print", false),
        ("node20 -e", false), ("nodejs --eval=1", false), ("node --run build", false),
        ("node --require {prompt} agent.js", false), ("deno", false), ("deno eval", false),
        ("deno task agent", false), ("bun -e", false), ("bun exec", false),
        ("php -r", false), ("php8.2 -r", false), ("php -f agent.php", false),
        ("lua -e", false), ("lua5.4 -e", false), ("luajit -e", false), ("Rscript -e", false),
        ("R CMD myagent", false), ("julia -e", false), ("julia --eval=1", false),
        ("tclsh", false), ("wish", false), ("expect -c", false), ("osascript -e", false),
        // awk and sed: a program from the command line, or a bare prompt GNU getopt would read
        // as an option (`--source=…`, `--expression=1e id`: code).
        ("awk", false), ("awk '{print}'", false), ("awk -f prog.awk", false),
        ("awk -f {prompt_file}", false), ("gawk -v x=1 '{print}'", false),
        ("gawk -f prog.awk --source=x --", false), ("mawk", false), ("nawk", false),
        ("sed", false), ("sed -f script.sed", false), ("gsed s/a/b/", false),
        ("sed -e s/a/b/", false), ("sed -nf script.sed --expression=1e --", false),
        // Wrappers: refused options, no command, or a shell inside.
        ("env -S 'sh -c'", false), ("env --split-string=sh", false), ("env", false),
        // getopt_long abbreviations (found in review): each must read as the option it abbreviates.
        ("nice --adj 5 perl -E", false), ("env --un X perl -E", false),
        ("timeout --sig TERM 600 perl -E", false), ("xargs --max-a 1 perl -E", false),
        ("env \"--split-s=perl -E 'eval pop'\" x", false), ("env --split-s x", false),
        ("nice --adj 5 myagent", true), ("timeout --sig TERM 600 myagent", true),
        ("env A=1", false), ("env A=1 bash", false), ("env -i bash", false), ("env - bash", false),
        ("env -u X sh", false), ("nice bash", false), ("nice -n 10 bash", false),
        ("nice -10 sh", false), ("nice -- bash", false), ("nohup sh", false),
        ("timeout 600 bash", false), ("timeout -s KILL 600 bash", false), ("timeout 600", false),
        ("timeout 600 {prompt}", false), ("stdbuf -oL bash", false), ("setsid bash", false),
        ("ionice -n 7 bash", false), ("taskset 0x1 bash", false), ("chrt 10 bash", false),
        ("chrt -r 10 bash", false), ("sudo", false), ("sudo bash", false),
        ("sudo -u bob bash", false), ("sudo FOO=1 sh", false), ("sudo -s", false),
        ("sudo -i", false), ("doas sh", false), ("doas -s", false), ("time bash", false),
        ("strace -f -o /tmp/x bash", false), ("ltrace bash", false), ("flock /tmp/l bash", false),
        ("flock -w 5 /tmp/l bash", false), ("flock --command x /tmp/l", false),
        ("unshare", false), ("unshare -r bash", false), ("nsenter -t 1 -m bash", false),
        ("chroot /", false), ("chroot / bash", false), ("firejail --quiet bash", false),
        ("systemd-run --user bash", false), ("systemd-run -S", false), ("xargs bash", false),
        ("xargs -I{} sh", false), ("pkexec", false), ("torsocks --shell", false),
        ("faketime 2020-01-01 bash", false), ("nice bash-5.2", false),
        ("timeout 600 env A=1 nice -n 5 python3 -c", false),
        ("timeout 600 env A=1 nice -n 5 python3 -Ic", false),
        // The prompt as the program; the legacy `-c`/`-e` rule.
        ("{prompt}", false), ("myagent -c x", false), ("openclaw agent -e", false),
    ];

    fn words(line: &str) -> Vec<String> {
        shell_words::split(line).expect("test command lines parse")
    }

    fn no_resolve(_: &str) -> Option<PathBuf> {
        None
    }

    #[test]
    fn table() {
        let mut failures = Vec::new();
        for &(line, allowed) in CASES {
            let verdict = judge(&words(line), &no_resolve);
            if verdict.is_ok() != allowed {
                failures.push(format!(
                    "{line:?}: expected allowed={allowed}, got {verdict:?}"
                ));
            }
        }
        // Every shell and always-shell name is refused, alone and with a script.
        for name in SHELLS.iter().chain(ALWAYS_SHELL) {
            for line in [name.to_string(), format!("{name} script")] {
                if judge(&words(&line), &no_resolve).is_ok() {
                    failures.push(format!("{line:?} was allowed"));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn resolved_path_is_judged_too() {
        let resolve = |word: &str| -> Option<PathBuf> {
            match word {
                "myagent" => Some(PathBuf::from("/usr/bin/bash")),
                "mypy" => Some(PathBuf::from("/usr/bin/python3.12")),
                "mynice" => Some(PathBuf::from("/usr/bin/nice")),
                "sh" | "timeout" => Some(PathBuf::from("/bin/busybox")),
                "openclaw" => Some(PathBuf::from("/opt/openclaw/bin/openclaw")),
                _ => None,
            }
        };
        let rej = judge(&words("myagent --message"), &resolve).unwrap_err();
        assert_eq!(rej.program, "myagent");
        assert!(
            rej.reason.contains("is a shell") && rej.reason.contains("/usr/bin/bash"),
            "{rej}"
        );
        assert!(judge(&words("nice -n 5 myagent"), &resolve).is_err());
        assert!(judge(&words("mypy -c"), &resolve).is_err());
        assert!(judge(&words("mypy"), &resolve).is_err());
        assert!(judge(&words("mypy agent.py"), &resolve).is_ok());
        assert!(judge(&words("mynice bash"), &resolve).is_err());
        assert!(judge(&words("mynice openclaw agent"), &resolve).is_ok());
        // A busybox applet is the applet its word names.
        assert!(judge(&words("timeout 600 openclaw agent"), &resolve).is_ok());
        assert!(judge(&words("sh agent.sh"), &resolve).is_err());
    }

    #[test]
    fn rejections_name_the_program_and_say_why() {
        for &(line, _) in CASES.iter().filter(|(_, allowed)| !allowed) {
            let Err(rej) = judge(&words(line), &no_resolve) else {
                panic!("{line:?} was allowed");
            };
            assert!(!rej.reason.trim().is_empty(), "{line:?}: empty reason");
            assert!(!rej.program.is_empty(), "{line:?}: no program");
            assert!(
                line.contains(&rej.program) || rej.program == PROMPT,
                "{line:?}: {rej}"
            );
            assert!(
                rej.to_string().starts_with(&format!("`{}` ", rej.program)),
                "{rej}"
            );
        }
        let rej = judge(&words("nice -n 10 bash"), &no_resolve).unwrap_err();
        assert_eq!(
            rej.to_string(),
            "`bash` is a shell: it would run the prompt as shell code"
        );
    }
}
