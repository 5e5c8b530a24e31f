//! W3C Trace Context (`traceparent`): an inference joins the caller's trace when the
//! request carries a valid `traceparent`, else starts one. The gateway's own span id is
//! what it records (request log) and what it would hand an upstream; the answer carries
//! `traceresponse` (Trace Context Level 2) so a caller without a tracer can still find
//! its request in the log.
//!
//! Parsing follows the recommendation's processing model: version `ff` is invalid, ids of
//! all zeros are invalid, hex is lowercase, and a higher version is read as far as the
//! version-00 fields (its extra fields ignored). An invalid header is ignored, never an
//! error: tracing must not fail an inference.

use axum::http::HeaderMap;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACERESPONSE: &str = "traceresponse";

/// The trace an inference belongs to and the gateway's span in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The caller's span, when the request carried one.
    pub parent_id: Option<[u8; 8]>,
    /// This inference's span.
    pub span_id: [u8; 8],
    /// Trace flags (bit 0: sampled), kept from the caller.
    pub flags: u8,
}

impl TraceContext {
    /// Joins the request's trace, or starts a new one (sampled) when it has none.
    pub fn from_headers(headers: &HeaderMap) -> TraceContext {
        let parent = headers
            .get(TRACEPARENT)
            .and_then(|value| value.to_str().ok())
            .and_then(parse);
        let span_id = nonzero_id::<8>();
        match parent {
            Some((trace_id, parent_id, flags)) => TraceContext {
                trace_id,
                parent_id: Some(parent_id),
                span_id,
                flags,
            },
            None => TraceContext {
                trace_id: nonzero_id::<16>(),
                parent_id: None,
                span_id,
                flags: 0x01,
            },
        }
    }

    /// A span of this trace whose parent is this one (a call this span makes).
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            parent_id: Some(self.span_id),
            span_id: nonzero_id::<8>(),
            flags: self.flags,
        }
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    pub fn parent_id_hex(&self) -> Option<String> {
        self.parent_id.as_ref().map(|id| hex(id))
    }

    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }

    /// `traceparent` for a call this span makes (an upstream), or `traceresponse`.
    pub fn header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            self.span_id_hex(),
            self.flags
        )
    }
}

/// `(trace id, parent id, flags)` of a valid `traceparent`.
pub fn parse(text: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let text = text.trim_matches([' ', '\t']);
    let version = text.get(0..2)?;
    let version = u8::from_str_radix(lowercase_hex(version)?, 16).ok()?;
    if version == 0xff {
        return None;
    }
    // Version 00 is exactly 55 characters; later versions may append `-…` fields.
    if version == 0 && text.len() != 55 {
        return None;
    }
    if text.len() < 55 || (text.len() > 55 && text.as_bytes()[55] != b'-') {
        return None;
    }
    let bytes = text.as_bytes();
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let trace_id: [u8; 16] = decode(&text[3..35])?;
    let parent_id: [u8; 8] = decode(&text[36..52])?;
    let flags = u8::from_str_radix(lowercase_hex(&text[53..55])?, 16).ok()?;
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some((trace_id, parent_id, flags))
}

fn lowercase_hex(text: &str) -> Option<&str> {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        .then_some(text)
}

fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = lowercase_hex(text)?;
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// A random id that is not all zeros (ids need to be unique, not secret).
fn nonzero_id<const N: usize>() -> [u8; N] {
    loop {
        let mut id = [0u8; N];
        for chunk in id.chunks_mut(8) {
            let word = crate::oip::random_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        if id != [0u8; N] {
            return id;
        }
    }
}

/// A fresh random id of 16 hex digits (request and event ids).
pub fn random_id() -> String {
    hex(&nonzero_id::<8>())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The examples of the W3C recommendation (Trace Context, §3.2.2.5 and §3.2.2.7).
    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_recommendations_example_is_joined() {
        let (trace, parent, flags) = parse(EXAMPLE).unwrap();
        assert_eq!(hex(&trace), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&parent), "00f067aa0ba902b7");
        assert_eq!(flags, 1);
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, EXAMPLE.parse().unwrap());
        let context = TraceContext::from_headers(&headers);
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.parent_id, Some(parent));
        assert_ne!(context.span_id, parent);
        let header = context.header();
        assert!(header.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(header.ends_with("-01"));
        assert!(parse(&header).is_some());
    }

    #[test]
    fn invalid_headers_start_a_new_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        // A later version: its extra fields are ignored.
        assert!(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what").is_some());
        let context = TraceContext::from_headers(&HeaderMap::new());
        assert_eq!(context.parent_id, None);
        assert_ne!(context.trace_id, [0; 16]);
        assert!(parse(&context.header()).is_some());
    }
}
