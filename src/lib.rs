//! Integration test and benchmark host for the vswitch workspace.
