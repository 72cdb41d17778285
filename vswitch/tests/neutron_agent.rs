//! Neutron's own OVS agent code drives vswitchd, through OVSDB and
//! OpenFlow 1.3 under the agent's os-ken controller (native OpenFlow
//! mode, Debian's python3-neutron): the whole agent starting on a DVR
//! compute node (`neutron-vswitch/harness/ovs_agent_start.py`), and its
//! bridge classes programming compute1's local VLAN, DVR-on-VLAN and
//! port-security flows (`ovs_agent_dvr.py`). The running switch then
//! holds, as `ovs-ofctl dump-flows` prints them, the flows the same
//! script leaves in a real ovs-vswitchd (recorded in
//! `tests/golden/neutron-agent-*/` by `record-ovs.sh`). And each host of
//! the spec's topology programmed as `vswitch lab --neutron` programs it
//! (operator and os-vif rows, the L3 agent with neutron-vswitch plugging
//! the router ports, then the whole OVS agent binding every port) holds
//! on br-int, br-vlan and br-ex the flows Open vSwitch holds after the same
//! agents (`tests/golden/neutron-host-*/`, by `record-ovs-host.sh`).
//! Skips, saying so, where Neutron or Open vSwitch's database tools are
//! not installed.
#![deny(unsafe_code)]

mod dbhost;

use dbhost::TempDir;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use vswitch::daemon::Daemon;

const PYTHON: &str = "/usr/bin/python3";

