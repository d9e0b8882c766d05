//! The programs the policy knows by what they do with their arguments: shells, programs that
//! hand them to a shell, wrappers and launchers (which run a command given after their own
//! options), interpreters (which run a script, or inline code), awk and sed (a program from
//! the command line), and tools with an option or an operand that runs code.

use super::opts::{opts, Opts};

/// Shells, and the shell builtins that only make sense as a shell's first word.
#[rustfmt::skip]
pub(super) const SHELLS: &[&str] = &[
    "sh", "bash", "rbash", "dash", "ash", "zsh", "ksh", "mksh", "lksh", "pdksh", "oksh", "loksh",
    "posh", "hush", "yash", "fish", "csh", "tcsh", "pwsh", "powershell", "nu", "xonsh", "elvish",
    "osh", "ysh", "busybox", "toybox", "eval", "exec", "command", "builtin",
];

/// Builtins: they are no program on PATH, so as an argument of another program they name
/// nothing that could run.
pub(super) const BUILTINS: &[&str] = &["eval", "exec", "command", "builtin"];

/// Programs that always hand their arguments (or their session) to a shell.
#[rustfmt::skip]
pub(super) const ALWAYS_SHELL: &[&str] = &[
    "watch", "ssh", "rsh", "slogin", "autossh", "mosh", "su", "runuser", "script", "at", "batch",
    "parallel", "sg", "newgrp", "tmux", "screen", "xterm",
];

/// Multi-call binaries pick the applet from argv[0], so a symlink to them runs the applet
/// its *word* names: the resolved name says nothing (and the word is judged anyway).
pub(super) const MULTI_CALL: &[&str] = &["busybox", "toybox"];

/// A program that runs another: judged by looking through to the command it runs.
pub(super) struct Wrapper {
    pub names: &'static [&'static str],
    /// `code` options here are the ones that start a shell or parse a command line.
    pub opts: Opts,
    /// Positional operands before the command: timeout's DURATION, flock's FILE…
    pub operands: usize,
    /// `NAME=value` words before the command are settings, not the command (env, sudo).
    pub assignments: bool,
    /// The subcommand that makes it a launcher (`uv run`); without it, it is no wrapper.
    pub lead: &'static [&'static str],
}

const fn wrap(names: &'static [&'static str], opts: Opts, operands: usize) -> Wrapper {
    Wrapper {
        names,
        opts,
        operands,
        assignments: false,
        lead: &[],
    }
}

impl Wrapper {
    const fn assigning(self) -> Self {
        Wrapper {
            assignments: true,
            ..self
        }
    }

    const fn led_by(self, lead: &'static [&'static str]) -> Self {
        Wrapper { lead, ..self }
    }
}

#[rustfmt::skip]
pub(super) const WRAPPERS: &[Wrapper] = &[
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
    wrap(&["nohup", "setsid", "catchsegv", "unbuffer", "eatmydata", "nocache", "firejail", "valgrind",
           "chronic", "ifne", "linux32", "linux64"],
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
    // Launchers found in review (issue 12): each runs the command after its options.
    wrap(&["fakeroot"], opts("lisb", &["lib", "faked"]), 0),
    wrap(&["dbus-run-session"], opts("", &["config-file", "dbus-daemon"]), 0),
    wrap(&["xvfb-run"], opts("efnpsw", &[
        "error-file", "auth-file", "server-num", "xauth-protocol", "server-args", "wait",
    ]), 0),
    wrap(&["setarch"], opts("", &[]), 1),
    wrap(&["systemd-inhibit"], opts("", &["what", "who", "why", "mode"]), 0),
    // npx runs a package's program; `-c`/`--call` runs a command line through a shell.
    wrap(&["npx", "pnpx"], opts("p", &["package", "workspace", "userconfig"]).code("c", &["call"]), 0),
    wrap(&["bunx"], opts("p", &["package"]), 0),
    wrap(&["uvx"], opts("p", &["from", "with", "python", "with-requirements", "index"]), 0),
    wrap(&["uv"], opts("p", &["with", "python", "with-requirements", "project", "directory", "env-file"]), 0)
        .led_by(&["run"]),
    wrap(&["poetry", "pipenv", "pdm", "hatch", "rye", "pipx", "doppler"], opts("", &[]), 0).led_by(&["run"]),
    wrap(&["conda", "mamba", "micromamba"], opts("np", &["name", "prefix"]), 0).led_by(&["run"]),
    wrap(&["mise", "rtx"], opts("C", &["cd"]), 0).led_by(&["exec", "x"]),
];

/// A program that runs a script named by its first operand.
pub(super) struct Interpreter {
    pub names: &'static [&'static str],
    /// `code`: inline code; `file`: a module runner (`python -m`), refused: the policy cannot
    /// tell what a module does with its arguments (`-m timeit` runs them).
    pub opts: Opts,
    /// First operands that are inline code, a REPL or a shell (`deno eval`, `bun exec`).
    pub code_words: &'static [&'static str],
    /// First operands after which the script follows (`deno run agent.ts`).
    pub run_words: &'static [&'static str],
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
pub(super) const INTERPRETERS: &[Interpreter] = &[
    interp(&["python", "pypy", "ipython", "micropython", "jython", "graalpy"],
        opts("WXQ", &["check-hash-based-pycs"]).code("c", &[]).file("m", &[])),
    // `-n`/`-p` read the operands through the two-argument `open`, which runs one ending in
    // `|` as a shell command: a prompt among them would be code.
    interp(&["perl"], opts("IMm", &[]).code("eEnp", &[])),
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
    interp(&["guile"], opts("lLx", &[]).code("ce", &[])),
    interp(&["racket"], opts("lt", &[]).code("eiu", &["eval", "repl"])),
    interp(&["sbcl"], opts("", &["core", "dynamic-space-size", "load"]).code("", &["eval"])),
    interp(&["elixir", "iex"], opts("r", &["require", "erl", "sname", "name", "cookie"]).code("e", &["eval"])),
    interp(&["erl"], opts("", &["pa", "pz", "sname", "name", "setcookie", "config"]).code("", &["eval", "s", "run"])),
    interp(&["groovy", "scala", "kotlin", "jshell"], opts("", &["classpath", "cp"]).code("e", &["execute"])),
    interp(&["clojure", "clj", "bb"], opts("", &[]).code("eMXT", &["eval", "main"])),
    interp(&["ghc", "runghc", "runhaskell"], opts("", &[]).code("e", &[])),
    interp(&["octave"], opts("p", &["path"]).code("", &["eval"])),
];

