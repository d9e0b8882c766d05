//! Starting an agent process: its program, arguments, environment, folder and standard streams,
//! in its own process group, with a set-up step run in the child before `exec`.
//!
//! On Linux the child is made the way `posix_spawn` makes it: `clone(CLONE_VM | CLONE_VFORK)`,
//! a child that borrows the runner's memory until it execs. std's `Command` forks instead as
//! soon as a `pre_exec` step is asked for, and a fork write-protects every page of the runner:
//! each page the runner then touches costs a fault. On a plan of a thousand steps that was
//! hundreds of faults per step, about a millisecond; see BENCHMARKS.md. Elsewhere (macOS) the
//! agent is started by std's `Command`, fork and all.
//!
//! A child that shares the runner's memory may not allocate, lock or unwind: everything it
//! needs is made before it exists, and it makes raw system calls only.

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Why the child's set-up failed without an `errno` to say so: the runner died while the agent
/// was being started (the child's parent is no longer the runner).
pub const RUNNER_GONE: i32 = -1;

/// What to start. `setup` is the child's set-up step: it runs between the child's creation and
/// its `exec`, must be async-signal-safe and allocation-free, and returns an `errno`, or
/// [`RUNNER_GONE`], on failure.
pub struct Spec<'a, F> {
    pub program: &'a Path,
    /// `argv[0]`: the program as the user wrote it.
    pub arg0: &'a str,
    pub args: &'a [String],
    pub cwd: &'a Path,
    /// Variables set on top of this process's environment.
    pub env: &'a [(&'a str, &'a OsStr)],
    pub setup: F,
}

