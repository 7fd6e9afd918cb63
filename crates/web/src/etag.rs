//! Entity tags of event-sourced resources, shared by the query side (which sends them) and
//! the command side (which reads them back from `If-Match`).
//!
//! A tag is the resource's stream version, `"3"`, or, when its view also shows live data
//! kept outside that stream (a product's stock), the version and a digest of that data,
//! `"3.9f0c…"`: a stock movement then changes the tag as a product change does, so a
//! client's `If-None-Match` never keeps stale availability. `If-Match` compares the version
//! only, since a command on the resource depends on its stream alone.

/// A strong, quoted entity tag for `version`, with the digest of the live data the
/// representation shows beside it, if any.
#[must_use]
pub fn versioned(version: u64, live: Option<u64>) -> String {
    match live {
        Some(digest) => format!("\"{version}.{digest:016x}\""),
        None => format!("\"{version}\""),
    }
}

/// What an `If-Match` header asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current version.
    Any,
    /// The change was based on this version.
    Version(u64),
}

impl IfMatch {
    /// The version a command must find, if any.
    #[must_use]
    pub fn expected_version(self) -> Option<u64> {
        match self {
            Self::Any => None,
            Self::Version(version) => Some(version),
        }
    }
}

/// Parses one `If-Match` value: `*`, or one tag as [`versioned`] makes it (`"3"` or
/// `"3.<digest>"`; bare `3` and a `W/` prefix are taken too). `None` when it is none of
/// these, a list of several tags included.
#[must_use]
pub fn parse_if_match(value: &str) -> Option<IfMatch> {
    let value = value.trim();
    if value == "*" {
        return Some(IfMatch::Any);
    }
    let tag = value.strip_prefix("W/").unwrap_or(value);
    let tag = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag);
    let (version, digest) = tag.split_once('.').unwrap_or((tag, ""));
    let digest_ok = digest.chars().all(|c| c.is_ascii_hexdigit());
    let version_ok = !version.is_empty() && version.chars().all(|c| c.is_ascii_digit());
    if !(digest_ok && version_ok) {
        return None;
    }
    version.parse().ok().map(IfMatch::Version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_carry_the_version_and_the_live_digest() {
        assert_eq!(versioned(3, None), "\"3\"");
        assert_eq!(versioned(3, Some(0xabc)), "\"3.0000000000000abc\"");
    }

    #[test]
    fn if_match_reads_the_version_back_from_every_tag_we_send() {
        for (version, live) in [(1, None), (7, Some(0)), (42, Some(u64::MAX))] {
            assert_eq!(
                parse_if_match(&versioned(version, live)),
                Some(IfMatch::Version(version))
            );
        }
        assert_eq!(parse_if_match("3"), Some(IfMatch::Version(3)));
        assert_eq!(parse_if_match("W/\"3\""), Some(IfMatch::Version(3)));
        assert_eq!(parse_if_match(" \"3.ff\" "), Some(IfMatch::Version(3)));
        assert_eq!(parse_if_match("*"), Some(IfMatch::Any));
        assert_eq!(IfMatch::Any.expected_version(), None);
        assert_eq!(IfMatch::Version(5).expected_version(), Some(5));
    }

    #[test]
    fn anything_else_is_malformed() {
        for bad in [
            "",
            "\"\"",
            "garbage",
            "\"-1\"",
            "\"3.xyz\"",
            "\"1\", \"2\"",
            "\"3\"x",
            "\"+3\"",
            "\"99999999999999999999999\"",
            "**",
        ] {
            assert_eq!(parse_if_match(bad), None, "{bad}");
        }
    }
}
