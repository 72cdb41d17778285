//! vswitchd as a service of a compute node (issue: the life of a compute
//! node): systemd readiness, its pid file, `--check`, SIGHUP, the log
//! filter checked at start and changed at runtime, and the change log.
#![deny(unsafe_code)]

mod frames;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp(tag: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("vswitch-ops-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    TempDir(d)
}

/// A VM port added live: vm9 on net1, compute1.
const ADD_VM9: &[&str] = &[
    "vm-port",
    "add",
    "vm9",
    "--device",
    "qvo-vm9",
    "--network",
    "net1",
    "--mac",
    "fa:16:3e:01:00:19",
    "--ip",
    "10.1.0.19",
];

fn topology() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/topologies/spec-example.toml")
}

/// compute1 of the spec's topology, no port bound to I/O, plus `extra`.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("host.toml");
    std::fs::write(
        &cfg,
        format!(
            "host = \"compute1\"\ntopology = \"{}\"\nsocket = \"{}\"\nidle_sleep_us = 100\n{extra}\n[[workers]]\n",
            topology().display(),
            dir.join("vswitchd.sock").display()
        ),
    )
    .expect("config");
    cfg
}

/// A vswitchd process, its standard error in `log`; SIGTERM (then
/// SIGKILL) when dropped.
struct Vswitchd {
    child: Child,
    log: PathBuf,
    socket: PathBuf,
}

