//! Secret masking. Every line that reaches a log, summary, annotation or
//! output passes through a [`Masker`].
//!
//! A secret is hidden in the forms it takes when a step encodes it, as
//! GitHub's runner does (its value encoders): base64 at each of the three
//! byte offsets it can sit at inside a longer encoded text (so
//! `base64("user:" + secret)`, as in Basic auth, is caught), in the
//! standard and the URL-safe alphabets; JSON string escaping; URI data
//! escaping; XML escaping; command-line and expression quoting; the value
//! without its surrounding double quotes; the pieces PowerShell prints of a
//! value holding `&`. Each form is a plain substring,
//! and all of them are searched at once (Aho-Corasick, longest match).

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use std::sync::{Arc, RwLock};

/// Encoded forms shorter than this are not masked: they would hide
/// unrelated text (the value itself is always masked).
const MIN_ENCODED_LEN: usize = 5;

/// A shared, growing set of values to hide. Cloning shares the set, so an
/// `add-mask` in one step protects every later line of the run.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    values: Vec<String>,
    finder: Option<AhoCorasick>,
}

/// The base64 characters of `bytes` that do not depend on what precedes
/// or follows them when they sit `offset` bytes into a 3-byte group.
fn base64_core(bytes: &[u8], offset: usize, engine: &impl Engine) -> Option<String> {
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(bytes);
    let enc = engine.encode(&padded);
    let enc = enc.trim_end_matches('=');
    // Characters mixing bits of the unknown leading bytes…
    let lead = match offset {
        1 => 2,
        2 => 3,
        _ => 0,
    };
    // …and the last one, when it mixes in bits of what follows.
    let full = padded.len() * 8 / 6;
    let core = enc.get(lead..full.min(enc.len()))?;
    (core.len() >= MIN_ENCODED_LEN).then(|| core.to_string())
}

/// Every form of `value` a masker hides (the value first).
pub fn forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    let bytes = value.as_bytes();
    let std = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE;
    for offset in 0..3 {
        out.extend(base64_core(bytes, offset, &std));
        out.extend(base64_core(bytes, offset, &url));
    }
    if let Ok(json) = serde_json::to_string(value) {
        out.push(json[1..json.len() - 1].to_string());
    }
    let mut upper = String::new();
    let mut lower = String::new();
    for b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            upper.push(char::from(*b));
            lower.push(char::from(*b));
        } else {
            upper.push_str(&format!("%{b:02X}"));
            lower.push_str(&format!("%{b:02x}"));
        }
    }
    out.push(upper);
    out.push(lower);
    let mut xml = String::new();
    for c in value.chars() {
        match c {
            '&' => xml.push_str("&amp;"),
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            '"' => xml.push_str("&quot;"),
            '\'' => xml.push_str("&apos;"),
            c => xml.push(c),
        }
    }
    out.push(xml);
    out.push(value.replace('"', "\\\""));
    out.push(value.replace('\'', "''"));
    out.push(value.replace('\'', "'\\''"));
    out.push(value.trim_matches('"').to_string());
    out.extend(powershell_pieces(value));
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| !f.trim().is_empty() && seen.insert(f.clone()));
    // Forms other than the value itself must be long enough to mean it.
    let first = out.first().cloned();
    out.retain(|f| Some(f) == first.as_ref() || f.len() >= MIN_ENCODED_LEN);
    out
}

/// PowerShell may print a secret holding `&` in two pieces (split at an
/// `&+`, which it colours, or at the last `&`): each piece of six
/// characters or more is masked too, as GitHub's runner does.
fn powershell_pieces(value: &str) -> Vec<String> {
    if !value.contains('&') {
        return Vec::new();
    }
    let (before, after) = match value.find("&+") {
        Some(i) => {
            let rest = &value[i + 2..];
            // The character after `&+` is the one that gets coloured.
            let skip = rest.chars().next().map_or(0, char::len_utf8);
            (&value[..i + 2], &rest[skip..])
        }
        None => {
            let i = value.rfind('&').unwrap_or(0);
            (&value[..=i], &value[i + 1..])
        }
    };
    [before, after]
        .into_iter()
        .filter(|p| p.chars().count() >= 6)
        .map(str::to_string)
        .collect()
}

