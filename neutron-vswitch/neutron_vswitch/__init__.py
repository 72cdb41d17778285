"""vswitch under Neutron's L3 agent.

An L3 agent extension (`extension.VswitchL3Extension`, enabled with
`[agent] extensions = vswitch` in l3_agent.ini) that registers router
classes for DVR routers (`router.VswitchDvrRouter`): instead of building
qrouter/snat/fip namespaces with veths and iptables, each router plugs its
qr-/sg-/qg-/fg- ports as internal ports in the Open_vSwitch database (the
rows Neutron's OVS interface driver writes, so the OVS agent binds them
and installs its DVR flows) and hands vswitchd the router as this host's
agent knows it (`host_router`) over vswitchd's control socket (`control`).
"""
