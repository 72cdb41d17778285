//! The packet parser and rewrites, checked against etherparse (a
//! differential oracle: frames built by etherparse, fields read back by
//! both) and against full checksum recomputation. Random and mutated bytes
//! must never panic: they parse or are dropped under a named reason.

use etherparse::{
    Ethernet2HeaderSlice, Icmpv4Slice, IpNumber, Ipv4Header, Ipv4HeaderSlice, PacketBuilder,
    SingleVlanHeaderSlice, TcpHeader, TcpHeaderSlice, UdpHeader, UdpHeaderSlice, VlanId,
};
use pipeline::drop::DropReason;
use pipeline::key::{Field, FlowKey, Mac, FRAG_ANY, VLAN_CFI};
use pipeline::packet::{apply, checksum, parse, PacketBuf, Rewrite, HEADROOM};
use pipeline::wire::{ethernet, ethertype, ipproto};
use pipeline::wire::{EthernetFrame, IcmpPacket, Ipv4Packet, VlanTag};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Spec {
    src: [u8; 6],
    dst: [u8; 6],
    vlan: Option<u16>,
    /// The tag is an 802.1ad S-tag (TPID 0x88a8), not 802.1Q.
    s_tag: bool,
    ip_src: [u8; 4],
    ip_dst: [u8; 4],
    ttl: u8,
    /// 0 = UDP, 1 = TCP, 2 = ICMP echo
    l4: u8,
    sport: u16,
    dport: u16,
    payload: usize,
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    (
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        proptest::option::of(0u16..4095),
        any::<bool>(),
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        1u8..=255,
        0u8..3,
        any::<u16>(),
        any::<u16>(),
        0usize..64,
    )
        .prop_map(
            |(src, dst, vlan, s_tag, ip_src, ip_dst, ttl, l4, sport, dport, payload)| Spec {
                src,
                dst,
                vlan,
                s_tag,
                ip_src,
                ip_dst,
                ttl,
                l4,
                sport,
                dport,
                payload,
            },
        )
}

fn build(s: &Spec) -> Vec<u8> {
    let payload: Vec<u8> = (0..s.payload).map(|i| i as u8).collect();
    let mut out = Vec::new();
    let eth = PacketBuilder::ethernet2(s.src, s.dst);
    macro_rules! finish {
        ($b:expr) => {{
            let ip = $b.ipv4(s.ip_src, s.ip_dst, s.ttl);
            match s.l4 {
                0 => ip
                    .udp(s.sport, s.dport)
                    .write(&mut out, &payload)
                    .expect("write"),
                1 => ip
                    .tcp(s.sport, s.dport, 1, 1024)
                    .syn()
                    .write(&mut out, &payload)
                    .expect("write"),
                _ => ip
                    .icmpv4_echo_request(s.sport, s.dport)
                    .write(&mut out, &payload)
                    .expect("write"),
            }
        }};
    }
    match s.vlan {
        Some(v) => finish!(eth.single_vlan(VlanId::try_new(v).expect("vid"))),
        None => finish!(eth),
    }
    if s.vlan.is_some() && s.s_tag {
        out[12..14].copy_from_slice(&ethertype::QINQ.to_be_bytes());
    }
    out
}