impl Masker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a value and its encoded forms; multi-line values are also
    /// masked line by line, since logs are processed a line at a time.
    pub fn add(&self, value: &str) {
        let mut new: Vec<String> = Vec::new();
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return;
        }
        let mut candidates = vec![value.to_string()];
        if value != trimmed {
            candidates.push(trimmed.to_string());
        }
        if value.contains('\n') {
            candidates.extend(
                value
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        for c in candidates {
            new.extend(forms(&c));
        }
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        let before = inner.values.len();
        for n in new {
            if !inner.values.contains(&n) {
                inner.values.push(n);
            }
        }
        if inner.values.len() == before {
            return;
        }
        inner.finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&inner.values)
            .ok();
    }

    pub fn mask(&self, text: &str) -> String {
        let Ok(inner) = self.inner.read() else {
            return text.to_string();
        };
        match &inner.finder {
            Some(f) if f.is_match(text) => {
                let mut out = String::with_capacity(text.len());
                f.replace_all_with(text, &mut out, |_, _, dst| {
                    dst.push_str("***");
                    true
                });
                out
            }
            _ => text.to_string(),
        }
    }

    /// Whether the text contains any masked value (in any of its forms).
    pub fn reveals(&self, text: &str) -> bool {
        self.inner
            .read()
            .ok()
            .and_then(|i| i.finder.as_ref().map(|f| f.is_match(text)))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    const SECRET: &str = "s3cr3t-V@lue/with+odd&chars'\"x";

    fn masked(text: &str) -> String {
        let m = Masker::new();
        m.add(SECRET);
        m.mask(text)
    }

    #[test]
    fn masks_longest_first_and_multiline() {
        let m = Masker::new();
        m.add("abc");
        m.add("abcdef");
        m.add("line1\nline2");
        m.add("");
        m.add("   ");
        assert_eq!(m.mask("x abcdef y abc"), "x *** y ***");
        assert_eq!(m.mask("line2 is here"), "*** is here");
        assert!(m.reveals("zzabczz"));
        assert!(!m.reveals("zz"));
        assert_eq!(m.mask("   "), "   ");
    }

    #[test]
    fn base64_at_every_offset_and_in_basic_auth() {
        for prefix in ["", "a", "ab", "abc", "user:", "Authorization: x"] {
            for engine in [&STANDARD, &URL_SAFE] {
                let enc = engine.encode(format!("{prefix}{SECRET}tail"));
                let out = masked(&format!("header {enc} end"));
                assert!(out.contains("***"), "{prefix:?}: {out}");
                // What is left of the encoding cannot be decoded back.
                for word in out.split([' ', '*']) {
                    if let Ok(d) = engine.decode(word) {
                        assert!(!String::from_utf8_lossy(&d).contains(SECRET), "{out}");
                    }
                }
            }
        }
    }

    #[test]
    fn json_escaped() {
        let json = serde_json::to_string(&serde_json::json!({ "token": SECRET })).unwrap();
        assert!(!masked(&json).contains("s3cr3t"), "{}", masked(&json));
    }

    #[test]
    fn uri_escaped_either_case() {
        let escape = |upper: bool| -> String {
            SECRET
                .bytes()
                .map(
                    |b| match (b.is_ascii_alphanumeric() || b"-_.~".contains(&b), upper) {
                        (true, _) => char::from(b).to_string(),
                        (false, true) => format!("%{b:02X}"),
                        (false, false) => format!("%{b:02x}"),
                    },
                )
                .collect()
        };
        for upper in [true, false] {
            let out = masked(&format!("?q={}&x=1", escape(upper)));
            assert!(!out.contains("s3cr3t"), "{out}");
        }
    }

    #[test]
    fn xml_and_quoted_forms() {
        let xml = SECRET
            .replace('&', "&amp;")
            .replace('\'', "&apos;")
            .replace('"', "&quot;");
        assert!(!masked(&format!("<v>{xml}</v>")).contains("s3cr3t"));
        assert!(!masked(&SECRET.replace('"', "\\\"")).contains("s3cr3t"));
        assert!(!masked(&SECRET.replace('\'', "''")).contains("s3cr3t"));
        assert!(!masked(&SECRET.replace('\'', "'\\''")).contains("s3cr3t"));
    }

    #[test]
    fn powershell_pieces_around_an_ampersand() {
        assert_eq!(powershell_pieces("abcdef&"), ["abcdef&"]);
        assert_eq!(
            powershell_pieces("abcdef&+ghijkl"),
            ["abcdef&+", "hijkl"][..1]
        );
        assert_eq!(powershell_pieces("abc&def&"), ["abc&def&"]);
        assert!(powershell_pieces("ab&").is_empty());
        assert_eq!(powershell_pieces("abc&ghijkl"), ["ghijkl"]);
        assert_eq!(powershell_pieces("abc&+ghijklm"), ["hijklm"]);
        assert!(powershell_pieces("no ampersand").is_empty());
        // Through the masker: each piece printed alone is hidden.
        let m = Masker::new();
        m.add("Sup3r&+Secr3tValue");
        assert_eq!(m.mask("[Sup3r&+] [ecr3tValue]"), "[***] [***]");
    }

    #[test]
    fn short_values_do_not_mask_unrelated_text_through_encodings() {
        let m = Masker::new();
        m.add("ab");
        // "ab" itself is masked; its short encodings are not registered.
        assert_eq!(m.mask("ab YWI= xy"), "*** YWI= xy");
    }
}
