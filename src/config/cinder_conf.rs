//! The three settings the exporter takes from the operator's own cinder.conf:
//! `[DEFAULT] service_down_time`, `[DEFAULT] report_interval` and
//! `[database] connection`.
//!
//! The file is oslo.config INI, read here by its rules rather than a generic INI
//! crate's: `#`/`;` comment lines, `key = value` or `key: value`, values continued on
//! indented lines, a blank line ending a value, matching quotes stripped, several
//! sections of one name merged, the last assignment winning. A file cinder would refuse
//! is refused here too, naming the line and column.
//!
//! Values are then substituted as oslo.config does ([`super::substitution`]), after
//! every file is read: a value may refer to an option set in another file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::substitution::{normalize_group, substitute, Options};

/// One value and where it was written, so that errors about it can point there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    /// The file it came from (set by [`ConfValues::set_file`]).
    pub file: Option<PathBuf>,
    /// 1-based line of the `key =` line.
    pub line: usize,
}

impl<T> Setting<T> {
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

/// Every assignment read from one or more files, by `(group, key)`, the last one
/// winning: what oslo.config substitutes from and converts.
#[derive(Clone, Debug, Default)]
pub struct ConfValues {
    values: HashMap<(String, String), RawValue>,
}

/// One assignment's text (quotes stripped, continuation lines joined) and where it is.
#[derive(Clone, Debug)]
struct RawValue {
    text: String,
    file: Option<PathBuf>,
    line: usize,
    /// 1-based column where the text starts on each of its lines.
    columns: Vec<usize>,
}

/// Registered cinder options a reference may name without a file setting them, with
/// their defaults. Only `state_path` is commonly referred to (`$state_path/...`).
const KNOWN_DEFAULTS: [(&str, &str, &str); 1] = [("DEFAULT", "state_path", "/var/lib/cinder")];

impl Options for ConfValues {
    fn raw(&self, group: &str, option: &str) -> Option<&str> {
        match self.values.get(&(group.to_string(), option.to_string())) {
            Some(value) => Some(&value.text),
            None => KNOWN_DEFAULTS
                .iter()
                .find(|(g, o, _)| *g == group && *o == option)
                .map(|(_, _, default)| *default),
        }
    }
}

impl ConfValues {
    /// Records which file every value came from.
    pub fn set_file(&mut self, path: &Path) {
        for value in self.values.values_mut() {
            value.file = Some(path.to_path_buf());
        }
    }

    /// Adds a later file's values: where both set an option, the later one wins, as
    /// with oslo.config's repeated `--config-file`.
    pub fn merge(&mut self, later: ConfValues) {
        self.values.extend(later.values);
    }

    /// The three settings, substituted and converted.
    pub fn settings(&self) -> Result<CinderSettings, ParseError> {
        Ok(CinderSettings {
            service_down_time: self.integer("DEFAULT", "service_down_time")?,
            report_interval: self.integer("DEFAULT", "report_interval")?,
            database_connection: self.text("database", "connection")?,
        })
    }

    /// The substituted text of `[group] key`, if set.
    fn text(&self, group: &str, key: &str) -> Result<Option<Setting<String>>, ParseError> {
        let Some(raw) = self.values.get(&(group.to_string(), key.to_string())) else {
            return Ok(None);
        };
        let value = substitute(&raw.text, group, self).map_err(|e| {
            let (line, column) = raw.position(e.offset);
            raw.error(line, column, format!("[{group}] {key}: {}", e.message))
        })?;
        Ok(Some(Setting {
            value,
            file: raw.file.clone(),
            line: raw.line,
        }))
    }

