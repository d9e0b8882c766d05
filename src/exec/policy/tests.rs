//! The policy's table: each class of command it refuses, with more cases than the review that
//! found them, and the commands that must keep working.

use std::path::{Path, PathBuf};

use super::tables::{ALWAYS_SHELL, SHELLS};
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
    ("python3 -W ignore -X dev agent.py", true),
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
    // ... with version or distribution suffixes (issue 12).
    ("bash-static -ec", false), ("sh.distrib -ec", false), ("zsh-static -c", false),
    ("mksh-static -c", false), ("lksh -c", false), ("dash.static -c", false),
    ("/usr/bin/bash-static", false), ("ksh93 -c", false), (".bash-wrapped", false),
    ("busybox-static sh", false), ("nice bash-static -ec", false),
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
    // ... clustered as getopt reads them (issue 12).
    ("ruby -we", false), ("node -pe", false), ("lua -we", false), ("php -nr", false),
    ("perl -wnE", false), ("python3 -Bc", false), ("guile -c", false), ("racket -e", false),
    ("elixir -e", false), ("erl -eval", false), ("groovy -e", false), ("clojure -e", false),
    ("sbcl --eval", false), ("octave --eval", false), ("ghc -e", false),
    // ... module runners (issue 12): what a module does with its arguments cannot be judged.
    ("python3 -m timeit -n 1", false), ("python3 -mtimeit", false),
    ("python3 -I -m pdb", false), ("python3 -m my.agent", false), ("pypy3 -m timeit", false),
    ("python3.12 -Wignore -m json.tool", false), ("ipython -m x", false),
    ("micropython -m x", false), ("nice python3 -m timeit", false),
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
    // Launchers, known by name or not (issue 12): a shell among the arguments of a program
    // the policy does not know is refused; an interpreter or tool there is judged as the
    // command it would be.
    ("fakeroot sh -ec", false), ("nice -n 1 fakeroot bash -ec", false),
    ("env A=1 fakeroot -- sh -ec", false), ("dbus-run-session -- perl -E", false),
    ("find . -maxdepth 0 -exec sh -ec {prompt} ;", false), ("fakeroot {prompt}", false),
    ("fakeroot", false), ("dbus-run-session", false), ("xvfb-run -a sh -c", false),
    ("setarch x86_64 bash", false), ("linux64 bash", false),
    ("somelauncher sh -ec", false), ("somelauncher --flag zsh", false),
    ("mylauncher -- /bin/bash", false), ("mylauncher python3 -Ic", false),
    ("mylauncher 'sh -c'", false), ("mylauncher 'python3 -c'", false),
    ("mylauncher node --eval", false), ("mylauncher make -E", false),
    ("mylauncher gdb -ex", false), ("mylauncher -v ruby -e", false),
    ("uv run python3 -c", false), ("uv run {prompt}", false), ("poetry run bash", false),
    ("npx --yes cowsay", true), ("uv run agent.py", true), ("uv pip list", true),
    ("fakeroot python3 agent.py", true), ("xvfb-run -a myagent", true),
    ("dbus-run-session -- myagent", true), ("mylauncher myagent --flag x", true),
    // Tools with an option or operand that runs code (issue 12).
    ("make -E", false), ("make", false), ("gmake -f Makefile", false),
    ("gdb -batch -nx -ex", false), ("lldb -o", false), ("gdb-multiarch -x cmds", false),
    ("vim -Nu NONE -es --cmd", false), ("ex +{prompt}", false), ("nvim --headless -c", false),
    ("vim.tiny -es", false), ("view", false), ("emacs --batch --eval", false),
    ("emacsclient -e", false), ("sqlite3 :memory:", false), ("sqlite3 db.sqlite", false),
    ("duckdb", false), ("npx --yes --call", false), ("npx -c", false), ("npx {prompt}", false),
    ("npx --call=x", false), ("pnpx -c", false),
    ("tar -c -f /dev/null -I", false), ("tar --use-compress-program", false),
    ("tar cfI x.tar", false), ("tar -cf x.tar --to-command=x", false),
    ("tar -c -f x --checkpoint-action=exec=x", false), ("tar -cf x.tar --use-comp x", false),
    ("tar -xI x -f y", false), ("bsdtar --use-compress-program x", false),
    ("zip x.zip -T --unzip-command", false), ("zip -TT", false), ("zip x.zip --unzip-c=x", false),
    ("scp -o ProxyCommand={prompt} a b", false), ("scp -oProxyCommand=x a b", false),
    ("scp -S prog a b", false), ("scp -rpo x a b", false), ("sftp -b", false),
    ("sftp -D /bin/x host", false), ("rsync -e", false), ("rsync -avze ssh", false),
    ("rsync --rsh=x", false), ("rsync --rsync-path=x", false), ("sshfs -o ssh_command=x", false),
    ("find . -exec", false), ("find . -execdir", false), ("find . -ok", false),
    ("fd -x", false), ("fd --exec-batch", false), ("git -c", false), ("git commit -m", false),
    ("npm run", false), ("pnpm dlx", false), ("yarn", false), ("dc -e", false),
    ("less", false), ("nix-shell --run", false), ("make -f {prompt_file}", false),
    ("tar -cf out.tar", true), ("zip -r out.zip", true), ("find . -name", true),
    ("rsync -av src", true), ("scp -P 22 a", true),
    // Found by a later hostile trial: perl's -n/-p open their operands with the two-argument
    // open (`cmd|` runs), a response file is read as options, groff's unsafe mode runs `.sy`.
    ("perl -p /dev/null", false), ("perl -n /dev/null", false), ("perl -ni /dev/null", false),
    ("perl -lne x", false), ("perl -p0 /dev/null {prompt_file}", false),
    ("xargs -a /dev/null perl -p /dev/null", false), ("mylauncher perl -p", false),
    ("gcc @{prompt_file}", false), ("java @{prompt}", false), ("clang -x c @{prompt_file}", false),
    ("groff -U {prompt_file}", false), ("troff --unsafe {prompt_file}", false),
    ("groff -Tutf8 {prompt_file}", true), ("perl -w agent.pl", true),
    // Known agents: trusted with any of their own flags (issue 12; `-c`/`-e` were refused
    // before as a blanket rule), also behind wrappers.
    ("codex exec -c model_reasoning_effort=high", true), ("claude -c -p", true),
    ("gemini -e none -p", true), ("openclaw agent -e", true),
    ("claude -p --model opus --allowedTools Bash Read", true),
    ("claude -p --dangerously-skip-permissions --add-dir ../lib", true),
    ("codex -c x=1 exec --full-auto", true), ("codex -e", true), ("codex e", true),
    ("aider --yes-always --model sonnet", true), ("aider --message-file {prompt_file}", true),
    ("aider -m", true), ("goose run --with-builtin developer", true),
    ("goose run -i {prompt_file}", true), ("opencode run --model x/y", true),
    ("cursor-agent -p --force", true), ("qwen -p", true), ("qwen -y -p", true),
    ("env A=1 timeout 600 nice claude -p", true), ("sudo -u bob claude -p", true),
    ("claude -p {prompt}", true), ("claude -p -- {prompt}", true),
    ("gemini -p {prompt}", true), ("gemini --prompt={prompt}", true),
    ("claude -p 'Task: {prompt}'", true), ("openclaw agent --message {prompt}", true),
    // ... but only where they take a prompt, and with the prompt where they take it.
    ("claude mcp add x", false), ("codex sandbox linux", false), ("codex mcp add x --", false),
    ("gemini mcp add x", false), ("goose session", false), ("goose", false),
    ("opencode serve", false), ("opencode", false), ("openclaw cron add", false),
    ("openclaw", false), ("claude -p --settings {prompt}", false),
    ("claude --settings {prompt_file} -p", false), ("codex exec --model {prompt}", false),
    ("openclaw agent exec --message-file {prompt}", false), ("aider --read {prompt}", false),
    ("openclaw agent --message-file={prompt}", false), ("claude -p --mcp-config={prompt}", false),
    // A trailing option that takes a value would take the runner's `--` (commander does).
    ("claude -p --settings", false), ("codex exec -c", false), ("gemini -p -m", false),
    ("openclaw agent exec --message-file", false), ("aider --message-file", false),
    // The prompt as the program; the legacy `-c`/`-e` rule for programs it does not know.
    ("{prompt}", false), ("myagent -c x", false), ("python3 agent.py -e", false),
];