impl Vswitchd {
    fn start(dir: &Path, cfg: &Path, args: &[&str], env: &[(&str, &str)]) -> Vswitchd {
        let log = dir.join("vswitchd.log");
        let socket = dir.join("vswitchd.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
            .arg("--config")
            .arg(cfg)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("vswitchd");
        let v = Vswitchd { child, log, socket };
        v.until("the control socket", |v| v.socket.exists());
        v
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn until(&self, what: &str, done: impl Fn(&Vswitchd) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("vswitchctl")
    }

    fn ctl_ok(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        assert!(
            o.status.success(),
            "vswitchctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn signal(&self, sig: libc::c_int) {
        vswitch::os::send_signal(self.child.id(), sig).expect("signal");
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let status = self.child.wait().expect("wait");
        std::mem::forget(self);
        status
    }
}

impl Drop for Vswitchd {
    fn drop(&mut self) {
        let _ = vswitch::os::send_signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn under_systemd_vswitchd_says_ready_and_stopping_and_keeps_a_pid_file() {
    let dir = temp("notify");
    let cfg = config(&dir.0, "");
    let notify = dir.0.join("notify.sock");
    let listener = UnixDatagram::bind(&notify).expect("notify socket");
    listener
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let pidfile = dir.0.join("run/vswitchd.pid");
    let v = Vswitchd::start(
        &dir.0,
        &cfg,
        &["--pidfile", pidfile.to_str().expect("utf-8")],
        &[("NOTIFY_SOCKET", notify.to_str().expect("utf-8"))],
    );
    let mut buf = [0u8; 512];
    let n = listener.recv(&mut buf).expect("READY=1 arrives");
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(
        ready.contains(&format!("MAINPID={}", v.child.id())),
        "{ready}"
    );
    // Ready means answering.
    v.ctl_ok(&["show"]);
    assert_eq!(
        std::fs::read_to_string(&pidfile).expect("pid file").trim(),
        v.child.id().to_string()
    );
    // A second daemon with the same pid file is refused, naming it.
    let other = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--config")
        .arg(&cfg)
        .args(["--pidfile", pidfile.to_str().expect("utf-8")])
        .output()
        .expect("vswitchd");
    assert!(!other.status.success());
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        err.contains("already running") && err.contains("vswitchd.pid"),
        "{err}"
    );
    // SIGHUP: logged, and the daemon goes on.
    v.signal(libc::SIGHUP);
    v.until("the SIGHUP log line", |v| v.log().contains("SIGHUP"));
    v.ctl_ok(&["show"]);
    let status = v.stop();
    assert!(status.success(), "{status:?}");
    let n = listener.recv(&mut buf).expect("STOPPING=1 arrives");
    assert_eq!(String::from_utf8_lossy(&buf[..n]), "STOPPING=1");
    assert!(!pidfile.exists(), "the pid file is removed on exit");
}

#[test]
fn check_reads_the_configuration_and_opens_nothing() {
    let dir = temp("check");
    let cfg = config(&dir.0, "");
    let o = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--config")
        .arg(&cfg)
        .arg("--check")
        .output()
        .expect("vswitchd --check");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("ok: host compute1"), "{out}");
    assert!(out.contains("3 bridge(s)"), "{out}");
    assert!(
        !dir.0.join("vswitchd.sock").exists(),
        "--check opened the socket"
    );
    // A port the topology does not have on this host: refused, named.
    let bad = config(
        &dir.0,
        "[[ports]]\nname = \"qvo-vm3\"\nbackend = \"ring\"\n",
    );
    let o = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--config")
        .arg(&bad)
        .arg("--check")
        .output()
        .expect("vswitchd --check");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("qvo-vm3"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_log_level_that_is_no_level_is_refused_naming_it() {
    let dir = temp("loud");
    let cfg = config(&dir.0, "log_level = \"loud\"");
    for extra in [&[][..], &["--check"][..]] {
        let o = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
            .arg("--config")
            .arg(&cfg)
            .args(extra)
            .env_remove("RUST_LOG")
            .output()
            .expect("vswitchd");
        assert!(!o.status.success(), "log_level = \"loud\" accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("host.toml") && err.contains("log_level") && err.contains("`loud`"),
            "{err}"
        );
    }
    assert!(!dir.0.join("vswitchd.sock").exists());
}

#[test]
fn changes_are_logged_and_the_log_level_changes_at_runtime() {
    let dir = temp("vlog");
    let cfg = config(&dir.0, "log_level = \"info\"");
    let v = Vswitchd::start(&dir.0, &cfg, &[], &[]);
    assert!(v.ctl_ok(&["vlog", "list"]).contains("log filter: info"));
    // Accepted changes at info, refused ones at warn, each naming what
    // it changed.
    v.ctl_ok(&[
        "add-flow",
        "br-int",
        "table=0,priority=200,dl_src=fa:16:3e:00:00:99,actions=drop",
    ]);
    v.ctl_ok(&["fip", "associate", "203.0.113.150", "vm2"]);
    let refused = v.ctl(&["fip", "associate", "203.0.113.150", "vm1"]);
    assert!(!refused.status.success());
    v.until("the change log", |v| {
        let log = v.log();
        log.contains("add-flow") && log.contains("fip-associate") && log.contains("refused")
    });
    let log = v.log();
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{log}"))
            .to_string()
    };
    let add = line("add-flow");
    assert!(
        add.contains("INFO") && add.contains("priority=200") && add.contains("applied"),
        "{add}"
    );
    let fip = line("fip-associate address=203.0.113.150 port=vm2");
    assert!(fip.contains("INFO") && fip.contains("applied"), "{fip}");
    let no = line("port=vm1");
    assert!(
        no.contains("WARN") && no.contains("refused") && no.contains("vm2"),
        "{no}"
    );
    // Debug lines appear only once the level is raised at runtime.
    let debug_lines = |v: &Vswitchd| v.log().lines().filter(|l| l.contains("DEBUG")).count();
    assert_eq!(debug_lines(&v), 0);
    let out = v.ctl_ok(&["vlog", "set", "debug"]);
    assert!(out.contains("log filter: debug (was info)"), "{out}");
    v.ctl_ok(&[
        "add-flow",
        "br-int",
        "table=0,priority=201,dl_src=fa:16:3e:00:00:98,actions=drop",
    ]);
    v.until("a debug line", |v| debug_lines(v) > 0);
    // A filter that is no level is refused and the running one stays.
    let o = v.ctl(&["vlog", "set", "loud"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("`loud`"));
    assert!(
        v.ctl_ok(&["--json", "vlog", "list"])
            .contains("\"filter\": \"debug\"")
            || v.ctl_ok(&["--json", "vlog", "list"])
                .contains("\"filter\":\"debug\"")
    );
    assert!(v.stop().success());
}

/// The unit in the repository: Type=notify, its flags ones vswitchd
/// takes, its configuration check before the start.
#[test]
fn the_systemd_unit_starts_vswitchd_as_a_notify_service() {
    let unit = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../packaging/systemd/vswitchd.service"),
    )
    .expect("the unit");
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}="))
            .to_string()
    };
    assert_eq!(value("Type"), "notify");
    assert!(value("ExecStartPre").ends_with("--check"));
    let start = value("ExecStart");
    let pid = value("PIDFile");
    assert!(start.contains(&format!("--pidfile {pid}")), "{start}");
    // Every option the unit passes is one vswitchd takes.
    let help = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--help")
        .output()
        .expect("vswitchd --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for line in [start, value("ExecStartPre")] {
        for flag in line.split_whitespace().filter(|w| w.starts_with("--")) {
            assert!(help.contains(flag), "vswitchd does not take {flag}");
        }
    }
}

/// A port and a floating IP added live, a flow and a bridge added by
/// hand: all there again after SIGTERM and a new start (the state file in
/// the run directory), and gone with `--reset-state`.
#[test]
fn live_changes_survive_a_restart() {
    let dir = temp("state");
    let cfg = config(&dir.0, "");
    let v = Vswitchd::start(&dir.0, &cfg, &[], &[]);
    v.ctl_ok(ADD_VM9);
    v.ctl_ok(&["fip", "associate", "203.0.113.150", "vm9"]);
    v.ctl_ok(&[
        "add-flow",
        "br-int",
        "cookie=0x77,table=0,priority=200,dl_src=fa:16:3e:00:00:99,actions=drop",
    ]);
    v.ctl_ok(&["add-br", "br-test"]);
    v.ctl_ok(&["add-port", "br-test", "p1", "--ofport", "7"]);
    let before = v.ctl_ok(&["dump-flows", "br-int"]).lines().count();
    assert!(v.stop().success());
    assert!(dir.0.join("vswitchd.state.json").exists());

    let v = Vswitchd::start(&dir.0, &cfg, &[], &[]);
    let shown = v.ctl_ok(&["topology", "show"]);
    assert!(shown.contains("name = \"vm9\""), "{shown}");
    assert!(shown.contains("203.0.113.150"), "{shown}");
    let flows = v.ctl_ok(&["dump-flows", "br-int"]);
    assert!(
        flows.contains("cookie=0x77") && flows.contains("priority=200"),
        "{flows}"
    );
    assert_eq!(flows.lines().count(), before, "{flows}");
    let show = v.ctl_ok(&["show"]);
    assert!(show.contains("br-test") && show.contains("p1"), "{show}");
    assert!(
        v.log().contains("state: the last run's put back"),
        "{}",
        v.log()
    );
    assert!(v.stop().success());

    let v = Vswitchd::start(&dir.0, &cfg, &["--reset-state"], &[]);
    assert!(!v.ctl_ok(&["topology", "show"]).contains("vm9"));
    assert!(!v.ctl_ok(&["show"]).contains("br-test"));
    assert!(dir.0.join("vswitchd.state.json.old").exists());
    assert!(v.stop().success());
}

/// `topology show` prints what `topology load` takes (the same topology:
/// nothing changes); `--dry-run` says what a file would change and changes
/// nothing; a file with an error is refused naming the file and the line.
#[test]
fn topology_show_loads_back_and_a_dry_run_prints_the_difference() {
    let dir = temp("topo");
    let cfg = config(&dir.0, "");
    let v = Vswitchd::start(&dir.0, &cfg, &[], &[]);
    let shown = dir.0.join("shown.toml");
    std::fs::write(&shown, v.ctl_ok(&["topology", "show"])).expect("write");
    let out = v.ctl_ok(&["topology", "load", shown.to_str().expect("utf-8")]);
    assert!(out.contains("applied 0 change(s)"), "{out}");
    // The JSON form loads too.
    let json = dir.0.join("shown.json");
    std::fs::write(&json, v.ctl_ok(&["--json", "topology", "show"])).expect("write");
    v.ctl_ok(&["topology", "load", json.to_str().expect("utf-8")]);

    let text = std::fs::read_to_string(topology()).expect("topology");
    let without_vm5 = text.replace("name = \"vm5\"", "name = \"vm55\"");
    let edited = dir.0.join("edited.toml");
    std::fs::write(&edited, &without_vm5).expect("write");
    let out = v.ctl_ok(&[
        "topology",
        "load",
        "--dry-run",
        edited.to_str().expect("utf-8"),
    ]);
    assert!(
        out.contains("- port vm5\n") && out.contains("+ port vm55\n"),
        "{out}"
    );
    assert!(out.contains("nothing applied"), "{out}");
    assert!(v.ctl_ok(&["topology", "show"]).contains("name = \"vm5\""));

    let broken = dir.0.join("broken.toml");
    std::fs::write(
        &broken,
        "[[host]]\nname = \"c1\"\nbridge_mappings = [\n  bad\n]\n",
    )
    .expect("write");
    let o = v.ctl(&["topology", "load", broken.to_str().expect("utf-8")]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("broken.toml") && err.contains("line 4, column 3"),
        "{err}"
    );
    // Standard input, as `-`.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
        .arg("--socket")
        .arg(&v.socket)
        .args(["topology", "load", "--dry-run", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("vswitchctl");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(without_vm5.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(String::from_utf8_lossy(&out.stdout).contains("- port vm5"));
    assert!(v.stop().success());
}

/// A flow added by hand stays when the topology changes (a VM port added,
/// a floating IP associated), and one that holds a compiled flow's slot
/// stands; `cookie=V/-1` selects by cookie, as Neutron's agents write it.
#[test]
fn flows_added_by_hand_outlive_topology_changes() {
    let dir = temp("flows");
    let cfg = config(&dir.0, "");
    let v = Vswitchd::start(&dir.0, &cfg, &[], &[]);
    v.ctl_ok(&[
        "add-flow",
        "br-int",
        "cookie=0x5,table=0,priority=200,dl_src=fa:16:3e:00:00:99,actions=drop",
    ]);
    v.ctl_ok(&[
        "add-flow",
        "br-int",
        "cookie=0x6,table=0,priority=201,dl_src=fa:16:3e:00:00:98,actions=drop",
    ]);
    v.ctl_ok(ADD_VM9);
    v.ctl_ok(&["fip", "associate", "203.0.113.150", "vm9"]);
    let flows = v.ctl_ok(&["dump-flows", "br-int"]);
    assert!(
        flows.contains("priority=200,dl_src=fa:16:3e:00:00:99"),
        "{flows}"
    );
    assert!(
        flows.contains("priority=201,dl_src=fa:16:3e:00:00:98"),
        "{flows}"
    );
    // Delete by exact cookie.
    let out = v.ctl_ok(&["--json", "del-flows", "br-int", "cookie=0x5/-1"]);
    assert!(
        out.contains("\"deleted\": 1") || out.contains("\"deleted\":1"),
        "{out}"
    );
    let flows = v.ctl_ok(&["dump-flows", "br-int"]);
    assert!(
        !flows.contains("fa:16:3e:00:00:99") && flows.contains("fa:16:3e:00:00:98"),
        "{flows}"
    );
    assert!(v.stop().success());
}

/// `capture PORT -` writes the pcap to standard output (what `tcpdump -r
/// -` reads), its timestamps wall-clock times, not seconds since 1970.
#[test]
fn a_capture_goes_to_standard_output_with_wall_clock_times() {
    use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
    let dir = temp("capture");
    let rx = dir.0.join("vm1-in.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&rx).expect("pcap")).expect("writer");
    let frame = vec![0xfau8; 60];
    for i in 0..50u64 {
        w.write_packet(&PcapPacket::new(Duration::from_millis(i), 60, &frame))
            .expect("write");
    }
    drop(w);
    let cfg = config(
        &dir.0,
        "[[ports]]\nname = \"qvo-vm1\"\nbackend = \"pcap\"\nrx = \"vm1-in.pcap\"\nlooped = true\n",
    );
    let v = Vswitchd::start(&dir.0, &cfg, &[], &[]);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    let o = v.ctl(&["capture", "qvo-vm1", "-", "5", "--duration", "10"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("5 packet(s) captured"));
    let mut r = PcapReader::new(&o.stdout[..]).expect("a pcap on standard output");
    let mut n = 0;
    while let Some(p) = r.next_packet() {
        let p = p.expect("packet");
        assert!(
            p.timestamp + Duration::from_secs(60) > before
                && p.timestamp < before + Duration::from_secs(60),
            "timestamp {:?}, now {before:?}",
            p.timestamp
        );
        n += 1;
    }
    assert_eq!(n, 5);
    assert!(!Path::new("-").exists(), "no file named `-`");
    assert!(v.stop().success());
}

/// The datapath's view of a running switch: `dpctl dump-flows` lists the
/// workers' cached flows (megaflow, packets, actions); a live `trace
/// --frame` of a raw frame ends with `Megaflow:` and `Datapath actions:`.
#[test]
fn the_datapath_flows_and_a_live_frame_trace_show_the_megaflow() {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let dir = temp("dpctl");
    let f = frames::vm1_to_vm2(2000, 8);
    let rx = dir.0.join("vm1-in.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&rx).expect("pcap")).expect("writer");
    for i in 0..20u64 {
        w.write_packet(&PcapPacket::new(
            Duration::from_millis(i),
            f.len() as u32,
            &f,
        ))
        .expect("write");
    }
    drop(w);
    let cfg = config(
        &dir.0,
        "[[ports]]\nname = \"qvo-vm1\"\nbackend = \"pcap\"\nrx = \"vm1-in.pcap\"\n\
         [[ports]]\nname = \"qvo-vm2\"\nbackend = \"null\"\n",
    );
    let v = Vswitchd::start(&dir.0, &cfg, &[], &[]);
    v.until("the capture replayed", |v| {
        v.ctl_ok(&["dump-ports", "br-int", "qvo-vm2"])
            .contains("tx_packets=20")
            || v.ctl_ok(&["--json", "dump-ports", "br-int", "qvo-vm2"])
                .contains("\"tx_packets\": 20")
    });
    let flows = v.ctl_ok(&["dpctl", "dump-flows"]);
    let row = flows
        .lines()
        .find(|l| l.contains("in_port=qvo-vm1"))
        .unwrap_or_else(|| panic!("no datapath flow from qvo-vm1:\n{flows}"));
    assert!(row.starts_with("worker 0: "), "{row}");
    assert!(
        row.contains("packets:19") || row.contains("packets:20"),
        "{row}"
    );
    assert!(
        row.contains("actions:") && row.contains("output:qvo-vm2"),
        "{row}"
    );
    let json = v.ctl_ok(&["--json", "dpctl", "dump-flows"]);
    let rows: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(rows.as_array().is_some_and(|r| !r.is_empty()), "{json}");

    let hex: String = f.iter().map(|b| format!("{b:02x}")).collect();
    let trace = v.ctl_ok(&["trace", "--in-port", "qvo-vm1", "--frame", &hex]);
    let megaflow = trace
        .lines()
        .find_map(|l| l.strip_prefix("Megaflow: "))
        .unwrap_or_else(|| panic!("no Megaflow line:\n{trace}"));
    assert!(
        megaflow.contains("in_port=qvo-vm1") && megaflow.contains("dl_dst=fa:16:3e:01:00:12"),
        "{megaflow}"
    );
    let actions = trace
        .lines()
        .find_map(|l| l.strip_prefix("Datapath actions: "))
        .unwrap_or_default();
    assert!(actions.contains("output:qvo-vm2"), "{trace}");
    assert!(v.stop().success());
}

/// `dump-flows` as ovs-ofctl's: a selection (`table=60`, a cookie with
/// `/-1`, match fields), `--sort`/`--rsort`, `dump-aggregate`,
/// `dump-tables`, and `--json` rows with their fields.
#[test]
fn dump_flows_selects_sorts_and_aggregates() {
    let dir = temp("dumpflows");
    let cfg = config(&dir.0, "");
    let v = Vswitchd::start(&dir.0, &cfg, &[], &[]);
    let all = v.ctl_ok(&["dump-flows", "br-int"]);
    let t60 = v.ctl_ok(&["dump-flows", "br-int", "table=60"]);
    assert!(
        !t60.is_empty() && t60.lines().all(|l| l.contains("table=60,")),
        "{t60}"
    );
    assert!(t60.lines().count() < all.lines().count());
    v.ctl_ok(&[
        "add-flow",
        "br-int",
        "cookie=0x77,table=60,priority=500,dl_src=fa:16:3e:00:00:99,actions=drop",
    ]);
    let mine = v.ctl_ok(&["dump-flows", "br-int", "cookie=0x77/-1"]);
    assert_eq!(mine.lines().count(), 1, "{mine}");
    assert!(mine.contains("dl_src=fa:16:3e:00:00:99"));
    let by_field = v.ctl_ok(&["dump-flows", "br-int", "table=60,dl_src=fa:16:3e:00:00:99"]);
    assert_eq!(by_field.lines().count(), 1, "{by_field}");

    let prio = |text: &str| -> Vec<u32> {
        text.lines()
            .filter_map(|l| l.split("priority=").nth(1))
            .filter_map(|p| p.split([',', ' ']).next()?.parse().ok())
            .collect()
    };
    let up = prio(&v.ctl_ok(&["dump-flows", "br-int", "--sort"]));
    let mut sorted = up.clone();
    sorted.sort();
    assert_eq!(up, sorted);
    let down = prio(&v.ctl_ok(&["dump-flows", "br-int", "--rsort=priority"]));
    assert_eq!(down.first(), up.last());
    assert!(down.windows(2).all(|w| w[0] >= w[1]), "{down:?}");
    let o = v.ctl(&["dump-flows", "br-int", "--sort=colour"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("`colour`"));

    let agg = v.ctl_ok(&["dump-aggregate", "br-int", "table=60"]);
    assert_eq!(
        agg.trim(),
        format!(
            "packet_count=0 byte_count=0 flow_count={}",
            t60.lines().count() + 1
        )
    );
    let tables = v.ctl_ok(&["dump-tables", "br-int"]);
    assert!(
        tables
            .lines()
            .any(|l| l.trim_start().starts_with("60: active=")),
        "{tables}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&v.ctl_ok(&["--json", "dump-flows", "br-int", "cookie=0x77/-1"]))
            .expect("json");
    let row = &json["flows"][0];
    assert_eq!(row["table"], 60);
    assert_eq!(row["priority"], 500);
    assert_eq!(row["cookie"], "0x77");
    assert_eq!(row["match"], "dl_src=fa:16:3e:00:00:99");
    assert_eq!(row["actions"], "drop");
    assert_eq!(row["n_packets"], 0);
    assert!(v.stop().success());
}

/// Every bridge has its own port, LOCAL (65534), as in Open vSwitch:
/// flows name it, a trace can start there, `add-br` makes one.
#[test]
fn bridges_have_their_local_port() {
    let dir = temp("local");
    let cfg = config(&dir.0, "");
    let v = Vswitchd::start(&dir.0, &cfg, &[], &[]);
    v.ctl_ok(&[
        "add-flow",
        "br-int",
        "table=0,priority=300,in_port=LOCAL,actions=output:qvo-vm1",
    ]);
    let flows = v.ctl_ok(&["dump-flows", "br-int", "in_port=LOCAL"]);
    assert!(
        flows.contains("in_port=LOCAL actions=output:qvo-vm1"),
        "{flows}"
    );
    let trace = v.ctl_ok(&[
        "trace",
        "--bridge",
        "br-int",
        "in_port=LOCAL,udp,dl_src=fa:16:3e:00:00:fe,dl_dst=fa:16:3e:01:00:11,nw_src=10.1.0.254,nw_dst=10.1.0.11",
    ]);
    assert!(
        trace.contains("Datapath actions: output:qvo-vm1"),
        "{trace}"
    );
    v.ctl_ok(&["add-br", "br-test"]);
    let ports = v.ctl_ok(&["--json", "dump-ports", "br-test"]);
    assert!(ports.contains("65534"), "{ports}");
    assert!(v.stop().success());
}
