//! How ovs-ofctl writes single values: C-style hex, MAC and IP addresses
//! with masks (CIDR when contiguous), ports (reserved ones by name),
//! conntrack state flags, and any field's value by its `ValueFormat`.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::action::port;
use crate::oxm::{FieldInfo, ValueFormat};

/// All ones over a field `len` bytes wide.
pub(crate) fn full_mask(len: u8) -> u128 {
    if len >= 16 {
        u128::MAX
    } else {
        (1u128 << (8 * u32::from(len))) - 1
    }
}

/// C's `%#x`: `0` for zero, `0x…` otherwise.
pub(crate) fn c_hex(v: u128) -> String {
    if v == 0 {
        "0".to_string()
    } else {
        format!("{v:#x}")
    }
}

const CT_STATE_NAMES: [&str; 8] = ["new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"];

/// `ct_state` as OVS writes it: `est|trk` for a full mask (`0` for no
/// state), else `+est-rel` for each masked bit from the lowest.
pub(crate) fn ct_state_text(value: u32, mask: u32) -> String {
    let name = |bit: u32| {
        CT_STATE_NAMES
            .get(bit as usize)
            .map_or_else(|| "[Unknown]".to_string(), |s| s.to_string())
    };
    if mask & 0xff == 0xff {
        if value == 0 {
            return "0".to_string();
        }
        let names: Vec<String> = (0..32)
            .filter(|b| value & (1 << b) != 0)
            .map(name)
            .collect();
        return names.join("|");
    }
    if mask == 0 {
        return "0/0".to_string();
    }
    (0..32)
        .filter(|b| mask & (1 << b) != 0)
        .map(|b| {
            format!(
                "{}{}",
                if value & (1 << b) != 0 { '+' } else { '-' },
                name(b)
            )
        })
        .collect()
}

pub(crate) fn eth_text(v: u128) -> String {
    let b = (v as u64).to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    )
}

pub(crate) fn eth_masked(value: u128, mask: u128) -> String {
    if mask == full_mask(6) {
        eth_text(value)
    } else {
        format!("{}/{}", eth_text(value), eth_text(mask))
    }
}

pub(crate) fn ipv4_masked(value: u32, mask: u32) -> String {
    let ip = Ipv4Addr::from(value);
    if mask == u32::MAX {
        ip.to_string()
    } else if mask.leading_ones() + mask.trailing_zeros() == 32 {
        format!("{ip}/{}", mask.leading_ones())
    } else {
        format!("{ip}/{}", Ipv4Addr::from(mask))
    }
}

pub(crate) fn ipv6_masked(value: u128, mask: u128) -> String {
    let ip = Ipv6Addr::from(value);
    if mask == u128::MAX {
        ip.to_string()
    } else if mask.leading_ones() + mask.trailing_zeros() == 128 {
        format!("{ip}/{}", mask.leading_ones())
    } else {
        format!("{ip}/{}", Ipv6Addr::from(mask))
    }
}

/// A 16-bit OpenFlow 1.0-style port as OVS writes it: reserved ports by
/// name, others as numbers.
pub(crate) fn port16_text(p: u16) -> String {
    match p {
        0xfff8 => "IN_PORT".into(),
        0xfff9 => "TABLE".into(),
        0xfffa => "NORMAL".into(),
        0xfffb => "FLOOD".into(),
        0xfffc => "ALL".into(),
        0xfffd => "CONTROLLER".into(),
        0xfffe => "LOCAL".into(),
        0xffff => "ANY".into(),
        n => n.to_string(),
    }
}

/// A 32-bit OpenFlow 1.3 port: OVS maps 0xfffffff8.. onto the 16-bit
/// reserved ports.
pub(crate) fn port_text(p: u32) -> String {
    if p >= port::IN_PORT {
        port16_text((p & 0xffff) as u16)
    } else {
        p.to_string()
    }
}

pub(crate) fn port_text_width(p: u32, len: u8) -> String {
    if len == 2 {
        port16_text(p as u16)
    } else {
        port_text(p)
    }
}

/// A set_field value as OVS's `mf_format` writes it for `info`.
pub(crate) fn field_value_text(info: &FieldInfo, value: u128, mask: Option<u128>) -> String {
    let full = full_mask(info.len);
    let mask = match mask {
        Some(0) => return "ANY".to_string(),
        Some(m) if m == full => None,
        m => m,
    };
    match info.format {
        ValueFormat::Port if mask.is_none() => port_text_width(value as u32, info.len),
        ValueFormat::Decimal | ValueFormat::Port => match mask {
            None => value.to_string(),
            Some(m) => format!("{value}/{}", c_hex(m)),
        },
        ValueFormat::Hex => match mask {
            None => c_hex(value),
            Some(m) => format!("{}/{}", c_hex(value), c_hex(m)),
        },
        ValueFormat::Ethernet => eth_masked(value, mask.unwrap_or(full)),
        ValueFormat::Ipv4 => ipv4_masked(value as u32, mask.unwrap_or(full) as u32),
        ValueFormat::Ipv6 => ipv6_masked(value, mask.unwrap_or(u128::MAX)),
        ValueFormat::CtState => ct_state_text(value as u32, mask.unwrap_or(full) as u32),
        ValueFormat::Frag => match mask {
            None => c_hex(value),
            Some(m) => format!("{}/{}", c_hex(value), c_hex(m)),
        },
    }
}
