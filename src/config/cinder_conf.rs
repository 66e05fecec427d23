//! The three settings the exporter takes from the operator's own cinder.conf:
//! `[DEFAULT] service_down_time`, `[DEFAULT] report_interval` and
//! `[database] connection`.
//!
//! The file is oslo.config INI, read here by its rules rather than a generic INI
//! crate's: `#`/`;` comment lines, `key = value` or `key: value`, values continued on
//! indented lines, a blank line ending a value, matching quotes stripped, several
//! sections of one name merged, the last assignment winning. A file cinder would refuse
//! is refused here too, naming the line and column.

use std::fmt;
use std::path::{Path, PathBuf};

/// One value and where it was written, so that errors about it can point there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    /// The file it came from (set by [`CinderSettings::set_file`]).
    pub file: Option<PathBuf>,
    /// 1-based line of the `key =` line.
    pub line: usize,
}

impl<T> Setting<T> {
    fn new(value: T, line: usize) -> Setting<T> {
        Setting {
            value,
            file: None,
            line,
        }
    }

    /// `FILE:LINE:1`, for error messages.
    pub fn location(&self) -> String {
        let file = self
            .file
            .as_deref()
            .map_or_else(|| "cinder.conf".to_string(), |f| f.display().to_string());
        format!("{file}:{}:1", self.line)
    }
}

/// The settings found; `None` where the file does not set them (cinder's default applies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CinderSettings {
    pub service_down_time: Option<Setting<u64>>,
    pub report_interval: Option<Setting<u64>>,
    pub database_connection: Option<Setting<String>>,
}

impl CinderSettings {
    /// Records which file every setting came from.
    pub fn set_file(&mut self, path: &Path) {
        let file = Some(path.to_path_buf());
        if let Some(s) = &mut self.service_down_time {
            s.file.clone_from(&file);
        }
        if let Some(s) = &mut self.report_interval {
            s.file.clone_from(&file);
        }
        if let Some(s) = &mut self.database_connection {
            s.file = file;
        }
    }
}

/// Merges files read in order: a later file's setting replaces an earlier one's, as
/// oslo.config does with repeated `--config-file`.
pub fn merge(files: impl IntoIterator<Item = CinderSettings>) -> CinderSettings {
    let mut merged = CinderSettings::default();
    for file in files {
        merged.service_down_time = file.service_down_time.or(merged.service_down_time);
        merged.report_interval = file.report_interval.or(merged.report_interval);
        merged.database_connection = file.database_connection.or(merged.database_connection);
    }
    merged
}

/// A line cinder itself would refuse, or a value of the wrong kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// An assignment being read: it may go on over indented lines.
struct Pending {
    section: String,
    key: String,
    value: Vec<String>,
    line: usize,
    /// 1-based column where the value starts, for errors about the value.
    value_column: usize,
}

/// Parses one cinder.conf text.
pub fn parse_cinder_conf(text: &str) -> Result<CinderSettings, ParseError> {
    let mut reader = Reader::default();
    for (index, raw) in text.lines().enumerate() {
        reader.line(index + 1, raw.trim_end())?;
    }
    reader.flush()?;
    Ok(reader.settings)
}

/// The state carried from line to line: the current section, and an assignment that
/// the next lines may continue, so it is only assigned once a line ends it.
#[derive(Default)]
struct Reader {
    settings: CinderSettings,
    section: Option<String>,
    pending: Option<Pending>,
}

