//! The ct stage: what one conntrack step does to a packet.
//!
//! A step (`CtStep`, compiled by translation from an OpenFlow `ct(...)`
//! action or a router's PREROUTING hook) tracks the packet in a zone,
//! commits new connections when asked, and gives back the packet's key as
//! the rest of its walk sees it: `ct_state` and `ct_zone` set, NAT applied
//! the way the step's kind applies it (`Resume`), the pipeline's
//! registers carried over. The datapath runs it with `CtMode::Commit` and
//! applies `CtResult::apply` to the packet; `trace` runs it with
//! `CtMode::Peek` on the key it follows. Same code, so a trace's ct states
//! and NAT ports are the ones the datapath gives the same packet.
//!
//! Router NAT follows Linux: the destination side (DNAT, or the reply
//! direction of SNAT) is applied at PREROUTING, so routing sees the
//! translated destination; the source side waits for POSTROUTING, so
//! routing sees the original source. The address travels in registers
//! (`SNAT_ADDR_REG`, `SNAT_FLAGS_REG`), the same for every connection of a
//! walk, so one cached walk serves them all; the port, which differs per
//! connection, travels with the packet (`CtResult::nat_sport`).

use super::conn::{Nat, Repeat};
use super::table::ConnTable;
use super::tuple::{tuple_of, Dir, Tuple};
use crate::drop::DropReason;
use crate::ids::RouterIfaceRef;
use crate::key::ct_state;
use crate::key::{Field, FlowKey, FRAG_LATER, KEY_WORDS, PACKET_WORDS};
use crate::packet::embedded::{rewrite_embedded, Embedded};
use crate::packet::{self, PacketBuf, Rewrite};
use crate::wire::{ipproto, IcmpPacket, L4Ports};

/// Register carrying the source address a router's POSTROUTING applies.
pub const SNAT_ADDR_REG: Field = Field::Reg(0);
/// Register carrying that source NAT's flags (`SNAT_PENDING`, with
/// `SNAT_ADDR_ONLY` for an ICMP error's outer header).
pub const SNAT_FLAGS_REG: Field = Field::Reg(1);
/// A source NAT is pending for POSTROUTING.
pub const SNAT_PENDING: u64 = 0x1_0000;
/// With `SNAT_PENDING`: translate the address only (no port to change).
pub const SNAT_ADDR_ONLY: u64 = 0x2_0000;

/// The registers and metadata of the pipeline at a ct step (the key words
/// after the packet's own), carried over to the resumed walk.
pub type PipelineWords = [u64; KEY_WORDS - PACKET_WORDS];

/// Where a packet goes after its ct step, and how NAT applies there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// OpenFlow `ct` without `table`: the packet goes on with the program's
    /// next op (NAT, if asked, applied whole, in place).
    Continue,
    /// OpenFlow `ct(table=T)`: the pipeline restarts at table `table` of
    /// bridge `bridge` with the packet's `ct_state`; NAT applied whole.
    Table { bridge: usize, table: u8 },
    /// A router instance's PREROUTING conntrack: the packet re-enters the
    /// instance as arriving on the interface; destination NAT applied,
    /// source NAT pending for POSTROUTING.
    Router(RouterIfaceRef),
}

impl Resume {
    const ROUTER: u32 = 0x8000_0000;
    const TABLE: u32 = 0x4000_0000;

    /// The `recirc_id` the resumed packet's key carries (0: none), which
    /// tells translation and the flow cache where the walk resumes.
    pub fn recirc_id(self) -> u32 {
        match self {
            Resume::Continue => 0,
            Resume::Table { bridge, table } => {
                Self::TABLE | ((bridge as u32 & 0xffff) << 8) | table as u32
            }
            Resume::Router(at) => {
                Self::ROUTER | ((at.instance as u32 & 0x7fff) << 16) | (at.iface as u32 & 0xffff)
            }
        }
    }

