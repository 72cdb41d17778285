"""The DVR router class the extension registers: what the L3 agent's
DvrLocalRouter (dvr mode) and DvrEdgeRouter (dvr_snat mode) do with
namespaces, veths and iptables, done by vswitchd.

Per router the agent processes, this class
- plugs the router's ports into the integration bridge as the OVS
  interface driver does (Open_vSwitch rows of type internal with
  external_ids iface-id/iface-status/attached-mac, put on the dead VLAN
  until the OVS agent binds them and installs its DVR flows): qr- on every
  host, sg- and qg- on the SNAT host, this host's fg- port when the router
  has a gateway (shared by the routers on that external network);
- hands vswitchd the router as this host knows it (`router-set`):
  interfaces and their neighbours (the agent's get_ports_by_subnet, then
  add/del_arp_entry), SNAT ports, gateway, floating IPs bound here, extra
  routes, the rfp/fpr link and FIP rule priorities from the agent's own
  allocators (the files the L3 agent keeps in state_path);
- unplugs what the router no longer uses, after vswitchd let go of it.
"""

import os

from neutron.agent.common import ovs_lib
from neutron.agent.l3 import fip_rule_priority_allocator as frpa
from neutron.agent.l3 import link_local_allocator as lla
from neutron_lib import constants as lib_constants
from oslo_log import log as logging

from neutron_vswitch import control
from neutron_vswitch import host_router

LOG = logging.getLogger(__name__)

FIP_PR_START = 32768
FIP_PR_END = FIP_PR_START + 40000

# One allocator per state file: routers share the agent's files.
_allocators = {}


def _allocator(path, make):
    if path not in _allocators:
        _allocators[path] = make(path)
    return _allocators[path]


