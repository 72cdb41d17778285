"""A DVR router dict, as neutron-server sends it to this host's L3 agent,
turned into the router as vswitchd compiles it (its `HostRouter`: see
topology/src/l3/view.rs).

Pure: names, neighbours and host-local allocations come from the caller
(the router class asks the agent's own naming, RPC and allocators).
IPv4 only: IPv6 subnets and addresses are left out (vswitch routes IPv4).
"""

import netaddr

from neutron_lib import constants as lib_constants


def _v4(fixed_ips):
    return [f for f in fixed_ips or []
            if netaddr.valid_ipv4(f.get('ip_address', ''))]


def _subnet(port, subnet_id):
    return next((s for s in port.get('subnets', [])
                 if s.get('id') == subnet_id), None)


class Names(object):
    """Device names as the L3 agent gives them: prefix + id, cut to the
    interface driver's length."""

    def __init__(self, dev_name_len):
        self.len = dev_name_len

    def _cut(self, prefix, ident):
        return (prefix + ident)[:self.len]

    def qr(self, port_id):
        return self._cut('qr-', port_id)

    def sg(self, port_id):
        return self._cut(lib_constants.SNAT_INT_DEV_PREFIX, port_id)

    def qg(self, port_id):
        return self._cut('qg-', port_id)

    def fg(self, port_id):
        return self._cut('fg-', port_id)

    def link_suffix(self, router_id):
        """What follows rfp-/fpr- in the link's names."""
        return self._cut('rfp-', router_id)[len('rfp-'):]


def _ignored_owner(owner):
    return (owner in lib_constants.ROUTER_INTERFACE_OWNERS_SNAT or
            owner == lib_constants.DEVICE_OWNER_ROUTER_GW or
            owner == lib_constants.DEVICE_OWNER_AGENT_GW)


def neighbours(subnet_id, subnet_ports):
    """The permanent neighbour entries the agent makes for a subnet:
    every address of every port on it that is not a router's."""
    out = []
    for p in subnet_ports:
        if _ignored_owner(p.get('device_owner', '')):
            continue
        for f in _v4(p.get('fixed_ips')):
            if f.get('subnet_id') == subnet_id:
                out.append({'ip': f['ip_address'],
                            'mac': p['mac_address']})
    return out


def snat_port_for(snat_ports, subnet_id):
    for p in snat_ports:
        if any(f.get('subnet_id') == subnet_id for f in _v4(p['fixed_ips'])):
            return p
    return None


def interfaces(router, names, ports_by_subnet, snat_ports):
    """One per IPv4 subnet of each qr- port: its gateway address, the
    subnet's neighbours and, when given, its SNAT (sg-) port."""
    out = []
    for port in router.get(lib_constants.INTERFACE_KEY, []):
        for f in _v4(port.get('fixed_ips'))[:1]:
            sub = _subnet(port, f['subnet_id'])
            if sub is None:
                continue
            iface = {
                'device': names.qr(port['id']),
                'mac': port['mac_address'],
                'cidr': sub['cidr'],
                'gateway_ip': f['ip_address'],
                'neighbours': neighbours(f['subnet_id'],
                                         ports_by_subnet(f['subnet_id'])),
            }
            sg = snat_port_for(snat_ports, f['subnet_id'])
            if sg is not None:
                sg_ip = next(x['ip_address'] for x in _v4(sg['fixed_ips'])
                             if x['subnet_id'] == f['subnet_id'])
                iface['snat'] = {'device': names.sg(sg['id']),
                                 'ip': sg_ip,
                                 'mac': sg['mac_address']}
            out.append(iface)
    return out


def gateway(router, names):
    gw = router.get('gw_port')
    if not gw:
        return None
    fixed = _v4(gw.get('fixed_ips'))
    if not fixed:
        return None
    sub = _subnet(gw, fixed[0]['subnet_id'])
    if sub is None:
        return None
    return {
        'network': gw['network_id'],
        'device': names.qg(gw['id']),
        'ip': fixed[0]['ip_address'],
        'mac': gw['mac_address'],
        'cidr': sub['cidr'],
        'gateway_ip': sub.get('gateway_ip') or fixed[0]['ip_address'],
        'enable_snat': bool(router.get('enable_snat', True)),
    }


def fip_gateway_port(router, network_id):
    """This host's FIP agent gateway port on `network_id`, if the router
    dict carries it."""
    return next((p for p in router.get(
        lib_constants.FLOATINGIP_AGENT_INTF_KEY, [])
        if p.get('network_id') == network_id), None)


def floating_ips_here(router, host):
    """Floating IPs bound to this host (the agent's test:
    `host` or `dest_host` is this host), IPv4 only."""
    return [f for f in router.get(lib_constants.FLOATINGIP_KEY, [])
            if host in (f.get('host'), f.get('dest_host')) and
            netaddr.valid_ipv4(f.get('floating_ip_address', '')) and
            f.get('fixed_ip_address')]


def host_router(router, host, snat_here, names, ports_by_subnet,
                rfp_address=None, fip_priority=None, fg_port=None):
    """The router as vswitchd takes it (`router-set`).

    snat_here: this agent hosts the router's SNAT (dvr_snat mode and
    `gw_port_host` is this host). ports_by_subnet(subnet_id): the subnet's
    ports (the agent's get_ports_by_subnet). fg_port: this host's FIP
    gateway port on the gateway's network, if any; rfp_address(): the rfp
    (even) address of the router's link to the fip instance, called only
    when there is an fg- port; fip_priority(address): its rule priority.
    """
    snat_ports = router.get(lib_constants.SNAT_ROUTER_INTF_KEY, [])
    gw = gateway(router, names)
    out = {
        'name': router['id'],
        'link_suffix': names.link_suffix(router['id']),
        'interfaces': interfaces(router, names, ports_by_subnet, snat_ports),
        'gateway': gw,
        'snat_here': bool(snat_here and gw),
        'routes': [{'destination': r['destination'], 'nexthop': r['nexthop']}
                   for r in router.get('routes', [])
                   if netaddr.valid_ipv4(r.get('nexthop', ''))],
        'floating_ips': [],
    }
    if gw is not None and fg_port is not None:
        fixed = _v4(fg_port.get('fixed_ips'))
        if fixed:
            out['fip_gateway'] = {'device': names.fg(fg_port['id']),
                                  'ip': fixed[0]['ip_address'],
                                  'mac': fg_port['mac_address']}
            out['rfp_address'] = rfp_address()
            out['floating_ips'] = [
                {'address': f['floating_ip_address'],
                 'fixed': f['fixed_ip_address'],
                 'rule_priority': fip_priority(f['floating_ip_address'])}
                for f in floating_ips_here(router, host)]
    return out
