//! Memory of the connection table: resident bytes per connection after
//! `N` SNAT connections are created (default 1,000,000), measured as the
//! process's RSS growth (`/proc/self/statm`), nothing else allocated.
//!
//! `cargo run --release -p pipeline --example ct_memory [-- N]`

use pipeline::conntrack::{ConnTable, Limits, Nat, PacketInfo, Timeouts, Tuple};
use pipeline::wire::ipproto;
use std::net::Ipv4Addr;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let limits = Limits {
        max_conns: n.max(1),
        ..Limits::default()
    };
    let before = rss_bytes();
    let ct = ConnTable::new(limits, Timeouts::default());
    let ext = Ipv4Addr::new(203, 0, 113, 10);
    let nat = Some(Nat::Src {
        addrs: (ext, ext),
        ports: None,
    });
    let udp = PacketInfo {
        tcp_flags: 0,
        icmp_type: 0,
    };
    for i in 0..n as u32 {
        let t = Tuple {
            zone: 1,
            proto: ipproto::UDP,
            // One port per connection and destination: every SNAT
            // binding keeps its source port.
            src: Ipv4Addr::from(0x0a00_0000 | (i % 4096)),
            dst: Ipv4Addr::from(0xc633_6400 + i / 60_000),
            sport: 1024 + (i % 60_000) as u16,
            dport: 53,
        };
        if ct.track(t, udp, true, nat, 1).is_err() {
            eprintln!("table refused connection {i}");
            std::process::exit(1);
        }
    }
    let after = rss_bytes();
    let per = (after.saturating_sub(before)) as f64 / ct.len().max(1) as f64;
    println!(
        "{} connections: RSS {:.1} MiB -> {:.1} MiB, {:.0} bytes per connection",
        ct.len(),
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        per
    );
}
