//! What a flow text that does not parse is told.

use std::fmt;

/// A syntax error: where it is, which token, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSyntaxError {
    /// 1-based character column of the token in the input.
    pub column: usize,
    pub token: String,
    pub message: String,
}

impl fmt::Display for FlowSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column {}: `{}`: {}",
            self.column, self.token, self.message
        )
    }
}

impl std::error::Error for FlowSyntaxError {}
