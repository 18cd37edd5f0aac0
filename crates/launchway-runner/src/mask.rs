//! Secret masking. Every line that reaches a log, summary, annotation or
//! output passes through a [`Masker`].

use std::sync::{Arc, RwLock};

/// A shared, growing set of values to hide. Cloning shares the set, so an
/// `add-mask` in one step protects every later line of the run.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    values: Arc<RwLock<Vec<String>>>,
}

impl Masker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a value; multi-line values are also masked line by line,
    /// since logs are processed a line at a time.
    pub fn add(&self, value: &str) {
        let mut new: Vec<String> = Vec::new();
        let trimmed = value.trim();
        if !trimmed.is_empty() {
            new.push(value.to_string());
            if value != trimmed {
                new.push(trimmed.to_string());
            }
        }
        if value.contains('\n') {
            new.extend(
                value
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        if new.is_empty() {
            return;
        }
        let Ok(mut v) = self.values.write() else {
            return;
        };
        for n in new {
            if !v.contains(&n) {
                v.push(n);
            }
        }
        // Longest first, so a secret that contains another is hidden whole.
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub fn mask(&self, text: &str) -> String {
        let Ok(values) = self.values.read() else {
            return text.to_string();
        };
        let mut out = text.to_string();
        for v in values.iter() {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }

    /// Whether the text contains any masked value.
    pub fn reveals(&self, text: &str) -> bool {
        self.values
            .read()
            .map(|v| v.iter().any(|s| text.contains(s.as_str())))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
