//! `vswitch lab`: the seed article's experiment on real Linux kernels.
//!
//! The spec's example (§0.3) built out of network namespaces: one per host
//! (compute1, compute2, network1), each running its own `vswitchd` on
//! AF_PACKET ports; one per VM, whose `eth0` is a veth whose other end is
//! the VM's port (`qvo-…`) in its host; a fabric namespace holding two
//! Linux bridges, the VLAN trunk joining every host's `eth1` and the
//! external segment joining every `eth2` with the upstream router; the
//! upstream router (the external subnet's gateway, forwarding) and the
//! external host behind it (`spec::EXTERNAL_HOST`). Every namespace is
//! named `vsl-…` and every address lives inside one of them: the
//! machine's own interfaces and routes are never touched.
//!
//! The scenarios (`scenario`) then run with the kernels' own stacks
//! (ICMP echo through raw sockets, HTTP over kernel TCP), and each one's
//! first packet is traced through the daemons that carried it.
//! Everything is removed at the end, after a failure, and on Ctrl-C
//! (`LabGuard`); `--keep` leaves it up and `vswitch lab down` removes it
//! later, from the state kept in `RUN_DIR`. Without root the same
//! scenarios run on the in-process multi-host simulation (`run_sim`).
//!
//! Owns the lab's namespaces, its daemons and `RUN_DIR`. May call: its
//! children (`netns` and `probe` for the kernels, `scenario` for what to
//! run, `paths` for names and places, `neutron` for `--neutron`, `error`), `sim` (`run_sim`), `shipped` (which vswitchd), `spec`
//! (the topology and the world outside it), vswitch's control client and
//! `os` (signals, stopping daemons).
#![deny(unsafe_code)]

pub mod error;
pub mod netns;
mod neutron;
mod paths;
pub mod probe;
pub mod scenario;

use crate::sim::{Segment, Sim};
use crate::spec;
pub use error::{LabError, ScenarioError, TraceError};
use paths::{file_error, ip, socket_of};
pub use paths::{host_ns, vm_ns, NS_PREFIX, RUN_DIR};
use pipeline::key::{Field, FlowKey};
use pipeline::wire::ipproto;
use scenario::{LabScenario, Outcome, Probe, SeenAs, Sender};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use topology::Topology;

const FABRIC_NS: &str = "vsl-fabric";
const UPSTREAM_NS: &str = "vsl-upstream";
const EXTERNAL_NS: &str = "vsl-external";
const TRUNK_BRIDGE: &str = "trunk";
const EXTERNAL_BRIDGE: &str = "extnet";
/// The upstream router's address on the external host's side.
const UPSTREAM_INNER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// `Interrupted` once SIGINT or SIGTERM arrived: the lab stops building
/// and comes down.
fn check_interrupt() -> Result<(), LabError> {
    if vswitch::os::stop_requested() {
        Err(LabError::Interrupted)
    } else {
        Ok(())
    }
}

pub use vswitch::os::is_root;

/// The lab's topology (the spec's example), parsed and validated.
fn topology() -> Result<Topology, LabError> {
    spec::topology().map_err(LabError::Topology)
}

/// A lab run's results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// `kernel` (namespaces), `neutron` (namespaces, the switches
    /// configured by Neutron's agents) or `simulation`.
    pub mode: String,
    pub scenarios: Vec<Outcome>,
    /// `neutron`: per host, what its L3 and OVS agents reported.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<(String, String, String)>,
    /// `neutron`: the scenarios again after every vswitchd was restarted
    /// (the agents not run again: the switches put back what they held).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after_restart: Vec<Outcome>,
    /// For `--keep`: each host's control socket.
    pub sockets: Vec<(String, String)>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.scenarios.iter().filter(|s| s.passed).count()
    }

    /// Every scenario passed, also after the restart if there was one.
    pub fn all_passed(&self) -> bool {
        self.scenarios
            .iter()
            .chain(&self.after_restart)
            .all(|s| s.passed)
    }
}

/// Everything a kernel lab run created; removes it on drop unless kept.
struct LabGuard {
    namespaces: Vec<String>,
    daemons: Vec<(String, Child)>,
    /// `--neutron`: each host's database server.
    databases: Vec<(String, ovsdb::LocalServer)>,
    keep: bool,
}

