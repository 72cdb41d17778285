//! `vswitch lab --neutron`: the same lab, each host's vswitchd configured
//! only by Neutron's own agents, as on a compute node of a cloud.
//!
//! Per host: a private `ovsdb-server` (the Open_vSwitch database, Debian's
//! openvswitch-common); the operator's part written with `ovs-vsctl`
//! (br-int and the physical bridges of the host's bridge_mappings with
//! their NICs, datapath_type netdev) and nova's os-vif part (each VM's
//! port on br-int naming its Neutron port); vswitchd started with
//! `--ovsdb` and nothing else; then Neutron's L3 agent with
//! neutron-vswitch's extension (`harness/l3_agent.py`: plugs the router
//! ports, hands vswitchd the routers) and Neutron's OVS agent
//! (`harness/neutron_host.py`: bridges, local VLANs, port security, DVR
//! flows over OpenFlow 1.3), both in the host's namespace, each answered
//! by `harness/server_model.py` where neutron-server would answer from
//! the lab's topology. The agents exit once they have programmed the
//! host; the switch keeps what they set (secure fail mode), as Open
//! vSwitch does while its agent restarts.
//!
//! May call: `paths`, `netns`, `error`, ovsdb's `LocalServer`.
#![deny(unsafe_code)]

use super::error::LabError;
use super::paths::{file_error, host_ns, ip, socket_of, RUN_DIR};
use ovsdb::LocalServer;
use std::path::{Path, PathBuf};
use std::process::Command;
use topology::model::HostRole;
use topology::Topology;

/// The interpreter Debian's python3-neutron serves.
const PYTHON: &str = "/usr/bin/python3";

/// neutron-vswitch's harness: `VSWITCH_NEUTRON_HARNESS`, else beside the
/// repository the executable was built in (`target/PROFILE/../..`), else
/// where this source was compiled.
fn harness_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VSWITCH_NEUTRON_HARNESS") {
        return PathBuf::from(d);
    }
    let beside = std::env::current_exe().ok().and_then(|e| {
        e.ancestors()
            .map(|a| a.join("neutron-vswitch/harness"))
            .find(|d| d.join("l3_agent.py").exists())
    });
    beside.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../neutron-vswitch/harness")
    })
}

/// What `--neutron` needs on this machine, or what is missing.
pub fn check_available() -> Result<(), LabError> {
    LocalServer::available().map_err(|e| LabError::Neutron(e.to_string()))?;
    let ok = Command::new(PYTHON)
        .args(["-c", "import neutron, os_ken, ovsdbapp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return Err(LabError::Neutron(format!(
            "{PYTHON} lacks neutron, os_ken or ovsdbapp (Debian python3-neutron, \
             python3-os-ken, python3-ovsdbapp)"
        )));
    }
    if !harness_dir().join("l3_agent.py").exists() {
        return Err(LabError::Neutron(format!(
            "{}: no neutron-vswitch harness (set VSWITCH_NEUTRON_HARNESS)",
            harness_dir().display()
        )));
    }
    Ok(())
}

/// Host `host`'s database server, in `RUN_DIR/HOST-db`.
pub(super) fn start_database(host: &str) -> Result<LocalServer, LabError> {
    let dir = Path::new(RUN_DIR).join(format!("{host}-db"));
    LocalServer::start(&dir).map_err(|e| LabError::Neutron(format!("{host}: ovsdb-server: {e}")))
}

fn vsctl(db: &LocalServer, host: &str, args: &[&str]) -> Result<String, LabError> {
    db.vsctl(args)
        .map_err(|e| LabError::Neutron(format!("{host}: {e}")))
}

/// What the operator and nova's os-vif write before the agents run: the
/// bridges (br-int, and each physical bridge with its NIC) on the
/// userspace datapath, and each VM's port on br-int naming its Neutron
/// port (id = the port's name in the topology) and MAC.
pub(super) fn operator_and_nova(
    t: &Topology,
    host: &str,
    db: &LocalServer,
) -> Result<(), LabError> {
    let h = t
        .host(host)
        .ok_or_else(|| LabError::Neutron(format!("no host {host}")))?;
    let netdev = ["--", "set", "Bridge", "", "datapath_type=netdev"];
    let add_br = |br: &str| -> Result<(), LabError> {
        let mut args = vec!["--no-wait", "--may-exist", "add-br", br];
        let mut set = netdev.to_vec();
        set[3] = br;
        args.extend(set);
        vsctl(db, host, &args).map(|_| ())
    };
    add_br("br-int")?;
    for (_, bridge) in h.mappings() {
        add_br(bridge)?;
        if let Some(nic) = h.nics.get(bridge) {
            vsctl(
                db,
                host,
                &["--no-wait", "--may-exist", "add-port", bridge, nic],
            )?;
        }
    }
    for p in t.ports.iter().filter(|p| p.host == host) {
        let ids = [
            format!("external_ids:iface-id={}", p.name),
            "external_ids:iface-status=active".to_string(),
            format!("external_ids:attached-mac=\"{}\"", p.mac),
            format!("external_ids:vm-uuid={}", p.name),
        ];
        let mut args = vec![
            "--no-wait",
            "--may-exist",
            "add-port",
            "br-int",
            &p.device,
            "--",
            "set",
            "Interface",
            &p.device,
        ];
        args.extend(ids.iter().map(String::as_str));
        vsctl(db, host, &args)?;
    }
    Ok(())
}