/// Reads what etherparse sees, in our key's terms, for a well-formed frame.
fn etherparse_key(frame: &[u8], in_port: u32) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set(Field::InPort, in_port as u64);
    let eth = Ethernet2HeaderSlice::from_slice(frame).expect("eth");
    k.set(Field::DlSrc, Mac(eth.source()).to_u64());
    k.set(Field::DlDst, Mac(eth.destination()).to_u64());
    let mut rest = &frame[14..];
    let mut et = eth.ether_type().0;
    if et == ethertype::VLAN || et == ethertype::QINQ {
        let v = SingleVlanHeaderSlice::from_slice(rest).expect("vlan");
        let tci = (v.priority_code_point().value() as u16) << 13
            | (v.drop_eligible_indicator() as u16) << 12
            | v.vlan_identifier().value();
        k.set_vlan(Some((et, tci)));
        et = v.ether_type().0;
        rest = &rest[4..];
    }
    k.set(Field::DlType, et as u64);
    let ip = Ipv4HeaderSlice::from_slice(rest).expect("ipv4");
    k.set(Field::NwSrc, u32::from_be_bytes(ip.source()) as u64);
    k.set(Field::NwDst, u32::from_be_bytes(ip.destination()) as u64);
    k.set(Field::NwProto, ip.protocol().0 as u64);
    k.set(Field::NwTtl, ip.ttl() as u64);
    k.set(Field::NwTos, (ip.dcp().value() << 2) as u64);
    if ip.more_fragments() || ip.fragments_offset().value() != 0 {
        k.set(Field::NwFrag, FRAG_ANY as u64);
    }
    let l4 = &rest[ip.slice().len()..ip.total_len() as usize];
    match ip.protocol() {
        IpNumber::UDP => {
            let u = UdpHeaderSlice::from_slice(l4).expect("udp");
            k.set(Field::TpSrc, u.source_port() as u64);
            k.set(Field::TpDst, u.destination_port() as u64);
        }
        IpNumber::TCP => {
            let t = TcpHeaderSlice::from_slice(l4).expect("tcp");
            k.set(Field::TpSrc, t.source_port() as u64);
            k.set(Field::TpDst, t.destination_port() as u64);
            let flags = [
                t.fin(),
                t.syn(),
                t.rst(),
                t.psh(),
                t.ack(),
                t.urg(),
                t.ece(),
                t.cwr(),
                t.ns(),
            ]
            .iter()
            .enumerate()
            .fold(0u64, |a, (i, &f)| a | ((f as u64) << i));
            k.set(Field::TcpFlags, flags);
        }
        IpNumber::ICMP => {
            let i = Icmpv4Slice::from_slice(l4).expect("icmp");
            k.set(Field::TpSrc, i.type_u8() as u64);
            k.set(Field::TpDst, i.code_u8() as u64);
            if matches!(i.type_u8(), 0 | 8) {
                let b = i.bytes5to8();
                k.set(Field::IcmpId, u16::from_be_bytes([b[0], b[1]]) as u64);
            }
        }
        _ => {}
    }
    k
}

/// Every checksum in the frame is valid (recomputed from scratch).
fn assert_checksums_valid(frame: &[u8]) {
    let eth = EthernetFrame::new_checked(frame).expect("ethernet");
    let mut rest = eth.payload();
    if matches!(eth.ethertype(), ethertype::VLAN | ethertype::QINQ) {
        rest = &rest[4..];
    }
    let (ip, _) = Ipv4Header::from_slice(rest).expect("ipv4");
    assert_eq!(
        ip.header_checksum,
        ip.calc_header_checksum(),
        "IPv4 header checksum"
    );
    let l4 = &rest[ip.header_len()..ip.total_len as usize];
    match ip.protocol {
        IpNumber::UDP => {
            let (u, payload) = UdpHeader::from_slice(l4).expect("udp");
            if u.checksum != 0 {
                assert_eq!(
                    u.checksum,
                    u.calc_checksum_ipv4(&ip, payload).expect("csum"),
                    "UDP checksum"
                );
            }
        }
        IpNumber::TCP => {
            let (t, payload) = TcpHeader::from_slice(l4).expect("tcp");
            assert_eq!(
                t.checksum,
                t.calc_checksum_ipv4(&ip, payload).expect("csum"),
                "TCP checksum"
            );
        }
        IpNumber::ICMP => assert_eq!(checksum(l4), 0, "ICMP checksum"),
        _ => {}
    }
}

