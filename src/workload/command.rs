//! An external inference program as the workload: `--workload-cmd 'python3 infer.py --model
//! {model} --batch {batch} --count {inferences}'`.
//!
//! The command is split into words as a shell would split it, but no shell runs, so nothing in a
//! model name or path can inject commands. The energy window is the process's lifetime, unless
//! the program prints `EDGETUNE_BEGIN` and later `EDGETUNE_END` on stdout: then only the part
//! between the markers counts (model loading is left out) and its time is the run time.

use crate::device::DeviceError;
use crate::opt::Opt;
use crate::workload::{Meter, Workload, WorkloadRun};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Marker a program prints when the measured part starts.
pub const BEGIN_MARKER: &str = "EDGETUNE_BEGIN";
/// Marker a program prints when the measured part ends.
pub const END_MARKER: &str = "EDGETUNE_END";
/// Placeholders substituted in each word of the command.
pub const PLACEHOLDERS: [&str; 3] = ["{model}", "{batch}", "{inferences}"];
/// Lines of stderr kept for an error message.
const STDERR_TAIL: usize = 12;

/// A command line that cannot be used.
#[derive(Debug, Error)]
#[error("{flag}: {0}", flag = Opt::WorkloadCmd)]
pub struct CommandError(pub String);

/// An external program that runs inferences.
pub struct CommandWorkload {
    template: Vec<String>,
    model: String,
    timeout: Duration,
    interrupt: Option<Arc<AtomicBool>>,
}

impl CommandWorkload {
    /// Parses `cmd` for `model`; each run may take at most `timeout`; `interrupt` (a signal
    /// flag) stops a run part-way.
    pub fn new(
        cmd: &str,
        model: &str,
        timeout: Duration,
        interrupt: Option<Arc<AtomicBool>>,
    ) -> Result<CommandWorkload, CommandError> {
        let template = shlex::split(cmd)
            .ok_or_else(|| CommandError(format!("unbalanced quotes in `{cmd}`")))?;
        if template.is_empty() {
            return Err(CommandError("the command is empty".into()));
        }
        // A `{name}` that is not a placeholder is a typo; other braces (shell code) are kept.
        for w in &template {
            let mut rest = w.as_str();
            while let Some(i) = rest.find('{') {
                let tail = &rest[i..];
                let name_len = tail[1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len() - 1);
                let looks_like = name_len > 0 && tail[1 + name_len..].starts_with('}');
                if looks_like && !PLACEHOLDERS.contains(&&tail[..name_len + 2]) {
                    return Err(CommandError(format!(
                        "unknown placeholder `{}` in `{w}`; the placeholders are {}",
                        &tail[..name_len + 2],
                        PLACEHOLDERS.join(", ")
                    )));
                }
                rest = &tail[1..];
            }
        }
        if timeout.is_zero() {
            return Err(CommandError(format!(
                "{} must be positive",
                Opt::WorkloadTimeout
            )));
        }
        let mut template = template;
        if let Ok(me) = std::env::current_exe() {
            template[0] = program(&template[0], std::env::var_os("PATH"), &me);
        }
        Ok(CommandWorkload {
            template,
            model: model.to_string(),
            timeout,
            interrupt,
        })
    }

    /// The argument vector for one run.
    pub fn argv(&self, batch_size: u32, inferences: u32) -> Vec<String> {
        self.template
            .iter()
            .map(|w| {
                w.replace("{model}", &self.model)
                    .replace("{batch}", &batch_size.to_string())
                    .replace("{inferences}", &inferences.to_string())
            })
            .collect()
    }

    fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }
}

/// The program to start for `word`: `edgetune` itself (`emulate-infer`, `infer`) runs this
/// executable `me` when no `edgetune` is on `path`, as after `cargo run` or `cargo build`.
fn program(word: &str, path: Option<std::ffi::OsString>, me: &std::path::Path) -> String {
    let on_path = path.is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(word).is_file()));
    match word == "edgetune" && !on_path {
        true => me.display().to_string(),
        false => word.to_string(),
    }
}

enum Line {
    Begin(Instant),
    End(Instant),
    Eof,
}

/// How long to wait for the pipes once the program has exited or been stopped: a grandchild
/// that escaped the group (or a flood of output) must not hold the measurement.
const PIPE_GRACE: Duration = Duration::from_millis(200);

/// The program's process group (it is started as the leader of a new one): on every way out
/// of a run, and on drop, the whole group is killed and the leader reaped, so no grandchild
/// (`sh -c 'yes >&2'`, `sleep 60 &`) outlives the run or keeps its pipes open.
struct Group(Child);

