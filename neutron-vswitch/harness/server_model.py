"""What neutron-server tells one host's L3 agent about a vswitch topology
document (config/topologies/*.toml): the DVR router dicts its
sync_routers RPC returns for the host (neutron/db/l3_dvr_db.py's keys:
_interfaces, _snat_router_interfaces, gw_port, gw_port_host,
_floatingips with each fixed port's host, _floatingip_agent_interfaces,
routes, enable_snat), and the ports get_ports_by_subnet returns.

Ids are the document's names (router R1 -> qrouter-R1, network ext-net ->
fip-ext-net); a router port's id is its device name in the document
(unique, where qr-s1 and sg-s1 share what follows the prefix), so the
agent names its device prefix + id cut to 14 (qr-s1 -> qr-qr-s1); a VM
port's id is its name.
"""

import ipaddress
import tomllib

from neutron_lib import constants as lib_constants


class Model(object):
    def __init__(self, path):
        with open(path, 'rb') as f:
            self.t = tomllib.load(f)
        self.subnets = {s['name']: s for s in self.t.get('subnet', [])}
        self.ports = self.t.get('port', [])

    def _subnet_of(self, network, ip):
        for s in self.subnets.values():
            if s['network'] == network and ipaddress.ip_address(
                    ip) in ipaddress.ip_network(s['cidr']):
                return s
        return None

    def _subnet_dict(self, s):
        return {'id': s['name'], 'cidr': s['cidr'],
                'gateway_ip': s['gateway_ip']}

    def _port(self, device, mac, network, ip, subnet, owner, host=None):
        p = {'id': device, 'mac_address': mac, 'network_id': network,
             'device_owner': owner,
             'fixed_ips': [{'ip_address': ip, 'subnet_id': subnet['name'],
                            'prefixlen': ipaddress.ip_network(
                                subnet['cidr']).prefixlen}],
             'subnets': [self._subnet_dict(subnet)], 'mtu': 1500}
        if host:
            p['binding:host_id'] = host
        return p

    def routers_on(self, host):
        """The routers the server schedules on `host`: a router with a
        port of one of its subnets bound there, or whose SNAT it hosts."""
        out = []
        for r in self.t.get('router', []):
            subnets = [self.subnets[i['subnet']] for i in r['interfaces']]
            served = any(p['host'] == host and any(
                s['network'] == p['network'] and ipaddress.ip_address(
                    p['ip']) in ipaddress.ip_network(s['cidr'])
                for s in subnets) for p in self.ports)
            if served or r.get('snat_host') == host:
                out.append(self.router_dict(r, host))
        return out

    def router_dict(self, r, host):
        interfaces, snat_ports = [], []
        for i in r['interfaces']:
            s = self.subnets[i['subnet']]
            interfaces.append(self._port(
                i['device'], i['mac'], s['network'], s['gateway_ip'], s,
                lib_constants.DEVICE_OWNER_DVR_INTERFACE))
            if 'snat_device' in i:
                snat_ports.append(self._port(
                    i['snat_device'], i['snat_mac'], s['network'],
                    i['snat_ip'], s,
                    lib_constants.DEVICE_OWNER_ROUTER_SNAT))
        d = {'id': r['name'], 'name': r['name'], 'distributed': True,
             'ha': False, 'admin_state_up': True,
             'routes': [dict(x) for x in r.get('routes', [])],
             lib_constants.INTERFACE_KEY: interfaces,
             lib_constants.SNAT_ROUTER_INTF_KEY: snat_ports,
             'gw_port': None, 'external_gateway_info': None,
             'gw_port_host': r.get('snat_host'),
             lib_constants.FLOATINGIP_KEY: [],
             lib_constants.FLOATINGIP_AGENT_INTF_KEY: []}
        gw = r.get('gateway')
        if gw:
            ext = next(s for s in self.subnets.values()
                       if s['network'] == gw['network'])
            d['gw_port'] = self._port(
                gw['device'], gw['mac'], gw['network'], gw['ip'], ext,
                lib_constants.DEVICE_OWNER_ROUTER_GW)
            d['enable_snat'] = gw.get('enable_snat', True)
            d['external_gateway_info'] = {
                'network_id': gw['network'],
                'enable_snat': d['enable_snat']}
            for fg in self.t.get('fip_gateway', []):
                if fg['host'] == host and fg['network'] == gw['network']:
                    d[lib_constants.FLOATINGIP_AGENT_INTF_KEY].append(
                        self._port(fg['device'], fg['mac'], fg['network'],
                                   fg['ip'], ext,
                                   lib_constants.DEVICE_OWNER_AGENT_GW,
                                   host))
            for f in self.t.get('floating_ip', []):
                port = next((p for p in self.ports
                             if p['name'] == f.get('port')), None)
                if f['router'] != r['name'] or port is None:
                    continue
                d[lib_constants.FLOATINGIP_KEY].append({
                    'id': f['address'], 'floating_ip_address': f['address'],
                    'fixed_ip_address': port['ip'], 'port_id': port['name'],
                    'router_id': r['name'], 'host': port['host'],
                    'floating_network_id': gw['network'],
                    'status': 'ACTIVE'})
        return d

    def ports_by_subnet(self, subnet_id):
        """Every port with an address on the subnet, routers' included
        (the agent leaves those out)."""
        s = self.subnets[subnet_id]
        out = []
        for p in self.ports:
            if p['network'] == s['network'] and ipaddress.ip_address(
                    p['ip']) in ipaddress.ip_network(s['cidr']):
                owner = ('network:dhcp' if p.get('owner') == 'dhcp'
                         else 'compute:nova')
                port = self._port(p['device'], p['mac'], p['network'],
                                  p['ip'], s, owner, p['host'])
                port['id'] = p['name']
                out.append(port)
        for r in self.t.get('router', []):
            for i in r['interfaces']:
                if i['subnet'] == subnet_id:
                    out.append(self._port(
                        i['device'], i['mac'], s['network'], s['gateway_ip'],
                        s, lib_constants.DEVICE_OWNER_DVR_INTERFACE))
        return out

    def agent_gateway_port(self, host, network):
        for fg in self.t.get('fip_gateway', []):
            if fg['host'] == host and fg['network'] == network:
                ext = next(s for s in self.subnets.values()
                           if s['network'] == network)
                return self._port(fg['device'], fg['mac'], network,
                                  fg['ip'], ext,
                                  lib_constants.DEVICE_OWNER_AGENT_GW, host)
        return None

    # What the OVS agent asks (ML2's RPC and the DVR RPC).

    def network(self, name):
        return next(n for n in self.t.get('network', []) if n['name'] == name)

    def dvr_macs(self):
        return [{'host': h['name'], 'mac_address': h['dvr_mac']}
                for h in self.t.get('host', [])]

    def host(self, name):
        return next(h for h in self.t.get('host', []) if h['name'] == name)

    def _router_ports(self, host):
        """Every router port the server knows, as (port dict, owner)."""
        out = []
        for r in self.t.get('router', []):
            for i in r['interfaces']:
                s = self.subnets[i['subnet']]
                out.append(self._port(
                    i['device'], i['mac'], s['network'], s['gateway_ip'], s,
                    lib_constants.DEVICE_OWNER_DVR_INTERFACE))
                if 'snat_device' in i:
                    out.append(self._port(
                        i['snat_device'], i['snat_mac'], s['network'],
                        i['snat_ip'], s,
                        lib_constants.DEVICE_OWNER_ROUTER_SNAT))
            gw = r.get('gateway')
            if gw:
                ext = next(s for s in self.subnets.values()
                           if s['network'] == gw['network'])
                out.append(self._port(
                    gw['device'], gw['mac'], gw['network'], gw['ip'], ext,
                    lib_constants.DEVICE_OWNER_ROUTER_GW))
        for fg in self.t.get('fip_gateway', []):
            if fg['host'] == host:
                out.append(self.agent_gateway_port(host, fg['network']))
        return out

    def _vm_port(self, p):
        s = self._subnet_of(p['network'], p['ip'])
        owner = ('network:dhcp' if p.get('owner') == 'dhcp'
                 else 'compute:nova')
        port = self._port(p['device'], p['mac'], p['network'], p['ip'], s,
                          owner, p['host'])
        port['id'] = p['name']
        port['port_security_enabled'] = p.get('port_security', True)
        port['allowed_address_pairs'] = [
            {'ip_address': a['ip'], 'mac_address': a.get('mac', p['mac'])}
            for a in p.get('allowed_address_pairs', [])]
        return port

    def device_details(self, port_id, host):
        """get_devices_details_list's entry for one port bound to `host`
        (None if the server knows no such port)."""
        port = next((self._vm_port(p) for p in self.ports
                     if p['name'] == port_id), None)
        if port is None:
            port = next((p for p in self._router_ports(host)
                         if p['id'] == port_id), None)
            if port is None:
                return None
            port['port_security_enabled'] = False
            port['allowed_address_pairs'] = []
        net = self.network(port['network_id'])
        return {
            'device': port_id, 'port_id': port_id,
            'network_id': port['network_id'],
            'network_type': net['type'],
            'physical_network': net['physnet'],
            'segmentation_id': net.get('segmentation_id'),
            'admin_state_up': True,
            'fixed_ips': [{'subnet_id': f['subnet_id'],
                           'ip_address': f['ip_address']}
                          for f in port['fixed_ips']],
            'device_owner': port['device_owner'],
            'mac_address': port['mac_address'],
            'port_security_enabled': port['port_security_enabled'],
            'allowed_address_pairs': port['allowed_address_pairs'],
            'mtu': 1500, 'qos_policy_id': None,
            'network_qos_policy_id': None, 'propagate_uplink_status': False,
        }

    def subnet_for_dvr(self, subnet_id):
        """The subnet and its distributed gateway's MAC."""
        s = self.subnets[subnet_id]
        mac = None
        for r in self.t.get('router', []):
            for i in r['interfaces']:
                if i['subnet'] == subnet_id:
                    mac = i['mac']
        return {'id': subnet_id, 'cidr': s['cidr'],
                'gateway_ip': s['gateway_ip'], 'gateway_mac': mac,
                'ip_version': 4}

    def ports_on_host_by_subnet(self, host, subnet_id):
        """The DVR-serviced (VM, DHCP) ports of the subnet on `host`."""
        s = self.subnets[subnet_id]
        return [self._vm_port(p) for p in self.ports
                if p['host'] == host and p['network'] == s['network'] and
                ipaddress.ip_address(p['ip']) in ipaddress.ip_network(
                    s['cidr'])]