fn arb_rewrite() -> impl Strategy<Value = Rewrite> {
    prop_oneof![
        any::<[u8; 6]>().prop_map(|m| Rewrite::EthSrc(Mac(m))),
        any::<[u8; 6]>().prop_map(|m| Rewrite::EthDst(Mac(m))),
        any::<([u8; 6], [u8; 6])>().prop_map(|(d, s)| Rewrite::EthAddrs {
            dst: Mac(d),
            src: Mac(s)
        }),
        (
            0u16..4095,
            prop_oneof![Just(ethertype::VLAN), Just(ethertype::QINQ)]
        )
            .prop_map(|(v, tpid)| Rewrite::VlanPush { tpid, tci: v }),
        (
            any::<([u8; 6], [u8; 6])>(),
            0u16..4095,
            prop_oneof![Just(ethertype::VLAN), Just(ethertype::QINQ)]
        )
            .prop_map(|((d, s), v, tpid)| Rewrite::VlanPushEth {
                dst: Mac(d),
                src: Mac(s),
                tpid,
                tci: v
            }),
        (0u16..4095).prop_map(Rewrite::VlanSetTci),
        Just(Rewrite::VlanPop),
        any::<u32>().prop_map(Rewrite::Ipv4Src),
        any::<u32>().prop_map(Rewrite::Ipv4Dst),
        (0u8..64).prop_map(|d| Rewrite::Ipv4Tos(d << 2)),
        any::<u8>().prop_map(Rewrite::Ipv4Ttl),
        Just(Rewrite::Ipv4DecTtl),
        any::<u16>().prop_map(Rewrite::L4Src),
        any::<u16>().prop_map(Rewrite::L4Dst),
        any::<u16>().prop_map(Rewrite::IcmpId),
    ]
}

