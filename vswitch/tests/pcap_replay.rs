//! Captures as operators have them, replayed on a pcap port: a frame
//! longer than the switch takes (counted under `frame_too_long`, in the
//! worker's drops and the port's `rx_dropped`, the next frame still goes
//! through), records cut by the capture's snaplen (`tcpdump -s 96`:
//! replayed as the captured bytes, one warning naming the file) and
//! records longer than the snaplen the file's header gives (replayed
//! whole). vswitchd starts on each and keeps running.

mod frames;
use pcap_file::pcap::{PcapHeader, PcapReader, PcapWriter, RawPcapPacket};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vswitch::config::DaemonConfig;
use vswitch::control::ControlServer;
use vswitch::daemon::Daemon;

const VM1_MAC: u64 = 0xfa163e010011;
const VM2_MAC: u64 = 0xfa163e010012;

/// vm1 -> vm2, UDP, `len` bytes in all.
fn udp(seq: u16, len: usize) -> Vec<u8> {
    let f = frames::vm1_to_vm2(seq, len - 42);
    assert_eq!(f.len(), len);
    f
}

/// vm1 -> vm2, a non-IP frame (local experimental ethertype) of `len`
/// bytes: cut anywhere past its Ethernet header it is still a whole
/// frame to the switch.
fn l2(seq: u8, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&VM2_MAC.to_be_bytes()[2..]);
    f.extend_from_slice(&VM1_MAC.to_be_bytes()[2..]);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..len - 14).map(|i| seq.wrapping_add(i as u8)));
    f
}

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("vswitch-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("tmp");
        TempDir(d)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A capture written as `tcpdump -s SNAPLEN` would: each record holds
/// the first `incl` bytes of its frame and says how long the frame was.
/// `incl` may also exceed the snaplen (a file that contradicts its own
/// header).
fn write_capture(path: &Path, snaplen: u32, records: &[(Vec<u8>, usize)]) {
    let header = PcapHeader {
        snaplen,
        ..Default::default()
    };
    let f = std::fs::File::create(path).expect("create");
    let mut w = PcapWriter::with_header(f, header).expect("pcap");
    for (i, (frame, incl)) in records.iter().enumerate() {
        w.write_raw_packet(&RawPcapPacket {
            ts_sec: 1,
            ts_frac: i as u32,
            incl_len: *incl as u32,
            orig_len: frame.len() as u32,
            data: Cow::Borrowed(&frame[..*incl]),
        })
        .expect("write");
    }
}

fn read_capture(path: &Path) -> Vec<Vec<u8>> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(mut r) = PcapReader::new(f) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Some(Ok(p)) = r.next_packet() {
        out.push(p.data.into_owned());
    }
    out
}

fn topology() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/topologies/spec-example.toml")
}

/// compute1 with vm1's port replaying `rx` and vm2's writing `tx`.
fn config_text(rx: &Path, tx: &Path) -> String {
    format!(
        "host = \"compute1\"\ntopology = \"{}\"\nidle_sleep_us = 20\n[[workers]]\n\
         [[ports]]\nname = \"qvo-vm1\"\nbackend = \"pcap\"\nrx = \"{}\"\n\
         [[ports]]\nname = \"qvo-vm2\"\nbackend = \"pcap\"\ntx = \"{}\"\n",
        topology().display(),
        rx.display(),
        tx.display()
    )
}

fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ctl(sock: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .expect("vswitchctl");
    assert!(
        out.status.success(),
        "vswitchctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_frame_longer_than_the_switch_takes_is_counted_as_frame_too_long_and_the_next_goes_through() {
    let tmp = TempDir::new("oversize");
    let (rx, tx) = (tmp.0.join("vm1-in.pcap"), tmp.0.join("vm2-out.pcap"));
    // 9,200 bytes: over the 9,018 a buffer holds (a 9,000-byte MTU with
    // its Ethernet header and one VLAN tag).
    let big = udp(1, 9200);
    let normal = udp(2, 64);
    write_capture(&rx, 65535, &[(big, 9200), (normal.clone(), 64)]);
    let cfg: DaemonConfig = toml::from_str(&config_text(&rx, &tx)).expect("config");
    let d = Daemon::start(&cfg).expect("start");
    let sock = tmp.0.join("ctl.sock");
    let _server = ControlServer::start(&sock, d.shared.clone()).expect("socket");

    wait_until(|| !read_capture(&tx).is_empty());
    std::thread::sleep(Duration::from_millis(200)); // a report after the last frame
    assert_eq!(
        read_capture(&tx),
        vec![normal],
        "the frame after it reaches vm2"
    );

    let json = ctl(&sock, &["--json", "pmd-stats"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v[0]["rx_packets"], 1, "{json}");
    assert!(
        v[0]["drops"]
            .as_array()
            .expect("drops")
            .iter()
            .any(|d| d[0] == "frame_too_long" && d[1] == 1),
        "pmd-stats names the drop: {json}"
    );
    assert!(
        ctl(&sock, &["pmd-stats"]).contains("frame_too_long=1"),
        "and so does its text"
    );
    let json = ctl(&sock, &["--json", "dump-ports", "br-int", "qvo-vm1"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let c = &v[0]["counters"];
    assert_eq!(
        (&c["rx_packets"], &c["rx_dropped"]),
        (&1.into(), &1.into()),
        "vm1's port counts it dropped on receive: {json}"
    );
    let text = ctl(&sock, &["dump-ports", "br-int", "qvo-vm1"]);
    assert!(text.contains("rx pkts=1, bytes=64, drop=1"), "{text}");
    d.stop();
}

/// vswitchd on `cfg`, stderr piped; killed on drop.
struct Vswitchd(Child);
impl Vswitchd {
    fn start(cfg: &Path) -> Vswitchd {
        let child = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
            .arg("--config")
            .arg(cfg)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vswitchd");
        Vswitchd(child)
    }

    /// Stops it with SIGTERM (unless it has exited); its exit status and
    /// what it logged.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        if self.0.try_wait().expect("try_wait").is_none() {
            vswitch::os::send_signal(self.0.id(), libc::SIGTERM).expect("SIGTERM");
        }
        let mut log = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut log);
        }
        (self.0.wait().expect("wait"), log)
    }
}
impl Drop for Vswitchd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a replay through vswitchd gave.
struct Replay {
    /// What vm2's port wrote.
    got: Vec<Vec<u8>>,
    /// vswitchd's log.
    log: String,
    /// The capture replayed.
    file: PathBuf,
    /// `vswitchctl --json pmd-stats` at the end.
    pmd_stats: serde_json::Value,
}