/// awk and sed: the first operand is the program unless it comes from a file (`-f`).
#[rustfmt::skip]
pub(super) const PROGRAM_TEXT_TOOLS: &[(&[&str], Opts)] = &[
    (&["awk", "gawk", "mawk", "nawk", "goawk", "busybox-awk"],
        opts("FvWilZ", &["assign", "field-separator", "include", "load"])
            .code("e", &["source"]).file("fE", &["file", "exec"])),
    (&["sed", "gsed"], opts("l", &["line-length"]).code("e", &["expression"]).file("f", &["file"])),
];

/// A tool that runs code given in some option, or in any argument.
pub(super) struct CodeTool {
    pub names: &'static [&'static str],
    /// Why the tool is refused whatever its arguments, when any argument can be code.
    pub always: Option<&'static str>,
    /// `code` options run a program or code.
    pub opts: Opts,
    /// The first operand is an option cluster without its dash (tar's `cfI`).
    pub bundled_first: bool,
}

const fn always(names: &'static [&'static str], why: &'static str) -> CodeTool {
    CodeTool {
        names,
        always: Some(why),
        opts: opts("", &[]),
        bundled_first: false,
    }
}

const fn with(names: &'static [&'static str], opts: Opts) -> CodeTool {
    CodeTool {
        names,
        always: None,
        opts,
        bundled_first: false,
    }
}

#[rustfmt::skip]
pub(super) const CODE_TOOLS: &[CodeTool] = &[
    always(&["make", "gmake", "bmake", "pmake", "remake"],
        "runs code from its arguments (`--eval`/`-E`, and a `VAR:=$(shell …)` operand)"),
    always(&["gdb", "gdb-multiarch", "cgdb", "lldb"],
        "runs debugger commands from its arguments (`-ex`, `-eval-command`, `-x`, `-o`), shell commands included"),
    always(&["vim", "vi", "nvim", "view", "rview", "ex", "rvim", "gvim", "evim", "vimdiff", "nex", "elvis"],
        "runs editor commands from its arguments (`+cmd`, `-c`, `--cmd`), and those run shell commands (`:!`)"),
    always(&["emacs", "emacsclient", "xemacs"],
        "runs Lisp from its arguments (`--eval`, `-l`, `-f`), and Lisp runs programs"),
    always(&["sqlite3", "sqlite", "duckdb", "litecli"],
        "reads its arguments as SQL and dot-commands, and `.shell`/`.system` run shell commands"),
    always(&["git"],
        "runs commands from its arguments (`-c core.sshCommand=…`, `-c alias.x=!…`, `--upload-pack`, `rebase --exec`)"),
    always(&["npm", "pnpm", "yarn"],
        "runs package scripts through a shell and packages by name (`run`, `exec`, `dlx`)"),
    always(&["dc"], "runs shell commands from its program (`!`)"),
    always(&["less", "more", "most"], "runs its `+` arguments as commands, and `!` runs shell commands"),
    always(&["nix-shell", "nix"], "runs a shell command from its arguments (`--run`, `--command`, `-c`)"),
    with(&["find", "gfind", "bfs"], opts("", &[]).code("", &["exec", "execdir", "ok", "okdir"])),
    with(&["fd", "fdfind"], opts("", &[]).code("xX", &["exec", "exec-batch"])),
    CodeTool {
        names: &["tar", "gtar", "bsdtar"],
        always: None,
        opts: opts("fCTbHKNgLV", &["file", "directory", "files-from", "exclude", "format", "owner", "group"])
            .code("IF", &[
                "use-compress-program", "to-command", "rsh-command", "info-script", "new-volume-script",
                "checkpoint-action", "rmt-command",
            ]),
        bundled_first: true,
    },
    with(&["zip"], opts("bn", &["temp-path", "suffixes"]).code("", &["TT", "unzip-command"])),
    // Unsafe mode lets a document run shell commands (`.sy`, `.pso`, `.pi`).
    with(&["groff", "troff", "nroff"], opts("dfFIKmMnoPrTwWx", &[]).code("U", &["unsafe"])),
    // `-o` passes an ssh option (ProxyCommand, LocalCommand, KnownHostsCommand run commands);
    // `-S` and `-D` name a program to run; sftp's `-b` reads commands, `!` among them.
    with(&["scp"], opts("cFiJlPX", &[]).code("oSD", &[])),
    with(&["sftp"], opts("BcFiJlPRsX", &[]).code("oSDb", &[])),
    with(&["rsync"], opts("BfTM", &["filter", "exclude", "include", "temp-dir", "password-file"])
        .code("e", &["rsh", "rsync-path"])),
    with(&["sshfs"], opts("p", &[]).code("o", &["ssh-command"])),
];
