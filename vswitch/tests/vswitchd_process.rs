//! vswitchd as users run it: `vswitchd --config host.toml` with pcap ports
//! (a capture replayed into qvo-vm1, vm2's output written to a capture),
//! driven by vswitchctl over the socket, stopped cleanly by SIGTERM.

mod frames;
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn frame(seq: u16) -> Vec<u8> {
    frames::vm1_to_vm2(seq, 8)
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn vswitchd_replays_a_capture_serves_vswitchctl_and_stops_on_sigterm() {
    let dir = TempDir(std::env::temp_dir().join(format!("vswitchd-proc-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("tmp");
    let rx = dir.0.join("vm1-in.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&rx).expect("pcap")).expect("writer");
    for i in 0..100u16 {
        let f = frame(i);
        w.write_packet(&PcapPacket::new(
            Duration::from_millis(i as u64),
            f.len() as u32,
            &f,
        ))
        .expect("write");
    }
    drop(w);
    let topo =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/topologies/spec-example.toml");
    let sock = dir.0.join("vswitchd.sock");
    let cfg = dir.0.join("host.toml");
    std::fs::write(
        &cfg,
        format!(
            "host = \"compute1\"\ntopology = \"{}\"\nsocket = \"{}\"\n[[workers]]\n\
             [[ports]]\nname = \"qvo-vm1\"\nbackend = \"pcap\"\nrx = \"vm1-in.pcap\"\n\
             [[ports]]\nname = \"qvo-vm2\"\nbackend = \"pcap\"\ntx = \"vm2-out.pcap\"\n",
            topo.display(),
            sock.display()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vswitchd");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ctl = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
            .arg("--socket")
            .arg(&sock)
            .args(args)
            .output()
            .expect("vswitchctl")
    };
    // Wait until the whole capture went through (vm2's capture has 100 frames).
    let out = dir.0.join("vm2-out.pcap");
    let count = || -> usize {
        std::fs::File::open(&out)
            .ok()
            .and_then(|f| PcapReader::new(f).ok())
            .map(|mut r| {
                let mut n = 0;
                while let Some(Ok(_)) = r.next_packet() {
                    n += 1;
                }
                n
            })
            .unwrap_or(0)
    };
    while count() < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        count(),
        100,
        "every replayed frame written to vm2's capture"
    );
    let o = ctl(&["dump-flows", "br-int"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("n_packets=100"));
    let o = ctl(&["--json", "pmd-stats"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["rx_packets"], 100);
    // Socket is private to its owner.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock)
            .expect("socket")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // SIGTERM: clean exit, socket removed.
    vswitch::os::send_signal(child.id(), libc::SIGTERM).expect("SIGTERM");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists(), "socket removed on exit");
}

#[test]
fn vswitchd_refuses_a_bad_config_naming_it() {
    let dir = TempDir(std::env::temp_dir().join(format!("vswitchd-bad-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("tmp");
    let cfg = dir.0.join("host.toml");
    let topo =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/topologies/spec-example.toml");
    std::fs::write(&cfg, format!("host = \"compute1\"\ntopology = \"{}\"\n[[ports]]\nname = \"qvo-nope\"\nbackend = \"ring\"\n", topo.display())).expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("qvo-nope"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `vswitchd --config host.toml --ovsdb unix:…` under a private
/// ovsdb-server, as an operator runs it in place of ovs-vswitchd:
/// `ovs-vsctl` (waiting for the switch) builds a bridge, `ovs-ofctl`
/// reaches it by name with OVS_RUNDIR set to vswitchd's run directory, and
/// SIGTERM stops it. Skips, saying so, without Open vSwitch's tools.
#[test]
fn vswitchd_takes_its_bridges_from_ovsdb_and_serves_ovs_ofctl_by_bridge_name() {
    if let Err(e) = ovsdb::LocalServer::available() {
        eprintln!("skipped: {e}");
        return;
    }
    let Some(ofctl) = ovsdb::local::find_program("ovs-ofctl") else {
        eprintln!("skipped: ovs-ofctl is not installed");
        return;
    };
    let dir = TempDir(std::env::temp_dir().join(format!("vswitchd-ovsdb-{}", std::process::id())));
    let db = ovsdb::LocalServer::start(&dir.0.join("db")).expect("ovsdb-server");
    let run = dir.0.join("run");
    std::fs::create_dir_all(&run).expect("run dir");
    let cfg = dir.0.join("host.toml");
    std::fs::write(
        &cfg,
        format!(
            "host = \"compute1\"\nsocket = \"{}\"\n[[workers]]\n",
            run.join("vswitchd.sock").display()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--config")
        .arg(&cfg)
        .arg("--ovsdb")
        .arg(db.target())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vswitchd");
    let vsctl = |args: &[&str]| {
        let mut all = vec!["--timeout=10"];
        all.extend_from_slice(args);
        db.vsctl(&all)
    };
    let added = vsctl(&[
        "add-br",
        "br-int",
        "--",
        "set",
        "Bridge",
        "br-int",
        "datapath_type=netdev",
    ]);
    let mgmt = run.join("br-int.mgmt");
    let deadline = Instant::now() + Duration::from_secs(10);
    while added.is_ok() && !mgmt.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ofctl_run = |args: &[&str]| {
        Command::new(&ofctl)
            .env("OVS_RUNDIR", &run)
            .args(["-O", "OpenFlow13", "--timeout=10"])
            .args(args)
            .output()
            .expect("ovs-ofctl")
    };
    let add = ofctl_run(&[
        "add-flow",
        "br-int",
        "table=0,priority=5,dl_type=0x0806,actions=NORMAL",
    ]);
    let dump = ofctl_run(&["dump-flows", "br-int"]);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("exits");
    let mut log = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut log);
    }
    added.unwrap_or_else(|e| panic!("ovs-vsctl add-br: {e}\n{log}"));
    assert!(
        add.status.success(),
        "{}\n{log}",
        String::from_utf8_lossy(&add.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains("priority=5,arp actions=NORMAL"),
        "{dump}\n{log}"
    );
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("ovsdb: connected"), "{log}");
    assert!(log.contains("database: bridge added"), "{log}");
}
