//! Neutron's own OVS agent code drives vswitchd, through OVSDB and
//! OpenFlow 1.3 under the agent's os-ken controller (native OpenFlow
//! mode, Debian's python3-neutron): the whole agent starting on a DVR
//! compute node (`neutron-vswitch/harness/ovs_agent_start.py`), and its
//! bridge classes programming compute1's local VLAN, DVR-on-VLAN and
//! port-security flows (`ovs_agent_dvr.py`). The running switch then
//! holds, as `ovs-ofctl dump-flows` prints them, the flows the same
//! script leaves in a real ovs-vswitchd (recorded in
//! `tests/golden/neutron-agent-*/` by `record-ovs.sh`). Skips, saying so,
//! where Neutron or Open vSwitch's database tools are not installed.
#![deny(unsafe_code)]

use ovsdb::LocalServer;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use vswitch::config::DaemonConfig;
use vswitch::daemon::Daemon;
use vswitch::database::DatabaseBinding;
use vswitch::ofswitch::OpenFlowService;

const PYTHON: &str = "/usr/bin/python3";

fn neutron_installed() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import neutron, os_ken, ovsdbapp"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn harness(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../neutron-vswitch/harness")
        .join(format!("{script}.py"))
}

/// `ovs-ofctl -O OpenFlow13 dump-flows --no-stats` of `bridge` through
/// its management socket in `rundir`, cookies removed, sorted: the same
/// command and rendering as the golden recording from Open vSwitch.
fn flows(rundir: &std::path::Path, bridge: &str) -> Vec<String> {
    let out = Command::new(ovsdb::local::find_program("ovs-ofctl").expect("ovs-ofctl"))
        .args(["-O", "OpenFlow13", "--no-stats", "dump-flows"])
        .arg(format!(
            "unix:{}",
            rundir.join(format!("{bridge}.mgmt")).display()
        ))
        .output()
        .expect("ovs-ofctl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(strip_cookie)
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines
}

/// A dump line without its leading `cookie=0x…, ` (the agent's cookie is
/// random per run).
fn strip_cookie(l: &str) -> String {
    let l = l.trim();
    match l.strip_prefix("cookie=") {
        Some(rest) => rest.split_once(", ").map_or("", |(_, r)| r).to_string(),
        None => l.to_string(),
    }
}

fn golden(dir: &str, bridge: &str) -> Vec<String> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(dir)
        .join(format!("{bridge}.flows"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(strip_cookie)
        .collect();
    lines.sort();
    lines
}

/// Runs harness `script` against a fresh vswitchd under a private
/// ovsdb-server; compares both bridges with golden `dir`.
fn programs_vswitchd_as_ovs(script: &str, ok_line: &str, dir: &str, check: impl Fn(&Daemon)) {
    if !neutron_installed() {
        eprintln!("skipped: {PYTHON} lacks neutron, os_ken or ovsdbapp (Debian python3-neutron, python3-os-ken, python3-ovsdbapp)");
        return;
    }
    if let Err(e) = LocalServer::available() {
        eprintln!("skipped: {e}");
        return;
    }
    let base = std::env::temp_dir().join(format!("vswitch-{dir}-{}", std::process::id()));
    let db = LocalServer::start(&base.join("db")).expect("ovsdb-server");
    let rundir = base.join("run");
    let text = format!(
        "host = \"compute1\"\novsdb = \"{}\"\nidle_sleep_us = 20\n[[workers]]\n",
        db.target()
    );
    let cfg: DaemonConfig = toml::from_str(&text).expect("config");
    let d = Daemon::start(&cfg).expect("daemon");
    let of = Arc::new(OpenFlowService::start(d.shared.clone(), &rundir).expect("openflow"));
    let _binding =
        DatabaseBinding::start(&db.target(), d.shared.clone(), Some(of.clone())).expect("database");
    // A free port for the agent's controller to listen on.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let out = Command::new(PYTHON)
        .arg(harness(script))
        .args(["--ovsdb", &db.target(), "--of-port", &port.to_string()])
        .output()
        .expect("the harness runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "harness failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(ok_line), "{stdout}");
    for bridge in ["br-int", "br-vlan"] {
        assert_eq!(flows(&rundir, bridge), golden(dir, bridge), "{bridge}");
    }
    check(&d);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn the_ovs_agent_starts_on_vswitchd_as_on_ovs() {
    // The VM port's local VLAN, set by the agent in OVSDB, is the switch's.
    programs_vswitchd_as_ovs(
        "ovs_agent_start",
        "qvo-vm1 tag=1",
        "neutron-agent-start",
        |d| {
            let sw = d.shared.switch();
            let vm = sw.port_by_name("qvo-vm1").expect("the VM port");
            assert_eq!(vm.vlan, pipeline::switch::VlanMode::Access { tag: 1 });
        },
    );
}

#[test]
fn the_ovs_agents_dvr_code_programs_vswitchd_as_it_programs_ovs() {
    programs_vswitchd_as_ovs(
        "ovs_agent_dvr",
        "agent-flows: ok",
        "neutron-agent-dvr",
        |_| {},
    );
}