    /// Where a key with `recirc_id` resumes (None: not a resumption).
    pub fn from_recirc_id(id: u32) -> Option<Resume> {
        if id & Self::ROUTER != 0 {
            return Some(Resume::Router(RouterIfaceRef {
                instance: ((id >> 16) & 0x7fff) as usize,
                iface: (id & 0xffff) as usize,
            }));
        }
        (id & Self::TABLE != 0).then_some(Resume::Table {
            bridge: ((id >> 8) & 0xffff) as usize,
            table: id as u8,
        })
    }
}

/// One conntrack step, as translation compiled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtStep {
    pub zone: u16,
    /// Create the connection if the packet starts one.
    pub commit: bool,
    /// A router's step for a connection no NAT rule selects: a packet of
    /// no stored connection goes on as `+trk+new` and nothing is stored;
    /// a packet of a stored one (the reply of a NATed connection) is
    /// tracked as any. Linux would store the connection; the outcome is the
    /// same (nothing translates it, nothing in a router matches its state),
    /// and the table holds only the connections NAT needs.
    pub lazy: bool,
    /// Translate the packet to its connection's tuple (`nat` in the
    /// action; always for router instances).
    pub apply_nat: bool,
    /// The OpenFlow in_port the resumed packet keeps.
    pub in_port: u32,
    /// Where the packet resumes (`Resume::recirc_id`; kept encoded, so a
    /// program's ops stay small).
    recirc_id: u32,
    /// NAT for a new connection (an iptables target or `ct(nat(...))`).
    pub nat: Option<Nat>,
    pub pipeline: PipelineWords,
}

impl CtStep {
    pub fn new(
        zone: u16,
        commit: bool,
        nat: Option<Nat>,
        apply_nat: bool,
        resume: Resume,
        in_port: u32,
        mut pipeline: PipelineWords,
    ) -> CtStep {
        // The resumed key's `recirc_id` is part of the words the step
        // carries over, set once here rather than per packet.
        let (w, sh, _) = Field::RecircId.position();
        let word = &mut pipeline[w - PACKET_WORDS];
        *word =
            (*word & !(Field::RecircId.full_mask() << sh)) | ((resume.recirc_id() as u64) << sh);
        CtStep {
            zone,
            commit,
            lazy: false,
            apply_nat,
            in_port,
            recirc_id: resume.recirc_id(),
            nat,
            pipeline,
        }
    }

    /// Makes `key` the key a packet resumes with after the step, untranslated,
    /// with `state`: the pipeline's words the step carries, in_port,
    /// `ct_state`, `ct_zone` (for a walk compiled past a lazy step).
    pub fn resume_untranslated(&self, key: &mut FlowKey, state: u8) {
        key.w[PACKET_WORDS..].copy_from_slice(&self.pipeline);
        self.mark_resumed(key, state);
    }

    /// Sets what every resumed key carries from its step: in_port,
    /// `ct_state` (`state`), `ct_zone`.
    fn mark_resumed(&self, key: &mut FlowKey, state: u8) {
        key.set(Field::InPort, self.in_port as u64);
        key.set(Field::CtState, state as u64);
        key.set(Field::CtZone, self.zone as u64);
    }

    /// The step made lazy (see `lazy`).
    pub fn lazy(mut self) -> CtStep {
        self.lazy = true;
        self
    }

    /// Where the packet resumes.
    #[inline]
    pub fn resume(&self) -> Resume {
        Resume::from_recirc_id(self.recirc_id).unwrap_or(Resume::Continue)
    }

    /// The step goes on in place (OpenFlow `ct` without `table`).
    #[inline]
    pub fn continues(&self) -> bool {
        self.recirc_id == 0
    }

    /// The step is a router's (NAT split between PREROUTING and
    /// POSTROUTING).
    #[inline]
    fn is_router(&self) -> bool {
        self.recirc_id & Resume::ROUTER != 0
    }
}

/// Where a lazy step's packet finds the ports of its tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardPorts {
    /// TCP or UDP: source and destination ports.
    Transport,
    /// ICMP echo: the identifier is the tuple's source port.
    EchoId,
    /// A protocol without ports: the addresses alone.
    None,
}

