//! Child processes (started pinned with `taskset`, stopped when dropped) and
//! readings from `/proc`: a process's RSS, each CPU's busy time.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped, so
/// that a failed run leaves nothing behind.
pub struct Proc {
    pub name: String,
    pub child: Child,
}

impl Proc {
    /// Starts `program args` on the CPUs `cpus` (a `taskset -c` list) if
    /// given, with stderr (and stdout unless `pipe_stdout`) to `log`.
    pub fn start(
        name: &str,
        cpus: Option<&str>,
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        log: &Path,
        pipe_stdout: bool,
    ) -> Proc {
        let mut command = match cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpus).arg(program);
                command
            }
            None => Command::new(program),
        };
        let log_file = File::create(log).expect("log file");
        command
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stderr(log_file.try_clone().expect("log file"))
            .stdout(if pipe_stdout {
                Stdio::piped()
            } else {
                Stdio::from(log_file)
            });
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name} ({}): {error}", program.display()));
        Proc {
            name: name.to_owned(),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first line of stdout starting with `prefix`, minus the prefix.
    pub fn read_stdout_line(&mut self, prefix: &str) -> String {
        let stdout: ChildStdout = self.child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                _ => panic!("{} ended before printing `{prefix}`", self.name),
            }
        }
    }

    /// Panics if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.name);
        }
    }

    /// SIGTERM, up to 5 s to exit, then SIGKILL.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes ANSI colour escapes (`ESC [ ... m`) from a log line.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits (up to 30 s) for the gateway's `gateway ready` log line in `log`
/// and returns the address it listens on (it binds port 0).
pub fn wait_gateway_ready(proc: &mut Proc, log: &Path) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        proc.assert_running();
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines().map(strip_ansi) {
            if !line.contains("gateway ready") {
                continue;
            }
            if let Some(addr) = line
                .split_whitespace()
                .find_map(|word| word.strip_prefix("listen="))
            {
                return addr.parse().expect("listen= is an address");
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the gateway did not become ready; see {}", log.display());
}

/// A loopback port that was free a moment ago, for servers (nginx) that
/// cannot bind port 0 and report it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("loopback binds")
        .port()
}

/// A process's resident set size and its peak, in KiB (`/proc/PID/status`).
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Busy and total jiffies of each CPU (`/proc/stat`), CPU 0 first.
pub fn cpu_jiffies() -> Vec<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|line| {
            line.starts_with("cpu") && line.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
        })
        .map(|line| {
            let values: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            let total: u64 = values.iter().take(8).sum();
            // idle + iowait
            let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

/// Percent busy of each CPU between two [`cpu_jiffies`] readings.
pub fn cpu_busy(before: &[(u64, u64)], after: &[(u64, u64)]) -> Vec<f64> {
    before
        .iter()
        .zip(after)
        .map(|((b0, t0), (b1, t1))| {
            let total = t1.saturating_sub(*t0).max(1) as f64;
            100.0 * b1.saturating_sub(*b0) as f64 / total
        })
        .collect()
}

/// CPU time (user + system) a process and its threads used so far, in
/// jiffies (`/proc/PID/stat` fields 14 and 15).
pub fn process_jiffies(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may contain spaces; fields after it are plain.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so utime (14) is index 11.
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    utime + stime
}

/// The pids of `parent`'s direct children (nginx's workers).
pub fn children(parent: u32) -> Vec<u32> {
    let path = format!("/proc/{parent}/task/{parent}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}
