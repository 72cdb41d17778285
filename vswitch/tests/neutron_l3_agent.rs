//! Neutron's own L3 agent (Debian's python3-neutron, Zed), with
//! neutron-vswitch's extension loaded by its entry point, configures
//! vswitchd's routers: the agent's router factory builds the extension's
//! DVR router class, which plugs the router's qr-/sg-/qg-/fg- ports as
//! Open_vSwitch rows (as the OVS interface driver writes them) and hands
//! vswitchd each router over the control socket
//! (`neutron-vswitch/harness/l3_agent.py`, the server's side answered from
//! the spec's example topology). What vswitchd then runs is what the same
//! topology compiles to for that host, in dvr mode (compute1: the floating
//! IP bound there) and dvr_snat mode (network1: the SNAT instance); a
//! router removed from the agent leaves neither instance nor port. Skips,
//! saying so, where Neutron or Open vSwitch's database tools are missing.
#![deny(unsafe_code)]

mod dbhost;

use dbhost::{vsctl, TempDir};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use topology::HostRouter;
use vswitch::control::ControlServer;
use vswitch::l3agent;

const PYTHON: &str = "/usr/bin/python3";

fn neutron_installed() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import neutron, ovsdbapp"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn topology_file() -> PathBuf {
    root().join("config/topologies/spec-example.toml")
}

/// The routers `host` runs per the document, named as Neutron's agent
/// names them: a port's device is its prefix and the port's id cut to 14
/// (the harness's server gives each router port its document device name
/// as id: qr-s1 -> qr-qr-s1), the rfp/fpr link after the router's id (the
/// document pins `r1` for the article's names).
fn expected(host: &str) -> Vec<HostRouter> {
    let t = topology::load_toml(&std::fs::read_to_string(topology_file()).unwrap()).unwrap();
    let mut v = topology::l3::host_routers(&t, host).unwrap();
    let agent = |d: &mut String| *d = format!("{}{d}", &d[..3]).chars().take(14).collect();
    for r in &mut v {
        r.link_suffix = r.name.chars().take(10).collect();
        for i in &mut r.interfaces {
            agent(&mut i.device);
            if let Some(s) = &mut i.snat {
                agent(&mut s.device);
            }
        }
        if let Some(g) = &mut r.gateway {
            agent(&mut g.device);
        }
        if let Some(f) = &mut r.fip_gateway {
            agent(&mut f.device);
        }
    }
    v
}

/// The agent's files from a "previous run": the document's pinned (or
/// allocated) rfp links and FIP rule priorities, as the L3 agent keeps
/// them in its state_path; its allocators take them back.
fn seed_state(dir: &std::path::Path, routers: &[HostRouter]) {
    let mut links = String::new();
    let mut prios = String::new();
    for r in routers {
        if let Some(a) = r.rfp_address {
            links.push_str(&format!("{},{a}/31\n", r.name));
        }
        for f in &r.floating_ips {
            prios.push_str(&format!("{},{}\n", f.address, f.rule_priority));
        }
    }
    std::fs::write(dir.join("fip-linklocal-networks"), links).unwrap();
    std::fs::write(dir.join("fip-priorities"), prios).unwrap();
}

fn l3_agent(
    db: &ovsdb::LocalServer,
    host: &str,
    mode: &str,
    socket: &std::path::Path,
    state: &std::path::Path,
    delete: bool,
) -> serde_json::Value {
    let mut cmd = Command::new(PYTHON);
    cmd.arg(root().join("neutron-vswitch/harness/l3_agent.py"))
        .arg("--topology")
        .arg(topology_file())
        .args([
            "--host",
            host,
            "--agent-mode",
            mode,
            "--ovsdb",
            &db.target(),
        ])
        .arg("--control-socket")
        .arg(socket)
        .arg("--state-path")
        .arg(state);
    if delete {
        cmd.arg("--delete");
    }
    let out = cmd.output().expect("the harness runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "harness failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("summary")
}

fn l3_agent_drives(host: &str, mode: &str) {
    if !neutron_installed() {
        eprintln!("skipped: {PYTHON} lacks neutron or ovsdbapp (Debian python3-neutron, python3-ovsdbapp)");
        return;
    }
    let Some(db) = dbhost::server(&format!("l3-{host}")) else {
        return;
    };
    let base =
        TempDir(std::env::temp_dir().join(format!("vswitch-l3a-{host}-{}", std::process::id())));
    let (run, state) = (base.0.join("run"), base.0.join("state"));
    std::fs::create_dir_all(&run).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    let want = expected(host);
    assert!(!want.is_empty(), "{host} runs a router");
    seed_state(&state, &want);

    let node = dbhost::node_of(&db, Some(&run), host);
    let shared = node.daemon.shared.clone();
    let socket = run.join("vswitchd.sock");
    let server = ControlServer::start(&socket, Arc::clone(&shared)).expect("control socket");
    vsctl(&db, &["add-br", "br-int"]);

    let summary = l3_agent(&db, host, mode, &socket, &state, false);
    assert_eq!(
        summary["classes"],
        serde_json::json!(["VswitchDvrRouter"]),
        "{summary}"
    );
    let got: Vec<HostRouter> = serde_json::from_value(summary["vswitchd"].clone()).unwrap();
    assert_eq!(got, want);
    assert_eq!(l3agent::list(&shared), want);
    assert_eq!(
        shared.switch().routers,
        topology::l3::compile_host_routers(host, &want).unwrap()
    );
    // Every port the instances attach to, plugged as the OVS interface
    // driver plugs it: internal, the Neutron port's id and MAC.
    let r = &want[0];
    let qr = &r.interfaces[0];
    let ids = vsctl(&db, &["get", "Interface", &qr.device, "external_ids"]);
    assert!(
        ids.contains(&format!("iface-id={}", &qr.device[3..]))
            && ids.contains(&format!("attached-mac=\"{}\"", qr.mac)),
        "{ids}"
    );
    assert_eq!(
        vsctl(&db, &["get", "Interface", &qr.device, "type"]).trim(),
        "internal"
    );
    let ports = vsctl(&db, &["list-ports", "br-int"]);
    if let Some(fg) = &r.fip_gateway {
        assert!(ports.lines().any(|p| p == fg.device), "{ports}");
    }
    if r.snat_here {
        let g = r.gateway.as_ref().unwrap();
        assert!(ports.lines().any(|p| p == g.device), "{ports}");
        assert!(
            ports.lines().any(|p| p == qr.snat.as_ref().unwrap().device),
            "{ports}"
        );
    } else {
        assert!(
            !ports
                .lines()
                .any(|p| p.starts_with("sg-") || p.starts_with("qg-")),
            "{ports}"
        );
    }

    // The agent restarts and then loses the routers: nothing is left.
    let summary = l3_agent(&db, host, mode, &socket, &state, true);
    assert_eq!(summary["vswitchd"], serde_json::json!([]), "{summary}");
    assert!(shared.switch().routers.is_empty());
    let ports = vsctl(&db, &["list-ports", "br-int"]);
    assert_eq!(ports.trim(), "", "ports left: {ports}");
    drop(server);
    drop(shared);
    node.stop();
}

#[test]
fn the_l3_agent_configures_a_compute_nodes_routers() {
    l3_agent_drives("compute1", "dvr");
}

#[test]
fn the_l3_agent_configures_a_network_nodes_routers() {
    l3_agent_drives("network1", "dvr_snat");
}
