//! Any bytes: parse must return a key or a drop reason, and every rewrite
//! on a parsed packet must succeed or fail cleanly, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::key::Mac;
use pipeline::wire::ethertype;
use pipeline::packet::{apply, parse, parse_into, PacketBuf, Rewrite};

fuzz_target!(|data: &[u8]| {
    let _ = parse(data, 1);
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let mut pkt = PacketBuf::new(9018);
    if pkt.set_data(frame).is_err() || parse_into(&mut pkt).is_err() {
        return;
    }
    let v = u16::from(sel) * 257;
    let all = [
        Rewrite::EthSrc(Mac([sel; 6])),
        Rewrite::VlanPush {
            tpid: ethertype::VLAN,
            tci: v & 0xfff,
        },
        Rewrite::VlanSetTci(v),
        Rewrite::VlanPop,
        Rewrite::Ipv4Src(u32::from(v) << 8),
        Rewrite::Ipv4Dst(u32::from(v)),
        Rewrite::Ipv4Tos(sel & 0xfc),
        Rewrite::Ipv4Ttl(sel),
        Rewrite::Ipv4DecTtl,
        Rewrite::L4Src(v),
        Rewrite::L4Dst(v),
        Rewrite::IcmpId(v),
        Rewrite::ArpOp(v),
        Rewrite::ArpSha(Mac([sel; 6])),
    ];
    for (i, r) in all.iter().enumerate() {
        if sel as usize & (1 << (i % 8)) != 0 {
            let _ = apply(&mut pkt, r);
        }
    }
    let _ = parse(pkt.data(), 1);
});