impl Reader {
    /// Reads line `number` (1-based), trailing whitespace already trimmed.
    fn line(&mut self, number: usize, line: &str) -> Result<(), ParseError> {
        if line.is_empty() {
            // A blank line ends a multi-line value.
            return self.flush();
        }
        if line.starts_with([' ', '\t']) {
            return self.continuation(number, line);
        }
        self.flush()?;
        if line.starts_with(['#', ';']) {
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix('[') {
            self.section = Some(section_name(number, line, rest)?);
            return Ok(());
        }
        self.pending = Some(assignment(number, line, self.section.as_deref())?);
        Ok(())
    }

    /// An indented line: more of the pending value, or an indented comment.
    fn continuation(&mut self, number: usize, line: &str) -> Result<(), ParseError> {
        match &mut self.pending {
            Some(p) => p.value.push(line.trim_start().to_string()),
            None if line.trim_start().starts_with(['#', ';']) => {}
            None => {
                return Err(ParseError {
                    line: number,
                    column: 1,
                    message:
                        "unexpected continuation line (an indented line must continue a value)"
                            .into(),
                })
            }
        }
        Ok(())
    }

    /// Assigns the pending value, now that no more lines can continue it.
    fn flush(&mut self) -> Result<(), ParseError> {
        match self.pending.take() {
            Some(done) => assign(&mut self.settings, done),
            None => Ok(()),
        }
    }
}

/// The normalized name in a `[section]` header; `rest` is the line after its `[`.
fn section_name(number: usize, line: &str, rest: &str) -> Result<String, ParseError> {
    let name = rest.strip_suffix(']').ok_or_else(|| ParseError {
        line: number,
        column: line.len(),
        message: format!("invalid section header {line:?}: must end with ']'"),
    })?;
    if name.trim().is_empty() {
        return Err(ParseError {
            line: number,
            column: 2,
            message: "empty section name".into(),
        });
    }
    Ok(normalize_section(name.trim()))
}

/// A `key = value` or `key: value` line in `section`, split where oslo.config splits it
/// (the first `:` or `=`), the value's column kept for errors about it.
fn assignment(number: usize, line: &str, section: Option<&str>) -> Result<Pending, ParseError> {
    let Some(split) = line.find([':', '=']) else {
        return Err(ParseError {
            line: number,
            column: 1,
            message: format!("no '=' or ':' in {line:?}: expected key = value"),
        });
    };
    let key = line[..split].trim();
    if key.is_empty() {
        return Err(ParseError {
            line: number,
            column: 1,
            message: "assignment without a key".into(),
        });
    }
    let Some(section) = section else {
        return Err(ParseError {
            line: number,
            column: 1,
            message: format!("{key} is set before any [section]"),
        });
    };
    let after = &line[split + 1..];
    let value = after.trim_start();
    Ok(Pending {
        section: section.to_string(),
        key: key.replace('-', "_"),
        value: vec![value.to_string()],
        line: number,
        value_column: split + 2 + (after.len() - value.len()),
    })
}

/// oslo.config keeps `DEFAULT` as written and lower-cases every other group name.
fn normalize_section(name: &str) -> String {
    if name == "DEFAULT" {
        name.to_string()
    } else {
        name.to_ascii_lowercase()
    }
}

fn assign(settings: &mut CinderSettings, assignment: Pending) -> Result<(), ParseError> {
    let value = unquote(assignment.value.join("\n").trim()).to_string();
    let line = assignment.line;
    match (assignment.section.as_str(), assignment.key.as_str()) {
        ("DEFAULT", "service_down_time") => {
            settings.service_down_time = Some(Setting::new(integer(&assignment, &value)?, line));
        }
        ("DEFAULT", "report_interval") => {
            settings.report_interval = Some(Setting::new(integer(&assignment, &value)?, line));
        }
        ("database", "connection") => {
            settings.database_connection = Some(Setting::new(value, line));
        }
        _ => {}
    }
    Ok(())
}

/// oslo.config strips one pair of matching quotes around a value.
fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

/// cinder's IntOpts: a whole number of seconds. Negative values make no sense for
/// either option, so they are refused rather than reinterpreted.
fn integer(assignment: &Pending, value: &str) -> Result<u64, ParseError> {
    value.trim().parse::<u64>().map_err(|_| ParseError {
        line: assignment.line,
        column: assignment.value_column,
        message: format!(
            "[{}] {} = {value:?} is not a whole number of seconds",
            assignment.section, assignment.key
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL_LOOKING: &str = "\
[DEFAULT]
# service_down_time = 10
; a comment
report_interval = 5
my_ip = 10.0.0.1
enabled_backends = lvm,
    ceph

[database]
connection = mysql+pymysql://cinder:s3cret@ctl1/cinder?charset=utf8

[DEFAULT]
service_down_time: \"90\"
report_interval = 7
";

    #[test]
    fn reads_the_three_settings_oslo_style() {
        let s = parse_cinder_conf(REAL_LOOKING).unwrap();
        assert_eq!(
            s.service_down_time.as_ref().map(|s| (s.value, s.line)),
            Some((90, 13))
        );
        // A repeated [DEFAULT] merges, and the last assignment wins.
        assert_eq!(
            s.report_interval.as_ref().map(|s| (s.value, s.line)),
            Some((7, 14))
        );
        assert_eq!(
            s.database_connection.unwrap().value,
            "mysql+pymysql://cinder:s3cret@ctl1/cinder?charset=utf8"
        );
    }

    #[test]
    fn group_names_are_case_insensitive_but_default_is_not() {
        let s =
            parse_cinder_conf("[Database]\nconnection=mysql://a/b\n[default]\nreport_interval=3\n")
                .unwrap();
        assert!(s.database_connection.is_some());
        assert!(s.report_interval.is_none());
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = parse_cinder_conf("[DEFAULT]\nservice_down_time = sixty\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 21));
        assert!(err.message.contains("service_down_time"), "{}", err.message);
        let err = parse_cinder_conf("[DEFAULT\n").unwrap_err();
        assert_eq!(err.line, 1);
        let err = parse_cinder_conf("[DEFAULT]\njust words\n").unwrap_err();
        assert_eq!(err.line, 2);
        let err = parse_cinder_conf("  indented = 1\n").unwrap_err();
        assert_eq!(err.line, 1);
        let err = parse_cinder_conf("report_interval = 1\n").unwrap_err();
        assert!(err.message.contains("before any [section]"));
        let err = parse_cinder_conf("[DEFAULT]\nreport_interval = -5\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn later_files_win() {
        let mut a =
            parse_cinder_conf("[DEFAULT]\nreport_interval=3\nservice_down_time=30\n").unwrap();
        a.set_file(Path::new("/a.conf"));
        let mut b = parse_cinder_conf("[DEFAULT]\n\nreport_interval=4\n").unwrap();
        b.set_file(Path::new("/b.conf"));
        let m = merge([a, b]);
        assert_eq!(
            m.report_interval.as_ref().unwrap().location(),
            "/b.conf:3:1"
        );
        assert_eq!(m.service_down_time.unwrap().location(), "/a.conf:3:1");
    }
}
