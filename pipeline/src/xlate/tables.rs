//! A packet in a bridge: its input port's checks, table lookups, the
//! flows' actions, outputs (patch ports continue on the peer bridge in the
//! same walk; an internal port with a router attached enters the router).

use super::ctx::Ctx;
use crate::drop::DropReason;
use crate::flow::{ofp, Action};
use crate::key::{Field, FlowKey, FRAG_LATER, VLAN_CFI, VLAN_PCP_MASK, VLAN_VID_MASK};
use crate::switch::{Bridge, Port, VlanMode, MAX_RESUBMIT_DEPTH};
use crate::trace::{key_summary, TraceEvent};
use crate::wire::{ethertype, ipproto, vlan};

impl<'a> Ctx<'a> {
    /// The packet enters `port`'s bridge through `port`.
    pub(super) fn bridge_input(&mut self, port: &'a Port) {
        let bridge = &self.sw.bridges[port.bridge];
        self.key.set(Field::InPort, port.ofport as u64);
        self.event(|c| TraceEvent::Bridge {
            bridge: bridge.name.clone(),
            in_port: port.name.clone(),
            packet: crate::trace::key_summary(&c.key),
        });
        if self.tagged_on_access_port(port) || self.ip_source_spoofed(port) {
            return;
        }
        self.lookup_table(bridge, 0);
    }

    /// An access port takes untagged frames, or a priority 802.1Q tag (VID
    /// 0) whose payload is not itself a tag; anything else is dropped here
    /// (true). Open vSwitch applies its check in NORMAL alone, and only to
    /// the VID: it lets a VM reach another network through Neutron's
    /// explicit table 60 flows (`dl_vlan=<segmentation id>,dl_dst=<vm>
    /// actions=strip_vlan,output`) by tagging its frames, takes a priority
    /// 802.1ad tag as untagged and floods it, S-tag kept, onto the trunk,
    /// and passes a priority tag's inner tag to the other VMs. What passes
    /// is parsed up to its payload (ARP, IPv4), which the anti-spoofing
    /// flows and `ip_source_spoofed` then check.
    fn tagged_on_access_port(&mut self, port: &Port) -> bool {
        if !matches!(port.vlan, VlanMode::Access { .. }) {
            return false;
        }
        self.wc
            .unwildcard(Field::VlanTci, (VLAN_CFI | VLAN_VID_MASK) as u64);
        let Some(vid) = self.key.vlan_vid() else {
            return false;
        };
        self.wc.set(Field::VlanTpid, Field::VlanTpid.full_mask());
        let tag = if self.key.vlan_tpid() == Some(ethertype::QINQ) {
            format!("802.1ad-tagged frame (VLAN {vid})")
        } else if vid != 0 {
            format!("VLAN {vid} tagged frame")
        } else {
            self.wc.set(Field::DlType, Field::DlType.full_mask());
            let inner = self.key.dl_type();
            if !vlan::is_tpid(inner) {
                return false;
            }
            format!("priority-tagged frame carrying another tag ({inner:#06x})")
        };
        self.event(|_| TraceEvent::Note {
            text: format!("{tag} on access port {}: dropped", port.name),
        });
        self.drop(DropReason::TaggedOnAccessPort);
        true
    }

    /// Port security: an IPv4 packet from a port with allowed source
    /// addresses must come from one of them (DHCP discovery from 0.0.0.0
    /// too); otherwise it is dropped here (true). A priority tag does not
    /// hide the packet: the key is its payload's.
    fn ip_source_spoofed(&mut self, port: &Port) -> bool {
        if port.ip_sources.is_none() || !self.key.is_ipv4() {
            return false;
        }
        self.wc.set(Field::DlType, Field::DlType.full_mask());
        self.wc.set(Field::NwSrc, Field::NwSrc.full_mask());
        let src = self.key.nw_src();
        // DHCP discovery comes from 0.0.0.0.
        let dhcp = src == 0 && {
            for f in [Field::NwProto, Field::TpSrc, Field::TpDst] {
                self.wc.set(f, f.full_mask());
            }
            self.key.nw_proto() == crate::wire::ipproto::UDP
                && self.key.tp_src() == 68
                && self.key.tp_dst() == 67
        };
        if dhcp || port.may_send_from(src) {
            return false;
        }
        self.event(|_| TraceEvent::Note {
            text: format!(
                "source {} not allowed on {} (port security): dropped",
                std::net::Ipv4Addr::from(src),
                port.name
            ),
        });
        self.drop(DropReason::IpSourceSpoofed);
        true
    }

