//! A private `ovsdb-server` with the Open_vSwitch schema in a directory
//! of its own (Debian `openvswitch-common`), for a switch that has no
//! system database: tests, and the lab's hosts. `ovs-vsctl` against it
//! is `LocalServer::vsctl`. The server is killed and its directory
//! removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the schema.
pub const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

#[derive(Debug, thiserror::Error)]
pub enum LocalServerError {
    #[error("{0} is not installed (Debian openvswitch-common)")]
    Missing(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed: {stderr}")]
    Failed { what: String, stderr: String },
    #[error("ovsdb-server did not listen on {0} within 10 s")]
    NotListening(PathBuf),
}

pub struct LocalServer {
    dir: PathBuf,
    child: Child,
}

/// A program on PATH or in the sbin directories (ovsdb-server is in
/// /usr/sbin, which a non-root PATH may lack).
pub fn find_program(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(cmd))
        .find(|f| f.exists())
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> LocalServerError + '_ {
    move |source| LocalServerError::Io {
        what: what.to_string(),
        source,
    }
}

impl LocalServer {
    /// Whether the server, its tools and the schema are installed.
    pub fn available() -> Result<(), LocalServerError> {
        for p in ["ovsdb-server", "ovsdb-tool", "ovs-vsctl"] {
            find_program(p).ok_or_else(|| LocalServerError::Missing(p.to_string()))?;
        }
        if !Path::new(SCHEMA).exists() {
            return Err(LocalServerError::Missing(SCHEMA.to_string()));
        }
        Ok(())
    }

    /// A new database in `dir` (created; emptied first) served on
    /// `dir/db.sock`, initialised as `ovs-vsctl init` does.
    pub fn start(dir: &Path) -> Result<LocalServer, LocalServerError> {
        LocalServer::available()?;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(io("creating the server's directory"))?;
        let db = dir.join("conf.db");
        let tool = find_program("ovsdb-tool")
            .ok_or_else(|| LocalServerError::Missing("ovsdb-tool".into()))?;
        let out = Command::new(tool)
            .arg("create")
            .arg(&db)
            .arg(SCHEMA)
            .output()
            .map_err(io("ovsdb-tool create"))?;
        if !out.status.success() {
            return Err(LocalServerError::Failed {
                what: "ovsdb-tool create".into(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let child = serve(dir)?;
        let s = LocalServer {
            dir: dir.to_path_buf(),
            child,
        };
        s.wait_listening()?;
        s.vsctl(&["--no-wait", "init"])?;
        Ok(s)
    }

    /// Stops the server and starts it again on the same database, as an
    /// operator's `systemctl restart ovsdb-server` does: clients lose their
    /// connection and must come back.
    pub fn restart(&mut self) -> Result<(), LocalServerError> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.socket());
        self.child = serve(&self.dir)?;
        self.wait_listening()
    }

    fn wait_listening(&self) -> Result<(), LocalServerError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.socket().exists() {
            if Instant::now() >= deadline {
                return Err(LocalServerError::NotListening(self.socket()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// `start` in a directory of its own under the system's temporary
    /// one, named after `tag` and this process.
    pub fn start_in_temp(tag: &str) -> Result<LocalServer, LocalServerError> {
        let dir = std::env::temp_dir().join(format!("ovsdb-{tag}-{}", std::process::id()));
        LocalServer::start(&dir)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Leaves the server running past this value (its directory too): a
    /// lab kept up is stopped later by pid.
    pub fn detach(self) {
        std::mem::forget(self);
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// `unix:…/db.sock`, as a switch's configuration names it.
    pub fn target(&self) -> String {
        format!("unix:{}", self.socket().display())
    }

    /// `ovs-vsctl --db=… ARGS`: its standard output, or its error.
    pub fn vsctl(&self, args: &[&str]) -> Result<String, LocalServerError> {
        let what = format!("ovs-vsctl {}", args.join(" "));
        let out = Command::new(
            find_program("ovs-vsctl")
                .ok_or_else(|| LocalServerError::Missing("ovs-vsctl".into()))?,
        )
        .arg(format!("--db={}", self.target()))
        .args(args)
        .output()
        .map_err(io(&what))?;
        if !out.status.success() {
            return Err(LocalServerError::Failed {
                what,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `ovsdb-server` on `dir/conf.db`, listening on `dir/db.sock`.
fn serve(dir: &Path) -> Result<Child, LocalServerError> {
    let server = find_program("ovsdb-server")
        .ok_or_else(|| LocalServerError::Missing("ovsdb-server".into()))?;
    Command::new(server)
        .arg(dir.join("conf.db"))
        .arg(format!("--remote=punix:{}", dir.join("db.sock").display()))
        .arg(format!(
            "--unixctl={}",
            dir.join("ovsdb-server.ctl").display()
        ))
        .arg("--no-chdir")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io("starting ovsdb-server"))
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