/// Host `host`'s vswitchd config: the database, its control socket,
/// nothing else (its ports and flows are the agents').
pub(super) fn daemon_config(host: &str, db: &LocalServer) -> String {
    format!(
        "# written by `vswitch lab --neutron`\nhost = \"{host}\"\novsdb = \"{}\"\nsocket = \"{}\"\n\
         # its own run directory: management sockets, kept flows and routers\n\
         rundir = \"{}\"\n\
         log_level = \"warn\"\n# three daemons share this machine's cores: sleep when idle\n\
         idle_sleep_us = 100\n",
        db.target(),
        socket_of(host).display(),
        Path::new(RUN_DIR).join(format!("{host}-run")).display()
    )
}

/// Runs harness `script` in host `host`'s namespace with `args`; its
/// summary (standard output's last line).
fn run_harness(host: &str, script: &str, args: &[String]) -> Result<String, LabError> {
    let log_path = Path::new(RUN_DIR).join(format!("{host}-{script}.log"));
    let out = Command::new("ip")
        .args(["netns", "exec", &host_ns(host), PYTHON])
        .arg(harness_dir().join(format!("{script}.py")))
        .args(args)
        .output()
        .map_err(|e| LabError::Neutron(format!("{host}: {script}: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::write(&log_path, stderr.as_bytes());
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        return Err(LabError::Neutron(format!(
            "{host}: {script} failed (log {}):\n{}",
            log_path.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    Ok(stdout.lines().last().unwrap_or("").to_string())
}

/// A TCP port free on the host's loopback for the OVS agent's controller.
fn free_port(host: &str) -> Result<u16, LabError> {
    super::netns::in_netns(&host_ns(host), || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
    })?
    .map_err(|e| LabError::Neutron(format!("{host}: a free port: {e}")))
}

/// The agents of host `host`: the L3 agent (dvr, or dvr_snat on a network
/// node) and then the OVS agent, which binds every port both plugged.
pub(super) fn run_agents(
    t: &Topology,
    host: &str,
    db: &LocalServer,
    topology: &Path,
) -> Result<(String, String), LabError> {
    let role = t.host(host).map(|h| h.role.clone());
    let mode = if role == Some(HostRole::Network) {
        "dvr_snat"
    } else {
        "dvr"
    };
    ip(&host_ns(host), "link set lo up")?;
    let state = Path::new(RUN_DIR).join(format!("{host}-l3"));
    std::fs::create_dir_all(&state).map_err(file_error(&state))?;
    let common = |extra: &[String]| -> Vec<String> {
        let mut v = vec![
            "--topology".to_string(),
            topology.display().to_string(),
            "--host".to_string(),
            host.to_string(),
            "--ovsdb".to_string(),
            db.target(),
        ];
        v.extend_from_slice(extra);
        v
    };
    let l3 = run_harness(
        host,
        "l3_agent",
        &common(&[
            "--agent-mode".into(),
            mode.into(),
            "--control-socket".into(),
            socket_of(host).display().to_string(),
            "--state-path".into(),
            state.display().to_string(),
        ]),
    )?;
    let port = free_port(host)?;
    let l2 = run_harness(
        host,
        "neutron_host",
        &common(&["--of-port".into(), port.to_string()]),
    )?;
    Ok((l3_brief(&l3), l2_brief(&l2)))
}

fn names(v: &serde_json::Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().or_else(|| x["name"].as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The L3 agent's summary in a line: the routers it processed, by which
/// class, and what vswitchd then holds.
fn l3_brief(summary: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(summary).unwrap_or_default();
    format!(
        "routers {} (class {}); vswitchd holds {}",
        names(&v["routers"]),
        names(&v["classes"]),
        names(&v["vswitchd"])
    )
}

/// The OVS agent's summary in a line: the ports it bound, the flows it
/// left on each bridge.
fn l2_brief(summary: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(summary).unwrap_or_default();
    let flows = v["flows"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(b, n)| format!("{b} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!("bound {}; flows: {flows}", names(&v["bound"]))
}

/// Keeps the database servers of a lab left up; `lab down` stops them.
pub(super) fn detach(databases: &mut Vec<(String, LocalServer)>) -> String {
    let mut pids = String::new();
    for (host, db) in databases.drain(..) {
        pids.push_str(&format!("{host}-ovsdb {}\n", db.pid()));
        db.detach();
    }
    pids
}
