//! Parsing actions: keywords, `output`/`resubmit`/`goto_table`, header
//! rewrites, `set_field`/`load`/`move`, and `ct(...)` with its `nat(...)`.

use super::error::FlowSyntaxError;
use super::token::{tokenize, Tok};
use super::value::{
    field_by_name, num_in, parse_field_value, parse_ipv4, parse_num, parse_port, parse_subfield,
    KeyValue,
};
use crate::flow::{ofp, Action, CtAction, CtZone, NatKind, NatSpec, PortNames};
use crate::key::Field;
use crate::wire::ethertype;

pub(super) fn parse_actions_at(
    acts: &str,
    base: usize,
    src: &str,
    ports: &dyn PortNames,
) -> Result<Vec<Action>, FlowSyntaxError> {
    let toks = tokenize(acts, base);
    let mut out = Vec::with_capacity(toks.len());
    if toks.is_empty() {
        return Ok(out); // `actions=` alone: drop
    }
    for (i, t) in toks.iter().enumerate() {
        if t.text.eq_ignore_ascii_case("drop") {
            if toks.len() != 1 {
                return Err(t.err(src, "`drop` must be the only action"));
            }
            return Ok(Vec::new());
        }
        let a = parse_action(t, src, ports)?;
        if matches!(a, Action::GotoTable(_)) && i + 1 != toks.len() {
            return Err(t.err(src, "`goto_table` must be the last action"));
        }
        out.push(a);
    }
    Ok(out)
}

/// One action token.
fn parse_action(t: &Tok, src: &str, ports: &dyn PortNames) -> Result<Action, FlowSyntaxError> {
    let text = t.text;
    if let Some(a) = keyword_action(text) {
        return Ok(a);
    }
    if let Some(inner) = text
        .strip_prefix("resubmit(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return parse_resubmit(t, inner, src, ports);
    }
    if let Some(inner) = text.strip_prefix("ct(").and_then(|r| r.strip_suffix(')')) {
        return parse_ct(t, inner, src).map(Action::Ct);
    }
    if text == "ct" {
        return Ok(Action::Ct(CtAction::default()));
    }
    let Some((k, v)) = text.split_once(':') else {
        // A bare port number or name means output to it (OpenFlow 1.0 style).
        if let Some(p) = parse_port(text, ports).filter(|&p| p <= ofp::MAX_PORT) {
            return Ok(Action::Output(p));
        }
        return Err(t.err(src, "unknown action"));
    };
    let a = KeyValue { t: *t, src, k, v };
    let action = match k {
        "output" => parse_output(&a, ports)?,
        "resubmit" => Action::Resubmit {
            port: Some(parse_port(v, ports).ok_or_else(|| a.bad("port"))?),
            table: None,
        },
        "goto_table" => Action::GotoTable(a.num(254, "table")? as u8),
        "mod_vlan_vid" => Action::ModVlanVid(a.num(4095, "VLAN id")? as u16),
        "mod_vlan_pcp" => Action::ModVlanPcp(a.num(7, "VLAN priority")? as u8),
        "push_vlan" => {
            let tpid = a.num(0xffff, "ethertype")? as u16;
            if tpid != ethertype::VLAN && tpid != ethertype::QINQ {
                return Err(a.err("push_vlan takes 0x8100 or 0x88a8"));
            }
            Action::PushVlan(tpid)
        }
        "mod_dl_src" => Action::ModDlSrc(v.parse().map_err(|_| a.bad("MAC address"))?),
        "mod_dl_dst" => Action::ModDlDst(v.parse().map_err(|_| a.bad("MAC address"))?),
        "mod_nw_src" => Action::ModNwSrc(parse_ipv4(v).ok_or_else(|| a.bad("IPv4 address"))?),
        "mod_nw_dst" => Action::ModNwDst(parse_ipv4(v).ok_or_else(|| a.bad("IPv4 address"))?),
        "mod_nw_tos" => {
            let tos = a.num(0xff, "TOS")?;
            if tos & 3 != 0 {
                return Err(a.err("mod_nw_tos sets DSCP: low 2 bits must be 0"));
            }
            Action::ModNwTos(tos as u8)
        }
        "mod_tp_src" => Action::ModTpSrc(a.num(0xffff, "port")? as u16),
        "mod_tp_dst" => Action::ModTpDst(a.num(0xffff, "port")? as u16),
        "set_field" => parse_set_field(&a)?,
        "load" => parse_load(&a)?,
        "move" => parse_move(&a)?,
        _ => return Err(t.err(src, "unknown action")),
    };
    Ok(action)
}