impl LabGuard {
    fn add_ns(&mut self, name: &str) -> Result<(), LabError> {
        netns::add_namespace(name)?;
        self.namespaces.push(name.to_string());
        Ok(())
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for (_, child) in &mut self.daemons {
            vswitch::os::terminate(child.id(), Duration::from_secs(3));
            let _ = child.wait();
        }
        self.databases.clear();
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = netns::del_namespace(ns) {
                eprintln!("lab: cleanup: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(RUN_DIR);
    }
}

/// A short interface name for a host's end of a link in the fabric.
fn fabric_port(index: usize, nic: &str) -> String {
    let mut n = format!("h{index}-{nic}");
    n.truncate(15);
    n
}

/// Options of a kernel lab run.
#[derive(Clone, Debug, Default)]
pub struct LabOptions {
    pub keep: bool,
    /// Each host's vswitchd configured only by Neutron's agents (OVSDB,
    /// OpenFlow, the L3 extension) instead of the topology.
    pub neutron: bool,
    /// The vswitchd binary (default: beside the running executable).
    pub vswitchd: Option<PathBuf>,
}

/// The vswitchd to run: `--vswitchd`'s, else the one that ships beside us.
fn find_vswitchd(opt: &Option<PathBuf>) -> Result<PathBuf, LabError> {
    if let Some(p) = opt {
        return Ok(p.clone());
    }
    Ok(crate::shipped::binary("vswitchd")?)
}

/// Builds the lab, runs every scenario, tears it down (unless `keep`).
pub fn run_kernel(
    opts: &LabOptions,
    progress: &mut dyn FnMut(&Outcome),
) -> Result<Report, LabError> {
    if !is_root() {
        return Err(LabError::NeedsRoot);
    }
    let vswitchd = find_vswitchd(&opts.vswitchd)?;
    if opts.neutron {
        neutron::check_available()?;
    }
    let left = netns::namespaces_with_prefix(NS_PREFIX);
    if !left.is_empty() {
        return Err(LabError::AlreadyUp(left));
    }
    let t = topology()?;
    let list = scenario::scenarios(&t)?;
    vswitch::os::catch_stop_signals();
    let mut guard = LabGuard {
        namespaces: Vec::new(),
        daemons: Vec::new(),
        databases: Vec::new(),
        keep: false,
    };
    let result = build_and_run(&t, &list, &vswitchd, opts.neutron, &mut guard, progress);
    // Keep only a lab that came up whole.
    guard.keep = opts.keep && result.is_ok() && !vswitch::os::stop_requested();
    if guard.keep {
        // The daemons outlive us; `lab down` finds them by pid.
        let mut pids: String = guard
            .daemons
            .iter()
            .map(|(h, c)| format!("{h} {}\n", c.id()))
            .collect();
        pids.push_str(&neutron::detach(&mut guard.databases));
        let _ = std::fs::write(Path::new(RUN_DIR).join("pids"), pids);
    }
    drop(guard);
    result
}

/// Builds the lab in namespaces, starts a daemon per host and runs every
/// scenario; `g` holds what was built, for the caller to remove.
fn build_and_run(
    t: &Topology,
    list: &[LabScenario],
    vswitchd: &Path,
    under_neutron: bool,
    g: &mut LabGuard,
    progress: &mut dyn FnMut(&Outcome),
) -> Result<Report, LabError> {
    let topo_path = prepare_run_dir()?;
    build_fabric(g)?;
    connect_hosts(t, g)?;
    add_vms(t, g)?;
    add_upstream_and_external_host(t, g)?;
    let agents = if under_neutron {
        start_daemons_under_neutron(t, vswitchd, &topo_path, g)?
    } else {
        start_daemons(t, vswitchd, &topo_path, g)?;
        Vec::new()
    };
    let outcomes = run_kernel_scenarios(t, list, progress)?;
    let after_restart = if under_neutron {
        restart_daemons(vswitchd, g)?;
        let mut again = |o: &Outcome| {
            let mut o = o.clone();
            o.title = format!("after restarting every vswitchd: {}", o.title);
            progress(&o)
        };
        run_kernel_scenarios(t, list, &mut again)?
    } else {
        Vec::new()
    };
    Ok(Report {
        mode: if under_neutron { "neutron" } else { "kernel" }.into(),
        scenarios: outcomes,
        agents,
        after_restart,
        sockets: t
            .hosts
            .iter()
            .map(|h| (h.name.clone(), socket_of(&h.name).display().to_string()))
            .collect(),
    })
}

/// Makes `RUN_DIR` (ours only) with the topology the daemons load;
/// returns the topology file's path.
fn prepare_run_dir() -> Result<PathBuf, LabError> {
    std::fs::create_dir_all(RUN_DIR).map_err(file_error(Path::new(RUN_DIR)))?;
    set_mode(Path::new(RUN_DIR), 0o700)?;
    let topo_path = Path::new(RUN_DIR).join("topology.toml");
    std::fs::write(&topo_path, spec::TOPOLOGY).map_err(file_error(&topo_path))?;
    Ok(topo_path)
}

/// The physical network: a namespace with a trunk bridge and an external
/// bridge.
fn build_fabric(g: &mut LabGuard) -> Result<(), LabError> {
    g.add_ns(FABRIC_NS)?;
    for br in [TRUNK_BRIDGE, EXTERNAL_BRIDGE] {
        ip(
            FABRIC_NS,
            &format!("link add {br} type bridge forward_delay 0 stp_state 0"),
        )?;
        ip(FABRIC_NS, &format!("link set {br} up"))?;
    }
    check_interrupt()
}

/// A namespace per host, its uplink NICs joined to the fabric's trunk or
/// external bridge (by the physical network they carry).
fn connect_hosts(t: &Topology, g: &mut LabGuard) -> Result<(), LabError> {
    for (i, h) in t.hosts.iter().enumerate() {
        let ns = host_ns(&h.name);
        g.add_ns(&ns)?;
        for (physnet, bridge) in h.mappings() {
            let Some(nic) = h.nics.get(bridge) else {
                continue;
            };
            let external = t
                .networks
                .iter()
                .any(|n| n.physnet == physnet && n.external);
            let segment = if external {
                EXTERNAL_BRIDGE
            } else {
                TRUNK_BRIDGE
            };
            let peer = fabric_port(i, nic);
            ip(
                &ns,
                &format!("link add {nic} type veth peer name {peer} netns {FABRIC_NS}"),
            )?;
            ip(FABRIC_NS, &format!("link set {peer} master {segment} up"))?;
            ip(&ns, &format!("link set {nic} up"))?;
        }
        check_interrupt()?;
    }
    Ok(())
}

/// A namespace per VM: its `eth0` (the port's MAC and address, a default
/// route through its subnet's gateway), the other end being the port's
/// device in its host.
fn add_vms(t: &Topology, g: &mut LabGuard) -> Result<(), LabError> {
    for p in &t.ports {
        let ns = vm_ns(&p.name);
        g.add_ns(&ns)?;
        let host = host_ns(&p.host);
        ip(
            &host,
            &format!("link add {} type veth peer name eth0 netns {ns}", p.device),
        )?;
        let sub = t.subnets.iter().find(|s| {
            s.network == p.network
                && topology::model::Cidr::parse(&s.cidr)
                    .is_some_and(|c| c.contains(u32::from(p.ip)))
        });
        let prefix = sub
            .and_then(|s| topology::model::Cidr::parse(&s.cidr))
            .map_or(24, |c| c.len);
        ip(&ns, &format!("link set eth0 address {}", p.mac))?;
        ip(&ns, &format!("addr add {}/{prefix} dev eth0", p.ip))?;
        ip(&ns, "link set eth0 up")?;
        ip(&host, &format!("link set {} up", p.device))?;
        if let Some(s) = sub {
            ip(&ns, &format!("route add default via {}", s.gateway_ip))?;
        }
        netns::in_netns(&ns, || netns::offloads_off("eth0"))??;
        check_interrupt()?;
    }
    Ok(())
}

/// The upstream router (the external subnet's gateway, forwarding) on the
/// external bridge, and the external host behind it.
fn add_upstream_and_external_host(t: &Topology, g: &mut LabGuard) -> Result<(), LabError> {
    let ext = spec::external_subnet(t).ok_or(LabError::NoExternalSubnet)?;
    let ext_prefix = topology::model::Cidr::parse(&ext.cidr).map_or(24, |c| c.len);
    g.add_ns(UPSTREAM_NS)?;
    g.add_ns(EXTERNAL_NS)?;
    ip(
        UPSTREAM_NS,
        &format!("link add eth0 type veth peer name upstream netns {FABRIC_NS}"),
    )?;
    ip(
        FABRIC_NS,
        &format!("link set upstream master {EXTERNAL_BRIDGE} up"),
    )?;
    ip(
        UPSTREAM_NS,
        &format!("link set eth0 address {}", spec::UPSTREAM_MAC),
    )?;
    ip(
        UPSTREAM_NS,
        &format!("addr add {}/{ext_prefix} dev eth0", ext.gateway_ip),
    )?;
    ip(
        UPSTREAM_NS,
        &format!("link add eth1 type veth peer name eth0 netns {EXTERNAL_NS}"),
    )?;
    ip(
        UPSTREAM_NS,
        &format!("addr add {UPSTREAM_INNER}/24 dev eth1"),
    )?;
    ip(
        EXTERNAL_NS,
        &format!("addr add {}/24 dev eth0", spec::EXTERNAL_HOST),
    )?;
    for (ns, dev) in [
        (UPSTREAM_NS, "eth0"),
        (UPSTREAM_NS, "eth1"),
        (EXTERNAL_NS, "eth0"),
    ] {
        ip(ns, &format!("link set {dev} up"))?;
        netns::in_netns(ns, || netns::offloads_off(dev))??;
    }
    ip(
        EXTERNAL_NS,
        &format!("route add default via {UPSTREAM_INNER}"),
    )?;
    netns::in_netns(UPSTREAM_NS, || {
        netns::write_sysctl("net/ipv4/ip_forward", "1")
    })??;
    check_interrupt()
}

/// One vswitchd per host, in the host's namespace, each in its own
/// process group (Ctrl-C reaches the lab, which stops the daemons in
/// order); returns once every daemon serves its control socket.
fn start_daemons(
    t: &Topology,
    vswitchd: &Path,
    topo_path: &Path,
    g: &mut LabGuard,
) -> Result<(), LabError> {
    for h in &t.hosts {
        let cfg = daemon_config(t, &h.name, topo_path);
        spawn_vswitchd(&h.name, &cfg, vswitchd, g)?;
    }
    for (host, child) in &mut g.daemons {
        wait_ready(host, child)?;
    }
    Ok(())
}

/// `--neutron`: per host a database server holding what the operator and
/// nova wrote, a vswitchd following it, then the host's agents; returns
/// once every host is programmed, with what each host's agents reported.
fn start_daemons_under_neutron(
    t: &Topology,
    vswitchd: &Path,
    topo_path: &Path,
    g: &mut LabGuard,
) -> Result<Vec<(String, String, String)>, LabError> {
    for h in &t.hosts {
        let db = neutron::start_database(&h.name)?;
        neutron::operator_and_nova(t, &h.name, &db)?;
        let cfg = neutron::daemon_config(&h.name, &db);
        g.databases.push((h.name.clone(), db));
        spawn_vswitchd(&h.name, &cfg, vswitchd, g)?;
        check_interrupt()?;
    }
    for (host, child) in &mut g.daemons {
        wait_ready(host, child)?;
    }
    let mut reports = Vec::new();
    for (host, db) in &g.databases {
        let (l3, l2) = neutron::run_agents(t, host, db, topo_path)?;
        reports.push((host.clone(), l3, l2));
        check_interrupt()?;
    }
    Ok(reports)
}

/// Stops every host's vswitchd and starts it again on the same config, as
/// an operator's `systemctl restart`; returns once each serves its socket
/// and holds router instances and br-int flows again (from its database
/// and what it kept in its run directory), 15 s at most.
fn restart_daemons(vswitchd: &Path, g: &mut LabGuard) -> Result<(), LabError> {
    let hosts: Vec<String> = g.daemons.iter().map(|(h, _)| h.clone()).collect();
    for (_, child) in &mut g.daemons {
        vswitch::os::terminate(child.id(), Duration::from_secs(3));
        let _ = child.wait();
    }
    g.daemons.clear();
    for host in &hosts {
        let cfg_path = Path::new(RUN_DIR).join(format!("{host}.toml"));
        let cfg = std::fs::read_to_string(&cfg_path).map_err(file_error(&cfg_path))?;
        spawn_vswitchd(host, &cfg, vswitchd, g)?;
    }
    for (host, child) in &mut g.daemons {
        wait_ready(host, child)?;
    }
    let start = Instant::now();
    for host in &hosts {
        loop {
            check_interrupt()?;
            if holds_routers_and_flows(host) {
                break;
            }
            if start.elapsed() > Duration::from_secs(15) {
                return Err(LabError::Neutron(format!(
                    "{host}: after the restart, vswitchd did not put its routers and flows back"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// Host `host`'s daemon runs router instances and br-int has flows.
fn holds_routers_and_flows(host: &str) -> bool {
    use vswitch::control::{call, Request, Response};
    let sock = socket_of(host);
    let routers = matches!(
        call(&sock, &Request::RouterShow { router: None }),
        Ok(Response::RouterShow(r)) if !r.routers.is_empty()
    );
    let flows = matches!(
        call(
            &sock,
            &Request::DumpFlows {
                bridge: "br-int".into(),
                matching: None,
                sort: None,
                descending: false
            }
        ),
        Ok(Response::DumpFlows(d)) if !d.flows.is_empty()
    );
    routers && flows
}

/// Starts host `host`'s vswitchd with config `cfg` in the host's
/// namespace, in its own process group (Ctrl-C reaches the lab, which
/// stops the daemons in order), logging to `RUN_DIR/HOST.log`.
fn spawn_vswitchd(
    host: &str,
    cfg: &str,
    vswitchd: &Path,
    g: &mut LabGuard,
) -> Result<(), LabError> {
    use std::os::unix::process::CommandExt;
    let cfg_path = Path::new(RUN_DIR).join(format!("{host}.toml"));
    std::fs::write(&cfg_path, cfg).map_err(file_error(&cfg_path))?;
    let log_path = Path::new(RUN_DIR).join(format!("{host}.log"));
    let log = std::fs::File::create(&log_path).map_err(file_error(&log_path))?;
    let log2 = log.try_clone().map_err(|source| LabError::LogClone {
        path: log_path.clone(),
        source,
    })?;
    let child = Command::new("ip")
        .args(["netns", "exec", &host_ns(host)])
        .arg(vswitchd)
        .arg("--config")
        .arg(&cfg_path)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|source| LabError::StartVswitchd {
            host: host.to_string(),
            source,
        })?;
    g.daemons.push((host.to_string(), child));
    Ok(())
}

/// Runs every scenario on the namespaces' kernels and traces its first
/// packet through the daemons that carried it; reports each as it ends.
fn run_kernel_scenarios(
    t: &Topology,
    list: &[LabScenario],
    progress: &mut dyn FnMut(&Outcome),
) -> Result<Vec<Outcome>, LabError> {
    let mut outcomes = Vec::new();
    for s in list {
        check_interrupt()?;
        let mut o = run_kernel_scenario(s);
        o.traces = scenario::trace_across(t, &s.first, daemon_trace).unwrap_or_else(|e| {
            o.detail.push_str(&format!("; trace failed: {e}"));
            Vec::new()
        });
        progress(&o);
        outcomes.push(o);
    }
    Ok(outcomes)
}

/// `packet` traced by `host`'s daemon: the trace as JSON and as text.
fn daemon_trace(host: &str, packet: &str) -> Result<(serde_json::Value, String), TraceError> {
    let request = vswitch::control::Request::Trace {
        bridge: None,
        packet: Some(packet.to_string()),
        frame: None,
        in_port: None,
    };
    match vswitch::control::call(&socket_of(host), &request)? {
        vswitch::control::Response::Trace(r) => Ok((r.trace, r.text)),
        _ => Ok((serde_json::Value::Null, String::new())),
    }
}

/// Sets `p`'s permission bits to `mode`.
fn set_mode(p: &Path, mode: u32) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(file_error(p))
}

/// Host `host`'s vswitchd config: every NIC and VM port on AF_PACKET.
fn daemon_config(t: &Topology, host: &str, topology: &Path) -> String {
    let mut s = format!(
        "# written by `vswitch lab`\nhost = \"{host}\"\ntopology = \"{}\"\nsocket = \"{}\"\nlog_level = \"warn\"\n\
         # three daemons share this machine's cores: sleep when idle\nidle_sleep_us = 100\n",
        topology.display(),
        socket_of(host).display()
    );
    let h = t.hosts.iter().find(|h| h.name == host);
    let nics = h.map(|h| h.nics.values().cloned().collect::<Vec<_>>());
    let vms = t
        .ports
        .iter()
        .filter(|p| p.host == host)
        .map(|p| p.device.clone());
    for name in nics.into_iter().flatten().chain(vms) {
        s.push_str(&format!(
            "\n[[ports]]\nname = \"{name}\"\nbackend = \"af-packet\"\n"
        ));
    }
    s
}

/// Waits (up to 15 s) until `host`'s daemon answers on its control
/// socket; its log is the error if it exits first.
fn wait_ready(host: &str, child: &mut Child) -> Result<(), LabError> {
    let sock = socket_of(host);
    let start = Instant::now();
    loop {
        check_interrupt()?;
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(Path::new(RUN_DIR).join(format!("{host}.log")))
                .unwrap_or_default();
            return Err(LabError::VswitchdExited {
                host: host.to_string(),
                status,
                log: log.trim().to_string(),
            });
        }
        if vswitch::control::call(&sock, &vswitch::control::Request::Show {}).is_ok() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(15) {
            return Err(LabError::VswitchdSilent {
                host: host.to_string(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs one scenario on the kernels of the namespaces.
fn run_kernel_scenario(s: &LabScenario) -> Outcome {
    let (passed, detail) = match kernel_probe(s) {
        Ok(r) => r,
        Err(e) => (false, e.to_string()),
    };
    Outcome::of(s, passed, detail)
}

/// The namespace a sender's probe runs in.
fn sender_ns(s: &Sender) -> String {
    match s {
        Sender::Vm(v) => vm_ns(v),
        Sender::External => EXTERNAL_NS.to_string(),
    }
}

/// Echo requests per ping scenario; every one must be answered.
const PINGS: u32 = 3;

/// Runs scenario `s`'s probe from its sender's namespace: whether it
/// passed, and what was seen.
fn kernel_probe(s: &LabScenario) -> Result<(bool, String), LabError> {
    let ns = sender_ns(&s.from);
    match &s.probe {
        Probe::Ping { dst } => kernel_ping(&ns, *dst, 0x5600 | (s.id.len() as u16)),
        Probe::Http {
            server,
            to,
            seen_as,
        } => kernel_http(&ns, server, *to, *seen_as),
    }
}

/// `PINGS` echo requests from namespace `ns` to `dst`: passed when `dst`
/// answered every one.
fn kernel_ping(ns: &str, dst: Ipv4Addr, id: u16) -> Result<(bool, String), LabError> {
    let r = netns::in_netns(ns, || probe::ping(dst, PINGS, id, Duration::from_secs(3)))??;
    let rtt = r
        .rtt_us
        .iter()
        .map(|u| format!("{:.2}", *u as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join("/");
    let from_ok = r.reply_from == Some(dst);
    Ok((
        r.received == r.sent && r.sent == PINGS && from_ok,
        format!(
            "{}/{} echo replies from {}, ttl {}, rtt {rtt} ms",
            r.received,
            r.sent,
            r.reply_from.map_or("-".into(), |a| a.to_string()),
            r.reply_ttl.map_or("-".into(), |t| t.to_string()),
        ),
    ))
}

/// `GET /` from namespace `ns` to `to`, served by `server` in its own
/// namespace: passed when it answered 200 and saw the client as
/// `seen_as`.
fn kernel_http(
    ns: &str,
    server: &Sender,
    to: SocketAddrV4,
    seen_as: SeenAs,
) -> Result<(bool, String), LabError> {
    let (listen, name) = match server {
        Sender::External => (to, "the external host".to_string()),
        Sender::Vm(v) => {
            let t = topology()?;
            let p = t
                .ports
                .iter()
                .find(|p| &p.name == v)
                .ok_or_else(|| LabError::NoVm(v.clone()))?;
            (SocketAddrV4::new(p.ip, to.port()), v.clone())
        }
    };
    let expect: Ipv4Addr = match seen_as {
        SeenAs::Addr(a) => a,
        SeenAs::ExternalSender => spec::EXTERNAL_HOST,
    };
    let srv = probe::HttpServer::start(&sender_ns(server), listen, &name)?;
    let got = netns::in_netns(ns, move || probe::http_get(to, Duration::from_secs(5)))?;
    let peers = srv.stop()?;
    let (status, body) = got?;
    let seen = peers
        .first()
        .map(|p| p.ip().to_string())
        .unwrap_or_default();
    Ok((
        status.contains(" 200 ") && seen == expect.to_string(),
        format!("{status}: \"{body}\" (server saw {seen}, expected {expect})"),
    ))
}

/// Removes a lab left up with `--keep` (or by a crash): stops its daemons,
/// deletes every `vsl-` namespace and the run directory. Returns what it
/// removed.
pub fn down() -> Result<Vec<String>, LabError> {
    if !is_root() {
        return Err(LabError::DownNeedsRoot);
    }
    let mut removed = Vec::new();
    let pids = std::fs::read_to_string(Path::new(RUN_DIR).join("pids")).unwrap_or_default();
    for line in pids.lines() {
        let Some((host, pid)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.trim().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("vswitchd") {
            vswitch::os::terminate(pid, Duration::from_secs(3));
            removed.push(format!("vswitchd of {host} (pid {pid})"));
        } else if cmd.contains("ovsdb-server") {
            vswitch::os::terminate(pid, Duration::from_secs(3));
            removed.push(format!("ovsdb-server {host} (pid {pid})"));
        }
    }
    for ns in netns::namespaces_with_prefix(NS_PREFIX) {
        netns::del_namespace(&ns)?;
        removed.push(format!("namespace {ns}"));
    }
    if Path::new(RUN_DIR).exists() {
        std::fs::remove_dir_all(RUN_DIR).map_err(file_error(Path::new(RUN_DIR)))?;
        removed.push(RUN_DIR.to_string());
    }
    Ok(removed)
}

/// The IPv4 frames endpoint `who` of `sim` received that `pred` accepts.
fn received<'a>(
    sim: &'a Sim,
    who: &str,
    pred: impl Fn(&FlowKey) -> bool + 'a,
) -> impl Iterator<Item = &'a FlowKey> + 'a {
    sim.endpoint(who)
        .into_iter()
        .flat_map(|e| e.received.iter())
        .filter(move |k| k.is_ipv4() && pred(k))
}

/// A TCP SYN (no other flag).
fn is_syn(k: &FlowKey) -> bool {
    k.nw_proto() == ipproto::TCP && k.get(Field::TcpFlags) == 0x002
}

/// The same scenarios on the in-process multi-host simulation: the hosts'
/// compiled switches joined by simulated trunk and external segments, an
/// upstream station answering for the external host.
pub fn run_sim(progress: &mut dyn FnMut(&Outcome)) -> Result<Report, LabError> {
    let t = topology()?;
    let list = scenario::scenarios(&t)?;
    let mut sim = Sim::new(&t)?;
    let ext = spec::external_subnet(&t).ok_or(LabError::NoExternalSubnet)?;
    sim.add_external_station(
        SIM_UPSTREAM,
        spec::UPSTREAM_MAC,
        ext.gateway_ip,
        topology::model::Cidr::parse(&ext.cidr).map_or(24, |c| c.len),
        vec![spec::EXTERNAL_HOST],
    );
    let mut outcomes = Vec::new();
    for (i, s) in list.iter().enumerate() {
        sim.clear_records();
        let (passed, detail) = sim_probe(&mut sim, i, s);
        let traces =
            scenario::trace_across(&t, &s.first, |host, packet| sim_trace(&sim, host, packet));
        let mut o = Outcome::of(s, passed, detail);
        match traces {
            Ok(t) => o.traces = t,
            Err(e) => o.detail.push_str(&format!("; trace failed: {e}")),
        }
        progress(&o);
        outcomes.push(o);
    }
    Ok(Report {
        mode: "simulation".into(),
        scenarios: outcomes,
        agents: Vec::new(),
        after_restart: Vec::new(),
        sockets: Vec::new(),
    })
}

/// The simulation's upstream router, which also answers for the external
/// host (it is the external sender).
const SIM_UPSTREAM: &str = "upstream";

/// Runs scenario `s`, the `i`th of the list (its ICMP id and TCP source
/// port), on the simulation: whether it passed, and what was seen.
fn sim_probe(sim: &mut Sim, i: usize, s: &LabScenario) -> (bool, String) {
    let from = match &s.from {
        Sender::Vm(v) => v.clone(),
        Sender::External => SIM_UPSTREAM.to_string(),
    };
    match &s.probe {
        Probe::Ping { dst } => sim_ping(sim, &from, *dst, 0x5600 + i as u16),
        Probe::Http {
            server,
            to,
            seen_as,
        } => sim_http(sim, &from, server, *to, *seen_as, 40000 + i as u16),
    }
}

/// One echo from `from` to `dst`: passed when exactly one reply came back
/// from `dst`.
fn sim_ping(sim: &mut Sim, from: &str, dst: Ipv4Addr, id: u16) -> (bool, String) {
    let r = sim.ping(from, dst, id);
    let replies = received(sim, from, |k| {
        k.nw_proto() == ipproto::ICMP && k.get(Field::TpSrc) == 0 && k.nw_src() == u32::from(dst)
    })
    .count();
    match r {
        Ok(()) => (replies == 1, format!("{replies}/1 echo replies from {dst}")),
        Err(e) => (false, e.to_string()),
    }
}

/// A TCP handshake from `from` (source port `sport`) to `to`: passed when
/// it completed and the server saw the SYN come from `seen_as`.
fn sim_http(
    sim: &mut Sim,
    from: &str,
    server: &Sender,
    to: SocketAddrV4,
    seen_as: SeenAs,
    sport: u16,
) -> (bool, String) {
    let sender_ip = sim.endpoint(from).map(|e| e.ip);
    let expect = match seen_as {
        SeenAs::Addr(a) => Some(a),
        SeenAs::ExternalSender => sender_ip,
    };
    let r = sim.tcp_connect(from, *to.ip(), sport, to.port());
    let syn_acks = received(sim, from, |k| {
        k.nw_proto() == ipproto::TCP && k.get(Field::TcpFlags) & 0x12 == 0x12
    })
    .count();
    // The SYN as the server got it.
    let syn_src = match server {
        Sender::External => sim
            .wire
            .iter()
            .find(|w| w.segment == Segment::External && w.key.is_ipv4() && is_syn(&w.key))
            .map(|w| w.key.nw_src()),
        Sender::Vm(v) => received(sim, v, is_syn).next().map(|k| k.nw_src()),
    };
    let seen = syn_src.map(Ipv4Addr::from);
    match r {
        Ok(()) => (
            syn_acks == 1 && seen.is_some() && seen == expect,
            format!(
                "handshake {}; server saw {}, expected {}",
                if syn_acks == 1 { "completed" } else { "failed" },
                seen.map_or("nothing".into(), |a| a.to_string()),
                expect.map_or("-".into(), |a| a.to_string())
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// `packet` traced on the simulation's `host`: as JSON and as text.
fn sim_trace(
    sim: &Sim,
    host: &str,
    packet: &str,
) -> Result<(serde_json::Value, String), TraceError> {
    let sw = sim
        .switch(host)
        .ok_or_else(|| TraceError::NoSimHost(host.to_string()))?;
    let tr = pipeline::xlate::trace::trace_text(sw, None, packet, 0)?;
    let v = serde_json::to_value(&tr)?;
    Ok((v, tr.render()))
}