/// A lazy step compiled in front of the walk it would resume (which
/// translation continued in place, as the stage leaves a packet of no
/// stored connection: `+trk+new`, untranslated): when the packet's tuple
/// is stored (the reply of a NATed connection, or a connection stored
/// before), the packet takes the step after all and resumes its walk from
/// there; otherwise it goes on with the ops that follow. The tuple is the
/// megaflow's (addresses and protocol are in it) with the packet's ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtGuard {
    pub step: CtStep,
    /// The packet's tuple at the step, ports 0.
    pub tuple: Tuple,
    pub ports: GuardPorts,
}

impl CtGuard {
    /// Whether the packet's connection is stored in `ct` (or might be: a
    /// transport header the packet does not hold says yes, and the step
    /// decides).
    #[inline]
    pub fn stored(&self, ct: &ConnTable, pkt: &PacketBuf) -> bool {
        if ct.is_empty() {
            return false;
        }
        match self.ports_of(pkt) {
            Some(ports) => self.stored_with(ct, ports),
            None => true,
        }
    }

    /// The ports the guard's tuple takes from `pkt` ((0, 0) when it takes
    /// none); None when they cannot be read (the packet takes the step).
    #[inline]
    pub fn ports_of(&self, pkt: &PacketBuf) -> Option<(u16, u16)> {
        let l4 = pkt.data().get(pkt.layout.l4_ofs as usize..).unwrap_or(&[]);
        match self.ports {
            GuardPorts::Transport => L4Ports::new_checked(l4).map(|p| (p.src_port(), p.dst_port())),
            GuardPorts::EchoId => IcmpPacket::new_checked(l4).map(|p| (p.identifier(), 0)),
            GuardPorts::None => Some((0, 0)),
        }
    }

    /// Whether the connection of the guard's tuple with `ports` (from
    /// `ports_of`) is stored: two packets with the same ports have the
    /// same answer, so a run of them asks once.
    pub fn stored_with(&self, ct: &ConnTable, ports: (u16, u16)) -> bool {
        if ct.is_empty() {
            return false;
        }
        let mut t = self.tuple;
        match self.ports {
            GuardPorts::Transport => (t.sport, t.dport) = ports,
            GuardPorts::EchoId => t.sport = ports.0,
            GuardPorts::None => {}
        }
        ct.is_stored(&t)
    }
}

/// How the stage touches the connection table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtMode {
    /// The datapath: connections are created and advanced.
    Commit,
    /// `trace`: the same answer, nothing stored or counted.
    Peek,
}

/// What a ct step did to a packet (its key, given to `run`, became the
/// key the walk resumes with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtResult {
    /// The packet's `ct_state` (always with `trk`).
    pub state: u8,
    /// A router's source NAT: the port (ICMP: echo id) the packet leaves
    /// with at POSTROUTING.
    pub nat_sport: Option<u16>,
    /// False when the packet had neither a trackable tuple nor a quoted
    /// packet (a later fragment, an ICMP that is not echo or an error).
    pub trackable: bool,
    /// An ICMP error's quoted packet, translated back through NAT.
    pub quoted: Option<Embedded>,
    /// The header rewrites that make the packet what the key now says.
    rewrites: [Option<Rewrite>; 4],
    /// A committed packet's steady verdict: the next packet with the same
    /// key gets this same result (`Verdict::repeat`).
    pub repeat: Option<Repeat>,
}

