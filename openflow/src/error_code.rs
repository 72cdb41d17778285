//! The OpenFlow 1.3 error types and codes a switch sends in ERROR
//! messages (values as in the OpenFlow 1.3.5 specification,
//! `ofp_error_type` and the per-type `ofp_*_code` enums).

/// `ofp_error_type`.
pub mod error_type {
    pub const HELLO_FAILED: u16 = 0;
    pub const BAD_REQUEST: u16 = 1;
    pub const BAD_ACTION: u16 = 2;
    pub const BAD_INSTRUCTION: u16 = 3;
    pub const BAD_MATCH: u16 = 4;
    pub const FLOW_MOD_FAILED: u16 = 5;
    pub const GROUP_MOD_FAILED: u16 = 6;
    pub const PORT_MOD_FAILED: u16 = 7;
    pub const TABLE_MOD_FAILED: u16 = 8;
    pub const QUEUE_OP_FAILED: u16 = 9;
    pub const SWITCH_CONFIG_FAILED: u16 = 10;
    pub const ROLE_REQUEST_FAILED: u16 = 11;
    pub const METER_MOD_FAILED: u16 = 12;
    pub const TABLE_FEATURES_FAILED: u16 = 13;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// `ofp_hello_failed_code`.
pub mod hello_failed {
    pub const INCOMPATIBLE: u16 = 0;
    pub const EPERM: u16 = 1;
}

/// `ofp_bad_request_code`.
pub mod bad_request {
    pub const BAD_VERSION: u16 = 0;
    pub const BAD_TYPE: u16 = 1;
    pub const BAD_MULTIPART: u16 = 2;
    pub const BAD_EXPERIMENTER: u16 = 3;
    pub const BAD_EXP_TYPE: u16 = 4;
    pub const EPERM: u16 = 5;
    pub const BAD_LEN: u16 = 6;
    pub const BUFFER_EMPTY: u16 = 7;
    pub const BUFFER_UNKNOWN: u16 = 8;
    pub const BAD_TABLE_ID: u16 = 9;
    pub const IS_SLAVE: u16 = 10;
    pub const BAD_PORT: u16 = 11;
    pub const BAD_PACKET: u16 = 12;
    pub const MULTIPART_BUFFER_OVERFLOW: u16 = 13;
}

/// `ofp_bad_action_code`.
pub mod bad_action {
    pub const BAD_TYPE: u16 = 0;
    pub const BAD_LEN: u16 = 1;
    pub const BAD_EXPERIMENTER: u16 = 2;
    pub const BAD_EXP_TYPE: u16 = 3;
    pub const BAD_OUT_PORT: u16 = 4;
    pub const BAD_ARGUMENT: u16 = 5;
    pub const EPERM: u16 = 6;
    pub const TOO_MANY: u16 = 7;
    pub const BAD_QUEUE: u16 = 8;
    pub const BAD_OUT_GROUP: u16 = 9;
    pub const MATCH_INCONSISTENT: u16 = 10;
    pub const UNSUPPORTED_ORDER: u16 = 11;
    pub const BAD_TAG: u16 = 12;
    pub const BAD_SET_TYPE: u16 = 13;
    pub const BAD_SET_LEN: u16 = 14;
    pub const BAD_SET_ARGUMENT: u16 = 15;
}

/// `ofp_bad_instruction_code`.
pub mod bad_instruction {
    pub const UNKNOWN_INST: u16 = 0;
    pub const UNSUP_INST: u16 = 1;
    pub const BAD_TABLE_ID: u16 = 2;
    pub const UNSUP_METADATA: u16 = 3;
    pub const UNSUP_METADATA_MASK: u16 = 4;
    pub const BAD_EXPERIMENTER: u16 = 5;
    pub const BAD_EXP_TYPE: u16 = 6;
    pub const BAD_LEN: u16 = 7;
    pub const EPERM: u16 = 8;
}

/// `ofp_bad_match_code`.
pub mod bad_match {
    pub const BAD_TYPE: u16 = 0;
    pub const BAD_LEN: u16 = 1;
    pub const BAD_TAG: u16 = 2;
    pub const BAD_DL_ADDR_MASK: u16 = 3;
    pub const BAD_NW_ADDR_MASK: u16 = 4;
    pub const BAD_WILDCARDS: u16 = 5;
    pub const BAD_FIELD: u16 = 6;
    pub const BAD_VALUE: u16 = 7;
    pub const BAD_MASK: u16 = 8;
    pub const BAD_PREREQ: u16 = 9;
    pub const DUP_FIELD: u16 = 10;
    pub const EPERM: u16 = 11;
}

/// `ofp_flow_mod_failed_code`.
pub mod flow_mod_failed {
    pub const UNKNOWN: u16 = 0;
    pub const TABLE_FULL: u16 = 1;
    pub const BAD_TABLE_ID: u16 = 2;
    pub const OVERLAP: u16 = 3;
    pub const EPERM: u16 = 4;
    pub const BAD_TIMEOUT: u16 = 5;
    pub const BAD_COMMAND: u16 = 6;
    pub const BAD_FLAGS: u16 = 7;
}

/// `ofp_switch_config_failed_code`.
pub mod switch_config_failed {
    pub const BAD_FLAGS: u16 = 0;
    pub const BAD_LEN: u16 = 1;
    pub const EPERM: u16 = 2;
}

/// `ofp_role_request_failed_code`.
pub mod role_request_failed {
    pub const STALE: u16 = 0;
    pub const UNSUP: u16 = 1;
    pub const BAD_ROLE: u16 = 2;
}
