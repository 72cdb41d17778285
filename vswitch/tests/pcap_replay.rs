//! Captures as operators have them, replayed on a pcap port: records
//! cut by the capture's snaplen (`tcpdump -s 96`: replayed as the
//! captured bytes, one warning naming the file) and records longer than
//! the snaplen the file's header gives (replayed whole). vswitchd starts
//! on each and keeps running.

use pcap_file::pcap::{PcapHeader, PcapReader, PcapWriter, RawPcapPacket};
use pipeline::key::{Field, FlowKey};
use pipeline::packet::synth::frame_from_key;
use pipeline::wire::{ethertype, ipproto};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VM1_MAC: u64 = 0xfa163e010011;
const VM2_MAC: u64 = 0xfa163e010012;

/// vm1 -> vm2, UDP, `len` bytes in all.
fn udp(seq: u16, len: usize) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, VM1_MAC);
    k.set(Field::DlDst, VM2_MAC);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwSrc, 0x0a01000b);
    k.set(Field::NwDst, 0x0a01000c);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 1000);
    k.set(Field::TpDst, seq as u64);
    let f = frame_from_key(&k, len - 42);
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

/// Runs vswitchd replaying `records` (written with `snaplen`) into vm1
/// until vm2's capture holds `want` frames; returns them and its log.
fn replay_in_vswitchd(
    tag: &str,
    snaplen: u32,
    records: &[(Vec<u8>, usize)],
    want: usize,
) -> (Vec<Vec<u8>>, String, PathBuf) {
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
    wait_until(|| sock.exists() || d.0.try_wait().ok().flatten().is_some());
    wait_until(|| read_capture(&tx).len() >= want || d.0.try_wait().ok().flatten().is_some());
    let running = d.0.try_wait().expect("try_wait").is_none();
    let got = read_capture(&tx);
    let (status, log) = d.stop();
    assert!(running, "vswitchd exited at start: {status:?}\n{log}");
    assert!(status.success(), "{status:?}\n{log}");
    (got, log, rx)
}

#[test]
fn vswitchd_replays_a_snaplen_cut_capture_as_captured_with_one_warning() {
    // As `tcpdump -s 96` writes them: the first 96 bytes of longer
    // frames; shorter frames whole.
    let cut_l2 = l2(1, 150);
    let cut_udp = udp(2, 200);
    let short = l2(3, 60);
    let (got, log, file) = replay_in_vswitchd(
        "snaplen",
        96,
        &[(cut_l2.clone(), 96), (cut_udp, 96), (short.clone(), 60)],
        2,
    );
    // The switch receives the captured bytes: the cut L2 frame is a frame
    // like any other and reaches vm2 as its 96 bytes; the cut UDP datagram
    // is an IPv4 packet shorter than its header says (dropped by the
    // parser, as any cut packet is).
    assert_eq!(got, vec![cut_l2[..96].to_vec(), short]);
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "one warning: {log}");
    let w = warnings[0];
    assert!(
        w.contains(&file.display().to_string()) && w.contains("2 of 3 records"),
        "it names the file and counts the cut records: {w}"
    );
}

#[test]
fn vswitchd_replays_records_longer_than_the_files_snaplen_whole() {
    // A header that says 64 and records of 100 and 60 bytes.
    let long = l2(4, 100);
    let short = l2(5, 60);
    let (got, log, file) = replay_in_vswitchd(
        "oversnap",
        64,
        &[(long.clone(), 100), (short.clone(), 60)],
        2,
    );
    assert_eq!(got, vec![long, short]);
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "one warning: {log}");
    assert!(
        warnings[0].contains(&file.display().to_string()) && warnings[0].contains("1 of 2 records"),
        "{}",
        warnings[0]
    );
}
