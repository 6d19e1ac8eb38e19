//! The embedded local PostgreSQL: a development cluster per project under
//! `<project>/.weir/`, which weir initdb's, starts and reuses.
//!
//! Only its owner gets in. It listens on a Unix socket in its data directory
//! (or, when that path is too long for a socket, in a private folder under
//! the temp dir): a folder only the server's OS user may enter, so the
//! socket's `trust` admits that user and root, no one else. TCP is off
//! unless `WEIR_LOCAL_TCP=1`; then 127.0.0.1 asks for the password kept in
//! `.weir/password` (0600). Its log and data are the server user's alone.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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
/// The password of the `postgres` role, for TCP clients (first line).
const PASSWORD_FILE: &str = "password";
const DATA_DIR: &str = "pgdata";
const LOG_FILE: &str = "postgres.log";
/// In the data directory: where the cluster listens, rewritten at each start.
const PORT_CONF: &str = "weir.conf";
/// PostgreSQL refuses to run as root; this OS user runs it instead.
const OS_USER: &str = "postgres";
const START_TIMEOUT_SECONDS: u32 = 60;
/// Set to 1 to have the cluster listen on 127.0.0.1 too (password required).
pub const TCP_VARIABLE: &str = "WEIR_LOCAL_TCP";
/// The longest path of a Unix socket PostgreSQL accepts (sun_path, less its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// What a socket's folder is followed by: `/.s.PGSQL.<port>`.
const SOCKET_NAME_LEN: usize = "/.s.PGSQL.65535".len();