/// Actions that are one keyword (case-insensitive like ovs-ofctl).
fn keyword_action(text: &str) -> Option<Action> {
    Some(match text.to_ascii_uppercase().as_str() {
        "NORMAL" => Action::Normal,
        "FLOOD" | "ALL" => Action::Flood,
        "IN_PORT" => Action::InPort,
        "LOCAL" => Action::Local,
        "STRIP_VLAN" | "POP_VLAN" => Action::StripVlan,
        "DEC_TTL" => Action::DecTtl,
        _ => return None,
    })
}

/// `resubmit(PORT,TABLE)` with either part empty (not both).
fn parse_resubmit(
    t: &Tok,
    inner: &str,
    src: &str,
    ports: &dyn PortNames,
) -> Result<Action, FlowSyntaxError> {
    let (p, tb) = inner.split_once(',').unwrap_or((inner, ""));
    let port = if p.is_empty() {
        None
    } else {
        Some(parse_port(p, ports).ok_or_else(|| t.err(src, format!("unknown port `{p}`")))?)
    };
    let table = if tb.is_empty() {
        None
    } else {
        Some(num_in(t, src, tb, 254, "table")? as u8)
    };
    if port.is_none() && table.is_none() {
        return Err(t.err(src, "resubmit needs a port or a table"));
    }
    Ok(Action::Resubmit { port, table })
}

/// `output:PORT`: a real port, or the reserved port's own action.
fn parse_output(a: &KeyValue, ports: &dyn PortNames) -> Result<Action, FlowSyntaxError> {
    let p = parse_port(a.v, ports).ok_or_else(|| a.err(format!("unknown port `{}`", a.v)))?;
    Ok(match p {
        ofp::NORMAL => Action::Normal,
        ofp::FLOOD | ofp::ALL => Action::Flood,
        ofp::IN_PORT => Action::InPort,
        ofp::LOCAL => Action::Local,
        p if p <= ofp::MAX_PORT => Action::Output(p),
        _ => return Err(a.err("cannot output to that reserved port")),
    })
}

/// `set_field:VALUE[/MASK]->FIELD`, and OpenFlow 1.3's `->vlan_vid`.
fn parse_set_field(a: &KeyValue) -> Result<Action, FlowSyntaxError> {
    let (val, field) =
        a.v.split_once("->")
            .ok_or_else(|| a.err("set_field needs VALUE->FIELD"))?;
    if field == "vlan_vid" {
        // OpenFlow 1.3's vlan_vid: 0x1000|VID.
        let vid = parse_num(val)
            .filter(|&x| x <= 0x1fff)
            .ok_or_else(|| a.bad("vlan_vid"))?;
        return Ok(Action::SetField {
            field: Field::VlanTci,
            value: vid,
            mask: 0x1fff,
        });
    }
    let f = field_by_name(field).ok_or_else(|| a.err(format!("unknown field `{field}`")))?;
    let (vs, ms) = match val.split_once('/') {
        Some((v, m)) => (v, Some(m)),
        None => (val, None),
    };
    let value = parse_field_value(f, vs).ok_or_else(|| a.bad("value"))?;
    let mask = match ms {
        Some(ms) => parse_field_value(f, ms).ok_or_else(|| a.bad("mask"))?,
        None => f.full_mask(),
    };
    Ok(Action::SetField {
        field: f,
        value: value & mask,
        mask,
    })
}

/// `load:VALUE->FIELD[bits]`.
fn parse_load(a: &KeyValue) -> Result<Action, FlowSyntaxError> {
    let (val, dst) =
        a.v.split_once("->")
            .ok_or_else(|| a.err("load needs VALUE->FIELD[bits]"))?;
    let (field, ofs, nbits) =
        parse_subfield(dst).ok_or_else(|| a.err(format!("bad field `{dst}`")))?;
    let value = parse_num(val).ok_or_else(|| a.bad("value"))?;
    if nbits < 64 && value >> nbits != 0 {
        return Err(a.err(format!("value does not fit in {nbits} bits")));
    }
    Ok(Action::Load {
        field,
        ofs,
        nbits,
        value,
    })
}

