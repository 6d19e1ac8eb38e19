//! The embedded local PostgreSQL: a loopback-only development cluster per
//! project under `<project>/.weir/`, which weir initdb's, starts and reuses.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// weir's folder in a project.
const STATE_DIR: &str = ".weir";
/// Held while a process inspects, starts or stops the cluster.
const LOCK_FILE: &str = "lock";
/// Present when the data directory lives outside the project: holds its path.
const CLUSTER_FILE: &str = "cluster";
const DATA_DIR: &str = "pgdata";
const LOG_FILE: &str = "postgres.log";
/// In the data directory: the port the cluster listens on.
const PORT_CONF: &str = "weir.conf";
/// PostgreSQL refuses to run as root; this OS user runs it instead.
const OS_USER: &str = "postgres";
const START_TIMEOUT_SECONDS: u32 = 60;

/// The project-local cluster, known to be running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCluster {
    data_dir: PathBuf,
    port: u16,
}

impl LocalCluster {
    /// The running cluster of `project_root`, initialised and started if need be.
    /// Cheap when it is already up; several processes may call it at once.
    pub fn ensure_running(project_root: &Path) -> Result<LocalCluster> {
        if let Some(cluster) = LocalCluster::status(project_root)? {
            return Ok(cluster);
        }
        let layout = Layout::new(project_root)?;
        let _lock = layout.lock()?;
        // Another process may have started it while this one waited for the lock.
        let data_dir = layout.data_dir()?;
        match settle(&data_dir) {
            ServerState::Ready(port) => Ok(LocalCluster { data_dir, port }),
            ServerState::Stopped => start(&layout),
            ServerState::Busy => Err(not_ready(&data_dir)),
        }
    }

    /// The running cluster of `project_root`, or None when it is not running.
    pub fn status(project_root: &Path) -> Result<Option<LocalCluster>> {
        let data_dir = Layout::new(project_root)?.data_dir()?;
        Ok(match server_state(&data_dir) {
            ServerState::Ready(port) => Some(LocalCluster { data_dir, port }),
            _ => None,
        })
    }

    /// Stop the cluster (fast shutdown); false when it was not running.
    pub fn stop(project_root: &Path) -> Result<bool> {
        let layout = Layout::new(project_root)?;
        if !layout.state_dir.is_dir() {
            return Ok(false);
        }
        let _lock = layout.lock()?;
        let data_dir = layout.data_dir()?;
        if server_state(&data_dir) == ServerState::Stopped {
            return Ok(false);
        }
        let tools = Tools::find()?;
        let output = tools.run(
            &tools.pg_ctl,
            &[
                "-D".as_ref(),
                data_dir.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )?;
        if !output.status.success() && server_state(&data_dir) != ServerState::Stopped {
            return Err(command_failed("pg_ctl stop", &output));
        }
        Ok(true)
    }

    /// Stop the cluster and delete its data, including a data directory kept
    /// outside the project; the next `ensure_running` starts afresh.
    pub fn destroy(project_root: &Path) -> Result<()> {
        LocalCluster::stop(project_root)?;
        let layout = Layout::new(project_root)?;
        if !layout.state_dir.is_dir() {
            return Ok(());
        }
        let _lock = layout.lock()?;
        let data_dir = layout.data_dir()?;
        // Only folders weir made itself: `.weir/cluster` could have been edited.
        let owned_folder = match data_dir.parent() {
            _ if data_dir == layout.state_dir.join(DATA_DIR) => data_dir,
            Some(parent) if is_weir_temp_dir(parent) => parent.to_path_buf(),
            _ => {
                return Err(Error::new(
                    ErrorKind::LocalDatabase,
                    format!(
                        "not deleting {}: weir did not create it; delete it yourself",
                        data_dir.display()
                    ),
                )
                .in_file(layout.state_dir.join(CLUSTER_FILE)));
            }
        };
        for path in [owned_folder, layout.state_dir.join(LOG_FILE)] {
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&path, e));
                }
                _ => {}
            }
        }
        let record = layout.state_dir.join(CLUSTER_FILE);
        match fs::remove_file(&record) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&record, e)),
            _ => Ok(()),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// Where a project's cluster keeps its files.
struct Layout {
    /// `<project>/.weir`
    state_dir: PathBuf,
    /// The absolute project path, for the name of a relocated data directory.
    project_root: PathBuf,
}

