//! Reassembly in front of conntrack: datagrams made whole in any fragment
//! order, their transport fields and checksum; duplicates, overlaps,
//! malformed fragments, too many fragments, the memory bound and the
//! timeout, each dropped under its reason and leaving nothing held.

use pipeline::conntrack::defrag::{DefragLimits, Defragged, FragTable};
use pipeline::drop::DropReason;
use pipeline::key::{Field, FlowKey, FRAG_ANY, FRAG_LATER, FRAG_REASSEMBLED};
use pipeline::packet::parse;
use pipeline::packet::synth::{fragments, frame_from_key};
use pipeline::wire::{ethertype, ipproto, Ipv4Packet, UdpPacket};

const L3: usize = 14;
const SEC: u64 = 1_000_000_000;

/// A UDP datagram of `payload` bytes (a non-zero pattern, checksum
/// right) from 10.1.0.11:4000 to 198.51.100.7:53, IP id `id`.
fn udp_frame(payload: usize, id: u16) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwSrc, 0x0a01_000b);
    k.set(Field::NwDst, 0xc633_6407);
    k.set(Field::TpSrc, 4000);
    k.set(Field::TpDst, 53);
    let mut f = frame_from_key(&k, payload);
    let udp_at = L3 + 20;
    for (i, b) in f[udp_at + 8..udp_at + 8 + payload].iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    {
        let mut ip = Ipv4Packet::new_checked(&mut f[L3..]).unwrap();
        ip.set_ident(id);
        ip.fill_checksum();
    }
    let mut udp = UdpPacket::new_checked(&mut f[udp_at..udp_at + 8 + payload]).unwrap();
    udp.fill_checksum(0x0a01_000b, 0xc633_6407);
    f
}

fn table() -> FragTable {
    FragTable::new(DefragLimits::default())
}

fn insert(t: &FragTable, frame: &[u8], now: u64) -> Defragged {
    t.insert(9, frame, L3, 3, now)
}

#[test]
fn a_datagram_is_whole_in_any_order_and_its_fragments_come_back_first_first() {
    let whole = udp_frame(3000, 77);
    let frags = fragments(&whole, 1480);
    assert_eq!(frags.len(), 3);
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let t = table();
        let mut done = None;
        for (n, i) in order.iter().enumerate() {
            match insert(&t, &frags[*i], n as u64) {
                Defragged::Held => assert!(n < 2, "held until the last"),
                Defragged::Complete(d) => done = Some(d),
                Defragged::Dropped { reason, .. } => panic!("{order:?}: dropped {reason}"),
            }
        }
        let d = done.expect("complete");
        assert!(d.l4_ok, "the UDP checksum sums over the three payloads");
        let got: Vec<&Vec<u8>> = d.frames.iter().map(|h| &h.frame).collect();
        let want: Vec<&Vec<u8>> = frags.iter().collect();
        assert_eq!(got, want, "{order:?}: as received, in offset order");
        assert!(d.frames.iter().all(|h| h.in_port == 3));
        // A later fragment's key gets the datagram's transport fields.
        let mut k = parse(&frags[2], 3).unwrap().key;
        assert_eq!(k.tp_src(), 0);
        d.fill(&mut k);
        assert_eq!((k.tp_src(), k.tp_dst()), (4000, 53));
        assert_eq!(
            k.get(Field::NwFrag) as u8,
            FRAG_ANY | FRAG_LATER | FRAG_REASSEMBLED
        );
        let s = t.stats();
        assert_eq!((s.pending, s.held_bytes, s.reassembled), (0, 0, 1));
    }
}

#[test]
fn a_wrong_transport_checksum_shows_only_over_the_whole_datagram() {
    let mut frags = fragments(&udp_frame(3000, 5), 1480);
    let last = frags.len() - 1;
    frags[last][L3 + 20 + 10] ^= 0xff; // payload of the last fragment
    let t = table();
    let mut result = None;
    for f in &frags {
        if let Defragged::Complete(d) = insert(&t, f, 0) {
            result = Some(d.l4_ok);
        }
    }
    assert_eq!(result, Some(false));
    // A datagram without a UDP checksum verifies.
    let mut frags = fragments(&udp_frame(3000, 6), 1480);
    frags[0][L3 + 20 + 6..L3 + 20 + 8].copy_from_slice(&[0, 0]);
    let mut result = None;
    for f in &frags {
        if let Defragged::Complete(d) = insert(&t, f, 0) {
            result = Some(d.l4_ok);
        }
    }
    assert_eq!(result, Some(true));
}

fn dropped(d: Defragged) -> (DropReason, u64) {
    match d {
        Defragged::Dropped { reason, count } => (reason, count),
        other => panic!("not dropped: {other:?}"),
    }
}

