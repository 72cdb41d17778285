//! Instructions and actions in ovs-ofctl syntax, as OVS's
//! `ofpacts_format()` writes them: `output:5`, `NORMAL`,
//! `CONTROLLER:65535`, `pop_vlan`, `push_vlan:0x8100`,
//! `set_field:4097->vlan_vid`, `resubmit(,60)`, `resubmit:5`,
//! `move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]`, `load:0x8->NXM_NX_REG7[]`,
//! `ct(commit,zone=NXM_NX_REG6[0..15],exec(…))`, `conjunction(8,1/2)`,
//! `goto_table:59`; no instructions at all is `drop`.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::action::{port, Action};
use crate::instruction::Instruction;
use crate::nicira::{
    ct_flags, nat_flags, Conntrack, CtAction, CtZone, Nat, NiciraAction, Subfield, CT_RECIRC_NONE,
};
use crate::oxm::field_of_header;
use crate::oxm::OxmEntry;
use crate::text_value::{c_hex, field_value_text, port16_text, port_text};

/// A FLOW_MOD's instructions as the text after `actions=`.
pub fn instructions_text(list: &[Instruction]) -> String {
    let parts: Vec<String> = list
        .iter()
        .filter_map(|i| match i {
            Instruction::ApplyActions(a) if a.is_empty() => None,
            Instruction::ApplyActions(a) => Some(actions_text(a)),
            Instruction::WriteActions(a) => Some(format!("write_actions({})", actions_text(a))),
            Instruction::ClearActions => Some("clear_actions".to_string()),
            Instruction::WriteMetadata { metadata, mask } => Some(if *mask == u64::MAX {
                format!("write_metadata:{}", c_hex((*metadata).into()))
            } else {
                format!(
                    "write_metadata:{}/{}",
                    c_hex((*metadata).into()),
                    c_hex((*mask).into())
                )
            }),
            Instruction::GotoTable(t) => Some(format!("goto_table:{t}")),
        })
        .collect();
    if parts.is_empty() {
        "drop".to_string()
    } else {
        parts.join(",")
    }
}

/// An action list, comma separated.
pub fn actions_text(actions: &[Action]) -> String {
    actions
        .iter()
        .map(action_text)
        .collect::<Vec<_>>()
        .join(",")
}

fn action_text(a: &Action) -> String {
    match a {
        Action::Output { port: p, max_len } => {
            if *p == port::CONTROLLER {
                format!("CONTROLLER:{max_len}")
            } else if *p < port::MAX {
                format!("output:{p}")
            } else {
                port_text(*p)
            }
        }
        Action::CopyTtlOut => "copy_ttl_out".into(),
        Action::CopyTtlIn => "copy_ttl_in".into(),
        Action::PushVlan { ethertype } => format!("push_vlan:{ethertype:#x}"),
        Action::PopVlan => "pop_vlan".into(),
        Action::SetQueue { queue_id } => format!("set_queue:{queue_id}"),
        Action::Group { group_id } => format!("group:{group_id}"),
        Action::SetNwTtl { ttl } => format!("mod_nw_ttl:{ttl}"),
        Action::DecNwTtl => "dec_ttl".into(),
        Action::SetField(e) => set_field_text(e),
        Action::Nicira(nx) => nicira_text(nx),
    }
}

fn set_field_text(e: &OxmEntry) -> String {
    match e.field.info() {
        Some(info) => {
            format!(
                "set_field:{}->{}",
                field_value_text(info, e.value, e.mask),
                info.name
            )
        }
        None => "set_field:?".into(),
    }
}

fn nicira_text(a: &NiciraAction) -> String {
    match a {
        NiciraAction::Resubmit { in_port, table } => resubmit_text(*in_port, table.unwrap_or(255)),
        NiciraAction::RegMove { src, dst } => {
            format!("move:{}->{}", subfield_text(src), subfield_text(dst))
        }
        NiciraAction::RegLoad { dst, value } => {
            format!("load:{}->{}", c_hex((*value).into()), subfield_text(dst))
        }
        NiciraAction::Note(data) => {
            let hex: Vec<String> = data.iter().map(|b| format!("{b:02x}")).collect();
            format!("note:{}", hex.join("."))
        }
        NiciraAction::Conjunction {
            id,
            clause,
            n_clauses,
        } => {
            format!("conjunction({id},{}/{n_clauses})", u16::from(*clause) + 1)
        }
        NiciraAction::Ct(ct) => ct_text(ct),
        NiciraAction::Nat(nat) => nat_text(nat),
        NiciraAction::CtClear => "ct_clear".into(),
    }
}