/// `move:SRC[bits]->DST[bits]`, both the same width.
fn parse_move(a: &KeyValue) -> Result<Action, FlowSyntaxError> {
    let (from, to) =
        a.v.split_once("->")
            .ok_or_else(|| a.err("move needs SRC[bits]->DST[bits]"))?;
    let (src_f, src_ofs, n1) =
        parse_subfield(from).ok_or_else(|| a.err(format!("bad field `{from}`")))?;
    let (dst_f, dst_ofs, n2) =
        parse_subfield(to).ok_or_else(|| a.err(format!("bad field `{to}`")))?;
    if n1 != n2 {
        return Err(a.err("move: source and destination widths differ"));
    }
    Ok(Action::Move {
        src: src_f,
        src_ofs,
        dst: dst_f,
        dst_ofs,
        nbits: n1,
    })
}

fn parse_ct(t: &Tok, inner: &str, src: &str) -> Result<CtAction, FlowSyntaxError> {
    let mut ct = CtAction::default();
    let base = t.text.len() - inner.len() - 1;
    for p in tokenize(inner, 0) {
        let pt = t.sub(base + p.at, p.text);
        let (k, v) = match p.text.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p.text, None),
        };
        match (k, v) {
            ("commit", None) => ct.commit = true,
            ("table", Some(v)) => ct.table = Some(num_in(&pt, src, v, 254, "table")? as u8),
            ("zone", Some(v)) => {
                ct.zone = Some(if let Some(z) = parse_num(v) {
                    if z > 0xffff {
                        return Err(pt.err(src, "zone out of range (max 65535)"));
                    }
                    CtZone::Value(z as u16)
                } else {
                    let (field, ofs, nbits) = parse_subfield(v).ok_or_else(|| {
                        pt.err(src, "zone is a number or a field like reg6[0..15]")
                    })?;
                    if nbits > 16 {
                        return Err(pt.err(src, "zone field is at most 16 bits"));
                    }
                    CtZone::Field { field, ofs, nbits }
                })
            }
            _ if p.text == "nat" => ct.nat = Some(NatSpec::bare()),
            _ if p.text.starts_with("nat(") && p.text.ends_with(')') => {
                ct.nat = Some(parse_nat(&pt, &p.text[4..p.text.len() - 1], src)?)
            }
            _ => return Err(pt.err(src, "unknown ct argument (commit, table=, zone=, nat)")),
        }
    }
    Ok(ct)
}

impl NatSpec {
    /// `nat` with no arguments.
    pub fn bare() -> NatSpec {
        NatSpec {
            kind: None,
            addr: None,
            ports: None,
            random: false,
            persistent: false,
            hash: false,
        }
    }
}

fn parse_nat(t: &Tok, inner: &str, src: &str) -> Result<NatSpec, FlowSyntaxError> {
    let mut n = NatSpec::bare();
    for part in inner.split(',').filter(|p| !p.is_empty()) {
        match part {
            "random" => n.random = true,
            "persistent" => n.persistent = true,
            "hash" => n.hash = true,
            "src" => n.kind = Some(NatKind::Src),
            "dst" => n.kind = Some(NatKind::Dst),
            _ => {
                let (kind, range) = if let Some(r) = part.strip_prefix("src=") {
                    (NatKind::Src, r)
                } else if let Some(r) = part.strip_prefix("dst=") {
                    (NatKind::Dst, r)
                } else {
                    return Err(t.err(src, format!("unknown nat argument `{part}`")));
                };
                n.kind = Some(kind);
                let (addrs, ports) = match range.split_once(':') {
                    Some((a, p)) => (a, Some(p)),
                    None => (range, None),
                };
                let (a1, a2) = addrs.split_once('-').unwrap_or((addrs, addrs));
                let lo =
                    parse_ipv4(a1).ok_or_else(|| t.err(src, format!("bad NAT address `{a1}`")))?;
                let hi =
                    parse_ipv4(a2).ok_or_else(|| t.err(src, format!("bad NAT address `{a2}`")))?;
                if lo > hi {
                    return Err(t.err(src, "NAT address range is reversed"));
                }
                n.addr = Some((lo, hi));
                if let Some(p) = ports {
                    let (p1, p2) = p.split_once('-').unwrap_or((p, p));
                    let lo = num_in(t, src, p1, 0xffff, "NAT port")? as u16;
                    let hi = num_in(t, src, p2, 0xffff, "NAT port")? as u16;
                    if lo > hi {
                        return Err(t.err(src, "NAT port range is reversed"));
                    }
                    n.ports = Some((lo, hi));
                }
            }
        }
    }
    if n.kind.is_none() && (n.addr.is_some() || n.random || n.persistent || n.hash) {
        return Err(t.err(src, "nat options need src or dst"));
    }
    Ok(n)
}