/// What a rewrite does to the key, or the drop it must cause.
/// `raw_id`: the identifier bytes of an ICMP header, which stay in the
/// packet even while its type is not an echo (and the key shows 0).
fn expected_key(k: &FlowKey, r: &Rewrite, raw_id: u16) -> Result<FlowKey, DropReason> {
    let mut k = *k;
    let tagged = k.vlan_tci() & VLAN_CFI != 0;
    let icmp = k.nw_proto() == ipproto::ICMP;
    match *r {
        Rewrite::EthSrc(m) => k.set(Field::DlSrc, m.to_u64()),
        Rewrite::EthDst(m) => k.set(Field::DlDst, m.to_u64()),
        Rewrite::EthAddrs { dst, src } => {
            k.set(Field::DlDst, dst.to_u64());
            k.set(Field::DlSrc, src.to_u64());
        }
        Rewrite::VlanPush { tpid, tci } => k.set_vlan(Some((tpid, tci))),
        Rewrite::VlanPushEth {
            dst,
            src,
            tpid,
            tci,
        } => {
            k.set_vlan(Some((tpid, tci)));
            k.set(Field::DlDst, dst.to_u64());
            k.set(Field::DlSrc, src.to_u64());
        }
        Rewrite::VlanSetTci(_) | Rewrite::VlanPop if !tagged => {
            return Err(DropReason::RewriteNoHeader)
        }
        Rewrite::VlanSetTci(t) => k.set(Field::VlanTci, (t | VLAN_CFI) as u64),
        Rewrite::VlanPop => k.set_vlan(None),
        Rewrite::Ipv4Src(a) => k.set(Field::NwSrc, a as u64),
        Rewrite::Ipv4Dst(a) => k.set(Field::NwDst, a as u64),
        Rewrite::Ipv4Tos(t) => k.set(Field::NwTos, (t & 0xfc) as u64),
        Rewrite::Ipv4Ttl(t) => k.set(Field::NwTtl, t as u64),
        Rewrite::Ipv4DecTtl if k.nw_ttl() <= 1 => return Err(DropReason::TtlExceeded),
        Rewrite::Ipv4DecTtl => k.set(Field::NwTtl, (k.nw_ttl() - 1) as u64),
        Rewrite::L4Src(p) if icmp => {
            k.set(Field::TpSrc, (p & 0xff) as u64);
            // Changing the type can make it (or stop it being) an echo.
            let id = if matches!(p & 0xff, 0 | 8) {
                raw_id as u64
            } else {
                0
            };
            k.set(Field::IcmpId, id);
        }
        Rewrite::L4Dst(p) if icmp => k.set(Field::TpDst, (p & 0xff) as u64),
        Rewrite::L4Src(p) => k.set(Field::TpSrc, p as u64),
        Rewrite::L4Dst(p) => k.set(Field::TpDst, p as u64),
        Rewrite::IcmpId(_) if !icmp => return Err(DropReason::RewriteNoHeader),
        // The identifier is a key field only for echo request/reply.
        Rewrite::IcmpId(i) if matches!(k.tp_src(), 0 | 8) => k.set(Field::IcmpId, i as u64),
        Rewrite::IcmpId(_) => {}
        _ => unreachable!("not generated"),
    }
    Ok(k)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_agrees_with_etherparse(s in arb_spec()) {
        let frame = build(&s);
        let ours = parse(&frame, 7).expect("well-formed frame parses");
        prop_assert_eq!(ours.key, etherparse_key(&frame, 7));
    }

    #[test]
    fn truncated_frames_are_dropped_with_a_reason_never_a_panic(s in arb_spec(), cut in 0usize..200) {
        let frame = build(&s);
        let cut = cut.min(frame.len());
        let short = &frame[..cut];
        match parse(short, 1) {
            Ok(p) => {
                // Accepted only if every header it reports is complete.
                prop_assert!(p.layout.l4_ofs as usize <= short.len());
            }
            Err(reason) => prop_assert!(matches!(
                reason,
                DropReason::EthTruncated | DropReason::VlanTruncated | DropReason::Ipv4Malformed | DropReason::L4Truncated
            ), "{reason:?}"),
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128), et in prop_oneof![Just(ethertype::IPV4), Just(ethertype::ARP), Just(ethertype::IPV6), Just(ethertype::VLAN), any::<u16>()]) {
        let mut f = bytes;
        if let Some(mut eth) = EthernetFrame::new_checked(&mut f[..]) {
            eth.set_ethertype(et);
        }
        let _ = parse(&f, 0);
        let tag = f.get_mut(ethernet::HEADER_LEN..).and_then(VlanTag::new_checked);
        if let (ethertype::VLAN, Some(mut tag)) = (et, tag) {
            tag.set_inner_ethertype(ethertype::IPV4);
            let _ = parse(&f, 0);
        }
    }

    #[test]
    fn mutated_frames_never_panic_and_rewrites_stay_in_bounds(
        s in arb_spec(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        rewrites in proptest::collection::vec(arb_rewrite(), 1..6),
    ) {
        let mut frame = build(&s);
        for (at, v) in flips {
            let n = frame.len();
            frame[at % n] = v;
        }
        let mut pkt = PacketBuf::new(2048);
        pkt.set_data(&frame).expect("fits");
        if pipeline::packet::parse_into(&mut pkt).is_ok() {
            for r in &rewrites {
                let _ = apply(&mut pkt, r);
            }
            let _ = parse(pkt.data(), 0);
        }
    }

    #[test]
    fn rewrites_change_exactly_their_field_and_keep_checksums_valid(
        s in arb_spec(),
        rewrites in proptest::collection::vec(arb_rewrite(), 1..8),
    ) {
        let frame = build(&s);
        let mut pkt = PacketBuf::new(2048);
        pkt.set_data(&frame).expect("fits");
        pkt.in_port = 3;
        let mut key = pipeline::packet::parse_into(&mut pkt).expect("parses");
        for r in &rewrites {
            if matches!(r, Rewrite::VlanPush { .. } | Rewrite::VlanPushEth { .. })
                && key.vlan_tci() & VLAN_CFI != 0
            {
                continue; // QinQ: the parser (like the key) reads one tag
            }
            // Headroom is HEADROOM bytes: pushes beyond it must fail cleanly.
            let pushes_left = pkt.headroom() >= 4;
            let raw_id = if key.nw_proto() == ipproto::ICMP {
                let l4 = pkt.layout.l4_ofs as usize;
                IcmpPacket::new_checked(&pkt.data()[l4..]).expect("icmp").identifier()
            } else {
                0
            };
            let want = expected_key(&key, r, raw_id);
            let got = apply(&mut pkt, r);
            match (want, got) {
                (Ok(_), Err(DropReason::NoHeadroom)) if !pushes_left => break,
                (Ok(k), Ok(())) => {
                    key = k;
                    let reparsed = parse(pkt.data(), 3).expect("still parses");
                    prop_assert_eq!(reparsed.key, key, "after {:?}", r);
                    prop_assert_eq!(reparsed.layout, pkt.layout, "layout after {:?}", r);
                    assert_checksums_valid(pkt.data());
                }
                (Err(e), Err(g)) => { prop_assert_eq!(e, g); break; }
                (w, g) => prop_assert!(false, "{:?}: expected {:?}, got {:?}", r, w.map(|_| ()), g),
            }
        }
        prop_assert!(pkt.headroom() <= HEADROOM + 4, "a pop frees at most one tag of headroom");
    }
}

#[test]
fn byte_fixtures_parse_to_their_fields() {
    // ARP request from vm1 for its gateway (spec §8.1), as on the wire.
    let arp: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfa, 0x16, 0x3e, 0x01, 0x00, 0x11, 0x08,
        0x06, // eth
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype, ptype, hlen, plen, op=1
        0xfa, 0x16, 0x3e, 0x01, 0x00, 0x11, 10, 1, 0, 11, // sha, spa
        0, 0, 0, 0, 0, 0, 10, 1, 0, 1, // tha, tpa
    ];
    let k = parse(&arp, 6).expect("arp").key;
    assert_eq!(k.dl_type(), ethertype::ARP);
    assert_eq!(k.nw_proto(), 1, "arp_op");
    assert_eq!(k.nw_src(), 0x0a01000b);
    assert_eq!(k.nw_dst(), 0x0a010001);
    assert_eq!(k.get(Field::ArpSha), 0xfa163e010011);
    assert_eq!(k.vlan_tci(), 0, "untagged");
    // A frame with a VLAN-0 priority tag is tagged (distinct from untagged).
    let mut tagged = arp[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0xa0, 0x00]);
    tagged.extend_from_slice(&arp[12..]);
    let k = parse(&tagged, 6).expect("tagged").key;
    assert_eq!(k.vlan_tci(), 0xb000, "PCP 5, VID 0, CFI marks the tag");
    assert_eq!(k.vlan_vid(), Some(0));
    // Short ARP, IHL below 5, a total length beyond the frame, a TCP header cut short.
    assert_eq!(parse(&arp[..30], 6).unwrap_err(), DropReason::ArpMalformed);
    let udp = build(&Spec {
        src: [2; 6],
        dst: [4; 6],
        vlan: None,
        s_tag: false,
        ip_src: [10, 0, 0, 1],
        ip_dst: [10, 0, 0, 2],
        ttl: 64,
        l4: 1,
        sport: 1,
        dport: 2,
        payload: 0,
    });
    let mut bad = udp.clone();
    bad[14] = 0x44;
    assert_eq!(parse(&bad, 0).unwrap_err(), DropReason::Ipv4Malformed);
    let mut bad = udp.clone();
    bad[16] = 0x05;
    assert_eq!(parse(&bad, 0).unwrap_err(), DropReason::Ipv4Malformed);
    assert_eq!(
        parse(&udp[..14 + 20 + 10], 0).unwrap_err(),
        DropReason::Ipv4Malformed,
        "total length beyond the frame"
    );
    assert_eq!(parse(&udp[..10], 0).unwrap_err(), DropReason::EthTruncated);
    let mut short_tcp = udp[..14 + 20 + 10].to_vec();
    let mut ip = Ipv4Packet::new_checked(&mut short_tcp[14..]).expect("ipv4");
    ip.set_total_len(30);
    ip.fill_checksum();
    assert_eq!(parse(&short_tcp, 0).unwrap_err(), DropReason::L4Truncated);
}