    pub(super) fn lookup_table(&mut self, bridge: &'a Bridge, table_id: u8) {
        if self.depth >= MAX_RESUBMIT_DEPTH {
            self.drop(DropReason::ResubmitDepth);
            self.halted = true;
            return;
        }
        self.depth += 1;
        let found = bridge.table(table_id).and_then(|t| {
            t.classifier
                .lookup(&self.key, &mut self.wc)
                .and_then(|(&i, _)| t.rules.get(i as usize))
        });
        match found {
            None => {
                self.event(|_| TraceEvent::Table {
                    table: table_id,
                    priority: None,
                    flow: None,
                });
                self.drop(DropReason::TableMiss);
            }
            Some(rule) => {
                self.event(|_| TraceEvent::Table {
                    table: table_id,
                    priority: Some(rule.flow.priority),
                    flow: Some(crate::flow::text::format_flow(&rule.flow, None, bridge)),
                });
                self.rules.push(rule.stats.clone());
                if rule.flow.actions.is_empty() {
                    self.drop(DropReason::FlowDrop);
                }
                for action in &rule.flow.actions {
                    if self.halted {
                        break;
                    }
                    self.event(|_| TraceEvent::Action {
                        action: crate::flow::text::format_actions(
                            std::slice::from_ref(action),
                            bridge,
                        ),
                    });
                    self.do_action(bridge, table_id, action);
                }
            }
        }
        self.depth -= 1;
    }

    fn do_action(&mut self, bridge: &'a Bridge, table_id: u8, action: &Action) {
        let k = &mut self.key;
        let is_ip = k.dl_type() == ethertype::IPV4;
        let has_ports = is_ip
            && matches!(k.nw_proto(), ipproto::TCP | ipproto::UDP)
            && k.get(Field::NwFrag) as u8 & FRAG_LATER == 0;
        match action {
            Action::Output(p) => self.output_ofport(bridge, *p, false),
            Action::InPort => {
                let p = self.key.in_port();
                self.output_ofport(bridge, p, true)
            }
            Action::Local => self.output_ofport(bridge, ofp::LOCAL, false),
            Action::Normal => super::normal::normal(self, bridge),
            Action::Flood => {
                let in_port = self.key.in_port();
                let targets: Vec<&Port> = bridge
                    .ports
                    .iter()
                    .filter_map(|id| self.sw.port(*id))
                    .filter(|p| p.ofport != in_port && !p.no_flood)
                    .collect();
                for p in targets {
                    super::normal::output_to(self, p);
                }
            }
            Action::Resubmit { port, table } => {
                let saved = self.key.get(Field::InPort);
                if let Some(p) = port {
                    self.key.set(Field::InPort, *p as u64);
                }
                self.lookup_table(bridge, table.unwrap_or(table_id));
                self.key.set(Field::InPort, saved);
            }
            Action::GotoTable(t) => self.lookup_table(bridge, *t),
            Action::ModVlanVid(vid) => {
                let tci = k.vlan_tci();
                k.set(
                    Field::VlanTci,
                    (VLAN_CFI | (tci & VLAN_PCP_MASK) | (vid & VLAN_VID_MASK)) as u64,
                );
                vlan_written(k, &self.committed, &mut self.wc, tci & VLAN_CFI != 0);
            }
            Action::ModVlanPcp(pcp) => {
                let tci = k.vlan_tci();
                k.set(
                    Field::VlanTci,
                    (VLAN_CFI | (tci & VLAN_VID_MASK) | ((*pcp as u16 & 7) << 13)) as u64,
                );
                vlan_written(k, &self.committed, &mut self.wc, tci & VLAN_CFI != 0);
            }
            Action::StripVlan => {
                k.set_vlan(None);
                vlan_written(k, &self.committed, &mut self.wc, true);
            }
            Action::PushVlan(tpid) => {
                // One tag is supported: pushing onto a tagged frame keeps the tag
                // (the spec only pushes onto untagged frames).
                let was_tagged = k.vlan_vid().is_some();
                if !was_tagged {
                    k.set_vlan(Some((*tpid, 0)));
                }
                vlan_written(k, &self.committed, &mut self.wc, was_tagged);
            }
            Action::ModDlSrc(m) => k.set(Field::DlSrc, m.to_u64()),
            Action::ModDlDst(m) => k.set(Field::DlDst, m.to_u64()),
            Action::ModNwSrc(a) if is_ip => k.set(Field::NwSrc, *a as u64),
            Action::ModNwDst(a) if is_ip => k.set(Field::NwDst, *a as u64),
            Action::ModNwTos(t) if is_ip => k.set(Field::NwTos, (*t & 0xfc) as u64),
            Action::ModTpSrc(p) if has_ports => k.set(Field::TpSrc, *p as u64),
            Action::ModTpDst(p) if has_ports => k.set(Field::TpDst, *p as u64),
            Action::ModNwSrc(_)
            | Action::ModNwDst(_)
            | Action::ModNwTos(_)
            | Action::ModTpSrc(_)
            | Action::ModTpDst(_) => {
                self.event(|_| TraceEvent::Note {
                    text: "action does not apply to this packet: skipped".into(),
                });
            }
            Action::DecTtl => {
                if is_ip {
                    self.wc.set(Field::NwTtl, Field::NwTtl.full_mask());
                    let ttl = self.key.nw_ttl();
                    if ttl <= 1 {
                        self.drop(DropReason::TtlExceeded);
                        self.halted = true;
                    } else {
                        self.key.set(Field::NwTtl, (ttl - 1) as u64);
                    }
                }
            }
            Action::SetField { field, value, mask } => {
                let was_tagged = k.vlan_vid().is_some();
                k.set_masked(*field, *value, *mask);
                if *field == Field::VlanTci {
                    vlan_written(k, &self.committed, &mut self.wc, was_tagged);
                }
            }
            Action::Load {
                field,
                ofs,
                nbits,
                value,
            } => {
                let mask = crate::flow::bit_range(*ofs, *nbits);
                let was_tagged = k.vlan_vid().is_some();
                k.set_masked(*field, value << ofs, mask);
                if *field == Field::VlanTci {
                    vlan_written(k, &self.committed, &mut self.wc, was_tagged);
                }
            }
            Action::Move {
                src,
                src_ofs,
                dst,
                dst_ofs,
                nbits,
            } => {
                let smask = crate::flow::bit_range(*src_ofs, *nbits);
                let (w, sh, _) = src.position();
                self.wc.w[w] |= smask << sh;
                let v = (self.key.get(*src) & smask) >> src_ofs;
                let was_tagged = self.key.vlan_vid().is_some();
                self.key
                    .set_masked(*dst, v << dst_ofs, crate::flow::bit_range(*dst_ofs, *nbits));
                if *dst == Field::VlanTci {
                    vlan_written(&mut self.key, &self.committed, &mut self.wc, was_tagged);
                }
            }
            Action::Ct(ct) => self.ct(bridge, ct, Ctx::resume_table),
        }
    }