impl Layout {
    fn new(project_root: &Path) -> Result<Layout> {
        let project_root =
            fs::canonicalize(project_root).map_err(|e| Error::io(project_root, e))?;
        Ok(Layout {
            state_dir: project_root.join(STATE_DIR),
            project_root,
        })
    }

    /// The data directory: recorded in `.weir/cluster` when it was relocated.
    fn data_dir(&self) -> Result<PathBuf> {
        let record = self.state_dir.join(CLUSTER_FILE);
        match fs::read_to_string(&record) {
            Ok(text) if !text.trim().is_empty() => Ok(PathBuf::from(text.trim())),
            Ok(_) => Ok(self.state_dir.join(DATA_DIR)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(self.state_dir.join(DATA_DIR)),
            Err(e) => Err(Error::io(&record, e)),
        }
    }

    /// Where a data directory goes when the `postgres` user cannot reach the project.
    fn relocated_data_dir(&self) -> PathBuf {
        let digest = Sha256::digest(self.project_root.as_os_str().as_encoded_bytes());
        let hash = crate::base::hash::hex(&digest[..6]);
        std::env::temp_dir()
            .join(format!("weir-{hash}"))
            .join(DATA_DIR)
    }

    /// An exclusive lock on `.weir/lock`, released when the file is dropped.
    fn lock(&self) -> Result<File> {
        create_state_dir(&self.state_dir)?;
        let path = self.state_dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(file)
    }
}

fn create_state_dir(state_dir: &Path) -> Result<()> {
    if state_dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(state_dir).map_err(|e| Error::io(state_dir, e))?;
    // The cluster is local state: keep it out of the project's git history.
    let ignore = state_dir.join(".gitignore");
    fs::write(&ignore, "*\n").map_err(|e| Error::io(&ignore, e))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Stopped,
    /// A postmaster is starting up or shutting down.
    Busy,
    Ready(u16),
}

/// What postmaster.pid says, checked against the process table: a stale
/// file left by a crash counts as stopped.
fn server_state(data_dir: &Path) -> ServerState {
    let Ok(text) = fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return ServerState::Stopped;
    };
    let lines: Vec<&str> = text.lines().collect();
    let Some(pid) = lines.first().and_then(|l| l.trim().parse::<u32>().ok()) else {
        return ServerState::Busy;
    };
    if !postmaster_alive(pid) {
        return ServerState::Stopped;
    }
    let port = lines.get(3).and_then(|l| l.trim().parse::<u16>().ok());
    match (port, lines.get(7).map(|l| l.trim())) {
        (Some(port), Some("ready")) => ServerState::Ready(port),
        _ => ServerState::Busy,
    }
}