#[test]
fn jumbo_frames_fit_and_vlan_push_uses_headroom() {
    let mut pkt = PacketBuf::new(pipeline::packet::DEFAULT_MAX_FRAME);
    let mut s = Spec {
        src: [2; 6],
        dst: [4; 6],
        vlan: None,
        s_tag: false,
        ip_src: [10, 0, 0, 1],
        ip_dst: [10, 0, 0, 2],
        ttl: 64,
        l4: 0,
        sport: 1,
        dport: 2,
        payload: 8000,
    };
    let frame = build(&s);
    pkt.set_data(&frame).expect("jumbo fits");
    pipeline::packet::parse_into(&mut pkt).expect("parses");
    apply(
        &mut pkt,
        &Rewrite::VlanPush {
            tpid: ethertype::VLAN,
            tci: 101,
        },
    )
    .expect("push");
    assert_eq!(pkt.len(), frame.len() + 4);
    assert_eq!(
        parse(pkt.data(), 0).expect("tagged").key.vlan_vid(),
        Some(101)
    );
    s.payload = 9100;
    assert_eq!(pkt.set_data(&build(&s)), Err(DropReason::FrameTooLong));
}

#[test]
fn a_frame_grown_into_the_headroom_copies_whole() {
    let mut pool = pipeline::packet::PacketPool::new(2, 64);
    let mut p = pool.get().expect("buffer");
    let frame: Vec<u8> = (0..64u8).collect();
    p.set_data(&frame).expect("fits");
    pipeline::packet::apply(
        &mut p,
        &pipeline::packet::Rewrite::VlanPush {
            tpid: 0x8100,
            tci: 5,
        },
    )
    .expect("pushed into the headroom");
    assert_eq!(p.len(), 68);
    let c = pool.copy_of(&p).expect("copied, not refused as too long");
    assert_eq!(c.data(), p.data());
    assert_eq!(c.layout, p.layout);
    pool.put(c);
    pool.put(p);
    // A pool with no buffer left says so.
    let mut one = pipeline::packet::PacketPool::new(1, 64);
    let q = one.get().expect("buffer");
    assert_eq!(
        one.copy_of(&q).err(),
        Some(pipeline::drop::DropReason::PoolExhausted)
    );
}

