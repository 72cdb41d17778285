//! Tokens of a flow: text split on commas and whitespace outside
//! parentheses and brackets, each with its byte offset for error columns.

use super::error::FlowSyntaxError;

/// A token of the input: its text and byte offset.
#[derive(Clone, Copy)]
pub(super) struct Tok<'a> {
    pub(super) text: &'a str,
    pub(super) at: usize,
}

impl<'a> Tok<'a> {
    pub(super) fn err(&self, src: &str, message: impl Into<String>) -> FlowSyntaxError {
        FlowSyntaxError {
            column: src.get(..self.at).map_or(self.at, |p| p.chars().count()) + 1,
            token: self.text.to_string(),
            message: message.into(),
        }
    }

    /// `key=value` (or `key:value`) split, or the bare key.
    pub(super) fn key_value(&self) -> (&'a str, Option<&'a str>) {
        match self.text.find(['=', ':']) {
            Some(i) => (&self.text[..i], Some(&self.text[i + 1..])),
            None => (self.text, None),
        }
    }

    /// The value part of a sub-token starting `ofs` bytes in.
    pub(super) fn sub(&self, ofs: usize, text: &'a str) -> Tok<'a> {
        Tok {
            text,
            at: self.at + ofs,
        }
    }
}

/// Splits on commas and whitespace outside parentheses and brackets.
pub(super) fn tokenize(s: &str, base: usize) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            _ => {}
        }
        let sep = depth <= 0 && (c == ',' || c.is_whitespace());
        match (sep, start) {
            (true, Some(st)) => {
                out.push(Tok {
                    text: &s[st..i],
                    at: base + st,
                });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push(Tok {
            text: &s[st..],
            at: base + st,
        });
    }
    out
}
