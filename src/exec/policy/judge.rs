//! The walk through a command: a program is judged by what it is (its name's families and
//! its real path's), wrappers are looked through to the command they run, and a program the
//! policy does not know has its arguments searched for things that would run the prompt.

use std::path::Path;

use super::agents::{self, Agent};
use super::names::families;
use super::opts::{classify, is_option, Opt, Opts};
use super::tables::{
    CodeTool, Interpreter, Wrapper, ALWAYS_SHELL, BUILTINS, CODE_TOOLS, INTERPRETERS, MULTI_CALL,
    PROGRAM_TEXT_TOOLS, SHELLS, WRAPPERS,
};
use super::{has_placeholder, rejection, Judgement, Kind, Lookup, Rejection, Trust, PROMPT};

/// Wrappers nested deeper than this are refused rather than followed.
const MAX_DEPTH: usize = 8;

const IS_SHELL: &str = "is a shell: it would run the prompt as shell code";
const HANDS_TO_SHELL: &str = "hands its arguments to a shell";
const NO_COMMAND: &str = "has no command of its own: the prompt would be run as a program";
const NO_SCRIPT: &str = "has no script before the prompt: the prompt would be run as code";
const FROM_STDIN: &str = "would read its program from stdin (`-`)";
const MODULE: &str = "runs a module (`-m`): the policy cannot tell what a module does with its \
                      arguments (`-m timeit` runs them as code); run the module's own command \
                      or its script file";
const PROGRAM_TEXT: &str = "takes its program from the command line";
const PROMPT_AS_PROGRAM: &str = "is the prompt itself: the prompt would be run as a program";
const TOO_DEEP: &str = "is nested too deeply in wrappers to be judged";