impl Group {
    fn spawn(argv: &[String], shown: &str) -> Result<Group, DeviceError> {
        use std::os::unix::process::CommandExt;
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map(Group)
            .map_err(|e| DeviceError::Workload(format!("cannot start `{shown}`: {e}")))
    }

    fn kill(&mut self) {
        // The group's id is the leader's pid; a group already gone is fine.
        if let Ok(pgid) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is
            // touched.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tail(lines: &Mutex<VecDeque<String>>) -> String {
    let l = lines.lock().unwrap();
    if l.is_empty() {
        "(no stderr output)".into()
    } else {
        l.iter()
            .map(|s| format!("  | {s}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Reads the program's stdout on a thread: the markers, with the time each was read, then EOF.
fn watch_stdout(child: &mut Child) -> mpsc::Receiver<Line> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let now = Instant::now();
            let msg = match line.trim() {
                BEGIN_MARKER => Line::Begin(now),
                END_MARKER => Line::End(now),
                _ => continue,
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
        let _ = tx.send(Line::Eof);
    });
    rx
}

/// Keeps the last lines of the program's stderr on a thread; the receiver hears when it ends.
fn watch_stderr(child: &mut Child) -> (Arc<Mutex<VecDeque<String>>>, mpsc::Receiver<()>) {
    let lines = Arc::new(Mutex::new(VecDeque::new()));
    let stderr = child.stderr.take().expect("piped");
    let (sl, (tx, rx)) = (lines.clone(), mpsc::channel());
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut l = sl.lock().unwrap();
            if l.len() == STDERR_TAIL {
                l.pop_front();
            }
            l.push_back(line);
        }
        let _ = tx.send(());
    });
    (lines, rx)
}

/// The markers seen so far.
#[derive(Default)]
struct Marks {
    begin: Option<Instant>,
    end: Option<Instant>,
}

impl Marks {
    /// Takes one line from stdout, opening and closing the meter's window at the markers.
    /// Returns whether stdout has ended.
    fn take(&mut self, line: Line, meter: &mut dyn Meter) -> Result<bool, DeviceError> {
        match line {
            Line::Begin(t) if self.begin.is_none() => {
                meter.begin()?;
                self.begin = Some(t);
            }
            Line::End(t) if self.begin.is_some() && self.end.is_none() => {
                meter.end()?;
                self.end = Some(t);
            }
            Line::Eof => return Ok(true),
            _ => {}
        }
        Ok(false)
    }
}

impl Workload for CommandWorkload {
    fn name(&self) -> String {
        self.model.clone()
    }

    fn run(
        &mut self,
        batch_size: u32,
        inferences: u32,
        meter: &mut dyn Meter,
    ) -> Result<WorkloadRun, DeviceError> {
        let argv = self.argv(batch_size, inferences);
        let shown =
            shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "));
        meter.begin()?;
        let started = Instant::now();
        let mut group = Group::spawn(&argv, &shown)?;
        let rx = watch_stdout(&mut group.0);
        let (stderr_lines, stderr_done) = watch_stderr(&mut group.0);
        let mut marks = Marks::default();
        let status = loop {
            if self.interrupted() {
                return Err(DeviceError::Interrupted);
            }
            if started.elapsed() > self.timeout {
                group.kill();
                let _ = stderr_done.recv_timeout(PIPE_GRACE);
                return Err(DeviceError::Workload(format!(
                    "`{shown}` ran longer than {} ({} s) and was stopped; last stderr lines:\n{}",
                    Opt::WorkloadTimeout,
                    self.timeout.as_secs_f64(),
                    tail(&stderr_lines)
                )));
            }
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(line) => {
                    marks.take(line, meter)?;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Stdout is closed but the program runs on: poll its exit without spinning
                // (a busy loop here would load the CPU inside the energy window).
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
            }
            // The program's exit ends the run, whoever still holds its pipes.
            if let Some(s) = group
                .0
                .try_wait()
                .map_err(|e| DeviceError::Failed(format!("waiting for `{shown}`: {e}")))?
            {
                break s;
            }
        };
        // What it printed before exiting, for as long as its pipes take to close.
        let until = Instant::now() + PIPE_GRACE;
        while let Ok(line) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            if marks.take(line, meter)? {
                break;
            }
        }
        if marks.begin.is_none() {
            meter.end()?;
        }
        group.kill();
        let _ = stderr_done.recv_timeout(PIPE_GRACE);
        self.outcome(status, &marks, &shown, &stderr_lines)
    }
}