fn postmaster_alive(pid: u32) -> bool {
    let proc_dir = Path::new("/proc");
    if proc_dir.join("self").exists() {
        // A recycled pid belongs to some other program.
        return fs::read_to_string(proc_dir.join(pid.to_string()).join("comm"))
            .is_ok_and(|comm| comm.trim_end().starts_with("postgres"));
    }
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The state once a postmaster starting or stopping (outside weir's lock,
/// or just started) has settled; Busy only after the start timeout.
fn settle(data_dir: &Path) -> ServerState {
    let deadline = Instant::now() + Duration::from_secs(u64::from(START_TIMEOUT_SECONDS));
    loop {
        let state = server_state(data_dir);
        if state != ServerState::Busy || Instant::now() > deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn not_ready(data_dir: &Path) -> Error {
    Error::new(
        ErrorKind::LocalDatabase,
        format!(
            "the local PostgreSQL in {} did not become ready",
            data_dir.display()
        ),
    )
    .with_hint(format!(
        "stop it with `pg_ctl -D {} stop` and run again",
        data_dir.display()
    ))
}

/// Initialise the cluster if needed and start it. Called with the lock held.
fn start(layout: &Layout) -> Result<LocalCluster> {
    let tools = Tools::find()?;
    if let Some(user) = &tools.run_as {
        eprintln!(
            "weir: running the local PostgreSQL as OS user `{}`, since PostgreSQL refuses to run as root",
            user.name
        );
    }
    let data_dir = choose_data_dir(layout, &tools)?;
    if !data_dir.join("PG_VERSION").is_file() {
        init_cluster(&tools, &data_dir)?;
    }
    let log = log_file(&tools, &data_dir)?;
    let mut last_error = None;
    // A port found free may be taken before the server binds it: try another.
    for _ in 0..3 {
        choose_port(&tools, &data_dir)?;
        match pg_ctl_start(&tools, &data_dir, &log)? {
            Started::Yes => {
                return match settle(&data_dir) {
                    ServerState::Ready(port) => Ok(LocalCluster { data_dir, port }),
                    _ => Err(not_ready(&data_dir)),
                };
            }
            Started::PortTaken(error) => last_error = Some(error),
            Started::Failed(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        Error::new(
            ErrorKind::LocalDatabase,
            "could not start the local PostgreSQL",
        )
    }))
}

/// `.weir/pgdata`, unless the cluster runs as `postgres` and that user cannot
/// reach the project (e.g. under /root): then a folder under the temp dir.
fn choose_data_dir(layout: &Layout, tools: &Tools) -> Result<PathBuf> {
    let data_dir = layout.data_dir()?;
    let Some(user) = &tools.run_as else {
        return Ok(data_dir);
    };
    let recorded = layout.state_dir.join(CLUSTER_FILE).is_file();
    if recorded || data_dir.join("PG_VERSION").is_file() || user.can_reach(&layout.state_dir) {
        return Ok(data_dir);
    }
    let relocated = layout.relocated_data_dir();
    let record = layout.state_dir.join(CLUSTER_FILE);
    fs::write(&record, format!("{}\n", relocated.display())).map_err(|e| Error::io(&record, e))?;
    eprintln!(
        "weir: OS user `{}` cannot reach {}, so the local PostgreSQL keeps its data in {} (recorded in {})",
        user.name,
        layout.state_dir.display(),
        relocated.display(),
        record.display()
    );
    Ok(relocated)
}

fn init_cluster(tools: &Tools, data_dir: &Path) -> Result<()> {
    if data_dir.exists() {
        // No PG_VERSION: an initdb that died half way. initdb wants it empty.
        fs::remove_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
    }
    fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
    fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(data_dir, e))?;
    if let Some(parent) = data_dir.parent().filter(|p| is_weir_temp_dir(p)) {
        tools.give_to_server_user(parent)?;
    }
    tools.give_to_server_user(data_dir)?;
    let output = tools.run(
        &tools.initdb,
        &[
            "-D".as_ref(),
            data_dir.as_os_str(),
            "-U".as_ref(),
            OS_USER.as_ref(),
            // Loopback-only development cluster: no passwords to manage.
            "--auth=trust".as_ref(),
            "-E".as_ref(),
            "UTF8".as_ref(),
            "--locale=C".as_ref(),
            "--no-sync".as_ref(),
        ],
    )?;
    if !output.status.success() {
        return Err(command_failed("initdb", &output));
    }
    let conf = data_dir.join("postgresql.conf");
    let settings = "\n# Added by weir: a development cluster reachable from this machine only.\n\
                    listen_addresses = '127.0.0.1'\n\
                    # No socket file: its path could exceed the length limit for sockets.\n\
                    unix_socket_directories = ''\n\
                    # Disposable data: speed over crash safety.\n\
                    fsync = off\n\
                    synchronous_commit = off\n\
                    full_page_writes = off\n\
                    include_if_exists = 'weir.conf'\n";
    append(&conf, settings)
}

/// A folder named like [`Layout::relocated_data_dir`]'s: `<temp>/weir-<12 hex>`.
fn is_weir_temp_dir(path: &Path) -> bool {
    let hash = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("weir-"));
    path.parent() == Some(std::env::temp_dir().as_path())
        && hash.is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn append(path: &Path, text: &str) -> Result<()> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::io(path, e))
}

/// Keep the recorded port while it is free; otherwise record a new free one.
fn choose_port(tools: &Tools, data_dir: &Path) -> Result<()> {
    let conf = data_dir.join(PORT_CONF);
    let recorded = fs::read_to_string(&conf).ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix("port = "))
            .and_then(|p| p.trim().parse::<u16>().ok())
    });
    if recorded.is_some_and(port_is_free) {
        return Ok(());
    }
    let port = free_port()?;
    fs::write(&conf, format!("port = {port}\n")).map_err(|e| Error::io(&conf, e))?;
    tools.give_to_server_user(&conf)
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn free_port() -> Result<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| {
            Error::new(
                ErrorKind::LocalDatabase,
                format!("cannot find a free port on 127.0.0.1: {e}"),
            )
        })
}

