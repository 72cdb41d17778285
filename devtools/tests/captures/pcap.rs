//! The captures `fetch.sh` put in the cache: which they are (`SHA256SUMS`,
//! the list `fetch.sh` verifies them against), where they are, and their
//! records.
//!
//! Records are read raw (`next_raw_packet`): pcap-file's checked reader
//! refuses a record whose length on the wire exceeds the file's snaplen,
//! and such records (cut short by the capturing tool) are part of what the
//! captures were chosen for.

use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;
use std::path::{Path, PathBuf};

/// The upstream release the captures come from (`ORIGIN.md`).
pub const RELEASE: &str = "tcpdump-4.99.3";

/// `fetch.sh`'s list: `sha256  file` per line, the tarball first.
pub const SHA256SUMS: &str = include_str!("SHA256SUMS");

/// One record of a capture.
pub struct Record {
    /// 1-based, as tcpdump and Wireshark number them.
    pub number: usize,
    /// The bytes captured (fewer than `orig_len` when the capture cut it).
    pub data: Vec<u8>,
    pub orig_len: u32,
}

pub struct Capture {
    pub name: String,
    pub records: Vec<Record>,
}

/// (file, sha256) of every capture `SHA256SUMS` lists.
pub fn listed() -> Vec<(&'static str, &'static str)> {
    SHA256SUMS
        .lines()
        .filter_map(|l| l.split_once("  "))
        .filter(|(_, file)| file.ends_with(".pcap"))
        .map(|(sum, file)| (file, sum))
        .collect()
}

/// Where `fetch.sh` puts them: `$VSWITCH_THIRD_PARTY_DIR/tcpdump-4.99.3`,
/// by default under the workspace's `target/`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("VSWITCH_THIRD_PARTY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/third-party"))
        .join(RELEASE)
}

/// Reads an Ethernet (DLT_EN10MB) capture.
pub fn read(path: &Path) -> Result<Capture, String> {
    let what = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| what(&e))?;
    let mut reader = PcapReader::new(std::io::BufReader::new(file)).map_err(|e| what(&e))?;
    let link = reader.header().datalink;
    if link != DataLink::ETHERNET {
        return Err(what(&format!("link type {link:?}, not Ethernet")));
    }
    let mut records = Vec::new();
    while let Some(r) = reader.next_raw_packet() {
        let r = r.map_err(|e| what(&e))?;
        records.push(Record {
            number: records.len() + 1,
            data: r.data.into_owned(),
            orig_len: r.orig_len,
        });
    }
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Ok(Capture { name, records })
}
