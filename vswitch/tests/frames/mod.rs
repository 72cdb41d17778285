//! Frames the daemon's tests (and its rate example) send.
#![allow(dead_code)]

use pipeline::key::{Field, FlowKey};
use pipeline::packet::synth::frame_from_key;
use pipeline::wire::{ethertype, ipproto};

/// vm1 -> vm2 (same network, compute1), UDP from port 1000 to port `seq`,
/// with `payload` bytes after the UDP header.
pub fn vm1_to_vm2(seq: u16, payload: usize) -> Vec<u8> {
    vm1_to_vm2_udp(1000, seq, payload)
}

/// vm1 -> vm2, UDP from `sport` to `dport`, `payload` bytes after the
/// UDP header, TTL 64.
pub fn vm1_to_vm2_udp(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, 0xfa163e010011);
    k.set(Field::DlDst, 0xfa163e010012);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwSrc, 0x0a01000b);
    k.set(Field::NwDst, 0x0a01000c);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, sport as u64);
    k.set(Field::TpDst, dport as u64);
    frame_from_key(&k, payload)
}
