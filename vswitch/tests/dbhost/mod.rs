//! A compute node under a private ovsdb-server, for the tests of vswitchd
//! under a database: the server (or a skip message where Open vSwitch's
//! tools are missing), a daemon with no topology that follows it (with its
//! OpenFlow side when asked), and `ovs-vsctl`/`ovs-ofctl` as an operator
//! or Neutron's agent runs them.
#![allow(dead_code)]

use ovsdb::LocalServer;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vswitch::config::DaemonConfig;
use vswitch::daemon::Daemon;
use vswitch::database::DatabaseBinding;
use vswitch::ofswitch::OpenFlowService;

/// Removes its directory when dropped, even when a test fails.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private server, or None (saying why) where it is not installed.
pub fn server(tag: &str) -> Option<LocalServer> {
    if let Err(e) = LocalServer::available() {
        eprintln!("skipped: {e}");
        return None;
    }
    Some(LocalServer::start_in_temp(&format!("vswitch-{tag}")).expect("ovsdb-server"))
}

/// vswitchd's daemon following `db`; its OpenFlow side (management
/// sockets in `rundir`) too when a run directory is given. Fields drop
/// in order: the database binding, the OpenFlow side, then the daemon.
pub struct Node {
    binding: DatabaseBinding,
    pub openflow: Option<Arc<OpenFlowService>>,
    pub daemon: Daemon,
}

pub fn node(db: &LocalServer, rundir: Option<&Path>) -> Node {
    node_of(db, rundir, "compute1")
}

/// `node` for host `host`; its control socket's directory (where the L3
/// agent's routers are kept) is `rundir` when given.
pub fn node_of(db: &LocalServer, rundir: Option<&Path>, host: &str) -> Node {
    let socket = rundir
        .map(|r| format!("socket = \"{}\"\n", r.join("vswitchd.sock").display()))
        .unwrap_or_default();
    let text = format!(
        "host = \"{host}\"\novsdb = \"{}\"\nidle_sleep_us = 20\n{socket}[[workers]]\n",
        db.target()
    );
    let cfg: DaemonConfig = toml::from_str(&text).expect("config");
    let daemon = Daemon::start(&cfg).expect("daemon starts without a topology");
    let openflow = rundir
        .map(|r| Arc::new(OpenFlowService::start(daemon.shared.clone(), r).expect("openflow")));
    let binding = DatabaseBinding::start(&db.target(), daemon.shared.clone(), openflow.clone())
        .expect("database binding");
    Node {
        binding,
        openflow,
        daemon,
    }
}

impl Node {
    /// Stops everything, the daemon last.
    pub fn stop(self) {
        let Node {
            binding,
            openflow,
            daemon,
        } = self;
        drop(binding);
        drop(openflow);
        daemon.stop();
    }
}

/// `ovs-vsctl` as an operator or the agent runs it: waiting for the
/// switch to take the change (`cur_cfg`), 10 s at most.
pub fn vsctl(db: &LocalServer, args: &[&str]) -> String {
    let mut all = vec!["--timeout=10"];
    all.extend_from_slice(args);
    db.vsctl(&all).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits (10 s at most) until `done()`.
pub fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ovs-ofctl -O OpenFlow13 ARGS` with the bridge's management socket in
/// `rundir` as its target after `cmd` (waiting for the socket):
/// success, stdout, stderr.
pub fn ofctl(rundir: &Path, bridge: &str, cmd: &str, args: &[&str]) -> (bool, String, String) {
    let sock = rundir.join(format!("{bridge}.mgmt"));
    until(&format!("{}", sock.display()), || sock.exists());
    let out = Command::new(ovsdb::local::find_program("ovs-ofctl").expect("ovs-ofctl"))
        .args(["-O", "OpenFlow13", "--timeout=10", cmd])
        .arg(format!("unix:{}", sock.display()))
        .args(args)
        .output()
        .expect("ovs-ofctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ovs-vsctl add-port BRIDGE NAME PORT_COLS -- set Interface NAME
/// IFACE_COLS` (waiting for the switch), as the agent adds a port.
pub fn add_port(
    db: &LocalServer,
    bridge: &str,
    name: &str,
    port_cols: &[&str],
    iface_cols: &[&str],
) -> String {
    let mut args = vec!["add-port", bridge, name];
    args.extend_from_slice(port_cols);
    if !iface_cols.is_empty() {
        args.extend_from_slice(&["--", "set", "Interface", name]);
        args.extend_from_slice(iface_cols);
    }
    vsctl(db, &args)
}
