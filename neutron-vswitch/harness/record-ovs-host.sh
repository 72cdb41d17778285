#!/usr/bin/env bash
# record-ovs-host.sh HOST: records what Open vSwitch holds once Neutron's
# agents have programmed HOST of the spec's example topology as the lab
# --neutron does: a private ovsdb-server and ovs-vswitchd (userspace
# datapath) in a network namespace, operator.py (bridges, VM ports), the
# L3 agent with neutron-vswitch's extension plugging the router ports
# (l3_agent.py --no-vswitchd: Open vSwitch has no routers to hand over),
# then the OVS agent (neutron_host.py); `ovs-ofctl -O OpenFlow13
# --no-stats dump-flows` of each bridge, cookies removed, sorted, into
# vswitch/tests/golden/neutron-host-HOST/. PYTHONHASHSEED=0 on both sides:
# the agent hands out local VLANs in the order it meets networks. Needs
# root, Debian's openvswitch-switch and python3-neutron; not run by CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
host="${1:?usage: record-ovs-host.sh compute1|compute2|network1}"
topo="$here/../../config/topologies/spec-example.toml"
out="$here/../../vswitch/tests/golden/neutron-host-$host"
mode=dvr; [ "$host" = network1 ] && mode=dvr_snat
mkdir -p "$out"
dir="$(mktemp -d /tmp/ovs-record.XXXXXX)"
ns="ovs-record-$$"
cleanup() {
    for p in vswitchd ovsdb; do
        [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
export PYTHONHASHSEED=0
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$dir/conf.db" --remote="punix:$dir/db.sock" --unixctl="$dir/ovsdb.ctl" \
    --pidfile="$dir/ovsdb.pid" --detach --log-file="$dir/ovsdb.log"
ovs-vsctl --db="unix:$dir/db.sock" --no-wait init
ip netns exec "$ns" env OVS_RUNDIR="$dir" ovs-vswitchd "unix:$dir/db.sock" \
    --unixctl="$dir/vswitchd.ctl" --pidfile="$dir/vswitchd.pid" --detach \
    --log-file="$dir/vswitchd.log"
db="unix:$dir/db.sock"
/usr/bin/python3 "$here/operator.py" --ovsdb "$db" --topology "$topo" --host "$host"
ip netns exec "$ns" /usr/bin/python3 "$here/l3_agent.py" --no-vswitchd \
    --topology "$topo" --host "$host" --agent-mode "$mode" --ovsdb "$db" \
    --control-socket "$dir/none.sock" --state-path "$dir/l3" > /dev/null
ip netns exec "$ns" /usr/bin/python3 "$here/neutron_host.py" --ovsdb "$db" \
    --of-port 16633 --topology "$topo" --host "$host"
version="$(ovs-vswitchd --version | head -1)"
for b in br-int br-vlan br-ex; do
    {
        echo "# ovs-ofctl -O OpenFlow13 --no-stats dump-flows $b of $version (userspace datapath) once neutron-vswitch/harness l3_agent.py and neutron_host.py programmed $host of spec-example.toml; the agent's random cookie removed"
        ovs-ofctl -O OpenFlow13 --no-stats dump-flows "unix:$dir/$b.mgmt" \
            | sed -E 's/^ ?cookie=0x[0-9a-f]+, //' | sort
    } > "$out/$b.flows"
    echo "wrote $out/$b.flows"
done