/// A port for an agent's OpenFlow controller to listen on: free now,
/// never handed out twice in this process, and below the kernel's
/// ephemeral range (32768 and up), so no outgoing connection of a test
/// running beside takes it before the agent listens.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 5_000) as u16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let p = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(p < 32_000, "no free port below the ephemeral range");
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

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
fn flows(rundir: &Path, bridge: &str) -> Vec<String> {
    let (ok, out, err) = dbhost::ofctl(rundir, bridge, "dump-flows", &["--no-stats"]);
    assert!(ok, "{err}");
    let mut lines: Vec<String> = out
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

/// vswitchd under a private ovsdb-server, programmed by harness `script`
/// (run with `args` too); fields drop node first, directory last.
struct AgentRun {
    node: dbhost::Node,
    rundir: PathBuf,
    stdout: String,
    _db: ovsdb::LocalServer,
    _dir: TempDir,
}

/// Runs harness `script` against a fresh vswitchd; None (saying why)
/// where Neutron or Open vSwitch's tools are not installed.
fn run_agent(tag: &str, script: &str, args: &[String]) -> Option<AgentRun> {
    if !neutron_installed() {
        eprintln!("skipped: {PYTHON} lacks neutron, os_ken or ovsdbapp (Debian python3-neutron, python3-os-ken, python3-ovsdbapp)");
        return None;
    }
    let db = dbhost::server(&format!("neutron-{tag}"))?;
    let base = std::env::temp_dir().join(format!("vswitch-neutron-{tag}-{}", std::process::id()));
    let rundir = base.join("run");
    let node = dbhost::node(&db, Some(&rundir));
    // A free port for the agent's controller to listen on.
    let port = free_port();
    let out = Command::new(PYTHON)
        .arg(harness(script))
        .args(["--ovsdb", &db.target(), "--of-port", &port.to_string()])
        .args(args)
        .output()
        .expect("the harness runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "harness failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(AgentRun {
        node,
        rundir,
        stdout,
        _db: db,
        _dir: TempDir(base),
    })
}

/// Runs harness `script` against a fresh vswitchd under a private
/// ovsdb-server; compares both bridges with golden `dir`.
fn programs_vswitchd_as_ovs(script: &str, ok_line: &str, dir: &str, check: impl Fn(&Daemon)) {
    let Some(run) = run_agent(dir, script, &[]) else {
        return;
    };
    assert!(run.stdout.contains(ok_line), "{}", run.stdout);
    for bridge in ["br-int", "br-vlan"] {
        assert_eq!(flows(&run.rundir, bridge), golden(dir, bridge), "{bridge}");
    }
    check(&run.node.daemon);
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

/// Network namespaces and veth pairs of one test, deleted on drop (even
/// when the test fails).
struct Vms {
    namespaces: Vec<String>,
    host_ends: Vec<String>,
}

impl Drop for Vms {
    fn drop(&mut self) {
        for d in &self.host_ends {
            let _ = Command::new("ip").args(["link", "del", d]).status();
        }
        for n in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// ICMP echo from namespace `ns` to `dst` as `ping` does (a raw socket;
/// the machine may have no `ping`): true when an echo reply from `dst`
/// comes back within 2 s of one of `tries` requests.
fn ping(ns: &str, dst: &str, tries: u32) -> bool {
    const ECHO: &str = r#"
import os, socket, struct, sys, time
dst, tries = sys.argv[1], int(sys.argv[2])
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(0.5)
ident = os.getpid() & 0xffff
for seq in range(tries):
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"vswitch-test"
    pkt = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    s.sendto(pkt, (dst, 0))
    end = time.time() + 2
    while time.time() < end:
        try:
            data, addr = s.recvfrom(2048)
        except socket.timeout:
            continue
        icmp = data[(data[0] & 0x0f) * 4:]
        if addr[0] == dst and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
            sys.exit(0)
sys.exit(1)
"#;
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            PYTHON,
            "-c",
            ECHO,
            dst,
            &tries.to_string(),
        ])
        .status()
        .is_ok_and(|s| s.success())
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two VMs of net1 on compute1 (namespaces whose eth0 is a veth; the
/// other end is the VM's port on br-int) ping each other through vswitchd
/// whose every bridge, port, tag and flow the real OVS agent made: the
/// agent starts, binds both ports (local VLAN, ARP/MAC spoofing rules), and
/// the frames go through its tables 0, 24, 25, 60 (NORMAL) in vswitchd.
#[test]
fn vms_ping_each_other_through_vswitchd_programmed_by_the_agent() {
    if !vswitch::os::is_root() {
        eprintln!("skipped: needs root (network namespaces and veth pairs)");
        return;
    }
    let tag = std::process::id() % 100_000;
    let vms = [
        ("fa:16:3e:01:00:11", "10.1.0.11"),
        ("fa:16:3e:01:00:12", "10.1.0.12"),
    ];
    let mut guard = Vms {
        namespaces: Vec::new(),
        host_ends: Vec::new(),
    };
    let mut vm_args = Vec::new();
    for (i, (mac, addr)) in vms.iter().enumerate() {
        let ns = format!("vsn{tag}vm{i}");
        let dev = format!("qvo{tag}v{i}");
        let inner = format!("vsn{tag}e{i}");
        ip(&["netns", "add", &ns]);
        guard.namespaces.push(ns.clone());
        ip(&["link", "add", &dev, "type", "veth", "peer", "name", &inner]);
        guard.host_ends.push(dev.clone());
        ip(&["link", "set", &inner, "netns", &ns]);
        ip(&["-n", &ns, "link", "set", &inner, "name", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "address", mac]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["link", "set", &dev, "up"]);
        vm_args.push(format!("{dev}={mac},{addr}"));
    }
    let vm_args: Vec<String> = vm_args
        .iter()
        .flat_map(|v| ["--vm".to_string(), v.clone()])
        .collect();
    let Some(run) = run_agent("ping", "ovs_agent_start", &vm_args) else {
        return;
    };
    let flows = flows(&run.rundir, "br-int").join("\n");
    assert!(
        ping(&guard.namespaces[0], vms[1].1, 3),
        "vm0 -> vm1: no echo reply\nbr-int:\n{flows}"
    );
    // A VM that lies about its address is stopped by the agent's ARP
    // spoofing rules (table 24), in vswitchd.
    ip(&["-n", &guard.namespaces[0], "addr", "flush", "dev", "eth0"]);
    ip(&[
        "-n",
        &guard.namespaces[0],
        "addr",
        "add",
        "10.1.0.99/24",
        "dev",
        "eth0",
    ]);
    ip(&["-n", &guard.namespaces[1], "neigh", "flush", "dev", "eth0"]);
    assert!(
        !ping(&guard.namespaces[0], vms[1].1, 2),
        "a spoofed source got through"
    );
    drop(guard);
}

/// The arguments every harness script takes for host `host` of the
/// spec's topology under database `db`.
fn host_args(db: &ovsdb::LocalServer, host: &str) -> Vec<String> {
    let topology = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/topologies/spec-example.toml")
        .display()
        .to_string();
    vec![
        "--ovsdb".to_string(),
        db.target(),
        "--topology".into(),
        topology,
        "--host".into(),
        host.into(),
    ]
}

/// Runs `/usr/bin/python3 harness/SCRIPT.py ARGS` with the hash seed the
/// recordings used (the agent hands out local VLANs in the order it meets
/// networks); its standard output.
fn python(script: &str, args: &[String]) -> String {
    let out = Command::new(PYTHON)
        .arg(harness(script))
        .args(args)
        .env("PYTHONHASHSEED", "0")
        .output()
        .expect("the harness runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Host `host` of the spec's topology programmed as `vswitch lab
/// --neutron` programs it (operator and os-vif rows, the L3 agent with
/// neutron-vswitch, the OVS agent) holds on each bridge the flows Open
/// vSwitch holds after the same agents (recorded by
/// `harness/record-ovs-host.sh HOST`, where the L3 agent only plugs its
/// ports), and runs the routers.
fn programs_host_as_ovs(host: &str, mode: &str) {
    if !neutron_installed() {
        eprintln!("skipped: {PYTHON} lacks neutron, os_ken or ovsdbapp (Debian python3-neutron, python3-os-ken, python3-ovsdbapp)");
        return;
    }
    let Some(db) = dbhost::server(&format!("host-{host}")) else {
        return;
    };
    let base = TempDir(std::env::temp_dir().join(format!(
        "vswitch-neutron-host-{host}-{}",
        std::process::id()
    )));
    let rundir = base.0.join("run");
    let state = base.0.join("l3");
    std::fs::create_dir_all(&rundir).expect("rundir");
    let node = dbhost::node_of(&db, Some(&rundir), host);
    let socket = rundir.join("vswitchd.sock");
    let server = vswitch::control::ControlServer::start(&socket, node.daemon.shared.clone())
        .expect("control socket");
    let common = host_args(&db, host);
    python("operator", &common);
    let mut l3 = common.clone();
    l3.extend([
        "--agent-mode".into(),
        mode.into(),
        "--control-socket".into(),
        socket.display().to_string(),
        "--state-path".into(),
        state.display().to_string(),
    ]);
    python("l3_agent", &l3);
    let port = free_port();
    let mut l2 = common;
    l2.extend(["--of-port".into(), port.to_string()]);
    python("neutron_host", &l2);
    let dir = format!("neutron-host-{host}");
    for bridge in ["br-int", "br-vlan", "br-ex"] {
        assert_eq!(
            flows(&rundir, bridge),
            golden(&dir, bridge),
            "{host} {bridge}"
        );
    }
    assert!(
        node.daemon
            .shared
            .switch()
            .routers
            .iter()
            .any(|r| r.name == "qrouter-R1"),
        "the L3 agent's router runs"
    );
    drop(server);
    node.stop();
}

#[test]
fn neutrons_agents_program_a_compute_node_as_they_program_ovs() {
    programs_host_as_ovs("compute1", "dvr");
}

#[test]
fn neutrons_agents_program_the_other_compute_node_as_they_program_ovs() {
    programs_host_as_ovs("compute2", "dvr");
}

#[test]
fn neutrons_agents_program_a_network_node_as_they_program_ovs() {
    programs_host_as_ovs("network1", "dvr_snat");
}

/// A harness process killed (SIGTERM, then SIGKILL) when dropped, so a
/// failing test leaves no agent behind.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether any of `lines` holds every one of `parts`.
fn any_flow(lines: &[String], parts: &[&str]) -> bool {
    lines.iter().any(|l| parts.iter().all(|p| l.contains(p)))
}

/// The OVS agent keeps running (its rpc_loop, as the agent's process
/// does) while vswitchd restarts under it: the switch comes back with the
/// agent's flows, the agent's controller is connected again, and a VM
/// plugged after the restart (vm2, 10.1.0.12) is bound through that new
/// connection, its port-security flows on br-int as before the restart
/// the other VMs' were.
#[test]
fn the_running_ovs_agent_binds_ports_plugged_after_vswitchd_restarts() {
    if !neutron_installed() {
        eprintln!("skipped: {PYTHON} lacks neutron, os_ken or ovsdbapp (Debian python3-neutron, python3-os-ken, python3-ovsdbapp)");
        return;
    }
    let Some(db) = dbhost::server("agent-restart") else {
        return;
    };
    let base = TempDir(std::env::temp_dir().join(format!(
        "vswitch-neutron-agent-restart-{}",
        std::process::id()
    )));
    let rundir = base.0.join("run");
    std::fs::create_dir_all(&rundir).expect("rundir");
    let node = dbhost::node_of(&db, Some(&rundir), "compute1");
    let common = host_args(&db, "compute1");
    let mut without_vm2 = common.clone();
    without_vm2.extend(["--without".into(), "vm2".into()]);
    python("operator", &without_vm2);
    let port = free_port();
    let log = base.0.join("agent.log");
    let mut child = Command::new(PYTHON)
        .arg(harness("neutron_host"))
        .args(&common)
        .args(["--of-port", &port.to_string(), "--stay"])
        .env("PYTHONHASHSEED", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("agent log"))
        .spawn()
        .expect("the agent starts");
    let stdout = child.stdout.take().expect("stdout");
    let agent = Running(child);
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first)
        .expect("the agent's summary");
    let agent_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        first.contains("\"bound\": [\"vm1\", \"vm4\"]"),
        "{first}\n{}",
        agent_log()
    );
    let before = flows(&rundir, "br-int");
    assert!(any_flow(&before, &["arp_spa=10.1.0.11"]), "{before:#?}");
    assert!(!any_flow(&before, &["arp_spa=10.1.0.12"]), "{before:#?}");

    node.stop();
    let node = dbhost::node_of(&db, Some(&rundir), "compute1");
    assert_eq!(
        flows(&rundir, "br-int"),
        before,
        "flows kept across the restart"
    );
    python("operator", &common);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let now = flows(&rundir, "br-int");
        if any_flow(&now, &["table=24", "arp_spa=10.1.0.12"])
            && any_flow(&now, &["table=25", "dl_src=fa:16:3e:01:00:12"])
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "vm2 not bound after the restart:\n{now:#?}\n{}",
            agent_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    drop(agent);
    node.stop();
}