/// The server log, beside the data directory; writable by the server's user.
fn log_file(tools: &Tools, data_dir: &Path) -> Result<PathBuf> {
    let log = data_dir.parent().unwrap_or(data_dir).join(LOG_FILE);
    if !log.exists() {
        File::create(&log).map_err(|e| Error::io(&log, e))?;
    }
    tools.give_to_server_user(&log)?;
    Ok(log)
}

enum Started {
    Yes,
    /// Another program took the port between choosing it and binding it.
    PortTaken(Error),
    Failed(Error),
}

/// `pg_ctl start -w`; a failure shows what the server logged meanwhile.
fn pg_ctl_start(tools: &Tools, data_dir: &Path, log: &Path) -> Result<Started> {
    let log_start = fs::metadata(log).map_or(0, |m| m.len());
    let timeout = START_TIMEOUT_SECONDS.to_string();
    let output = tools.run(
        &tools.pg_ctl,
        &[
            "-D".as_ref(),
            data_dir.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
            "-w".as_ref(),
            "-t".as_ref(),
            timeout.as_ref(),
            "start".as_ref(),
        ],
    )?;
    if output.status.success() {
        return Ok(Started::Yes);
    }
    let tail = log_tail(log, log_start, 20);
    let mut error = command_failed("pg_ctl start", &output);
    if !tail.is_empty() {
        error = error.with_snippet(format!("{}:\n{tail}", log.display()));
    }
    Ok(if port_taken(&tail) {
        Started::PortTaken(error)
    } else {
        Started::Failed(error)
    })
}

fn port_taken(log_tail: &str) -> bool {
    log_tail.contains("could not bind") || log_tail.contains("Address already in use")
}

/// The last `lines` lines the log gained after byte `from`.
fn log_tail(log: &Path, from: u64, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(log) {
        let _ = file.seek(SeekFrom::Start(from));
        let _ = file.read_to_string(&mut text);
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn command_failed(what: &str, output: &Output) -> Error {
    let mut said = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if said.is_empty() {
        said = String::from_utf8_lossy(&output.stdout).trim().to_string();
    }
    Error::new(
        ErrorKind::LocalDatabase,
        format!(
            "{what} failed for the local PostgreSQL ({}): {said}",
            output.status
        ),
    )
}

/// The OS user the server runs as when weir runs as root.
#[derive(Debug, Clone)]
struct ServerUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl ServerUser {
    fn lookup(name: &str) -> Option<ServerUser> {
        let passwd = fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[0] == name).then(|| ServerUser {
                name: name.to_string(),
                uid: fields[2].parse().unwrap_or(u32::MAX),
                gid: fields[3].parse().unwrap_or(u32::MAX),
            })
        })
    }

    /// Whether this user can traverse every folder down to `dir`.
    fn can_reach(&self, dir: &Path) -> bool {
        dir.ancestors().all(|folder| {
            let Ok(meta) = fs::metadata(folder) else {
                return false;
            };
            let mode = meta.mode();
            if meta.uid() == self.uid {
                mode & 0o100 != 0
            } else if meta.gid() == self.gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            }
        })
    }
}

/// The PostgreSQL programs weir runs, and as whom.
struct Tools {
    pg_ctl: PathBuf,
    initdb: PathBuf,
    /// Set when weir runs as root.
    run_as: Option<ServerUser>,
}

impl Tools {
    fn find() -> Result<Tools> {
        let bin_dir = find_bin_dir()?;
        let run_as = if running_as_root() {
            Some(ServerUser::lookup(OS_USER).ok_or_else(|| {
                Error::new(
                    ErrorKind::LocalDatabase,
                    format!("PostgreSQL refuses to run as root, and there is no `{OS_USER}` OS user to run it as"),
                )
                .with_hint(format!("create one (`useradd --system {OS_USER}`), or run weir as a normal user"))
            })?)
        } else {
            None
        };
        Ok(Tools {
            pg_ctl: bin_dir.join("pg_ctl"),
            initdb: bin_dir.join("initdb"),
            run_as,
        })
    }

    /// Run a PostgreSQL program, as the server user when weir is root.
    fn run(&self, program: &Path, args: &[&std::ffi::OsStr]) -> Result<Output> {
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", &user.name, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        // The server user may not be able to enter the caller's directory.
        command.args(args).current_dir("/");
        command.output().map_err(|e| {
            Error::new(
                ErrorKind::LocalDatabase,
                format!("cannot run {}: {e}", program.display()),
            )
        })
    }

