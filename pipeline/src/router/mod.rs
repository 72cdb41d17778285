//! Router instances: the qrouter, fip and snat namespaces, without a kernel.
//!
//! A `RouterInstance` is the configured content of one namespace: its
//! interfaces and addresses, policy rules, route tables, static neighbours,
//! proxy-ARP settings and NAT rules, as spec §5–§7 list them. It is part of
//! the snapshot (immutable); what changes at run time (dynamic neighbours,
//! connections) lives outside it.
//!
//! Interfaces attach either to a bridge (an internal port such as `qr-s1`)
//! or to another instance (the `rfp-`/`fpr-` veth pair). The forwarding
//! decision (`xlate::router`) follows Linux's order: local delivery, policy rules
//! by priority (a rule whose table has no route falls through to the next
//! rule), longest-prefix match, TTL, neighbour, out.

mod cidr;
pub mod lpm;
pub mod neighbour;

use crate::key::Mac;
pub use cidr::Cidr;
use lpm::Lpm;
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

/// Which Neutron namespace an instance stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceKind {
    Qrouter,
    Fip,
    Snat,
}

/// Where an interface's frames go.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// An internal port of the same name on a bridge.
    Bridge,
    /// A veth pair: the other end is `iface` of `instance`.
    Veth { instance: String, iface: String },
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Interface {
    pub name: String,
    pub mac: Mac,
    /// Addresses as (address, prefix length).
    pub addrs: Vec<(Ipv4Addr, u8)>,
    pub link: Link,
    /// `proxy_arp=1` (spec §6.5).
    pub proxy_arp: bool,
}

/// An `ip rule`: `from`/`iif`/`to` selectors and the table to consult.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    pub priority: u32,
    pub from: Option<Cidr>,
    pub iif: Option<String>,
    pub to: Option<Cidr>,
    pub table: u32,
}

pub const TABLE_LOCAL: u32 = 255;
pub const TABLE_MAIN: u32 = 254;
pub const TABLE_DEFAULT: u32 = 253;

/// A route: `DST [via GW] dev DEV [src SRC]`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Route {
    pub dst: Cidr,
    pub via: Option<Ipv4Addr>,
    pub dev: String,
    pub src: Option<Ipv4Addr>,
}

/// Where a NAT rule sits (iptables nat chains, Linux order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NatHook {
    Prerouting,
    Postrouting,
}

/// What a NAT rule does when it matches a connection's first packet.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NatTarget {
    /// `-j DNAT --to-destination`.
    Dnat(Ipv4Addr),
    /// `-j SNAT --to-source`.
    Snat(Ipv4Addr),
    /// `-j ACCEPT`: stop NAT processing in this hook.
    Accept,
}

/// One forwarding-relevant nat rule, with the selectors Neutron uses.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NatRule {
    pub hook: NatHook,
    /// `-s`.
    pub src: Option<Cidr>,
    /// `-d`.
    pub dst: Option<Cidr>,
    /// `-i` (or `! -i` when `in_not`).
    pub iif: Option<String>,
    pub iif_not: bool,
    /// `-o` (or `! -o` when `out_not`).
    pub oif: Option<String>,
    pub oif_not: bool,
    /// `-m conntrack ! --ctstate DNAT`: only connections that were not DNATed.
    pub not_dnat: bool,
    /// `-m conntrack --ctstate DNAT`: only DNATed connections.
    pub only_dnat: bool,
    /// `-m mark ! --mark 0x2/0xffff`: only packets not marked as from outside.
    pub not_marked_external: bool,
    pub target: NatTarget,
    /// The rule as `iptables -S` shows it.
    pub text: String,
}

/// The configured content of one namespace.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RouterInstance {
    /// e.g. `qrouter-R1`, `fip-ext-net`, `snat-R1`.
    pub name: String,
    pub kind: InstanceKind,
    pub interfaces: Vec<Interface>,
    /// Sorted by priority.
    pub rules: Vec<Rule>,
    #[serde(skip)]
    pub tables: BTreeMap<u32, Lpm<Route>>,
    /// Static (`nud permanent`) neighbours: (device, address) → MAC.
    pub neighbours: BTreeMap<(String, Ipv4Addr), Mac>,
    pub nat: Vec<NatRule>,
    /// Connection tracking on (off in fip namespaces: raw `CT --notrack`).
    pub conntrack: bool,
    /// Store connections no NAT rule selects, as Linux does. Off (the
    /// default), they are looked up but not stored (`CtStep::lazy`): the
    /// same outcome, with a table that holds only what NAT needs. On, for
    /// tests that compare the two.
    pub store_unnated: bool,
    /// Interfaces whose incoming packets get mark 0x2 (snat: `-i qg-`).
    pub mark_external: Vec<String>,
}

impl RouterInstance {
    pub fn new(name: &str, kind: InstanceKind) -> RouterInstance {
        RouterInstance {
            name: name.to_string(),
            kind,
            interfaces: Vec::new(),
            rules: vec![
                Rule {
                    priority: 0,
                    from: None,
                    iif: None,
                    to: None,
                    table: TABLE_LOCAL,
                },
                Rule {
                    priority: 32766,
                    from: None,
                    iif: None,
                    to: None,
                    table: TABLE_MAIN,
                },
                Rule {
                    priority: 32767,
                    from: None,
                    iif: None,
                    to: None,
                    table: TABLE_DEFAULT,
                },
            ],
            tables: BTreeMap::new(),
            neighbours: BTreeMap::new(),
            nat: Vec::new(),
            conntrack: kind != InstanceKind::Fip,
            store_unnated: false,
            mark_external: Vec::new(),
        }
    }

    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// Adds an interface and its connected routes (`proto kernel scope link`).
    pub fn add_interface(&mut self, iface: Interface) {
        for &(addr, len) in &iface.addrs {
            let dst = Cidr {
                addr: u32::from(addr),
                len,
            };
            let dst = Cidr {
                addr: dst.network(),
                len,
            };
            self.add_route(
                TABLE_MAIN,
                Route {
                    dst,
                    via: None,
                    dev: iface.name.clone(),
                    src: Some(addr),
                },
            );
        }
        self.interfaces.push(iface);
    }

