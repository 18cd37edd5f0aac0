//! Workflow commands written to stdout: `::add-mask::`, `::group::`,
//! `::error file=…,line=…::msg`, `::stop-commands::TOKEN`, and the rest.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Notice,
}

/// An annotation, as shown in the run summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub level: Level,
    pub message: String,
    pub title: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub end_line: Option<u32>,
    pub col: Option<u32>,
    pub end_column: Option<u32>,
    /// The job that produced it (filled in by the runner).
    #[serde(default)]
    pub job: String,
}

impl Annotation {
    /// An error about a job as a whole (no file position).
    pub fn error(job: &str, message: &str) -> Annotation {
        Annotation {
            level: Level::Error,
            message: message.to_string(),
            title: None,
            file: None,
            line: None,
            end_line: None,
            col: None,
            end_column: None,
            job: job.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    AddMask(String),
    Group(String),
    EndGroup,
    Annotate(Annotation),
    Debug(String),
    StopCommands(String),
    /// Deprecated `::set-output name=x::v`; still honoured.
    SetOutput(String, String),
    SaveState(String, String),
    Echo(bool),
    /// Deprecated `::set-env name=X::v` and `::add-path::dir`: honoured only
    /// with `ACTIONS_ALLOW_UNSECURE_COMMANDS=true`, otherwise they fail the
    /// step (GitHub disabled them in 2020).
    SetEnv(String, String),
    AddPath(String),
}

/// Tracks `stop-commands` state across the lines of one step.
#[derive(Debug, Default)]
pub struct CommandParser {
    stopped_until: Option<String>,
}

fn unescape_data(s: &str) -> String {
    s.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%25", "%")
}

fn unescape_property(s: &str) -> String {
    s.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

impl CommandParser {
    /// Parses one output line. Returns `None` for ordinary output and for
    /// commands while commands are stopped.
    pub fn parse(&mut self, line: &str) -> Option<Command> {
        let body = line.trim_start().strip_prefix("::")?;
        let (head, data) = body.split_once("::")?;
        let (name, props) = match head.split_once(' ') {
            Some((n, p)) => (n, p),
            None => (head, ""),
        };
        if let Some(token) = &self.stopped_until {
            if name == token.as_str() {
                self.stopped_until = None;
            }
            return None;
        }
        let data = unescape_data(data);
        let prop = |key: &str| -> Option<String> {
            props.split(',').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k.trim() == key).then(|| unescape_property(v.trim()))
            })
        };
        Some(match name {
            "add-mask" => Command::AddMask(data),
            "group" => Command::Group(data),
            "endgroup" => Command::EndGroup,
            "debug" => Command::Debug(data),
            "stop-commands" => {
                if data.is_empty() {
                    return None;
                }
                self.stopped_until = Some(data.clone());
                Command::StopCommands(data)
            }
            "set-output" => Command::SetOutput(prop("name")?, data),
            "save-state" => Command::SaveState(prop("name")?, data),
            "echo" => Command::Echo(data == "on"),
            "set-env" => Command::SetEnv(prop("name")?, data),
            "add-path" => Command::AddPath(data),
            "error" | "warning" | "notice" => Command::Annotate(Annotation {
                level: match name {
                    "error" => Level::Error,
                    "warning" => Level::Warning,
                    _ => Level::Notice,
                },
                message: data,
                title: prop("title"),
                file: prop("file"),
                line: prop("line").and_then(|v| v.parse().ok()),
                end_line: prop("endLine").and_then(|v| v.parse().ok()),
                col: prop("col").and_then(|v| v.parse().ok()),
                end_column: prop("endColumn").and_then(|v| v.parse().ok()),
                job: String::new(),
            }),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        let mut p = CommandParser::default();
        assert_eq!(
            p.parse("::add-mask::s3cret"),
            Some(Command::AddMask("s3cret".into()))
        );
        assert_eq!(
            p.parse("::group::Build"),
            Some(Command::Group("Build".into()))
        );
        assert_eq!(p.parse("::endgroup::"), Some(Command::EndGroup));
        assert_eq!(p.parse("plain output"), None);
        let Some(Command::Annotate(a)) =
            p.parse("::error file=app.py,line=3,title=Bad%2C bad::oops%0Atwo")
        else {
            panic!("annotation expected")
        };
        assert_eq!(a.file.as_deref(), Some("app.py"));
        assert_eq!(a.line, Some(3));
        assert_eq!(a.title.as_deref(), Some("Bad, bad"));
        assert_eq!(a.message, "oops\ntwo");
        assert_eq!(
            p.parse("::set-output name=x::1"),
            Some(Command::SetOutput("x".into(), "1".into()))
        );
    }

    #[test]
    fn stop_commands() {
        let mut p = CommandParser::default();
        assert!(matches!(
            p.parse("::stop-commands::tok"),
            Some(Command::StopCommands(_))
        ));
        assert_eq!(p.parse("::add-mask::x"), None);
        assert_eq!(p.parse("::error::not an error"), None);
        assert_eq!(p.parse("::tok::"), None);
        assert_eq!(p.parse("::add-mask::y"), Some(Command::AddMask("y".into())));
    }
}