    /// cinder's IntOpts: a whole number of seconds. Negative values make no sense for
    /// either option, so they are refused rather than reinterpreted.
    fn integer(&self, group: &str, key: &str) -> Result<Option<Setting<u64>>, ParseError> {
        let Some(setting) = self.text(group, key)? else {
            return Ok(None);
        };
        let value = setting.value.trim().parse::<u64>().map_err(|_| {
            let raw = &self.values[&(group.to_string(), key.to_string())];
            let (line, column) = raw.position(0);
            raw.error(
                line,
                column,
                // The value is not quoted: it may come from a reference to a secret.
                format!("[{group}] {key} is not a whole number of seconds"),
            )
        })?;
        Ok(Some(Setting {
            value,
            file: setting.file,
            line: setting.line,
        }))
    }
}

impl RawValue {
    /// Line and column of byte `offset` of the text.
    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line_index = before.matches('\n').count();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.columns.get(line_index).copied().unwrap_or(1);
        (self.line + line_index, column + offset - line_start)
    }

    fn error(&self, line: usize, column: usize, message: String) -> ParseError {
        ParseError {
            file: self.file.clone(),
            line,
            column,
            message,
        }
    }
}

/// A line cinder itself would refuse, or a value of the wrong kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The file, where known: a value read from several files may fail in another
    /// file than the one being read.
    pub file: Option<PathBuf>,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    /// `FILE:LINE:COLUMN`, the file being `read` unless the error names its own.
    pub fn location(&self, read: &Path) -> String {
        let file = self.file.as_deref().unwrap_or(read);
        format!("{}:{}:{}", file.display(), self.line, self.column)
    }
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
    /// 1-based column where the value starts on each of its lines.
    columns: Vec<usize>,
}

/// Parses one cinder.conf text into its three settings.
pub fn parse_cinder_conf(text: &str) -> Result<CinderSettings, ParseError> {
    read_cinder_conf(text)?.settings()
}

/// Reads one cinder.conf text: every assignment, not yet substituted or converted.
pub fn read_cinder_conf(text: &str) -> Result<ConfValues, ParseError> {
    let mut reader = Reader::default();
    for (index, raw) in text.lines().enumerate() {
        reader.line(index + 1, raw.trim_end())?;
    }
    reader.flush();
    Ok(reader.values)
}

/// The state carried from line to line: the current section, and an assignment that
/// the next lines may continue, so it is only assigned once a line ends it.
#[derive(Default)]
struct Reader {
    values: ConfValues,
    section: Option<String>,
    pending: Option<Pending>,
}