#[test]
fn a_duplicate_is_dropped_alone_and_an_overlap_discards_the_datagram() {
    let frags = fragments(&udp_frame(3000, 8), 1480);
    let t = table();
    assert!(matches!(insert(&t, &frags[0], 0), Defragged::Held));
    assert_eq!(
        dropped(insert(&t, &frags[0], 0)),
        (DropReason::FragDuplicate, 1)
    );
    assert!(matches!(insert(&t, &frags[1], 0), Defragged::Held));
    assert!(matches!(insert(&t, &frags[2], 0), Defragged::Complete(_)));

    // A fragment covering part of another: both held ones go with it.
    let frags = fragments(&udp_frame(3000, 9), 1480);
    let small = fragments(&udp_frame(3000, 9), 1000);
    assert!(matches!(insert(&t, &frags[0], 0), Defragged::Held));
    assert!(matches!(insert(&t, &frags[2], 0), Defragged::Held));
    assert_eq!(
        dropped(insert(&t, &small[1], 0)),
        (DropReason::FragOverlap, 3)
    );
    let s = t.stats();
    assert_eq!((s.pending, s.held_bytes), (0, 0));
}

#[test]
fn malformed_fragments_are_refused() {
    let t = table();
    // A non-final fragment whose length is not a multiple of 8.
    let mut f = fragments(&udp_frame(3000, 10), 1480).remove(0);
    {
        let mut ip = Ipv4Packet::new_checked(&mut f[L3..]).unwrap();
        ip.set_total_len(20 + 1477);
        ip.fill_checksum();
    }
    assert_eq!(dropped(insert(&t, &f, 0)), (DropReason::FragMalformed, 1));
    // A fragment reaching past 65,535 bytes.
    let mut f = fragments(&udp_frame(3000, 11), 1480).remove(2);
    {
        let mut ip = Ipv4Packet::new_checked(&mut f[L3..]).unwrap();
        ip.set_flags_frag(8189);
        ip.fill_checksum();
    }
    assert_eq!(dropped(insert(&t, &f, 0)), (DropReason::FragMalformed, 1));
    // Two different ends for one datagram.
    let frags = fragments(&udp_frame(3000, 12), 1480);
    let other_end = fragments(&udp_frame(2000, 12), 1480);
    assert!(matches!(insert(&t, &frags[2], 0), Defragged::Held));
    assert_eq!(
        dropped(insert(&t, &other_end[1], 0)),
        (DropReason::FragMalformed, 2)
    );
    assert_eq!(t.stats().pending, 0);
}

#[test]
fn bounds_on_fragments_memory_and_time() {
    // Fragments per datagram.
    let t = FragTable::new(DefragLimits {
        max_fragments: 4,
        ..Default::default()
    });
    let frags = fragments(&udp_frame(3000, 13), 504);
    assert_eq!(frags.len(), 6);
    for f in &frags[..4] {
        assert!(matches!(insert(&t, f, 0), Defragged::Held));
    }
    assert_eq!(
        dropped(insert(&t, &frags[4], 0)),
        (DropReason::FragTooMany, 5)
    );

    // Memory: room for two 1,514-byte fragments.
    let t = FragTable::new(DefragLimits {
        max_bytes: 3200,
        ..Default::default()
    });
    let a = fragments(&udp_frame(3000, 14), 1480);
    let b = fragments(&udp_frame(3000, 15), 1480);
    assert!(matches!(insert(&t, &a[0], 0), Defragged::Held));
    assert!(matches!(insert(&t, &b[0], 0), Defragged::Held));
    assert_eq!(
        dropped(insert(&t, &a[1], 0)),
        (DropReason::FragTableFull, 1)
    );
    assert!(t.stats().held_bytes <= 3200);

    // Time: what waited 30 s is discarded, counted per fragment.
    assert_eq!(t.expire(29 * SEC), 0);
    assert_eq!(t.expire(30 * SEC), 2);
    let s = t.stats();
    assert_eq!((s.pending, s.held_bytes), (0, 0));
    // And the room is back.
    assert!(matches!(insert(&t, &a[1], 31 * SEC), Defragged::Held));
}

#[test]
fn fragments_are_keyed_by_zone_addresses_protocol_and_id() {
    let t = table();
    let frags = fragments(&udp_frame(3000, 16), 1480);
    assert!(matches!(t.insert(1, &frags[0], L3, 3, 0), Defragged::Held));
    assert!(matches!(t.insert(1, &frags[1], L3, 3, 0), Defragged::Held));
    // The same datagram in another zone is another datagram.
    assert!(matches!(t.insert(2, &frags[2], L3, 3, 0), Defragged::Held));
    // Another id too.
    let other = fragments(&udp_frame(3000, 17), 1480);
    assert!(matches!(t.insert(1, &other[2], L3, 3, 0), Defragged::Held));
    assert!(matches!(
        t.insert(1, &frags[2], L3, 3, 0),
        Defragged::Complete(_)
    ));
    assert_eq!(t.stats().pending, 2);
}