fn words(line: &str) -> Vec<String> {
    shell_words::split(line).expect("test command lines parse")
}

fn no_resolve(_: &str) -> Option<PathBuf> {
    None
}

fn judged(line: &str) -> Result<Judgement, Rejection> {
    judge(&words(line), &no_resolve, &Trust::default())
}

#[test]
fn table() {
    let mut failures = Vec::new();
    for &(line, allowed) in CASES {
        let verdict = judged(line);
        if verdict.is_ok() != allowed {
            failures.push(format!(
                "{line:?}: expected allowed={allowed}, got {verdict:?}"
            ));
        }
    }
    // Every shell and always-shell name is refused, alone and with a script, and as the
    // argument of a program the policy does not know.
    for name in SHELLS.iter().chain(ALWAYS_SHELL) {
        let mut lines = vec![name.to_string(), format!("{name} script")];
        if !super::tables::BUILTINS.contains(name) {
            lines.push(format!("somelauncher {name}"));
        }
        for line in lines {
            if judged(&line).is_ok() {
                failures.push(format!("{line:?} was allowed"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn each_class_has_more_cases_than_the_review_found() {
    // The issue listed 5 launchers, 2 clustered, 5 suffixed shells, 1 module runner and 9
    // code-running tools; the table holds more of each.
    let count = |needles: &[&str]| {
        CASES
            .iter()
            .filter(|(l, ok)| !ok && needles.iter().any(|n| l.contains(n)))
            .count()
    };
    assert!(count(&["launcher", "fakeroot", "dbus-run", "xvfb", "-exec "]) > 10);
    assert!(count(&["-static", ".distrib", "lksh", "ksh93", "-wrapped"]) > 8);
    assert!(count(&[" -m", "-mtimeit"]) > 8);
    assert!(count(&["make", "gdb", "vim", "ex +", "sqlite", "npx", "tar", "zip", "scp"]) > 25);
}

/// (command line, the template the runner fills in)
#[rustfmt::skip]
const PLACES: &[(&str, &str)] = &[
    ("claude -p", "claude -p -- {prompt}"),
    ("claude -c -p", "claude -c -p -- {prompt}"),
    ("claude -p {prompt} --output-format json", "claude -p --output-format json -- {prompt}"),
    ("claude -p -- {prompt}", "claude -p -- {prompt}"),
    ("claude -p --", "claude -p -- {prompt}"),
    ("codex exec -c model_reasoning_effort=high", "codex exec -c model_reasoning_effort=high -- {prompt}"),
    ("codex exec {prompt}", "codex exec -- {prompt}"),
    ("gemini -e none -p", "gemini -e none --prompt={prompt}"),
    ("gemini -p {prompt} -y", "gemini --prompt={prompt} -y"),
    ("gemini -p{prompt}", "gemini --prompt={prompt}"),
    ("gemini", "gemini --prompt={prompt}"),
    ("gemini -i", "gemini --prompt-interactive={prompt}"),
    ("qwen -p", "qwen --prompt={prompt}"),
    ("aider --yes-always", "aider --yes-always --message={prompt}"),
    ("aider -m", "aider --message={prompt}"),
    ("aider {prompt}", "aider --message={prompt}"),
    ("aider --message-file {prompt_file}", "aider --message-file {prompt_file}"),
    ("goose run", "goose run --text={prompt}"),
    ("goose run -t {prompt}", "goose run --text={prompt}"),
    ("goose run -i {prompt_file}", "goose run -i {prompt_file}"),
    ("opencode run", "opencode run -- {prompt}"),
    ("cursor-agent -p --force", "cursor-agent -p --force -- {prompt}"),
    ("openclaw agent exec --timeout 0 --message-file {prompt_file}",
     "openclaw agent exec --timeout 0 --message-file {prompt_file}"),
    ("openclaw agent exec", "openclaw agent exec -- {prompt}"),
    ("openclaw agent --session-key s --message", "openclaw agent --session-key s --message={prompt}"),
    ("openclaw agent --session-key s -m {prompt}", "openclaw agent --session-key s --message={prompt}"),
    ("timeout 600 openclaw agent -m", "timeout 600 openclaw agent --message={prompt}"),
    ("env A=1 nice claude -p", "env A=1 nice claude -p -- {prompt}"),
    ("myagent --message", "myagent --message {prompt}"),
    ("myagent --message={prompt} --json", "myagent --message={prompt} --json"),
];

#[test]
fn known_agents_get_the_prompt_where_it_cannot_be_an_option() {
    let mut failures = Vec::new();
    for &(line, want) in PLACES {
        match judged(line) {
            Ok(j) if j.template == words(want) => {}
            other => failures.push(format!("{line:?}: want {want:?}, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_prompt_that_starts_with_a_dash_is_never_an_option() {
    let problem = |line: &str, prompt: &str| prompt_problem(&judged(line).unwrap(), prompt);
    for agent in [
        "claude -p",
        "codex exec",
        "gemini -p",
        "aider",
        "goose run",
        "opencode run",
        "cursor-agent -p",
        "qwen -p",
        "openclaw agent exec",
        "openclaw agent -m",
    ] {
        for prompt in [
            "--help",
            "--dangerously-skip-permissions",
            "--settings={\"x\":1}",
            "-p",
        ] {
            assert_eq!(problem(agent, prompt), None, "{agent} with {prompt}");
        }
    }
    for (line, prompt) in [
        ("myagent --message", "--help"),
        ("myagent", "-x"),
        ("myagent {prompt} --json", "--help"),
        ("python3 -- agent.py {prompt}", "--help"),
        ("python3 agent.py", "--help"),
    ] {
        let why = problem(line, prompt).unwrap_or_else(|| panic!("{line} took {prompt}"));
        assert!(
            why.contains("STEP_AGENT_CMD") && why.contains("option"),
            "{why}"
        );
    }
    for (line, prompt) in [
        ("myagent -- {prompt}", "--help"),
        ("myagent --message={prompt}", "--help"),
        ("python3 agent.py -- {prompt}", "--help"),
        ("myagent", " --help"),
        ("myagent", "help -x"),
    ] {
        assert_eq!(problem(line, prompt), None, "{line} with {prompt:?}");
    }
    // aider runs `/…` and `!…` as its own commands, shell commands among them.
    for prompt in ["/run id", "!id", "  /test x"] {
        let why = problem("aider --yes", prompt).expect("refused");
        assert!(
            why.contains("aider") && why.contains("STEP_AGENT_CMD"),
            "{why}"
        );
    }
    assert_eq!(problem("claude -p", "/help"), None);
}

#[test]
fn trust_vouches_only_for_programs_the_policy_cannot_judge() {
    let trust = Trust::parse(" mytool , /opt/x/other,,");
    assert_eq!(trust.entries(), ["mytool", "/opt/x/other"]);
    let judge_with = |line: &str, trust: &Trust| judge(&words(line), &no_resolve, trust);
    assert!(judge_with("mytool --lang bash", &Trust::default()).is_err());
    let j = judge_with("mytool --lang bash -c x", &trust).unwrap();
    assert_eq!(j.kind, Kind::Trusted);
    assert!(judge_with("nice /usr/local/bin/mytool sh", &trust).is_ok());
    assert!(judge_with("/opt/x/other python3 -c", &trust).is_ok());
    assert!(judge_with("other python3 -c", &trust).is_err());
    // A shell, an interpreter or a tool is judged by what it is, whatever the list says.
    let trust = Trust::parse("bash,python3,make,fakeroot");
    assert!(judge_with("bash", &trust).is_err());
    assert!(judge_with("python3 -c", &trust).is_err());
    assert!(judge_with("make -E", &trust).is_err());
    assert!(judge_with("fakeroot sh -ec", &trust).is_err());
}

#[test]
fn resolved_path_is_judged_too() {
    let resolve = |word: &str| -> Option<PathBuf> {
        match word {
            "myagent" | "claude" => Some(PathBuf::from("/usr/bin/bash")),
            "mypy" => Some(PathBuf::from("/usr/bin/python3.12")),
            "mynice" => Some(PathBuf::from("/usr/bin/nice")),
            "sh" | "timeout" => Some(PathBuf::from("/bin/busybox")),
            "openclaw" => Some(PathBuf::from("/opt/openclaw/bin/openclaw")),
            "myclaude" => Some(PathBuf::from("/opt/claude/bin/claude")),
            _ => None,
        }
    };
    let judge = |line: &str| judge(&words(line), &resolve, &Trust::default());
    let rej = judge("myagent --message").unwrap_err();
    assert_eq!(rej.program, "myagent");
    assert!(
        rej.reason.contains("is a shell") && rej.reason.contains("/usr/bin/bash"),
        "{rej}"
    );
    assert!(judge("nice -n 5 myagent").is_err());
    assert!(judge("mypy -c").is_err());
    assert!(judge("mypy").is_err());
    assert!(judge("mypy agent.py").is_ok());
    assert!(judge("mynice bash").is_err());
    assert!(judge("mynice openclaw agent").is_ok());
    // An argument of a launcher is judged by what it resolves to as well.
    assert!(judge("somelauncher myagent -x").is_err());
    assert!(judge("somelauncher mypy -c").is_err());
    assert!(judge("somelauncher mypy agent.py").is_ok());
    // A busybox applet is the applet its word names.
    assert!(judge("timeout 600 openclaw agent").is_ok());
    assert!(judge("sh agent.sh").is_err());
    // A known agent's name on a shell is a shell.
    assert!(judge("claude -p").is_err());
    assert!(matches!(judge("myclaude -p").unwrap().kind, Kind::Agent(a, _) if a.name == "claude"));
}

#[test]
fn a_shell_known_by_what_it_is_is_refused_under_any_name() {
    struct Shells;
    impl Lookup for Shells {
        fn resolve(&self, word: &str) -> Option<PathBuf> {
            Some(Path::new("/opt/bin").join(word))
        }
        fn is_shell_file(&self, real: &Path) -> bool {
            real.ends_with("helper")
        }
    }
    let rej = judge(
        &words("fakeroot-ng ./helper -x"),
        &Shells,
        &Trust::default(),
    )
    .unwrap_err();
    assert_eq!(rej.program, "./helper");
    let rej = judge(&words("helper -x"), &Shells, &Trust::default()).unwrap_err();
    assert!(rej.reason.contains("is a shell"), "{rej}");
    assert!(judge(&words("nice helper"), &Shells, &Trust::default()).is_err());
    assert!(judge(&words("helper2 -x"), &Shells, &Trust::parse("helper")).is_ok());
    assert!(judge(&words("helper -x"), &Shells, &Trust::parse("helper")).is_err());
}

#[test]
fn rejections_name_the_program_and_say_why() {
    for &(line, _) in CASES.iter().filter(|(_, allowed)| !allowed) {
        let Err(rej) = judged(line) else {
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
    let rej = judged("nice -n 10 bash").unwrap_err();
    assert_eq!(
        rej.to_string(),
        "`bash` is a shell: it would run the prompt as shell code"
    );
    let rej = judged("fakeroot-ng sh -ec").unwrap_err();
    assert!(rej.reason.contains("STEP_AGENT_TRUST"), "{rej}");
}