/// Runs `step` on a packet whose key (as it is at the step) is `key`, and
/// makes `key` the key the walk resumes with: `ct_state`, `ct_zone`,
/// in_port and the pipeline's words (with `recirc_id`) set, NAT applied as the
/// step's kind applies it. `quoted` gives an ICMP error's quoted packet,
/// asked for only when the packet has no tuple of its own (a trace has
/// none to give); `checksum_ok` says whether the transport checksum
/// verifies (a packet whose checksum does not is `+inv` and untranslated,
/// as Linux's `nf_conntrack_checksum` makes it; a trace assumes it does).
pub fn run(
    ct: &ConnTable,
    mode: CtMode,
    step: &CtStep,
    key: &mut FlowKey,
    quoted: impl FnOnce() -> Option<Embedded>,
    checksum_ok: impl FnOnce() -> bool,
    now_ns: u64,
) -> Result<CtResult, DropReason> {
    let before = NatFields::of(key);
    key.w[PACKET_WORDS..].copy_from_slice(&step.pipeline);
    let mut result = CtResult {
        state: ct_state::TRK | ct_state::INV,
        nat_sport: None,
        trackable: true,
        quoted: None,
        rewrites: [None; 4],
        repeat: None,
    };
    match tuple_of(key, step.zone) {
        Some((t, _)) if !checksum_ok() => {
            if mode == CtMode::Commit {
                ct.count_invalid(&t);
            }
        }
        Some((t, info)) => {
            let v = match mode {
                CtMode::Commit if step.lazy => ct.track_lazy(t, info, now_ns),
                CtMode::Peek if step.lazy => ct.peek_lazy(t, info, now_ns),
                CtMode::Commit => ct.track(t, info, step.commit, step.nat, now_ns)?,
                CtMode::Peek => ct.peek(t, info, step.commit, step.nat, now_ns)?,
            };
            result.state = v.state;
            if mode == CtMode::Commit {
                result.repeat = v.repeat;
            }
            if step.apply_nat {
                result.nat_sport = translate(key, step, &t, &v.translated);
            }
        }
        None => match quoted() {
            Some(e) => {
                related(ct, step, &e, key, &mut result);
                if result.state & ct_state::INV != 0 && mode == CtMode::Commit {
                    ct.count_invalid(&Tuple {
                        zone: step.zone,
                        proto: e.proto,
                        src: e.dst.into(),
                        dst: e.src.into(),
                        sport: e.dport,
                        dport: e.sport,
                    });
                }
            }
            None => result.trackable = false,
        },
    }
    result.rewrites = before.rewrites_to(key);
    step.mark_resumed(key, result.state);
    Ok(result)
}

/// NAT for a packet of a tracked connection: its tuple `t` becomes `n`.
/// Returns the source port a router's POSTROUTING gives it.
#[inline(always)]
fn translate(k: &mut FlowKey, step: &CtStep, t: &Tuple, n: &Tuple) -> Option<u16> {
    let icmp = t.proto == ipproto::ICMP;
    if !step.is_router() {
        // OpenFlow applies both sides at once.
        k.set(Field::NwSrc, u32::from(n.src) as u64);
        k.set(Field::NwDst, u32::from(n.dst) as u64);
        if icmp {
            k.set(Field::IcmpId, n.sport as u64);
        } else {
            k.set(Field::TpSrc, n.sport as u64);
            k.set(Field::TpDst, n.dport as u64);
        }
        return None;
    }
    if n.dst != t.dst || (!icmp && n.dport != t.dport) {
        k.set(Field::NwDst, u32::from(n.dst) as u64);
        if !icmp {
            k.set(Field::TpDst, n.dport as u64);
        }
    }
    let src_side = n.src != t.src || (!icmp && n.sport != t.sport);
    if icmp && n.sport != t.sport && !src_side {
        // A reply to a translated echo: its id is restored with the
        // destination.
        k.set(Field::IcmpId, n.sport as u64);
    }
    if !src_side {
        return None;
    }
    // A protocol without ports, or a later fragment (its transport header
    // is in the first): POSTROUTING translates the address alone.
    let ported = matches!(t.proto, ipproto::TCP | ipproto::UDP | ipproto::ICMP)
        && k.get(Field::NwFrag) as u8 & FRAG_LATER == 0;
    if !ported {
        set_snat(k, u32::from(n.src), SNAT_PENDING | SNAT_ADDR_ONLY);
        return None;
    }
    set_snat(k, u32::from(n.src), SNAT_PENDING);
    Some(n.sport)
}