/// The project-local cluster, known to be running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCluster {
    data_dir: PathBuf,
    port: u16,
    /// The folder of its Unix socket (`host` for libpq, psql and dbt).
    socket_dir: PathBuf,
    /// Whether it listens on 127.0.0.1 too.
    tcp: bool,
    password_file: PathBuf,
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
            ServerState::Ready(endpoint) => match layout.cluster(data_dir.clone(), endpoint) {
                Some(cluster) => Ok(cluster),
                None => {
                    eprintln!(
                        "weir: restarting the local PostgreSQL: an older weir started it \
                         listening on TCP with no password"
                    );
                    stop_server(&Tools::find()?, &data_dir)?;
                    start(&layout)
                }
            },
            ServerState::Stopped => start(&layout),
            ServerState::Busy => Err(not_ready(&data_dir)),
        }
    }

    /// The running cluster of `project_root`, or None when it is not running
    /// (or runs without a socket, as an older weir started it).
    pub fn status(project_root: &Path) -> Result<Option<LocalCluster>> {
        let layout = Layout::new(project_root)?;
        let data_dir = layout.data_dir()?;
        Ok(match server_state(&data_dir) {
            ServerState::Ready(endpoint) => layout.cluster(data_dir, endpoint),
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
        stop_server(&Tools::find()?, &data_dir)?;
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
        let socket_parent = layout.temp_dir();
        for path in [
            owned_folder,
            layout.state_dir.join(LOG_FILE),
            layout.state_dir.join(PASSWORD_FILE),
        ]
        .into_iter()
        .chain(socket_parent.is_dir().then_some(socket_parent))
        {
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

    /// The folder of the cluster's Unix socket: what clients give as `host`.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// Whether the cluster also listens on 127.0.0.1 (see [`TCP_VARIABLE`]).
    pub fn tcp(&self) -> bool {
        self.tcp
    }

    /// The file holding the `postgres` role's password (first line), which
    /// TCP connections need; only its owner may read it.
    pub fn password_file(&self) -> &Path {
        &self.password_file
    }

    /// Where and how to connect, for people and other tools: a libpq
    /// connection string (`psql "<it>"`), then the TCP listener if any.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "host={} port={} user={OS_USER}",
            conninfo_value(&self.socket_dir.to_string_lossy()),
            self.port
        );
        if self.tcp {
            out.push_str(&format!(
                ", and 127.0.0.1:{} with the password in {}",
                self.port,
                self.password_file.display()
            ));
        }
        out
    }
}

/// A value of a libpq connection string: quoted when it holds a space, a
/// quote or a backslash.
fn conninfo_value(value: &str) -> String {
    if value.is_empty() || value.contains([' ', '\'', '\\']) {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    } else {
        value.to_string()
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

    /// This project's private folder under the temp dir, `<temp>/weir-<hash>`:
    /// for a data directory the `postgres` user cannot keep in the project,
    /// or a socket whose path in the data directory would be too long.
    fn temp_dir(&self) -> PathBuf {
        let digest = Sha256::digest(self.project_root.as_os_str().as_encoded_bytes());
        let hash = crate::base::hash::hex(&digest[..6]);
        std::env::temp_dir().join(format!("weir-{hash}"))
    }

    /// Where a data directory goes when the `postgres` user cannot reach the project.
    fn relocated_data_dir(&self) -> PathBuf {
        self.temp_dir().join(DATA_DIR)
    }

    /// The cluster running in `data_dir`; None when it has no socket.
    fn cluster(&self, data_dir: PathBuf, endpoint: Endpoint) -> Option<LocalCluster> {
        Some(LocalCluster {
            data_dir,
            port: endpoint.port,
            socket_dir: endpoint.socket_dir?,
            tcp: endpoint.tcp,
            password_file: self.state_dir.join(PASSWORD_FILE),
        })
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerState {
    Stopped,
    /// A postmaster is starting up or shutting down.
    Busy,
    Ready(Endpoint),
}

/// Where a ready postmaster listens, as its postmaster.pid says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    port: u16,
    /// None when it has no Unix socket.
    socket_dir: Option<PathBuf>,
    tcp: bool,
}

/// What postmaster.pid says, checked against the process table: a file left
/// by a crash, whose pid now names another process (even another cluster's
/// postmaster), counts as stopped.
fn server_state(data_dir: &Path) -> ServerState {
    let Ok(text) = fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return ServerState::Stopped;
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let Some(pid) = lines.first().and_then(|l| l.parse::<u32>().ok()) else {
        return ServerState::Busy;
    };
    if !is_postmaster_of(pid, data_dir) {
        return ServerState::Stopped;
    }
    // Lines: pid, data dir, start time, port, socket dir, listen address,
    // shared memory key, status.
    let port = lines.get(3).and_then(|l| l.parse::<u16>().ok());
    match (port, lines.get(7).copied()) {
        (Some(port), Some("ready")) => ServerState::Ready(Endpoint {
            port,
            socket_dir: lines.get(4).filter(|l| !l.is_empty()).map(PathBuf::from),
            tcp: lines.get(5).is_some_and(|l| !l.is_empty()),
        }),
        _ => ServerState::Busy,
    }
}

/// Whether `pid` is the postmaster of `data_dir`. A postmaster works in its
/// data directory, so on Linux its cwd tells it from a recycled pid or the
/// postmaster of another cluster.
fn is_postmaster_of(pid: u32, data_dir: &Path) -> bool {
    let proc_dir = Path::new("/proc");
    if proc_dir.join("self").exists() {
        let process = proc_dir.join(pid.to_string());
        let named_postgres = fs::read_to_string(process.join("comm"))
            .is_ok_and(|comm| comm.trim_end().starts_with("postgres"));
        // Unreadable: another OS user's process, so not the one weir started.
        return named_postgres
            && matches!(
                (fs::read_link(process.join("cwd")), fs::canonicalize(data_dir)),
                (Ok(cwd), Ok(dir)) if cwd == dir
            );
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

/// `pg_ctl stop -m fast`.
fn stop_server(tools: &Tools, data_dir: &Path) -> Result<()> {
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
    if !output.status.success() && server_state(data_dir) != ServerState::Stopped {
        return Err(command_failed("pg_ctl stop", &output));
    }
    Ok(())
}

/// Initialise the cluster if needed and start it. Called with the lock held.
fn start(layout: &Layout) -> Result<LocalCluster> {
    let tools = Tools::find()?;
    let tcp = tcp_wanted()?;
    if let Some(user) = &tools.run_as {
        eprintln!(
            "weir: running the local PostgreSQL as OS user `{}`, since PostgreSQL refuses to run as root",
            user.name
        );
    }
    let data_dir = choose_data_dir(layout, &tools)?;
    if let Some(parent) = data_dir.parent().filter(|p| is_weir_temp_dir(p)) {
        ensure_private_dir(&tools, parent)?;
    }
    if !data_dir.join("PG_VERSION").is_file() {
        init_cluster(&tools, &data_dir)?;
    }
    remove_stale_pid_file(&data_dir)?;
    let socket_dir = socket_dir(layout, &tools, &data_dir)?;
    write_access_rules(&tools, &data_dir)?;
    let log = log_file(&tools, &data_dir)?;
    let mut last_error = None;
    // A port found free may be taken before the server binds it: try another.
    for _ in 0..3 {
        configure(&tools, &data_dir, &socket_dir, tcp)?;
        match pg_ctl_start(&tools, &data_dir, &log)? {
            Started::Yes => {
                let cluster = match settle(&data_dir) {
                    ServerState::Ready(endpoint) => layout.cluster(data_dir.clone(), endpoint),
                    _ => None,
                }
                .ok_or_else(|| not_ready(&data_dir))?;
                ensure_password(&cluster)?;
                return Ok(cluster);
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
    tools.give_to_server_user(data_dir)?;
    let output = tools.run(
        &tools.initdb,
        &[
            "-D".as_ref(),
            data_dir.as_os_str(),
            "-U".as_ref(),
            OS_USER.as_ref(),
            // The socket's folder is the gate; TCP needs the password weir
            // sets after the first start. pg_hba.conf is rewritten at each start.
            "--auth-local=trust".as_ref(),
            "--auth-host=scram-sha-256".as_ref(),
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
    let settings = "\n# Added by weir: a development cluster for its owner only.\n\
                    # Disposable data: speed over crash safety.\n\
                    fsync = off\n\
                    synchronous_commit = off\n\
                    full_page_writes = off\n\
                    # Where it listens: rewritten at each start.\n\
                    include_if_exists = 'weir.conf'\n";
    append(&conf, settings)
}

/// Whether [`TCP_VARIABLE`] asks for a TCP listener.
fn tcp_wanted() -> Result<bool> {
    let value = std::env::var(TCP_VARIABLE).unwrap_or_default();
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" => Ok(false),
        "1" | "true" | "yes" => Ok(true),
        _ => Err(Error::new(
            ErrorKind::Usage,
            format!("{TCP_VARIABLE} must be 1 (listen on 127.0.0.1 too) or 0, not `{value}`"),
        )),
    }
}

/// A folder only the server's OS user may enter: created so, or, when it
/// exists, checked to belong to that user (not a symlink) and made 0700.
/// Anything else may be someone's attempt to watch or replace the cluster.
fn ensure_private_dir(tools: &Tools, dir: &Path) -> Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(dir).map_err(|e| Error::io(dir, e))?;
            if !meta.is_dir() || Some(meta.uid()) != tools.server_uid() {
                return Err(Error::new(
                    ErrorKind::LocalDatabase,
                    format!(
                        "{} should be a folder of the OS user running the local PostgreSQL \
                         (`{}`), but it is {}: another user may have made it to reach the cluster",
                        dir.display(),
                        tools.server_user_name(),
                        if meta.is_dir() {
                            format!("owned by uid {}", meta.uid())
                        } else {
                            "not a folder".to_string()
                        }
                    ),
                )
                .with_hint(format!("remove {} and run again", dir.display())));
            }
        }
        Err(e) => return Err(Error::io(dir, e)),
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(dir, e))?;
    tools.give_to_server_user(dir)
}

/// A postmaster.pid whose pid is not this cluster's postmaster (a crash left
/// it, and the pid now names another process): PostgreSQL would refuse to
/// start while that process lives. Called with the lock held.
fn remove_stale_pid_file(data_dir: &Path) -> Result<()> {
    let pid_file = data_dir.join("postmaster.pid");
    if pid_file.exists() && server_state(data_dir) == ServerState::Stopped {
        match fs::remove_file(&pid_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(&pid_file, e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The data directory, when a socket there fits the length limit; else a
/// private folder under the temp dir.
fn socket_dir(layout: &Layout, tools: &Tools, data_dir: &Path) -> Result<PathBuf> {
    let fits = |dir: &Path| dir.as_os_str().len() + SOCKET_NAME_LEN <= MAX_SOCKET_PATH;
    if fits(data_dir) {
        return Ok(data_dir.to_path_buf());
    }
    let parent = layout.temp_dir();
    let dir = parent.join("socket");
    if !fits(&dir) {
        return Err(Error::new(
            ErrorKind::LocalDatabase,
            format!(
                "no folder for the local PostgreSQL's socket: {} and {} are too long for a \
                 socket path ({MAX_SOCKET_PATH} bytes)",
                data_dir.display(),
                dir.display()
            ),
        )
        .with_hint("set TMPDIR to a shorter folder"));
    }
    ensure_private_dir(tools, &parent)?;
    ensure_private_dir(tools, &dir)?;
    Ok(dir)
}

/// pg_hba.conf, rewritten at each start (so a cluster an older weir made,
/// trusting TCP, is closed too).
fn write_access_rules(tools: &Tools, data_dir: &Path) -> Result<()> {
    let path = data_dir.join("pg_hba.conf");
    let rules = "# Written by weir at each start: edits are lost.\n\
                 # The socket lives in a folder only the server's OS user may enter:\n\
                 # whoever reaches it is that user (or root).\n\
                 local all all trust\n\
                 # TCP, when WEIR_LOCAL_TCP=1: the password in <project>/.weir/password.\n\
                 host all all 127.0.0.1/32 scram-sha-256\n";
    write_server_file(tools, &path, rules)
}

/// Write a file of the data directory, the server user's and 0600.
fn write_server_file(tools: &Tools, path: &Path, text: &str) -> Result<()> {
    crate::base::atomic_file::write_private(path, text.as_bytes())
        .map_err(|e| Error::io(path, e))?;
    tools.give_to_server_user(path)
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

/// Write weir.conf: the recorded port (a new free one when TCP needs it and
/// it is taken), the socket's folder, and TCP on or off.
fn configure(tools: &Tools, data_dir: &Path, socket_dir: &Path, tcp: bool) -> Result<()> {
    let conf = data_dir.join(PORT_CONF);
    let recorded = fs::read_to_string(&conf).ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix("port = "))
            .and_then(|p| p.trim().parse::<u16>().ok())
    });
    let port = match recorded {
        // Without TCP the port only names the socket, in a folder of its own.
        Some(port) if !tcp || port_is_free(port) => port,
        _ => free_port()?,
    };
    let socket_dir = socket_dir.to_string_lossy().replace('\'', "''");
    let listen = if tcp { "127.0.0.1" } else { "" };
    let text = format!(
        "port = {port}\nlisten_addresses = '{listen}'\nunix_socket_directories = '{socket_dir}'\n\
         unix_socket_permissions = 0700\n"
    );
    write_server_file(tools, &conf, &text)
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

/// The server log, beside the data directory; the server user's alone (it
/// shows statements and their errors).
fn log_file(tools: &Tools, data_dir: &Path) -> Result<PathBuf> {
    let log = data_dir.parent().unwrap_or(data_dir).join(LOG_FILE);
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&log)
        .map_err(|e| Error::io(&log, e))?;
    fs::set_permissions(&log, fs::Permissions::from_mode(0o600)).map_err(|e| Error::io(&log, e))?;
    tools.give_to_server_user(&log)?;
    Ok(log)
}

/// The first start (or the first by this weir) gives the `postgres` role a
/// random password, kept in `.weir/password` for TCP clients. The server is
/// sent its SCRAM verifier, never the password itself. Set before the file
/// is written: a file always holds a password that works.
fn ensure_password(cluster: &LocalCluster) -> Result<()> {
    let file = &cluster.password_file;
    if file.is_file() {
        return fs::set_permissions(file, fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(file, e));
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::new(
            ErrorKind::LocalDatabase,
            format!("cannot generate a password for the local PostgreSQL: {e}"),
        )
    })?;
    let password = crate::base::hash::hex(&bytes);
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    let set = ::postgres::Config::new()
        .host_path(&cluster.socket_dir)
        .port(cluster.port)
        .user(OS_USER)
        .dbname("postgres")
        .application_name("weir")
        .connect(::postgres::NoTls)
        .and_then(|mut client| {
            client.batch_execute(&format!("alter role {OS_USER} password '{verifier}'"))
        });
    set.map_err(|e| {
        Error::new(
            ErrorKind::LocalDatabase,
            format!("cannot set the password of the local PostgreSQL: {e}"),
        )
    })?;
    crate::base::atomic_file::write_private(file, format!("{password}\n").as_bytes())
        .map_err(|e| Error::io(file, e))
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

    /// The uid the server runs as: the server user's, or weir's own.
    fn server_uid(&self) -> Option<u32> {
        match &self.run_as {
            Some(user) => Some(user.uid),
            None => effective_uid(),
        }
    }

    fn server_user_name(&self) -> String {
        match &self.run_as {
            Some(user) => user.name.clone(),
            None => std::env::var("USER").unwrap_or_else(|_| "you".to_string()),
        }
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
    effective_uid() == Some(0)
}

fn effective_uid() -> Option<u32> {
    // /proc/self belongs to the process's effective user.
    match fs::metadata("/proc/self") {
        Ok(meta) => Some(meta.uid()),
        Err(_) => Command::new("id")
            .arg("-u")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()),
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
    fn a_pid_file_counts_only_when_its_process_is_a_postgres_working_in_the_data_dir() {
        let dir = std::env::temp_dir().join(format!("weir-pidowner-{}", std::process::id()));
        let data_dir = dir.join("pgdata");
        let elsewhere = dir.join("elsewhere");
        fs::create_dir_all(&data_dir).unwrap();
        fs::create_dir_all(&elsewhere).unwrap();
        // A live program named like PostgreSQL's server.
        let fake = dir.join("postgres");
        fs::copy("/bin/sleep", &fake).unwrap();
        let state_with = |cwd: &Path| {
            let mut child = Command::new(&fake)
                .arg("30")
                .current_dir(cwd)
                .spawn()
                .unwrap();
            fs::write(
                data_dir.join("postmaster.pid"),
                format!("{}\n/x\n1\n5432\n/sock\n\n1\nready   \n", child.id()),
            )
            .unwrap();
            // The program has replaced the fork's image once comm says so.
            let comm = PathBuf::from(format!("/proc/{}/comm", child.id()));
            for _ in 0..100 {
                if fs::read_to_string(&comm).is_ok_and(|c| c.starts_with("postgres")) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let state = server_state(&data_dir);
            child.kill().unwrap();
            child.wait().unwrap();
            state
        };
        let elsewhere_state = state_with(&elsewhere);
        let inside_state = state_with(&data_dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(elsewhere_state, ServerState::Stopped);
        assert_eq!(
            inside_state,
            ServerState::Ready(Endpoint {
                port: 5432,
                socket_dir: Some(PathBuf::from("/sock")),
                tcp: false
            })
        );
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
    fn connection_values_are_quoted_only_when_they_must_be() {
        assert_eq!(
            conninfo_value("/srv/shop/.weir/pgdata"),
            "/srv/shop/.weir/pgdata"
        );
        assert_eq!(conninfo_value("/home/a b/it's"), r"'/home/a b/it\'s'");
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
