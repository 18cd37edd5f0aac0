//! GitHub's filter pattern syntax for branches, tags and paths.
//!
//! `*` matches any characters but `/`; `**` matches any characters;
//! `?` and `+` make the preceding character optional or repeated;
//! `[...]` is a character class; `\` escapes; a leading `!` negates.

use regex::Regex;

#[derive(Debug, Clone)]
pub struct Pattern {
    pub negated: bool,
    regex: Regex,
    pub source: String,
}

impl Pattern {
    pub fn new(src: &str) -> Result<Pattern, String> {
        let (negated, body) = match src.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, src),
        };
        if body.is_empty() {
            return Err("empty pattern".into());
        }
        let mut re = String::from("^");
        let chars: Vec<char> = body.chars().collect();
        let mut i = 0;
        let mut has_atom = false;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    if chars.get(i + 2) == Some(&'/') {
                        re.push_str("(?:.*/)?");
                        i += 3;
                    } else {
                        re.push_str(".*");
                        i += 2;
                    }
                    has_atom = false;
                    continue;
                }
                '*' => {
                    re.push_str("[^/]*");
                    has_atom = false;
                }
                '?' | '+' => {
                    if !has_atom {
                        return Err(format!(
                            "'{c}' must follow a character it applies to (escape it as '\\{c}' to match it literally)"
                        ));
                    }
                    re.push(c);
                    has_atom = false;
                }
                '[' => {
                    let close = chars[i + 1..]
                        .iter()
                        .position(|&c| c == ']')
                        .map(|p| p + i + 1)
                        .ok_or("unclosed '[' in pattern")?;
                    let class: String = chars[i + 1..close].iter().collect();
                    if class.is_empty() {
                        return Err("empty character class '[]'".into());
                    }
                    re.push('[');
                    for ch in class.chars() {
                        if matches!(ch, '\\' | '[' | ']' | '^' | '&' | '~') {
                            re.push('\\');
                        }
                        re.push(ch);
                    }
                    re.push(']');
                    i = close + 1;
                    has_atom = true;
                    continue;
                }
                '\\' => {
                    let next = chars.get(i + 1).ok_or("pattern ends with '\\'")?;
                    re.push_str(&regex::escape(&next.to_string()));
                    i += 2;
                    has_atom = true;
                    continue;
                }
                c => {
                    re.push_str(&regex::escape(&c.to_string()));
                    has_atom = true;
                }
            }
            i += 1;
        }
        re.push('$');
        let regex = Regex::new(&re).map_err(|e| format!("invalid pattern: {e}"))?;
        Ok(Pattern {
            negated,
            regex,
            source: src.to_string(),
        })
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

/// An ordered list of patterns where later patterns override earlier ones,
/// so `['feature/**', '!feature/skip']` includes all features but one.
#[derive(Debug, Clone, Default)]
pub struct PatternList {
    pub patterns: Vec<Pattern>,
}

impl PatternList {
    pub fn new<'a>(srcs: impl IntoIterator<Item = &'a str>) -> Result<PatternList, String> {
        Ok(PatternList {
            patterns: srcs
                .into_iter()
                .map(Pattern::new)
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether `s` is included: the last pattern that matches decides.
    pub fn matches(&self, s: &str) -> bool {
        self.patterns
            .iter()
            .rev()
            .find(|p| p.is_match(s))
            .is_some_and(|p| !p.negated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p).unwrap().is_match(s)
    }

    #[test]
    fn github_documented_examples() {
        // From "Filter pattern cheat sheet".
        assert!(m("feature/*", "feature/my-branch"));
        assert!(!m("feature/*", "feature/your-branch/x"));
        assert!(m("feature/**", "feature/beta-a/my-branch"));
        assert!(m("main", "main"));
        assert!(m("releases/mona-the-octocat", "releases/mona-the-octocat"));
        assert!(m("*", "main"));
        assert!(!m("*", "releases/x"));
        assert!(m("**", "all/the/branches"));
        assert!(m("*feature", "mona-feature"));
        assert!(m("v2*", "v2.9"));
        assert!(m("v[12].[0-9]+.[0-9]+", "v1.10.1"));
        assert!(m("v[12].[0-9]+.[0-9]+", "v2.0.0"));
        assert!(!m("v[12].[0-9]+.[0-9]+", "v3.0.0"));
        assert!(m("'*'", "'x'"));
        assert!(m("**/README.md", "README.md"));
        assert!(m("**/README.md", "docs/README.md"));
        assert!(m("*.js", "app.js"));
        assert!(!m("*.js", "js/app.js"));
        assert!(m("**.js", "js/deep/app.js"));
        assert!(m("docs/*", "docs/file.md"));
        assert!(m("docs/**", "docs/mona/octocat.txt"));
        assert!(m("docs/**/*.md", "docs/a/b/c.md"));
        assert!(m("docs/**/*.md", "docs/c.md"));
        assert!(m("**/docs/**", "/docs/hello.md"));
        assert!(m("**/docs/**", "dir/docs/my-file.txt"));
        assert!(m("**/*src/**", "a/src/app.js"));
        assert!(m("**/*-post.md", "my-post.md"));
        assert!(m("**/*-post.md", "path/their-post.md"));
        assert!(m("**/migrate-*.sql", "migrate-10909.sql"));
        assert!(m("*.jsx?", "page.js"));
        assert!(m("*.jsx?", "page.jsx"));
    }

    #[test]
    fn negation_order() {
        let l = PatternList::new(["releases/**", "!releases/**-alpha"]).unwrap();
        assert!(l.matches("releases/10"));
        assert!(!l.matches("releases/10-alpha"));
        let l = PatternList::new(["!releases/**-alpha", "releases/**"]).unwrap();
        assert!(l.matches("releases/10-alpha"));
    }

    #[test]
    fn bad_patterns() {
        assert!(Pattern::new("?abc").is_err());
        assert!(Pattern::new("[abc").is_err());
        assert!(Pattern::new("!").is_err());
        assert!(Pattern::new("x\\").is_err());
    }
}