    /// Hand a file or folder to the server user (a no-op unless weir is root).
    fn give_to_server_user(&self, path: &Path) -> Result<()> {
        match &self.run_as {
            Some(user) => std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                .map_err(|e| Error::io(path, e)),
            None => Ok(()),
        }
    }
}

fn running_as_root() -> bool {
    // /proc/self belongs to the process's effective user.
    match fs::metadata("/proc/self") {
        Ok(meta) => meta.uid() == 0,
        Err(_) => Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0"),
    }
}

/// The folder holding pg_ctl and initdb: $WEIR_PG_BIN, then PATH, then the
/// newest /usr/lib/postgresql/*/bin.
fn find_bin_dir() -> Result<PathBuf> {
    let has_tools = |dir: &Path| dir.join("pg_ctl").is_file() && dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("WEIR_PG_BIN") {
        let dir = PathBuf::from(dir);
        if has_tools(&dir) {
            return Ok(dir);
        }
        return Err(Error::new(
            ErrorKind::LocalDatabase,
            format!(
                "WEIR_PG_BIN is {}, which holds no pg_ctl and initdb",
                dir.display()
            ),
        )
        .with_hint("point WEIR_PG_BIN at the `bin` folder of a PostgreSQL installation"));
    }
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(dir) = path_dirs.iter().find(|d| has_tools(d)) {
        return Ok(dir.clone());
    }
    let versioned = Path::new("/usr/lib/postgresql");
    if let Some(dir) = newest_versioned_bin(versioned, &has_tools) {
        return Ok(dir);
    }
    Err(Error::new(
        ErrorKind::LocalDatabase,
        format!(
            "no PostgreSQL server programs (pg_ctl and initdb) found for the local database; looked in \
             $WEIR_PG_BIN (not set), PATH ({}), and {}/*/bin",
            path_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
            versioned.display()
        ),
    )
    .with_hint(
        "install the PostgreSQL server (e.g. `apt-get install postgresql`), set WEIR_PG_BIN to its \
         bin folder, or give the target a `host:` to use a running server",
    ))
}

/// The bin folder of the highest version under `root` (`15` > `9.6`).
fn newest_versioned_bin(root: &Path, has_tools: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    let version = |name: &str| -> Option<Vec<u32>> {
        name.split('.').map(|part| part.parse().ok()).collect()
    };
    fs::read_dir(root)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let bin = entry.path().join("bin");
            has_tools(&bin).then_some((version(&name)?, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_version_wins() {
        let root = std::env::temp_dir().join(format!("weir-versions-{}", std::process::id()));
        for version in ["9.6", "15", "13", "notes"] {
            fs::create_dir_all(root.join(version).join("bin")).unwrap();
        }
        let found = newest_versioned_bin(&root, &|_| true);
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(found, Some(root.join("15").join("bin")));
    }

    #[test]
    fn stale_or_missing_pid_files_mean_stopped() {
        let dir = std::env::temp_dir().join(format!("weir-pidfile-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(server_state(&dir), ServerState::Stopped);
        // No process has a pid this high.
        fs::write(
            dir.join("postmaster.pid"),
            "999999999\n/x\n1\n5432\n\n127.0.0.1\n1\nready   \n",
        )
        .unwrap();
        let state = server_state(&dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(state, ServerState::Stopped);
    }

    #[test]
    fn only_relocated_data_folders_count_as_weirs() {
        let layout = Layout {
            state_dir: PathBuf::from("/srv/shop/.weir"),
            project_root: PathBuf::from("/srv/shop"),
        };
        let relocated = layout.relocated_data_dir();
        assert!(is_weir_temp_dir(relocated.parent().unwrap()));
        assert!(!is_weir_temp_dir(
            &std::env::temp_dir().join("weir-airflow-x")
        ));
        assert!(!is_weir_temp_dir(Path::new("/")));
    }

    #[test]
    fn log_tail_keeps_only_new_lines() {
        let path = std::env::temp_dir().join(format!("weir-log-{}", std::process::id()));
        fs::write(&path, "old\nline a\nline b\nline c\n").unwrap();
        let tail = log_tail(&path, 4, 2);
        fs::remove_file(&path).unwrap();
        assert_eq!(tail, "line b\nline c");
    }

    #[test]
    fn a_port_in_use_is_noticed() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(!port_is_free(port));
        assert!(port_taken(
            "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use"
        ));
    }
}