    /// `ct(...)`: connection tracking in a zone, optionally committing and
    /// NATing; with `table=T` the packet recirculates to table T with its
    /// `ct_state` (a copy, if more actions follow: they see the packet as
    /// it was), as in OVS.
    /// `output:P` on `bridge` (P an OpenFlow port number).
    fn output_ofport(&mut self, bridge: &'a Bridge, ofport: u32, allow_in_port: bool) {
        if ofport == self.key.in_port() && !allow_in_port {
            self.event(|_| TraceEvent::Note {
                text: "skipping output to input port".into(),
            });
            self.drop_reason.get_or_insert(DropReason::OutputToInPort);
            return;
        }
        match bridge
            .port_by_ofport(ofport)
            .and_then(|id| self.sw.port(id))
        {
            Some(p) => super::normal::output_to(self, p),
            None => self.drop(DropReason::NoSuchPort),
        }
    }

    /// A recirculated packet re-enters `bridge` at `table`.
    pub(super) fn resume_table(&mut self, bridge: &'a Bridge, table: u8) {
        self.wc.set(Field::CtState, Field::CtState.full_mask());
        self.wc.set(Field::CtZone, Field::CtZone.full_mask());
        self.event(|c| TraceEvent::Bridge {
            bridge: bridge.name.clone(),
            in_port: format!("recirculation (in_port={})", c.key.in_port()),
            packet: key_summary(&c.key),
        });
        self.lookup_table(bridge, table)
    }
}

/// After an action wrote the tag (`was_tagged`: whether the key had one
/// before): a key without a tag has no TPID either (`set_field`, `load` or
/// `move` can clear the tag; a tag they add is 802.1Q, as `mod_vlan_vid`'s).
/// What the next output does to the packet's own tag (push, rewrite in
/// place, pop, pop and push) depends on whether the packet has one: the
/// megaflow covers that bit. A tag put on an untagged key while the packet
/// (`committed`) still has its own, the one the key lost to `strip_vlan`,
/// is rewritten in place or popped and pushed as the two TPIDs say: then
/// the megaflow covers the TPID too (only then: it is the only bit of its
/// key word most megaflows would otherwise leave out).
fn vlan_written(k: &mut FlowKey, committed: &FlowKey, wc: &mut FlowKey, was_tagged: bool) {
    let tagged = k.vlan_vid().is_some();
    if !tagged {
        k.set(Field::VlanTpid, 0);
    }
    wc.unwildcard(Field::VlanTci, VLAN_CFI as u64);
    if tagged && !was_tagged && committed.vlan_vid().is_some() {
        wc.set(Field::VlanTpid, Field::VlanTpid.full_mask());
    }
}