    pub fn add_rule(&mut self, rule: Rule) {
        self.rules.push(rule);
        self.rules.sort_by_key(|r| r.priority);
    }

    pub fn add_route(&mut self, table: u32, route: Route) {
        let t = self.tables.entry(table).or_default();
        t.insert(route.dst.addr, route.dst.len, route);
    }

    /// Is `ip` one of this instance's own addresses?
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.interfaces
            .iter()
            .any(|i| i.addrs.iter().any(|(a, _)| *a == ip))
    }

    /// The first address of an interface (source for ARP and ICMP errors).
    pub fn primary_addr(&self, iface: &str) -> Option<Ipv4Addr> {
        self.interface(iface)
            .and_then(|i| i.addrs.first().map(|(a, _)| *a))
    }

    /// Policy routing: the first rule (by priority) that selects the packet
    /// and whose table has a route for `dst`. Returns (rule, route).
    pub fn route(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        iif: Option<&str>,
    ) -> Option<(&Rule, &Route)> {
        let (s, d) = (u32::from(src), u32::from(dst));
        for rule in &self.rules {
            if rule.table == TABLE_LOCAL {
                continue; // local delivery is decided before routing
            }
            if rule.from.is_some_and(|c| !c.contains(s)) || rule.to.is_some_and(|c| !c.contains(d))
            {
                continue;
            }
            if let Some(dev) = &rule.iif {
                if iif != Some(dev.as_str()) {
                    continue;
                }
            }
            if let Some((route, _)) = self.tables.get(&rule.table).and_then(|t| t.lookup(d)) {
                return Some((rule, route));
            }
        }
        None
    }

    /// `ip rule` as Linux prints it.
    pub fn rules_text(&self) -> String {
        let mut s = String::new();
        for r in &self.rules {
            let from = r.from.map(|c| {
                if c.len == 32 {
                    Ipv4Addr::from(c.addr).to_string()
                } else {
                    cidr_host(c)
                }
            });
            let mut line = format!(
                "{}:\tfrom {}",
                r.priority,
                from.unwrap_or_else(|| "all".into())
            );
            if let Some(i) = &r.iif {
                line.push_str(&format!(" iif {i}"));
            }
            if let Some(t) = r.to {
                line.push_str(&format!(" to {t}"));
            }
            line.push_str(&format!(" lookup {}\n", table_name(r.table)));
            s.push_str(&line);
        }
        s
    }

    /// `ip route show table all` (local table omitted) as Linux prints it.
    pub fn routes_text(&self) -> String {
        let mut s = String::new();
        let mut tables: Vec<_> = self.tables.iter().collect();
        tables.sort_by_key(|(id, _)| {
            if **id == TABLE_MAIN {
                0
            } else {
                1 + **id as u64
            }
        });
        for (&id, t) in tables {
            for (_, _, r) in t.iter() {
                let dst = if r.dst.len == 0 {
                    "default".to_string()
                } else if r.dst.len == 32 {
                    Ipv4Addr::from(r.dst.addr).to_string()
                } else {
                    r.dst.to_string()
                };
                let mut line = dst;
                if let Some(v) = r.via {
                    line.push_str(&format!(" via {v}"));
                }
                line.push_str(&format!(" dev {}", r.dev));
                if r.via.is_none() {
                    if let Some(src) = r.src {
                        line.push_str(&format!(" proto kernel scope link src {src}"));
                    } else {
                        line.push_str(" scope link");
                    }
                }
                if id != TABLE_MAIN {
                    line.push_str(&format!(" table {}", table_name(id)));
                }
                s.push_str(&line);
                s.push('\n');
            }
        }
        s
    }
}

/// `10.1.0.1/24` keeps the host bits, as `ip rule` shows Neutron's SNAT rules.
fn cidr_host(c: Cidr) -> String {
    format!("{}/{}", Ipv4Addr::from(c.addr), c.len)
}

fn table_name(id: u32) -> String {
    match id {
        TABLE_LOCAL => "local".into(),
        TABLE_MAIN => "main".into(),
        TABLE_DEFAULT => "default".into(),
        n => n.to_string(),
    }
}

impl fmt::Display for RouterInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# {} ({:?})", self.name, self.kind)?;
        writeln!(f, "# ip -4 addr")?;
        for i in &self.interfaces {
            let addrs: Vec<String> = i.addrs.iter().map(|(a, l)| format!("{a}/{l}")).collect();
            writeln!(
                f,
                "{}  {}  (MAC {}{})",
                i.name,
                addrs.join(" "),
                i.mac,
                if i.proxy_arp { ", proxy_arp=1" } else { "" }
            )?;
        }
        writeln!(f, "# ip rule")?;
        write!(f, "{}", self.rules_text())?;
        writeln!(f, "# ip route show table all")?;
        write!(f, "{}", self.routes_text())?;
        writeln!(f, "# ip neigh (PERMANENT)")?;
        for ((dev, ip), mac) in &self.neighbours {
            writeln!(f, "{ip} dev {dev} lladdr {mac}")?;
        }
        if !self.nat.is_empty() {
            writeln!(f, "# iptables -t nat")?;
            for r in &self.nat {
                writeln!(f, "{}", r.text)?;
            }
        }
        Ok(())
    }
}
