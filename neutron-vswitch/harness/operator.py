#!/usr/bin/python3
"""What the operator and nova's os-vif write into a host's Open_vSwitch
database before Neutron's agents run, for a host of a topology document:
br-int and the physical bridges of its bridge_mappings on the userspace
datapath, and each of its VM ports on br-int naming its Neutron port (id =
the port's name) and MAC, as an internal port (no device: the flows are
what is compared, not traffic). `ovs-vsctl`, so the same writes reach
Open vSwitch or vswitchd.

    /usr/bin/python3 operator.py --ovsdb unix:... --topology T.toml --host compute1
"""

import argparse
import subprocess

import server_model


def vsctl(db, *args):
    subprocess.run(['ovs-vsctl', '--db=' + db, '--timeout=10'] + list(args),
                   check=True, capture_output=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--ovsdb', required=True)
    p.add_argument('--topology', required=True)
    p.add_argument('--host', required=True)
    p.add_argument('--without', action='append', default=[],
                   metavar='PORT', help='leave this VM port out (repeatable)')
    args = p.parse_args()
    model = server_model.Model(args.topology)
    host = model.host(args.host)
    bridges = ['br-int'] + [m.split(':', 1)[1]
                            for m in host['bridge_mappings']]
    for br in bridges:
        vsctl(args.ovsdb, '--may-exist', 'add-br', br, '--', 'set', 'Bridge',
              br, 'datapath_type=netdev')
    for p in model.ports:
        if p['host'] != args.host or p['name'] in args.without:
            continue
        vsctl(args.ovsdb, '--may-exist', 'add-port', 'br-int', p['device'],
              '--', 'set', 'Interface', p['device'], 'type=internal',
              'external_ids:iface-id=%s' % p['name'],
              'external_ids:iface-status=active',
              'external_ids:attached-mac="%s"' % p['mac'],
              'external_ids:vm-uuid=%s' % p['name'])


if __name__ == '__main__':
    main()
