//! The runner files a step writes to talk back: `GITHUB_ENV`,
//! `GITHUB_OUTPUT`, `GITHUB_STATE` (`name=value` lines or the
//! `name<<DELIMITER` heredoc form) and `GITHUB_PATH` (one path per line).

use indexmap::IndexMap;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum FileCommandError {
    #[error("line {line}: '{text}' is neither 'name=value' nor 'name<<DELIMITER'")]
    Malformed { line: usize, text: String },
    #[error("line {line}: no closing delimiter '{delimiter}' for '{name}'")]
    Unterminated {
        line: usize,
        name: String,
        delimiter: String,
    },
    #[error("line {line}: an empty name")]
    EmptyName { line: usize },
}

/// Parses `name=value` and heredoc entries, later entries overriding earlier ones.
pub fn parse_key_values(text: &str) -> Result<IndexMap<String, String>, FileCommandError> {
    let mut out = IndexMap::new();
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let lineno = i + 1;
        i += 1;
        if line.is_empty() {
            continue;
        }
        let heredoc = line.find("<<");
        let eq = line.find('=');
        match (eq, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                let name = &line[..e];
                if name.is_empty() {
                    return Err(FileCommandError::EmptyName { line: lineno });
                }
                out.insert(name.to_string(), line[e + 1..].to_string());
            }
            (_, Some(h)) => {
                let name = &line[..h];
                let delimiter = &line[h + 2..];
                if name.is_empty() {
                    return Err(FileCommandError::EmptyName { line: lineno });
                }
                if delimiter.is_empty() {
                    return Err(FileCommandError::Malformed {
                        line: lineno,
                        text: line.to_string(),
                    });
                }
                let mut value: Vec<&str> = Vec::new();
                loop {
                    let Some(l) = lines.get(i) else {
                        return Err(FileCommandError::Unterminated {
                            line: lineno,
                            name: name.to_string(),
                            delimiter: delimiter.to_string(),
                        });
                    };
                    i += 1;
                    if *l == delimiter {
                        break;
                    }
                    value.push(l);
                }
                out.insert(name.to_string(), value.join("\n"));
            }
            _ => {
                return Err(FileCommandError::Malformed {
                    line: lineno,
                    text: line.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// `GITHUB_PATH`: one directory per non-empty line.
pub fn parse_paths(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_and_heredocs() {
        let text = "a=1\nb=x=y\nmulti<<EOF\nline 1\nline 2\nEOF\n\nc<<ghadelimiter_123\n\nghadelimiter_123\na=2\n";
        let kv = parse_key_values(text).unwrap();
        assert_eq!(kv["a"], "2");
        assert_eq!(kv["b"], "x=y");
        assert_eq!(kv["multi"], "line 1\nline 2");
        assert_eq!(kv["c"], "");
        assert_eq!(kv.get_index_of("a"), Some(0));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse_key_values("x<<EOF\nno end"),
            Err(FileCommandError::Unterminated { .. })
        ));
        assert!(matches!(
            parse_key_values("novalue"),
            Err(FileCommandError::Malformed { .. })
        ));
        assert!(matches!(
            parse_key_values("=1"),
            Err(FileCommandError::EmptyName { .. })
        ));
        assert_eq!(parse_key_values("a=1\r\nb=2\r\n").unwrap()["a"], "1");
    }
}