/// A started agent: its pid (also its process group's id) and the read ends of its stdout and
/// stderr. Waited for with `waitpid` by the thread that started it.
pub struct Agent {
    pub pid: u32,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl Agent {
    /// The agent's exit status if it has exited, without waiting.
    pub fn try_wait(&self) -> io::Result<Option<std::process::ExitStatus>> {
        wait(self.pid, libc::WNOHANG)
    }

    /// Waits for the agent to exit.
    pub fn wait(&self) -> io::Result<std::process::ExitStatus> {
        loop {
            if let Some(status) = wait(self.pid, 0)? {
                return Ok(status);
            }
        }
    }
}

fn wait(pid: u32, flags: libc::c_int) -> io::Result<Option<std::process::ExitStatus>> {
    use std::os::unix::process::ExitStatusExt;
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    let mut status = 0;
    loop {
        // SAFETY: waitpid on one child of ours, with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &raw mut status, flags) };
        match r {
            0 => return Ok(None),
            r if r > 0 => return Ok(Some(std::process::ExitStatus::from_raw(status))),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Maps a child's failure code to the error `spawn` returns.
fn child_error(code: i32) -> io::Error {
    if code == RUNNER_GONE {
        io::Error::other("the runner died while starting the agent")
    } else {
        io::Error::from_raw_os_error(code)
    }
}

#[cfg(target_os = "linux")]
pub use linux::spawn;

#[cfg(not(target_os = "linux"))]
pub use portable::spawn;

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::{CString, OsStr};
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::ptr;

    use super::{child_error, Agent, Spec};

    /// The child's stack. It runs a few system calls and `execve`; glibc's `posix_spawn` gives
    /// its child 32 KiB plus the arguments' size, which are already laid out in memory here.
    const STACK: usize = 64 * 1024;

    /// Everything the child reads, made before it exists, and the one thing it writes.
    struct Child<'a> {
        program: &'a CString,
        argv: &'a [*const libc::c_char],
        envp: &'a [*const libc::c_char],
        cwd: &'a CString,
        stdin: RawFd3,
        setup: &'a (dyn Fn() -> Result<(), i32> + Sync),
        /// The `errno` (or `RUNNER_GONE`) the child failed with; 0 if it reached `exec`.
        error: i32,
    }

    /// The descriptors the child puts at 0, 1 and 2.
    type RawFd3 = [libc::c_int; 3];

    /// A pipe whose two ends are above the standard descriptors and close on exec.
    fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just made and are owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((above_stdio(read)?, above_stdio(write)?))
    }

    /// `fd`, moved above 2 if it is a standard descriptor (this process had one closed): the
    /// child's `dup2` onto 0, 1 and 2 must never overwrite a descriptor it has yet to copy.
    fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
        if fd.as_raw_fd() > 2 {
            return Ok(fd);
        }
        // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor; the old one closes when `fd` drops.
        let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
        if moved < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `moved` was just made and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(moved) })
    }

    fn c_string(bytes: &[u8]) -> io::Result<CString> {
        CString::new(bytes).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "an argument contains a NUL byte",
            )
        })
    }

    /// The environment the agent gets: this process's, with `set` on top.
    fn environment(set: &[(&str, &OsStr)]) -> io::Result<Vec<CString>> {
        let mut vars: Vec<CString> = Vec::new();
        for (key, value) in std::env::vars_os() {
            if set.iter().any(|(k, _)| OsStr::new(k) == key) {
                continue;
            }
            vars.push(pair(&key, &value)?);
        }
        for (key, value) in set {
            vars.push(pair(OsStr::new(key), value)?);
        }
        Ok(vars)
    }

    fn pair(key: &OsStr, value: &OsStr) -> io::Result<CString> {
        let mut bytes = Vec::with_capacity(key.len() + value.len() + 1);
        bytes.extend_from_slice(key.as_bytes());
        bytes.push(b'=');
        bytes.extend_from_slice(value.as_bytes());
        c_string(&bytes)
    }

    fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
        strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect()
    }

    /// Starts the agent; see the module's documentation.
    pub fn spawn<F>(spec: &Spec<F>) -> io::Result<Agent>
    where
        F: Fn() -> Result<(), i32> + Send + Sync + Copy + 'static,
    {
        let program = c_string(spec.program.as_os_str().as_bytes())?;
        let words = std::iter::once(spec.arg0.as_bytes())
            .chain(spec.args.iter().map(String::as_bytes))
            .map(c_string)
            .collect::<io::Result<Vec<_>>>()?;
        let argv = pointers(&words);
        let vars = environment(spec.env)?;
        let envp = pointers(&vars);
        let cwd = c_string(spec.cwd.as_os_str().as_bytes())?;
        let stdin = OwnedFd::from(std::fs::File::open("/dev/null")?);
        let stdin = above_stdio(stdin)?;
        let (out_read, out_write) = pipe()?;
        let (err_read, err_write) = pipe()?;
        let mut child = Child {
            program: &program,
            argv: &argv,
            envp: &envp,
            cwd: &cwd,
            stdin: [
                stdin.as_raw_fd(),
                out_write.as_raw_fd(),
                err_write.as_raw_fd(),
            ],
            setup: &spec.setup,
            error: 0,
        };
        let pid = start(&mut child)?;
        drop((stdin, out_write, err_write));
        // SAFETY: the child has exec'd or exited (CLONE_VFORK); nothing else writes this.
        let error = unsafe { ptr::read_volatile(&raw const child.error) };
        if error != 0 {
            let _ = super::wait(pid, 0);
            return Err(child_error(error));
        }
        Ok(Agent {
            pid,
            stdout: Some(out_read),
            stderr: Some(err_read),
        })
    }

    /// Makes the child, with every signal blocked around it: a signal handler of the runner's
    /// running in a child that shares its memory would act for the runner.
    fn start(child: &mut Child) -> io::Result<u32> {
        // SAFETY: an anonymous private mapping, unmapped below; the child runs on it only
        // while this thread waits (CLONE_VFORK).
        let stack = unsafe {
            libc::mmap(
                ptr::null_mut(),
                STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if stack == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sigset_t is plain data; sigfillset and pthread_sigmask fill and use it.
        let pid = unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&raw mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &raw const all, &raw mut old);
            // The stack grows down: the child starts at its top, 16-byte aligned.
            let top = stack.cast::<u8>().add(STACK);
            let pid = libc::clone(
                child_main,
                top.cast(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                ptr::from_mut(child).cast(),
            );
            let clone_error = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &raw const old, ptr::null_mut());
            libc::munmap(stack, STACK);
            if pid < 0 {
                return Err(clone_error);
            }
            pid
        };
        Ok(pid.unsigned_abs())
    }

    /// The child: restores default signal handling, sets up its descriptors, folder and process
    /// group, runs the set-up step and execs. Raw system calls only; never returns.
    extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `Child` the parent passed, alive while it waits for us.
        let child = unsafe { &mut *arg.cast::<Child>() };
        // SAFETY: each call is async-signal-safe; the pointers come from the parent's
        // `Child`, which outlives this process's use of them.
        unsafe {
            // A handler of the runner's must not run here (it would act on the runner's
            // memory), and std's ignored SIGPIPE must not reach the agent.
            for signal in 1..=64 {
                let mut action: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, ptr::null(), &raw mut action) == 0
                    && action.sa_sigaction != libc::SIG_DFL
                    && (action.sa_sigaction != libc::SIG_IGN || signal == libc::SIGPIPE)
                {
                    let mut default: libc::sigaction = std::mem::zeroed();
                    default.sa_sigaction = libc::SIG_DFL;
                    libc::sigaction(signal, &raw const default, ptr::null_mut());
                }
            }
            for (target, fd) in child.stdin.iter().enumerate() {
                if libc::dup2(*fd, target as libc::c_int) < 0 {
                    fail(child, errno());
                }
            }
            if libc::chdir(child.cwd.as_ptr()) != 0 {
                fail(child, errno());
            }
            if libc::setpgid(0, 0) != 0 {
                fail(child, errno());
            }
            if let Err(code) = (child.setup)() {
                fail(child, code);
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&raw mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &raw const empty, ptr::null_mut());
            libc::execve(
                child.program.as_ptr(),
                child.argv.as_ptr(),
                child.envp.as_ptr(),
            );
            fail(child, errno())
        }
    }

    fn errno() -> i32 {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    }

    /// Tells the parent why, and exits without running anything of the runner's.
    fn fail(child: &mut Child, code: i32) -> ! {
        // SAFETY: the parent reads this only once we are gone (CLONE_VFORK).
        unsafe {
            ptr::write_volatile(&raw mut child.error, code);
            libc::_exit(127)
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod portable {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    use super::{child_error, Agent, Spec};

    /// Starts the agent with std's `Command` (fork and exec); see the module's documentation.
    pub fn spawn<F>(spec: &Spec<F>) -> io::Result<Agent>
    where
        F: Fn() -> Result<(), i32> + Send + Sync + Copy + 'static,
    {
        let mut command = Command::new(spec.program);
        command
            .arg0(spec.arg0)
            .args(spec.args)
            .current_dir(spec.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (key, value) in spec.env {
            command.env(key, value);
        }
        let setup = spec.setup;
        // SAFETY: the closure runs between fork and exec; the set-up step is async-signal-safe.
        unsafe {
            command.pre_exec(move || setup().map_err(child_error));
        }
        let mut child = command.spawn()?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(io::Error::other("the agent's pipes were not made"));
        };
        Ok(Agent {
            pid: child.id(),
            stdout: Some(OwnedFd::from(stdout)),
            stderr: Some(OwnedFd::from(stderr)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::io::Read;
    use std::path::Path;

    use super::{spawn, Agent, Spec, RUNNER_GONE};

    fn run(
        program: &str,
        args: &[&str],
        setup: fn() -> Result<(), i32>,
    ) -> std::io::Result<(Agent, String)> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let env = [("SPAWN_TEST", OsStr::new("yes"))];
        let mut agent = spawn(&Spec {
            program: Path::new(program),
            arg0: "the-agent",
            args: &args,
            cwd: Path::new("/tmp"),
            env: &env,
            setup,
        })?;
        let mut out = String::new();
        std::fs::File::from(agent.stdout.take().unwrap()).read_to_string(&mut out)?;
        Ok((agent, out))
    }

    #[test]
    #[cfg(target_os = "linux")] // reads /proc
    fn the_child_starts_clean_in_its_own_group_folder_and_environment() {
        // What the runner blocks or ignores (std ignores SIGPIPE) must not reach the agent.
        let script = "grep -E '^Sig(Blk|Ign)' /proc/self/status; \
                      echo pgid=$(cut -d' ' -f5 /proc/self/stat) pid=$$; \
                      echo cwd=$PWD env=$SPAWN_TEST arg0=$0; exec 0<&-";
        let (agent, out) = run("/bin/sh", &["-c", script], || Ok(())).unwrap();
        let status = agent.wait().unwrap();
        assert!(status.success(), "{out}");
        assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
        let ignored = out
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:\t"))
            .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
            .unwrap();
        assert_eq!(ignored & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
        let line = out.lines().find(|l| l.starts_with("pgid=")).unwrap();
        let (group, own) = line.split_once(' ').unwrap();
        assert_eq!(
            group.trim_start_matches("pgid="),
            own.trim_start_matches("pid=")
        );
        assert!(out.contains("cwd=/tmp env=yes"), "{out}");
    }

    #[test]
    fn a_program_that_cannot_run_is_an_error_naming_why() {
        let error = run("/nonexistent/agent", &[], || Ok(())).err().unwrap();
        assert_eq!(error.raw_os_error(), Some(libc::ENOENT));
        let error = run("/", &[], || Ok(())).err().unwrap();
        assert_eq!(error.raw_os_error(), Some(libc::EACCES));
    }

    #[test]
    fn a_failing_setup_step_stops_the_child_before_exec_and_says_why() {
        let error = run("/bin/true", &[], || Err(RUNNER_GONE)).err().unwrap();
        assert!(error.to_string().contains("runner died"), "{error}");
        let error = run("/bin/true", &[], || Err(libc::EMFILE)).err().unwrap();
        assert_eq!(error.raw_os_error(), Some(libc::EMFILE));
    }
}
