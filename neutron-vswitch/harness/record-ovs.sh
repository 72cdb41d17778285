#!/usr/bin/env bash
# record-ovs.sh SCRIPT: records what Open vSwitch holds when Neutron's OVS
# agent code (harness SCRIPT: ovs_agent_dvr or ovs_agent_start) programs
# it: a private ovsdb-server and ovs-vswitchd (userspace datapath) in a
# network namespace of their own, the script against them, then
# `ovs-ofctl -O OpenFlow13 --no-stats dump-flows` of each bridge, cookies
# removed, into vswitch/tests/golden/neutron-agent-<dvr|start>/ (the test
# that runs the same script against vswitchd compares with these). Needs
# root, Debian's openvswitch-switch and python3-neutron; not run by CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
script="${1:?usage: record-ovs.sh ovs_agent_dvr|ovs_agent_start}"
out="$here/../../vswitch/tests/golden/neutron-agent-${script#ovs_agent_}"
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
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$dir/conf.db" --remote="punix:$dir/db.sock" --unixctl="$dir/ovsdb.ctl" \
    --pidfile="$dir/ovsdb.pid" --detach --log-file="$dir/ovsdb.log"
ovs-vsctl --db="unix:$dir/db.sock" --no-wait init
ip netns exec "$ns" env OVS_RUNDIR="$dir" ovs-vswitchd "unix:$dir/db.sock" \
    --unixctl="$dir/vswitchd.ctl" --pidfile="$dir/vswitchd.pid" --detach \
    --log-file="$dir/vswitchd.log"
ip netns exec "$ns" /usr/bin/python3 "$here/$script.py" \
    --ovsdb "unix:$dir/db.sock" --of-port 16633
version="$(ovs-vswitchd --version | head -1)"
for b in br-int br-vlan; do
    {
        echo "# ovs-ofctl -O OpenFlow13 --no-stats dump-flows $b of $version (userspace datapath) programmed by neutron-vswitch/harness/$script.py; the agent's random cookie removed"
        ovs-ofctl -O OpenFlow13 --no-stats dump-flows "unix:$dir/$b.mgmt" \
            | sed -E 's/^ ?cookie=0x[0-9a-f]+, //' | sort
    } > "$out/$b.flows"
    echo "wrote $out/$b.flows"
done