impl Replay {
    /// Packets worker 0 dropped for `reason`.
    fn drops(&self, reason: &str) -> u64 {
        self.pmd_stats[0]["drops"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d[0] == reason)
            .filter_map(|d| d[1].as_u64())
            .sum()
    }
}

/// Runs vswitchd replaying `records` (written with `snaplen`) into vm1
/// until vm2's capture holds `want` frames.
fn replay_in_vswitchd(
    tag: &str,
    snaplen: u32,
    records: &[(Vec<u8>, usize)],
    want: usize,
) -> Replay {
    let tmp = TempDir::new(tag);
    let (rx, tx) = (tmp.0.join("vm1-in.pcap"), tmp.0.join("vm2-out.pcap"));
    write_capture(&rx, snaplen, records);
    let cfg = tmp.0.join("host.toml");
    let sock = tmp.0.join("vswitchd.sock");
    std::fs::write(
        &cfg,
        format!("socket = \"{}\"\n", sock.display()) + &config_text(&rx, &tx),
    )
    .expect("config");
    let mut d = Vswitchd::start(&cfg);
    let exited = |d: &mut Vswitchd| d.0.try_wait().ok().flatten().is_some();
    wait_until(|| sock.exists() || exited(&mut d));
    wait_until(|| read_capture(&tx).len() >= want || exited(&mut d));
    std::thread::sleep(Duration::from_millis(200)); // a report after the last frame
    let running = !exited(&mut d);
    let pmd_stats = if running {
        serde_json::from_str(&ctl(&sock, &["--json", "pmd-stats"])).expect("json")
    } else {
        serde_json::Value::Null
    };
    let got = read_capture(&tx);
    let (status, log) = d.stop();
    assert!(running, "vswitchd exited at start: {status:?}\n{log}");
    assert!(status.success(), "{status:?}\n{log}");
    Replay {
        got,
        log,
        file: rx,
        pmd_stats,
    }
}

#[test]
fn vswitchd_replays_a_snaplen_cut_capture_as_captured_with_one_warning() {
    // As `tcpdump -s 96` writes them: the first 96 bytes of longer
    // frames; shorter frames whole.
    let cut_l2 = l2(1, 150);
    let cut_udp = udp(2, 200);
    let short = l2(3, 60);
    let r = replay_in_vswitchd(
        "snaplen",
        96,
        &[(cut_l2.clone(), 96), (cut_udp, 96), (short.clone(), 60)],
        2,
    );
    // The switch receives the captured bytes: the cut L2 frame is a frame
    // like any other and reaches vm2 as its 96 bytes; the cut UDP datagram
    // is an IPv4 packet shorter than its header says, dropped by the
    // parser as any cut packet is.
    assert_eq!(r.got, vec![cut_l2[..96].to_vec(), short]);
    assert_eq!(r.pmd_stats[0]["rx_packets"], 3, "{}", r.pmd_stats);
    assert_eq!(r.drops("ipv4_malformed"), 1, "{}", r.pmd_stats);
    let warnings: Vec<&str> = r.log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "one warning: {}", r.log);
    let w = warnings[0];
    assert!(
        w.contains(&r.file.display().to_string()) && w.contains("2 of 3 records"),
        "it names the file and counts the cut records: {w}"
    );
}

#[test]
fn vswitchd_replays_records_longer_than_the_files_snaplen_whole() {
    // A header that says 64 and records of 100 and 60 bytes.
    let long = l2(4, 100);
    let short = l2(5, 60);
    let r = replay_in_vswitchd(
        "oversnap",
        64,
        &[(long.clone(), 100), (short.clone(), 60)],
        2,
    );
    assert_eq!(r.got, vec![long, short]);
    let warnings: Vec<&str> = r.log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "one warning: {}", r.log);
    assert!(
        warnings[0].contains(&r.file.display().to_string())
            && warnings[0].contains("1 of 2 records"),
        "{}",
        warnings[0]
    );
}