impl Reader {
    /// Reads line `number` (1-based), trailing whitespace already trimmed.
    fn line(&mut self, number: usize, line: &str) -> Result<(), ParseError> {
        if line.is_empty() {
            // A blank line ends a multi-line value.
            self.flush();
            return Ok(());
        }
        if line.starts_with([' ', '\t']) {
            return self.continuation(number, line);
        }
        self.flush();
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
            Some(p) => {
                let text = line.trim_start();
                p.columns.push(line.len() - text.len() + 1);
                p.value.push(text.to_string());
            }
            None if line.trim_start().starts_with(['#', ';']) => {}
            None => {
                return Err(ParseError {
                    file: None,
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
    fn flush(&mut self) {
        if let Some(done) = self.pending.take() {
            let (text, mut columns) = (done.value.join("\n"), done.columns);
            let trimmed = text.trim();
            let unquoted = unquote(trimmed);
            // The text starts later on its first line by what trimming and unquoting took.
            columns[0] += (text.len() - text.trim_start().len())
                + usize::from(unquoted.len() < trimmed.len());
            let value = RawValue {
                text: unquoted.to_string(),
                file: None,
                line: done.line,
                columns,
            };
            self.values.values.insert((done.section, done.key), value);
        }
    }
}

/// The normalized name in a `[section]` header; `rest` is the line after its `[`.
fn section_name(number: usize, line: &str, rest: &str) -> Result<String, ParseError> {
    let name = rest.strip_suffix(']').ok_or_else(|| ParseError {
        file: None,
        line: number,
        column: line.len(),
        message: "invalid section header: must end with ']'".into(),
    })?;
    if name.trim().is_empty() {
        return Err(ParseError {
            file: None,
            line: number,
            column: 2,
            message: "empty section name".into(),
        });
    }
    Ok(normalize_group(name.trim()))
}

/// A `key = value` or `key: value` line in `section`, split where oslo.config splits it
/// (the first `:` or `=`), the value's column kept for errors about it.
fn assignment(number: usize, line: &str, section: Option<&str>) -> Result<Pending, ParseError> {
    let Some(split) = line.find([':', '=']) else {
        return Err(ParseError {
            file: None,
            line: number,
            column: 1,
            // The line is not quoted: it may be part of a value, a password's say.
            message: "no '=' or ':' on this line: expected key = value".into(),
        });
    };
    let key = line[..split].trim();
    if key.is_empty() {
        return Err(ParseError {
            file: None,
            line: number,
            column: 1,
            message: "assignment without a key".into(),
        });
    }
    let Some(section) = section else {
        return Err(ParseError {
            file: None,
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
        columns: vec![split + 2 + (after.len() - value.len())],
    })
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
            read_cinder_conf("[DEFAULT]\nreport_interval=3\nservice_down_time=30\n").unwrap();
        a.set_file(Path::new("/a.conf"));
        let mut b = read_cinder_conf("[DEFAULT]\n\nreport_interval=4\n").unwrap();
        b.set_file(Path::new("/b.conf"));
        a.merge(b);
        let m = a.settings().unwrap();
        assert_eq!(
            m.report_interval.as_ref().unwrap().location(),
            "/b.conf:3:1"
        );
        assert_eq!(m.service_down_time.unwrap().location(), "/a.conf:3:1");
    }

    #[test]
    fn values_are_substituted_as_oslo_config_does() {
        let text = "\
[DEFAULT]
db_host = ctl1
service_down_time = $report_interval
report_interval = 20

[database]
db_user = cinder
connection = mysql+pymysql://$db_user:pa$$w\\$rd@${DEFAULT.db_host}/cinder
";
        let s = parse_cinder_conf(text).unwrap();
        assert_eq!(
            s.database_connection.unwrap().value,
            "mysql+pymysql://cinder:pa$w$rd@ctl1/cinder"
        );
        assert_eq!(s.service_down_time.map(|s| s.value), Some(20));
    }

    #[test]
    fn an_unknown_reference_is_refused_naming_its_place() {
        let err = parse_cinder_conf("[database]\nconnection = mysql://u:$pw@db/c\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 24), "{err}");
        assert!(err.message.contains("names no option"), "{err}");
        assert!(!err.message.contains("pw"), "{err}");
        // On a continuation line, and after a stripped quote.
        let err = parse_cinder_conf("[database]\nconnection = \"a\n   b$nothing\"\n").unwrap_err();
        assert_eq!((err.line, err.column), (3, 5), "{err}");
        let err = parse_cinder_conf("[database]\nconnection = 'x$nothing'\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 16), "{err}");
    }

    #[test]
    fn references_reach_across_files_and_errors_name_the_file() {
        let mut a = read_cinder_conf("[DEFAULT]\nsecret = s3$$cret\n").unwrap();
        a.set_file(Path::new("/etc/cinder/cinder.conf"));
        let mut b = read_cinder_conf("[database]\nconnection = mysql://u:$secret@db/c\n").unwrap();
        b.set_file(Path::new("/etc/cinder/cinder.conf.d/db.conf"));
        let mut merged = a.clone();
        merged.merge(b);
        assert_eq!(
            merged
                .settings()
                .unwrap()
                .database_connection
                .unwrap()
                .value,
            "mysql://u:s3$cret@db/c"
        );
        let mut broken = read_cinder_conf("[DEFAULT]\nreport_interval = $nope\n").unwrap();
        broken.set_file(Path::new("/b.conf"));
        a.merge(broken);
        let err = a.settings().unwrap_err();
        assert_eq!(err.location(Path::new("/other.conf")), "/b.conf:2:19");
    }
}