/// An ICMPv6 neighbour discovery message (for the IPv6 fields' test).
fn nd(kind: u64, field: Field) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, 0x86dd);
    k.set(Field::DlSrc, 0xfa163e000001);
    k.set(Field::DlDst, 0x3333ff000002);
    k.set(Field::NwProto, 58);
    k.set(Field::NwTtl, 255);
    k.set(Field::Ipv6SrcHi, 0xfe80_0000_0000_0000);
    k.set(Field::Ipv6SrcLo, 1);
    k.set(Field::Ipv6DstHi, 0xff02_0000_0000_0000);
    k.set(Field::Ipv6DstLo, 0x0001_ff00_0002);
    k.set(Field::TpSrc, kind);
    k.set(Field::NdTargetHi, 0xfe80_0000_0000_0000);
    k.set(Field::NdTargetLo, 2);
    k.set(field, 0xfa163e000001);
    k
}

#[test]
fn an_ipv6_packet_gives_its_addresses_and_nd_its_link_layer_option() {
    for (kind, field) in [(135, Field::ArpSha), (136, Field::ArpTha)] {
        let k = nd(kind, field);
        let got = parse(&pipeline::packet::synth::frame_from_key(&k, 0), 0)
            .expect("parses")
            .key;
        for f in [
            Field::Ipv6SrcHi,
            Field::Ipv6SrcLo,
            Field::Ipv6DstHi,
            Field::Ipv6DstLo,
            Field::NdTargetLo,
            field,
        ] {
            assert_eq!(got.get(f), k.get(f), "{kind} {f:?}");
        }
    }
    // An option whose length runs past the message is no option.
    let mut f = pipeline::packet::synth::frame_from_key(&nd(135, Field::ArpSha), 0);
    let at = f.len() - 7;
    f[at] = 9;
    let got = parse(&f, 0).expect("parses").key;
    assert_eq!(got.get(Field::ArpSha), 0);
}