impl CommandWorkload {
    /// The run's result once the program has exited.
    fn outcome(
        &self,
        status: std::process::ExitStatus,
        marks: &Marks,
        shown: &str,
        stderr_lines: &Mutex<VecDeque<String>>,
    ) -> Result<WorkloadRun, DeviceError> {
        if !status.success() {
            return Err(DeviceError::Workload(format!(
                "`{shown}` failed ({status}); last stderr lines:\n{}",
                tail(stderr_lines)
            )));
        }
        match (marks.begin, marks.end) {
            (None, _) => Ok(WorkloadRun { time_s: None }),
            (Some(b), Some(e)) => Ok(WorkloadRun {
                time_s: Some((e - b).as_secs_f64()),
            }),
            (Some(_), None) => Err(DeviceError::Workload(format!(
                "`{shown}` printed {BEGIN_MARKER} but exited without {END_MARKER}; last stderr lines:\n{}",
                tail(stderr_lines)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the meter calls with their times.
    #[derive(Default)]
    struct Calls(Vec<(&'static str, Instant)>);
    impl Meter for Calls {
        fn begin(&mut self) -> Result<(), DeviceError> {
            self.0.push(("begin", Instant::now()));
            Ok(())
        }
        fn end(&mut self) -> Result<(), DeviceError> {
            self.0.push(("end", Instant::now()));
            Ok(())
        }
    }

    fn wl(cmd: &str) -> CommandWorkload {
        CommandWorkload::new(cmd, "resnet18", Duration::from_secs(5), None).unwrap()
    }

    #[test]
    fn placeholders_are_substituted_per_word_and_nothing_is_injected() {
        let w = CommandWorkload::new(
            "infer --model {model} --batch={batch} -n {inferences} 'a b; rm -rf x'",
            "my model; echo hi",
            Duration::from_secs(1),
            None,
        )
        .unwrap();
        assert_eq!(
            w.argv(8, 3200),
            vec![
                "infer",
                "--model",
                "my model; echo hi",
                "--batch=8",
                "-n",
                "3200",
                "a b; rm -rf x"
            ]
        );
        for bad in ["infer {modle}", "", "infer 'open", "x {batch_size}"] {
            let e = CommandWorkload::new(bad, "m", Duration::from_secs(1), None);
            assert!(e.is_err(), "{bad}");
        }
        // Shell code with braces is not a placeholder.
        assert!(CommandWorkload::new(
            "sh -c 'f() { x; }; f {batch}'",
            "m",
            Duration::from_secs(1),
            None
        )
        .is_ok());
        let e = CommandWorkload::new("x {gpu}", "m", Duration::from_secs(1), None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("{gpu}") && e.contains("{model}"), "{e}");
    }

    #[test]
    fn without_markers_the_window_is_the_process_lifetime() {
        let mut calls = Calls::default();
        let r = wl("sh -c 'sleep 0.2'").run(8, 10, &mut calls).unwrap();
        assert_eq!(r.time_s, None);
        let names: Vec<_> = calls.0.iter().map(|c| c.0).collect();
        assert_eq!(names, ["begin", "end"]);
        assert!(calls.0[1].1 - calls.0[0].1 >= Duration::from_millis(200));
    }

    #[test]
    fn markers_narrow_the_window_and_give_the_run_time() {
        let mut calls = Calls::default();
        let cmd = "sh -c 'sleep 0.3; echo EDGETUNE_BEGIN; sleep 0.2; echo EDGETUNE_END; sleep 0.3'";
        let t0 = Instant::now();
        let r = wl(cmd).run(8, 10, &mut calls).unwrap();
        let names: Vec<_> = calls.0.iter().map(|c| c.0).collect();
        // Opened at start, restarted at the begin marker, closed at the end marker.
        assert_eq!(names, ["begin", "begin", "end"]);
        let t = r.time_s.unwrap();
        // 0.2 s between the markers, plus process start-up on a busy machine.
        assert!((0.18..0.6).contains(&t), "{t}");
        assert!(calls.0[1].1 - t0 >= Duration::from_millis(280));
        // The window closed at the marker, not at exit.
        assert!(t0.elapsed() - (calls.0[2].1 - t0) >= Duration::from_millis(250));
    }

    #[test]
    fn failures_carry_the_last_stderr_lines() {
        let mut calls = Calls::default();
        let e = wl("sh -c 'echo loading >&2; echo CUDA out of memory >&2; exit 3'")
            .run(8, 10, &mut calls)
            .unwrap_err()
            .to_string();
        assert!(e.contains("CUDA out of memory") && e.contains("3"), "{e}");
        let e = wl("sh -c 'echo EDGETUNE_BEGIN; echo oops >&2'")
            .run(8, 10, &mut Calls::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("without EDGETUNE_END") && e.contains("oops"),
            "{e}"
        );
        let e = wl("no-such-program-edgetune")
            .run(8, 10, &mut Calls::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot start"), "{e}");
    }

    #[test]
    fn a_run_past_the_timeout_is_killed() {
        let mut w = CommandWorkload::new("sleep 5", "m", Duration::from_millis(300), None).unwrap();
        let t0 = Instant::now();
        let e = w.run(1, 1, &mut Calls::default()).unwrap_err().to_string();
        assert!(e.contains("workload_timeout_s"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn an_interrupt_stops_the_run() {
        let flag = Arc::new(AtomicBool::new(false));
        let mut w =
            CommandWorkload::new("sleep 5", "m", Duration::from_secs(30), Some(flag.clone()))
                .unwrap();
        let f2 = flag.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            f2.store(true, Ordering::SeqCst);
        });
        let t0 = Instant::now();
        let e = w.run(1, 1, &mut Calls::default()).unwrap_err();
        assert!(matches!(e, DeviceError::Interrupted));
        assert!(t0.elapsed() < Duration::from_secs(3));
    }

    /// Whether process `pid` is gone within three seconds (or a zombie nobody waits for:
    /// killed all the same); SIGKILL is delivered asynchronously.
    fn gone(pid: &str) -> bool {
        let dead = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .map_or(true, |s| s.split_whitespace().nth(2) == Some("Z"))
        };
        let t0 = Instant::now();
        while !dead() {
            if t0.elapsed() > Duration::from_secs(3) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    #[test]
    fn a_flood_of_output_from_a_grandchild_does_not_hold_the_timeout() {
        // `yes` keeps stderr full after `sh` is killed: only killing the group ends it.
        let mut w =
            CommandWorkload::new("sh -c 'yes >&2'", "m", Duration::from_millis(500), None).unwrap();
        let t0 = Instant::now();
        let e = w.run(1, 1, &mut Calls::default()).unwrap_err().to_string();
        assert!(e.contains("workload_timeout_s"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }

    #[test]
    fn a_background_grandchild_does_not_lengthen_the_run_and_dies_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        let cmd = format!("sh -c 'sleep 30 & echo $! > {}; echo x'", pid.display());
        let mut calls = Calls::default();
        let t0 = Instant::now();
        wl(&cmd).run(1, 1, &mut calls).unwrap();
        // The window is the program's lifetime, not the grandchild's.
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        assert!(calls.0[1].1 - calls.0[0].1 < Duration::from_secs(2));
        assert!(gone(&std::fs::read_to_string(&pid).unwrap()));
    }

    #[test]
    fn an_interrupt_or_a_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        for (i, interrupt) in [false, true].into_iter().enumerate() {
            let pid = dir.path().join(format!("pid{i}"));
            let cmd = format!("sh -c 'sleep 30 & echo $! > {}; wait'", pid.display());
            let flag = Arc::new(AtomicBool::new(false));
            // Generous margins: `sh` must have written the pid file first, on a busy machine too.
            let timeout = Duration::from_millis(if interrupt { 30_000 } else { 1_500 });
            let mut w = CommandWorkload::new(&cmd, "m", timeout, Some(flag.clone())).unwrap();
            let f2 = flag.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(1_000));
                f2.store(interrupt, Ordering::SeqCst);
            });
            assert!(w.run(1, 1, &mut Calls::default()).is_err());
            let pid = std::fs::read_to_string(&pid).unwrap();
            assert!(gone(&pid), "interrupt {interrupt}: sleep {pid} still runs");
        }
    }

    #[test]
    fn edgetune_itself_runs_when_it_is_not_on_the_path() {
        let me = std::path::Path::new("/opt/x/target/release/edgetune");
        let dir = tempfile::tempdir().unwrap();
        let path = Some(std::ffi::OsString::from(dir.path()));
        assert_eq!(
            program("edgetune", path.clone(), me),
            me.display().to_string()
        );
        assert_eq!(program("python3", path.clone(), me), "python3");
        std::fs::write(dir.path().join("edgetune"), "").unwrap();
        assert_eq!(program("edgetune", path, me), "edgetune");
    }

    /// CPU time this thread has used, s.
    fn thread_cpu_s() -> f64 {
        // SAFETY: getrusage fills the struct it is given; nothing else is touched.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    }

    #[test]
    fn waiting_for_a_program_that_closed_its_stdout_does_not_spin() {
        // The program runs 0.8 s with its stdout closed: the wait must sleep, not busy-poll
        // (a spin would load the CPU inside the energy window).
        let cpu0 = thread_cpu_s();
        wl("sh -c 'exec >&-; sleep 0.8'")
            .run(1, 1, &mut Calls::default())
            .unwrap();
        let used = thread_cpu_s() - cpu0;
        assert!(used < 0.25, "{used:.2} s of CPU while waiting 0.8 s");
    }
}
