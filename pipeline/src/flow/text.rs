//! ovs-ofctl flow syntax: parse and print. (in progress)
