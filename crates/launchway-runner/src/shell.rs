//! Shells as GitHub runs them on Linux: the command template, the script
//! file extension, and how the default is chosen.

/// A resolved shell: program, arguments with `{0}` replaced by the script.
#[derive(Debug, Clone, PartialEq)]
pub struct Shell {
    pub template: String,
    pub extension: &'static str,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ShellError(pub String);

impl Shell {
    /// `shell:` as written (or `None` for the default). `has_bash` says whether
    /// bash is on PATH: without it the default falls back to `sh -e {0}`.
    pub fn resolve(name: Option<&str>, has_bash: bool) -> Result<Shell, ShellError> {
        let (template, extension) = match name.map(str::trim) {
            None | Some("") => {
                if has_bash {
                    ("bash -e {0}", "sh")
                } else {
                    ("sh -e {0}", "sh")
                }
            }
            Some("bash") => ("bash --noprofile --norc -eo pipefail {0}", "sh"),
            Some("sh") => ("sh -e {0}", "sh"),
            Some("python") => ("python {0}", "py"),
            Some("pwsh") => ("pwsh -command \". '{0}'\"", "ps1"),
            Some("powershell") => ("powershell -command \". '{0}'\"", "ps1"),
            Some("cmd") => {
                return Err(ShellError("the 'cmd' shell only exists on Windows".into()));
            }
            Some(custom) => {
                if !custom.contains("{0}") {
                    return Err(ShellError(format!(
                        "custom shell '{custom}' must contain '{{0}}' where the script path goes"
                    )));
                }
                return Ok(Shell {
                    template: custom.to_string(),
                    extension: "",
                });
            }
        };
        Ok(Shell {
            template: template.to_string(),
            extension,
        })
    }

    /// The argv for a script file, splitting the template on whitespace
    /// (respecting double quotes) as the runner does.
    pub fn argv(&self, script: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut in_quotes = false;
        let mut started = false;
        for c in self.template.chars() {
            match c {
                '"' => {
                    in_quotes = !in_quotes;
                    started = true;
                }
                c if c.is_whitespace() && !in_quotes => {
                    if started {
                        out.push(std::mem::take(&mut cur));
                        started = false;
                    }
                }
                c => {
                    cur.push(c);
                    started = true;
                }
            }
        }
        if started {
            out.push(cur);
        }
        out.into_iter().map(|a| a.replace("{0}", script)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_shells() {
        assert_eq!(
            Shell::resolve(None, true).unwrap().argv("/t/s.sh"),
            ["bash", "-e", "/t/s.sh"]
        );
        assert_eq!(
            Shell::resolve(None, false).unwrap().argv("/t/s.sh"),
            ["sh", "-e", "/t/s.sh"]
        );
        assert_eq!(
            Shell::resolve(Some("bash"), true).unwrap().argv("x"),
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "x"]
        );
        assert_eq!(
            Shell::resolve(Some("python"), true).unwrap().argv("x.py"),
            ["python", "x.py"]
        );
        assert_eq!(
            Shell::resolve(Some("perl {0}"), true).unwrap().argv("f"),
            ["perl", "f"]
        );
        assert_eq!(
            Shell::resolve(Some("pwsh"), true).unwrap().argv("f"),
            ["pwsh", "-command", ". 'f'"]
        );
        assert!(Shell::resolve(Some("perl"), true).is_err());
        assert!(Shell::resolve(Some("cmd"), true).is_err());
    }
}
