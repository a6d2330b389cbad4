//! Server processes the suite and `cargo xtask` start, stop and restart:
//! a [`ServiceSpec`] says how to run one; its pid file says which process
//! is running it, so whoever stops it ends exactly the process that was
//! started for it, and a server restarted by a test is still stopped by
//! `cargo xtask services down`.

use std::fs;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long a started server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopped server may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How to run one server process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// A name for messages, e.g. `nats`.
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Loopback addresses that accept connections once it is up.
    pub listens: Vec<SocketAddr>,
    /// Holds the pid of the running process.
    pub pid_file: PathBuf,
    /// Standard output and error are appended here.
    pub log_file: PathBuf,
    /// A command that says when the started process really serves, beyond
    /// listening (a cluster whose slots are all served again).
    #[serde(default)]
    pub ready: Option<ReadyCheck>,
}

/// `program args…` prints `expect` once the deployment serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyCheck {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// What its standard output contains when ready.
    pub expect: String,
}

impl ReadyCheck {
    fn passes(&self) -> bool {
        Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(&self.expect))
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ServiceSpec {
    /// Reads a spec written by [`ServiceSpec::save`].
    pub fn load(path: &Path) -> io::Result<Self> {
        let text = fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes the spec as JSON.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        fs::write(path, text)
    }

    /// Reads the processes of one server (a JSON array), written by
    /// [`ServiceSpec::save_all`].
    pub fn load_all(path: &Path) -> io::Result<Vec<Self>> {
        let text = fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes the processes of one server as a JSON array.
    pub fn save_all(specs: &[Self], path: &Path) -> io::Result<()> {
        let text = serde_json::to_string_pretty(specs).map_err(io::Error::other)?;
        fs::write(path, text)
    }

    /// Starts the process detached (its own process group, so a Ctrl-C in
    /// the terminal reaches only whoever owns it), records its pid and waits
    /// until every address accepts connections. Returns the pid.
    ///
    /// # Errors
    /// When it cannot be started, exits early or does not listen in time;
    /// the message quotes the end of its log.
    pub fn start(&self) -> io::Result<u32> {
        if let Some(pid) = self.running_pid() {
            return Err(io::Error::other(format!(
                "{} is already running as pid {pid} (pid file {})",
                self.name,
                self.pid_file.display()
            )));
        }
        for dir in [self.pid_file.parent(), self.log_file.parent()].into_iter().flatten() {
            fs::create_dir_all(dir)?;
        }
        let log = fs::OpenOptions::new().create(true).append(true).open(&self.log_file)?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", self.program.display())))?;
        let pid = child.id();
        fs::write(&self.pid_file, pid.to_string())?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.listens.iter().all(|addr| accepts(*addr)) {
            if !alive(pid) {
                let _ = fs::remove_file(&self.pid_file);
                return Err(io::Error::other(format!(
                    "{} exited right after starting; end of {}:\n{}",
                    self.name,
                    self.log_file.display(),
                    self.log_tail()
                )));
            }
            if Instant::now() > deadline {
                self.stop()?;
                return Err(io::Error::other(format!(
                    "{} did not listen on {:?} within {READY_TIMEOUT:?}; end of {}:\n{}",
                    self.name,
                    self.listens,
                    self.log_file.display(),
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(ready) = &self.ready {
            while !ready.passes() {
                if Instant::now() > deadline {
                    return Err(io::Error::other(format!(
                        "{} listens but `{} {}` did not print {:?} within {READY_TIMEOUT:?}",
                        self.name,
                        ready.program.display(),
                        ready.args.join(" "),
                        ready.expect
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(pid)
    }

    /// The pid of the running process, if the pid file names a live process
    /// running this spec's program.
    pub fn running_pid(&self) -> Option<u32> {
        let pid: u32 = fs::read_to_string(&self.pid_file).ok()?.trim().parse().ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let program = self.program.file_name()?.to_string_lossy().into_owned();
        let runs_it = String::from_utf8_lossy(&cmdline).contains(&program);
        (runs_it && alive(pid)).then_some(pid)
    }

    /// Stops the recorded process (SIGTERM, then SIGKILL after a grace
    /// period) and waits until it is gone and its ports are closed. Does
    /// nothing when it is not running. Returns the pid it stopped.
    ///
    /// # Errors
    /// When the signal cannot be sent or the process survives SIGKILL.
    pub fn stop(&self) -> io::Result<Option<u32>> {
        let Some(pid) = self.running_pid() else {
            let _ = fs::remove_file(&self.pid_file);
            return Ok(None);
        };
        signal(pid, "TERM")?;
        let deadline = Instant::now() + STOP_GRACE;
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if alive(pid) {
            signal(pid, "KILL")?;
            let deadline = Instant::now() + STOP_GRACE;
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if alive(pid) {
                return Err(io::Error::other(format!("{} (pid {pid}) survived SIGKILL", self.name)));
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        while self.listens.iter().any(|addr| accepts(*addr)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = fs::remove_file(&self.pid_file);
        Ok(Some(pid))
    }

    /// The last lines of the log.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(&self.log_file) {
            let _ = file.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// A server a test starts for itself (e.g. with authentication turned on):
/// `program` on a free loopback port, stopped by its pid when dropped.
#[derive(Debug)]
pub struct TestServer {
    spec: ServiceSpec,
}

impl TestServer {
    /// Starts `program` with `args(port)`, its pid file and log in a
    /// directory of this process named after `name`.
    ///
    /// # Panics
    /// When it cannot be started: a test server that does not start is a
    /// broken test.
    pub fn start(name: &str, program: &Path, args: impl FnOnce(u16) -> Vec<String>) -> TestServer {
        let port = free_port().expect("a free loopback port");
        let dir = std::env::temp_dir().join(format!("coord-test-servers-{}", std::process::id()));
        let spec = ServiceSpec {
            name: name.to_owned(),
            program: program.to_owned(),
            args: args(port),
            listens: vec![SocketAddr::from(([127, 0, 0, 1], port))],
            pid_file: dir.join(format!("{name}.pid")),
            log_file: dir.join(format!("{name}.log")),
            ready: None,
        };
        if let Err(error) = spec.start() {
            panic!("cannot start the test server {name}: {error}");
        }
        TestServer { spec }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.spec.listens[0]
    }

    /// A directory for its files (configs it needs), shared by this process's test servers.
    pub fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("coord-test-servers-{}", std::process::id()));
        let _ = fs::create_dir_all(&dir);
        dir
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.spec.stop();
    }
}

/// Whether a TCP connection to `addr` succeeds.
pub fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Whether `pid` is a running process (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn signal(pid: u32, name: &str) -> io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()?;
    if status.success() || !alive(pid) {
        Ok(())
    } else {
        Err(io::Error::other(format!("kill -{name} {pid} failed ({status})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_stops_and_restarts_a_listening_process() {
        let dir = std::env::temp_dir().join(format!("coord-service-test-{}", std::process::id()));
        let port = free_port().unwrap();
        let spec = ServiceSpec {
            name: "python-http".into(),
            program: "python3".into(),
            args: vec![
                "-m".into(),
                "http.server".into(),
                "--bind".into(),
                "127.0.0.1".into(),
                port.to_string(),
            ],
            listens: vec![SocketAddr::from(([127, 0, 0, 1], port))],
            pid_file: dir.join("http.pid"),
            log_file: dir.join("http.log"),
            ready: None,
        };
        let pid = spec.start().unwrap();
        assert_eq!(spec.running_pid(), Some(pid));
        assert!(spec.start().is_err(), "a second start is refused");
        assert_eq!(spec.stop().unwrap(), Some(pid));
        assert!(!accepts(spec.listens[0]));
        assert_eq!(spec.running_pid(), None);
        assert_eq!(spec.stop().unwrap(), None, "stopping a stopped service does nothing");
        let again = spec.start().unwrap();
        assert_ne!(again, pid);
        spec.stop().unwrap();
        let _ = fs::remove_dir_all(dir);
    }
}