/// What a program is, as far as the policy is concerned.
enum Class {
    Shell(&'static str),
    Wrapper(&'static Wrapper),
    Interpreter(&'static Interpreter),
    ProgramText(&'static Opts),
    CodeTool(&'static CodeTool),
    Agent(&'static Agent),
}

fn shell_reason(family: &str) -> Option<&'static str> {
    if SHELLS.contains(&family) {
        Some(IS_SHELL)
    } else if ALWAYS_SHELL.contains(&family) {
        Some(HANDS_TO_SHELL)
    } else {
        None
    }
}

fn class_of(family: &str) -> Option<Class> {
    if let Some(reason) = shell_reason(family) {
        return Some(Class::Shell(reason));
    }
    if let Some(w) = WRAPPERS.iter().find(|w| w.names.contains(&family)) {
        return Some(Class::Wrapper(w));
    }
    if let Some(i) = INTERPRETERS.iter().find(|i| i.names.contains(&family)) {
        return Some(Class::Interpreter(i));
    }
    if let Some((_, o)) = PROGRAM_TEXT_TOOLS.iter().find(|(n, _)| n.contains(&family)) {
        return Some(Class::ProgramText(o));
    }
    if let Some(t) = CODE_TOOLS.iter().find(|t| t.names.contains(&family)) {
        return Some(Class::CodeTool(t));
    }
    agents::find(family).map(Class::Agent)
}

/// Whether a family runs code given to it: the things a launcher must not be handed.
fn runs_code(family: &str) -> bool {
    matches!(
        class_of(family),
        Some(Class::Shell(_) | Class::Interpreter(_) | Class::ProgramText(_) | Class::CodeTool(_))
    )
}

struct Walk<'a> {
    words: &'a [String],
    appended: bool,
    lookup: &'a dyn Lookup,
    trust: &'a Trust,
}

pub(super) fn judge(
    words: &[String],
    appended: bool,
    lookup: &dyn Lookup,
    trust: &Trust,
) -> Result<Judgement, Rejection> {
    let walk = Walk {
        words,
        appended,
        lookup,
        trust,
    };
    walk.command(0, 0)
}

impl Walk<'_> {
    fn program_judgement(&self, at: usize, reader_from: usize, kind: Kind) -> Judgement {
        Judgement {
            template: self.words.to_vec(),
            program_at: at,
            reader_from,
            kind,
        }
    }

    /// Judges `words[at]` run with the words after it.
    fn command(&self, at: usize, depth: usize) -> Result<Judgement, Rejection> {
        let program = &self.words[at];
        if has_placeholder(program) {
            return Err(rejection(program, PROMPT_AS_PROGRAM));
        }
        let real = self.lookup.resolve(program);
        let resolved = |reason: &str| match &real {
            Some(real) => format!("{reason} (it resolves to `{}`)", real.display()),
            None => reason.to_owned(),
        };
        if real
            .as_deref()
            .is_some_and(|r| self.lookup.is_shell_file(r))
        {
            return Err(rejection(
                program,
                resolved("is a shell (a login shell of this system, or a copy of one): it would run the prompt as shell code"),
            ));
        }
        let word_families = families(Path::new(program));
        let mut classes = Vec::new();
        for family in &word_families {
            if let Some(class) = class_of(family) {
                classes.push((class, false));
            }
        }
        for family in real.as_deref().map(families).unwrap_or_default() {
            if word_families.contains(&family) || MULTI_CALL.contains(&family.as_str()) {
                continue;
            }
            if let Some(class) = class_of(&family) {
                classes.push((class, true));
            }
        }
        if let Some((Class::Shell(reason), from_real)) =
            classes.iter().find(|(c, _)| matches!(c, Class::Shell(_)))
        {
            let reason = if *from_real {
                resolved(reason)
            } else {
                (*reason).to_owned()
            };
            return Err(rejection(program, reason));
        }
        // What a program does wins over the agent its name claims to be.
        let class = classes
            .iter()
            .map(|(c, _)| c)
            .find(|c| !matches!(c, Class::Agent(_)))
            .or_else(|| classes.first().map(|(c, _)| c));
        match class {
            Some(Class::Wrapper(w)) => self.wrapper(at, w, depth),
            Some(Class::Interpreter(it)) => {
                let script = self.interpreter(at, it)?;
                self.search(at, script + 1, depth)?;
                Ok(self.program_judgement(at, script + 1, Kind::Program))
            }
            Some(Class::ProgramText(o)) => {
                self.program_text(at, o)?;
                Ok(self.program_judgement(at, at + 1, Kind::Program))
            }
            Some(Class::CodeTool(tool)) => {
                self.code_tool(at, tool)?;
                self.search(at, at + 1, depth)?;
                Ok(self.program_judgement(at, at + 1, Kind::Program))
            }
            Some(Class::Agent(agent)) => {
                let end = self.words.len() - usize::from(self.appended);
                let (template, place) = agent.normalise(&self.words[..end], at)?;
                Ok(Judgement {
                    template,
                    program_at: at,
                    reader_from: at + 1,
                    kind: Kind::Agent(agent, place),
                })
            }
            Some(Class::Shell(_)) => unreachable!("shells are refused above"),
            None if self.trust.vouches_for(program, real.as_deref()) => {
                Ok(self.program_judgement(at, at + 1, Kind::Trusted))
            }
            None => {
                self.search(at, at + 1, depth)?;
                Ok(self.program_judgement(at, at + 1, Kind::Program))
            }
        }
    }

    /// The arguments `words[from..]` of `words[at]`, a program that may launch them: a word
    /// naming a shell is refused, one naming an interpreter or a code-running tool is judged
    /// as the command it would start.
    fn search(&self, at: usize, from: usize, depth: usize) -> Result<(), Rejection> {
        let launcher = &self.words[at];
        for i in from..self.words.len() {
            let word = &self.words[i];
            // Options, and `KEY=value` settings, are not programs to run.
            if has_placeholder(word) || word.starts_with('-') || word.contains('=') {
                continue;
            }
            let Some(first) = word.split_whitespace().next() else {
                continue;
            };
            // What the word names, and what it is: `./mysh` may be a symlink to, or a copy
            // of, a shell.
            let real = self.lookup.resolve(first);
            if real
                .as_deref()
                .is_some_and(|r| self.lookup.is_shell_file(r))
            {
                return Err(rejection(
                    first,
                    format!(
                        "{IS_SHELL}, and it is an argument of `{launcher}`, which may run it \
                         (a launcher); {}",
                        vouch(launcher)
                    ),
                ));
            }
            let mut named = families(Path::new(first));
            for family in real.as_deref().map(families).unwrap_or_default() {
                if !named.contains(&family) && !MULTI_CALL.contains(&family.as_str()) {
                    named.push(family);
                }
            }
            for family in named {
                if BUILTINS.contains(&family.as_str()) || !runs_code(&family) {
                    continue;
                }
                if let Some(reason) = shell_reason(&family) {
                    return Err(rejection(
                        first,
                        format!(
                            "{reason}, and it is an argument of `{launcher}`, which may run it \
                             (a launcher); {}",
                            vouch(launcher)
                        ),
                    ));
                }
                if first != word {
                    return Err(rejection(
                        first,
                        format!(
                            "starts a command line given to `{launcher}`, which may run it; {}",
                            vouch(launcher)
                        ),
                    ));
                }
                if depth >= MAX_DEPTH {
                    return Err(rejection(first, TOO_DEEP));
                }
                self.command(i, depth + 1).map_err(|mut r| {
                    r.reason = format!(
                        "{} (it is an argument of `{launcher}`, which may run it; {})",
                        r.reason,
                        vouch(launcher)
                    );
                    r
                })?;
                // The command judged from here covers the rest of the words.
                return Ok(());
            }
        }
        Ok(())
    }

    /// Finds the command a wrapper runs and judges it with its own arguments.
    fn wrapper(&self, at: usize, w: &Wrapper, depth: usize) -> Result<Judgement, Rejection> {
        let program = &self.words[at];
        let mut start = at + 1;
        if !w.lead.is_empty() {
            let first = self.words[at + 1..].iter().position(|a| !is_option(a));
            match first.map(|i| at + 1 + i) {
                Some(i) if w.lead.contains(&self.words[i].as_str()) => start = i + 1,
                // Not a launcher this way (`uv pip install`): judged as any other program.
                _ => {
                    self.search(at, at + 1, depth)?;
                    return Ok(self.program_judgement(at, at + 1, Kind::Program));
                }
            }
        }
        if depth >= MAX_DEPTH {
            return Err(rejection(program, TOO_DEEP));
        }
        let mut operands = w.operands;
        let (mut pending, mut options_done) = (false, false);
        for i in start..self.words.len() {
            let a = &self.words[i];
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
                return self.command(i, depth + 1);
            }
        }
        Err(rejection(program, NO_COMMAND))
    }

    /// An interpreter must be given a script before the prompt, and no inline code or
    /// module. Returns the script's index.
    fn interpreter(&self, at: usize, it: &Interpreter) -> Result<usize, Rejection> {
        let program = &self.words[at];
        let args = &self.words[at + 1..];
        refuse_code_options(program, &it.opts, args)?;
        let script_at = |i: usize| match args.get(i).map(String::as_str) {
            None => Err(rejection(program, NO_SCRIPT)),
            Some(s) if has_placeholder(s) => Err(rejection(program, NO_SCRIPT)),
            Some("-") => Err(rejection(program, FROM_STDIN)),
            Some(_) => Ok(at + 1 + i),
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
                    Opt::File { .. } => return Err(rejection(program, MODULE)),
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
                _ => return Ok(at + 1 + i),
            }
        }
        Err(rejection(program, NO_SCRIPT))
    }

    /// awk/sed need their program from a file, and the prompt behind a `--`: GNU getopt would
    /// otherwise read a prompt like `--expression=1e id` as an option, i.e. as code.
    fn program_text(&self, at: usize, o: &Opts) -> Result<(), Rejection> {
        let program = &self.words[at];
        let (mut has_file, mut pending, mut options_done) = (false, false, false);
        for a in &self.words[at + 1..] {
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
                    Opt::Code(c) => {
                        return Err(rejection(program, format!("{PROGRAM_TEXT} (`{c}`)")))
                    }
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

    /// A tool that runs code from an argument: refused outright, or when given an option
    /// that runs code (anywhere before `--`, in a cluster, abbreviated or glued).
    fn code_tool(&self, at: usize, tool: &CodeTool) -> Result<(), Rejection> {
        let program = &self.words[at];
        if let Some(why) = tool.always {
            return Err(rejection(program, why));
        }
        let args = &self.words[at + 1..];
        if tool.bundled_first {
            if let Some(first) = args.first().filter(|a| !a.starts_with('-')) {
                if let Some(c) = first.chars().find(|c| tool.opts.code_short.contains(*c)) {
                    return Err(rejection(
                        program,
                        format!("runs a program or code (`{c}` in `{first}`)"),
                    ));
                }
            }
        }
        for a in args {
            if a == "--" {
                break;
            }
            if !is_option(a) {
                continue;
            }
            // Every letter of a cluster is looked at: a getopt option taking the rest of
            // the cluster is not trusted to hide a code option behind it.
            let code = match classify(a, &tool.opts) {
                Opt::Code(c) => Some(c),
                _ if !a.starts_with("--") => a
                    .chars()
                    .skip(1)
                    .find(|c| tool.opts.code_short.contains(*c))
                    .map(|c| format!("-{c}")),
                _ => None,
            };
            if let Some(c) = code {
                return Err(rejection(
                    program,
                    format!("runs a program or code with `{c}`"),
                ));
            }
        }
        Ok(())
    }
}

/// How to vouch for a launcher the policy does not know.
fn vouch(launcher: &str) -> String {
    let name = Path::new(launcher)
        .file_name()
        .map_or(launcher.into(), |n| n.to_string_lossy());
    format!("if `{name}` never runs its arguments as code, name it in STEP_AGENT_TRUST")
}

/// Refuses inline code anywhere in the arguments, written as a whole option word
/// (`-e`, `--eval=…`); clusters are only read before the script, where they are options.
fn refuse_code_options(program: &str, o: &Opts, args: &[String]) -> Result<(), Rejection> {
    for a in args.iter().filter(|a| is_option(a)) {
        let whole_word = a.starts_with("--")
            || a.len() == 2
            || super::opts::in_long(o, super::opts::long_name(a));
        if let (true, Opt::Code(c)) = (whole_word, classify(a, o)) {
            return Err(rejection(program, format!("runs inline code (`{c}`)")));
        }
    }
    Ok(())
}