/// An ICMP error quoting packet `e`: `+rel` (`+rpl` when it travels in the
/// reply direction) when `e` belongs to a connection, its quoted packet and
/// outer destination translated back through the connection's NAT; an
/// error sent by the quoted packet's destination speaks for it, so its
/// outer source is translated too (at POSTROUTING, in a router). About no
/// known connection: `+inv`.
fn related(ct: &ConnTable, step: &CtStep, e: &Embedded, k: &mut FlowKey, r: &mut CtResult) {
    let Some((m, dir)) = ct.related_of(step.zone, e) else {
        return;
    };
    r.state = ct_state::TRK | ct_state::REL;
    if dir == Dir::Reply {
        r.state |= ct_state::RPL;
    }
    if !step.apply_nat {
        return;
    }
    let mapped = Embedded {
        proto: e.proto,
        src: u32::from(m.src),
        dst: u32::from(m.dst),
        sport: m.sport,
        dport: m.dport,
    };
    if mapped != *e {
        r.quoted = Some(mapped);
    }
    if k.nw_dst() != mapped.src {
        k.set(Field::NwDst, mapped.src as u64);
    }
    if k.nw_src() == e.dst && mapped.dst != e.dst {
        if step.is_router() {
            set_snat(k, mapped.dst, SNAT_PENDING | SNAT_ADDR_ONLY);
        } else {
            k.set(Field::NwSrc, mapped.dst as u64);
        }
    }
}

/// Sets the source NAT registers: both halves of one key word, written
/// whole (the word was just copied in with the pipeline's; a read-modify-
/// write of it would wait on that copy's stores).
#[inline(always)]
fn set_snat(k: &mut FlowKey, addr: u32, flags: u64) {
    let (w, addr_shift, _) = SNAT_ADDR_REG.position();
    let (fw, flags_shift, _) = SNAT_FLAGS_REG.position();
    debug_assert_eq!(w, fw, "the SNAT registers share a word");
    k.w[w] = (addr as u64) << addr_shift | flags << flags_shift;
}

impl CtResult {
    /// Makes the packet what the resumed key says, in the fields the step
    /// translated.
    pub fn apply(&self, pkt: &mut PacketBuf) -> Result<(), DropReason> {
        if let Some(q) = &self.quoted {
            rewrite_embedded(pkt, q)?;
        }
        for rw in self.rewrites.iter().flatten() {
            packet::apply(pkt, rw)?;
        }
        Ok(())
    }
}

/// The fields NAT changes, as a packet had them before its step.
struct NatFields {
    proto: u8,
    /// The packet carries its transport header (not a later fragment).
    transport: bool,
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    icmp_id: u16,
}

impl NatFields {
    #[inline(always)]
    fn of(k: &FlowKey) -> NatFields {
        let proto = k.nw_proto();
        NatFields {
            proto,
            transport: k.get(Field::NwFrag) as u8 & FRAG_LATER == 0,
            src: k.nw_src(),
            dst: k.nw_dst(),
            sport: k.tp_src(),
            dport: k.tp_dst(),
            icmp_id: k.get(Field::IcmpId) as u16,
        }
    }

    /// The header rewrites that take a packet from these fields to `after`'s.
    #[inline(always)]
    fn rewrites_to(&self, after: &FlowKey) -> [Option<Rewrite>; 4] {
        let mut rw = [None; 4];
        if self.src != after.nw_src() {
            rw[0] = Some(Rewrite::Ipv4Src(after.nw_src()));
        }
        if self.dst != after.nw_dst() {
            rw[1] = Some(Rewrite::Ipv4Dst(after.nw_dst()));
        }
        if !self.transport {
            return rw;
        }
        if self.proto == ipproto::ICMP {
            let id = after.get(Field::IcmpId) as u16;
            if self.icmp_id != id {
                rw[2] = Some(Rewrite::IcmpId(id));
            }
        } else if matches!(self.proto, ipproto::TCP | ipproto::UDP) {
            if self.sport != after.tp_src() {
                rw[2] = Some(Rewrite::L4Src(after.tp_src()));
            }
            if self.dport != after.tp_dst() {
                rw[3] = Some(Rewrite::L4Dst(after.tp_dst()));
            }
        }
        rw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_points_survive_their_recirc_id() {
        for r in [
            Resume::Table {
                bridge: 3,
                table: 42,
            },
            Resume::Router(RouterIfaceRef {
                instance: 7,
                iface: 2,
            }),
        ] {
            assert_eq!(Resume::from_recirc_id(r.recirc_id()), Some(r));
        }
        assert_eq!(Resume::Continue.recirc_id(), 0);
        assert_eq!(Resume::from_recirc_id(0), None);
    }
}
