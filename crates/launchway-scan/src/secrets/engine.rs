//! The matcher: a keyword prefilter (Aho-Corasick over lowercased text)
//! decides which rules run on a fragment; each rule's regex then runs, the
//! secret's Shannon entropy is checked, and allowlists and inline
//! `gitleaks:allow` comments are honoured.

use super::rules::{Allowlist, Candidate, Rule};
use aho_corasick::AhoCorasick;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule_id: String,
    pub description: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    /// The secret (redacted before reporting unless asked not to).
    pub secret: String,
    /// The whole match, with the secret in it.
    #[serde(rename = "match")]
    pub matched: String,
    pub entropy: f64,
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Finding {
    /// Replaces the secret with `REDACTED` everywhere it appears.
    pub fn redact(&mut self) {
        if !self.secret.is_empty() {
            self.matched = self.matched.replace(&self.secret, "REDACTED");
        }
        self.secret = "REDACTED".into();
    }
}

/// Where a git fragment came from.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    pub hash: String,
    pub author: String,
    pub email: String,
    pub date: String,
    pub message: String,
}

/// Shannon entropy in bits per byte.
pub fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for b in s {
        counts[*b as usize] += 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            #[allow(clippy::cast_precision_loss)]
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

pub struct Engine {
    pub rules: Vec<Rule>,
    pub allowlists: Vec<Allowlist>,
    prefilter: Option<AhoCorasick>,
    /// Keyword pattern index → rules that list it.
    by_keyword: Vec<Vec<usize>>,
    /// Rules without keywords run on every fragment.
    always: Vec<usize>,
    /// Keyword pattern index → whether a windowed rule lists it.
    windowed_keyword: Vec<bool>,
    any_windowed: bool,
}

impl Engine {
    pub fn new(rules: Vec<Rule>, allowlists: Vec<Allowlist>) -> Engine {
        let mut keywords: Vec<String> = Vec::new();
        let mut by_keyword: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if r.keywords.is_empty() {
                always.push(i);
            }
            for k in &r.keywords {
                match keywords.iter().position(|x| x == k) {
                    Some(p) => by_keyword[p].push(i),
                    None => {
                        keywords.push(k.clone());
                        by_keyword.push(vec![i]);
                    }
                }
            }
        }
        let prefilter = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&keywords)
            .ok();
        let windowed_keyword = by_keyword
            .iter()
            .map(|rs| rs.iter().any(|&r| rules[r].window.is_some()))
            .collect();
        let any_windowed = rules.iter().any(|r| r.window.is_some());
        Engine {
            rules,
            allowlists,
            prefilter,
            by_keyword,
            always,
            windowed_keyword,
            any_windowed,
        }
    }

    /// Whether a global allowlist excuses this path outright.
    pub fn skips_path(&self, path: &str) -> bool {
        self.allowlists.iter().any(|a| a.allows_path(path))
    }

    /// Scans one fragment. `lines` maps fragment line numbers (0-based) to
    /// file line numbers for git fragments; `None` means they are the same.
    pub fn scan(
        &self,
        path: &str,
        data: &[u8],
        lines: Option<&[usize]>,
        commit: Option<&Commit>,
    ) -> Vec<Finding> {
        let mut active = vec![false; self.rules.len()];
        for &i in &self.always {
            active[i] = true;
        }
        // Keyword offsets, for rules that only look around their keywords.
        let mut hits: Vec<Vec<usize>> = vec![Vec::new(); self.rules.len()];
        if let Some(ac) = &self.prefilter {
            let mut remaining = self.by_keyword.len();
            let mut seen = vec![false; self.by_keyword.len()];
            for m in ac.find_overlapping_iter(data) {
                let p = m.pattern().as_usize();
                if self.windowed_keyword[p] {
                    for &r in &self.by_keyword[p] {
                        if let Some(w) = self.rules[r].window {
                            hits[r].push(m.end() + w);
                            hits[r].push(m.start());
                        }
                    }
                }
                if !seen[p] {
                    seen[p] = true;
                    remaining -= 1;
                    for &r in &self.by_keyword[p] {
                        active[r] = true;
                    }
                    if remaining == 0 && !self.any_windowed {
                        break;
                    }
                }
            }
        }
        // Line starts are only worked out once something matches.
        let cell: std::cell::OnceCell<Vec<usize>> = std::cell::OnceCell::new();
        let starts = || {
            cell.get_or_init(|| {
                std::iter::once(0)
                    .chain(memchr_newlines(data).map(|i| i + 1))
                    .collect()
            })
        };
        let locate = |offset: usize| -> (usize, usize) {
            let line_starts = starts();
            let idx = line_starts
                .partition_point(|s| *s <= offset)
                .saturating_sub(1);
            let col = String::from_utf8_lossy(&data[line_starts[idx]..offset])
                .chars()
                .count()
                + 1;
            (idx, col)
        };
        let mut out: Vec<(usize, usize, Finding)> = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if !active[i] {
                continue;
            }
            if let Some(p) = &rule.path
                && !p.is_match(path.as_bytes())
            {
                continue;
            }
            let Some(re) = &rule.regex else {
                // A path-only rule: the file itself is the finding.
                if rule.path.is_some() {
                    out.push((
                        0,
                        0,
                        self.finding(rule, path, 1, 1, 1, 1, "", path, 0.0, commit),
                    ));
                }
                continue;
            };
            let spans = match rule.window {
                Some(_) => windows(data, &hits[i]),
                None => vec![(0, data.len())],
            };
            for (base, end) in spans {
                for caps in re.captures_iter(&data[base..end]) {
                    let Some(whole) = caps.get(0) else { continue };
                    let group = if rule.secret_group > 0 {
                        caps.get(rule.secret_group)
                    } else {
                        (1..caps.len()).find_map(|g| caps.get(g)).or(Some(whole))
                    };
                    let Some(secret) = group else { continue };
                    let (s_start, s_end) = (base + secret.start(), base + secret.end());
                    let s = secret.as_bytes();
                    let h = entropy(s);
                    // As gitleaks: a secret must be above the threshold.
                    if rule.entropy.is_some_and(|min| h <= min) {
                        continue;
                    }
                    let (li, col) = locate(s_start);
                    let line_starts = starts();
                    let line_start = line_starts[li];
                    let line_end = line_starts
                        .get(li + 1)
                        .map_or(data.len(), |e| e.saturating_sub(1));
                    let line = &data[line_start..line_end.max(line_start)];
                    if contains(line, b"gitleaks:allow") {
                        continue;
                    }
                    let cand = Candidate {
                        secret: s,
                        full_match: whole.as_bytes(),
                        line,
                        path,
                        commit: commit.map(|c| c.hash.as_str()),
                    };
                    if rule
                        .allowlists
                        .iter()
                        .chain(&self.allowlists)
                        .any(|a| a.allows(&cand))
                    {
                        continue;
                    }
                    let (eli, ecol) = locate(s_end.saturating_sub(1).max(s_start));
                    let map = |l: usize| lines.and_then(|m| m.get(l).copied()).unwrap_or(l + 1);
                    out.push((
                        s_start,
                        s_end,
                        self.finding(
                            rule,
                            path,
                            map(li),
                            col,
                            map(eli),
                            ecol,
                            &String::from_utf8_lossy(s),
                            &String::from_utf8_lossy(whole.as_bytes()),
                            h,
                            commit,
                        ),
                    ));
                }
            }
        }
        // A generic finding overlapping a specific one is the same secret.
        let specific: Vec<(usize, usize)> = out
            .iter()
            .filter(|(_, _, f)| f.rule_id != "generic-api-key")
            .map(|(a, b, _)| (*a, *b))
            .collect();
        out.retain(|(a, b, f)| {
            f.rule_id != "generic-api-key" || !specific.iter().any(|(x, y)| a < y && x < b)
        });
        out.into_iter().map(|(_, _, f)| f).collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn finding(
        &self,
        rule: &Rule,
        path: &str,
        line: usize,
        column: usize,
        end_line: usize,
        end_column: usize,
        secret: &str,
        matched: &str,
        entropy: f64,
        commit: Option<&Commit>,
    ) -> Finding {
        let fingerprint = match commit {
            Some(c) => format!("{}:{path}:{}:{line}", c.hash, rule.id),
            None => format!("{path}:{}:{line}", rule.id),
        };
        Finding {
            rule_id: rule.id.clone(),
            description: rule.description.clone(),
            file: path.to_string(),
            line,
            column,
            end_line,
            end_column,
            secret: secret.to_string(),
            matched: matched.to_string(),
            entropy: (entropy * 1000.0).round() / 1000.0,
            fingerprint,
            tags: rule.tags.clone(),
            commit: commit.map(|c| c.hash.clone()),
            author: commit.map(|c| c.author.clone()),
            email: commit.map(|c| c.email.clone()),
            date: commit.map(|c| c.date.clone()),
            message: commit.map(|c| c.message.clone()),
        }
    }
}

/// The spans a windowed rule searches: from the start of each keyword's
/// line to the end (newline included) of the line where its window ends,
/// merged. `hits` holds (window end, keyword start) pairs in keyword order.
fn windows(data: &[u8], hits: &[usize]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for pair in hits.chunks_exact(2) {
        let (reach, at) = (pair[0].min(data.len()), pair[1].min(data.len()));
        // Windows end on line boundaries and keywords come in order, so a
        // hit inside the last window only extends it: each byte is looked
        // at a bounded number of times, even on one huge minified line.
        let floor = out.last().map_or(0, |l| l.1.min(at));
        let start = data[floor..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(floor, |n| floor + n + 1);
        let end = match out.last() {
            Some(l) if reach < l.1 => l.1,
            _ => data[reach..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |n| reach + n + 1),
        };
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

fn memchr_newlines(data: &[u8]) -> impl Iterator<Item = usize> + '_ {
    data.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_values() {
        assert_eq!(entropy(b""), 0.0);
        assert_eq!(entropy(b"aaaa"), 0.0);
        assert!((entropy(b"ab") - 1.0).abs() < 1e-9);
        assert!(entropy(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") > 4.0);
    }
}