class VswitchDvrRouter(object):
    """A DVR router whose namespaces are vswitchd's router instances
    (qrouter-<id>, snat-<id>, fip-<external network id>)."""

    def __init__(self, host, agent, router_id, router, agent_conf,
                 interface_driver, use_ipv6=False, **kwargs):
        self.host = host
        self.agent = agent
        self.router_id = router_id
        self.router = router
        self.agent_conf = agent_conf
        self.driver = interface_driver
        self.use_ipv6 = use_ipv6
        # vswitchd's instance, named as the agent names the namespace.
        self.ns_name = 'qrouter-' + router_id
        self.internal_ports = []
        self.ex_gw_port = None
        self._plugged = {}
        self._neighbours = {}
        self._fips = set()
        self._names = host_router.Names(interface_driver.DEV_NAME_LEN)
        self._control = control.Control(agent_conf.vswitch.control_socket)
        state = agent_conf.state_path
        self._links = _allocator(
            os.path.join(state, 'fip-linklocal-networks'),
            lambda p: lla.LinkLocalAllocator(p,
                                             lib_constants.DVR_FIP_LL_CIDR))
        self._priorities = _allocator(
            os.path.join(state, 'fip-priorities'),
            lambda p: frpa.FipRulePriorityAllocator(p, FIP_PR_START,
                                                    FIP_PR_END))

    # What the agent asks of every router object.

    def initialize(self, process_monitor):
        self._bridge = ovs_lib.OVSBridge(
            self.agent_conf.OVS.integration_bridge)

    def get_ex_gw_port(self):
        return self.router.get('gw_port')

    def get_gw_ns_name(self):
        """The instance holding the gateway (the agent's prefix
        delegation asks)."""
        if self._is_this_snat_host():
            return 'snat-' + self.router_id
        return self.ns_name

    def is_router_primary(self):
        # HA's VRRP between network nodes is not vswitch's: the SNAT
        # instance is active where gw_port_host says.
        return True

    def process(self):
        self.internal_ports = self.router.get(lib_constants.INTERFACE_KEY,
                                              [])
        self.ex_gw_port = self.get_ex_gw_port()
        view, ports = self._view()
        for device, port in ports.items():
            if device not in self._plugged:
                self._plug(device, port)
        self._control.router_set(view)
        for device in [d for d in self._plugged if d not in ports]:
            self._unplug(device)
        fips = set(f['address'] for f in view['floating_ips'])
        for address in self._fips - fips:
            self._priorities.release(address)
        self._fips = fips

    def delete(self):
        self._control.router_del(self.router_id)
        for device in list(self._plugged):
            self._unplug(device)
        for address in self._fips:
            self._priorities.release(address)
        self._fips = set()
        if self._links.lookup(self.router_id):
            self._links.release(self.router_id)

    # The agent's add_arp_entry/del_arp_entry (RPC from neutron-server
    # when a port on one of the router's subnets comes or goes).

    def get_arp_related_dev(self, subnet_id):
        for port in self.internal_ports:
            if any(f.get('subnet_id') == subnet_id
                   for f in port.get('fixed_ips', [])):
                return self._names.qr(port['id']), True
        return None, False

    def _update_arp_entry(self, ip, mac, subnet_id, operation, device=None,
                          device_exists=True, **kwargs):
        table = self._neighbours.get(subnet_id)
        if table is None:
            return False
        if operation == 'add':
            table[ip] = mac
        elif table.pop(ip, None) is None:
            return True
        view, _ports = self._view()
        self._control.router_set(view)
        return True

    # The router as vswitchd takes it, and the ports it attaches to.

    def _is_this_snat_host(self):
        return (self.agent_conf.agent_mode ==
                lib_constants.L3_AGENT_MODE_DVR_SNAT and
                self.router.get('gw_port_host') == self.host)

    def _ports_by_subnet(self, subnet_id):
        if subnet_id not in self._neighbours:
            ports = self.agent.get_ports_by_subnet(subnet_id)
            self._neighbours[subnet_id] = dict(
                (n['ip'], n['mac'])
                for n in host_router.neighbours(subnet_id, ports))
        return [{'device_owner': '', 'mac_address': mac,
                 'fixed_ips': [{'ip_address': ip, 'subnet_id': subnet_id}]}
                for ip, mac in sorted(self._neighbours[subnet_id].items())]

    def _fg_port(self):
        gw = self.get_ex_gw_port()
        if not gw:
            return None
        port = host_router.fip_gateway_port(self.router, gw['network_id'])
        if port is None and self.agent_conf.agent_mode != (
                lib_constants.L3_AGENT_MODE_DVR_NO_EXTERNAL):
            port = self.agent.plugin_rpc.get_agent_gateway_port(
                self.agent.context, gw['network_id'])
        return port

    def _view(self):
        fg = self._fg_port()
        view = host_router.host_router(
            self.router, self.host, self._is_this_snat_host(), self._names,
            self._ports_by_subnet,
            rfp_address=self._rfp_address,
            fip_priority=lambda a: int(self._priorities.allocate(a)),
            fg_port=fg)
        ports = {}
        for port in self.internal_ports:
            ports[self._names.qr(port['id'])] = port
        if view['snat_here']:
            for port in self.router.get(lib_constants.SNAT_ROUTER_INTF_KEY,
                                        []):
                ports[self._names.sg(port['id'])] = port
            ports[view['gateway']['device']] = self.get_ex_gw_port()
        if 'fip_gateway' in view:
            ports[view['fip_gateway']['device']] = fg
        return view, ports

    def _rfp_address(self):
        pair = self._links.allocate(self.router_id)
        rtr_2_fip, _fip_2_rtr = pair.get_pair()
        return str(rtr_2_fip.ip)

    # Ports in the Open_vSwitch database, as the OVS interface driver
    # plugs them.

    def _plug(self, device, port):
        self._bridge.replace_port(
            device,
            ('type', 'internal'),
            ('external_ids', {'iface-id': port['id'],
                              'iface-status': 'active',
                              'attached-mac': port['mac_address']}))
        # vswitchd has taken the port once it has given it a number.
        ofport = self._bridge.get_port_ofport(device)
        if ofport in (ovs_lib.INVALID_OFPORT, ovs_lib.UNASSIGNED_OFPORT):
            raise control.ControlError(
                '%s: vswitchd gave it no OpenFlow port' % device)
        self._plugged[device] = port['id']

    def _unplug(self, device):
        self._plugged.pop(device, None)
        if device.startswith('fg-') and any(
                device in getattr(ri, '_plugged', {})
                for ri in self.agent.router_info.values() if ri is not self):
            return
        self._bridge.delete_port(device)