fn resubmit_text(in_port: u16, table: u8) -> String {
    const IN_PORT: u16 = 0xfff8;
    if in_port != IN_PORT && table == 255 {
        return format!("resubmit:{}", port16_text(in_port));
    }
    let mut s = "resubmit(".to_string();
    if in_port != IN_PORT {
        s.push_str(&port16_text(in_port));
    }
    s.push(',');
    if table != 255 {
        let _ = write!(s, "{table}");
    }
    s.push(')');
    s
}

/// `NAME[]`, `NAME[3]` or `NAME[0..15]`.
pub(crate) fn subfield_text(sf: &Subfield) -> String {
    let Ok(info) = field_of_header(sf.header) else {
        return format!("{:#x}[]", sf.header);
    };
    let bits = u16::from(info.len) * 8;
    let range = if sf.ofs == 0 && sf.n_bits == bits {
        "[]".to_string()
    } else if sf.n_bits == 1 {
        format!("[{}]", sf.ofs)
    } else {
        let last = (u32::from(sf.ofs) + u32::from(sf.n_bits)).saturating_sub(1);
        format!("[{}..{last}]", sf.ofs)
    };
    format!("{}{range}", info.subfield_name)
}

fn ct_text(ct: &Conntrack) -> String {
    let mut s = "ct(".to_string();
    if ct.flags & ct_flags::COMMIT != 0 {
        s.push_str("commit,");
    }
    if ct.flags & ct_flags::FORCE != 0 {
        s.push_str("force,");
    }
    if ct.recirc_table != CT_RECIRC_NONE {
        let _ = write!(s, "table={},", ct.recirc_table);
    }
    match ct.zone {
        CtZone::Field(sf) => {
            let _ = write!(s, "zone={},", subfield_text(&sf));
        }
        CtZone::Immediate(0) => {}
        CtZone::Immediate(z) => {
            let _ = write!(s, "zone={z},");
        }
    }
    let mut rest: &[CtAction] = &ct.actions;
    if let Some((CtAction::Nicira(NiciraAction::Nat(nat)), tail)) = rest.split_first() {
        s.push_str(&nat_text(nat));
        s.push(',');
        rest = tail;
    }
    if !rest.is_empty() {
        let nested: Vec<String> = rest
            .iter()
            .map(|a| match a {
                CtAction::SetField(e) => set_field_text(e),
                CtAction::Nicira(nx) => nicira_text(nx),
            })
            .collect();
        let _ = write!(s, "exec({}),", nested.join(","));
    }
    match ct.alg {
        0 => {}
        21 => s.push_str("alg=ftp,"),
        69 => s.push_str("alg=tftp,"),
        other => {
            let _ = write!(s, "alg={other},");
        }
    }
    if s.ends_with(',') {
        s.pop();
    }
    s.push(')');
    s
}

fn nat_text(nat: &Nat) -> String {
    let mut s = "nat".to_string();
    if nat.flags & (nat_flags::SRC | nat_flags::DST) == 0 {
        return s;
    }
    s.push('(');
    s.push_str(if nat.flags & nat_flags::SRC != 0 {
        "src"
    } else {
        "dst"
    });
    let proto_min = nat.proto_min.unwrap_or(0);
    let proto_max = nat.proto_max.unwrap_or(0);
    let addr = if let Some(min) = nat.ipv4_min {
        let mut a = Ipv4Addr::from(min).to_string();
        if let Some(max) = nat.ipv4_max.filter(|m| *m != [0; 4] && *m != min) {
            let _ = write!(a, "-{}", Ipv4Addr::from(max));
        }
        Some(a)
    } else if let Some(min) = nat.ipv6_min {
        let bracket = |ip: [u8; 16]| {
            if proto_min != 0 {
                format!("[{}]", Ipv6Addr::from(ip))
            } else {
                Ipv6Addr::from(ip).to_string()
            }
        };
        let mut a = bracket(min);
        if let Some(max) = nat.ipv6_max.filter(|m| *m != [0; 16] && *m != min) {
            let _ = write!(a, "-{}", bracket(max));
        }
        Some(a)
    } else {
        None
    };
    if let Some(a) = addr {
        let _ = write!(s, "={a}");
        if proto_min != 0 {
            let _ = write!(s, ":{proto_min}");
            if proto_max != 0 && proto_max != proto_min {
                let _ = write!(s, "-{proto_max}");
            }
        }
        s.push(',');
        for (bit, word) in [
            (nat_flags::PERSISTENT, "persistent"),
            (nat_flags::PROTO_HASH, "hash"),
            (nat_flags::PROTO_RANDOM, "random"),
        ] {
            if nat.flags & bit != 0 {
                let _ = write!(s, "{word},");
            }
        }
    }
    if s.ends_with(',') {
        s.pop();
    }
    s.push(')');
    s
}
