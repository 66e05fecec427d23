//! oslo.config's value syntax: `$name` and `${name}` stand for another option's value
//! (`${group.name}` for one in another group), `$$` and `\$` for a literal `$`.
//!
//! cinder substitutes every value it reads this way before using it, so a database
//! password written `pa$$word` is `pa$word` to cinder, and must be to the exporter.
//! The rules are those of oslo.config's `ConfigOpts._substitute`: Python's
//! `string.Template` with the identifier pattern `[_a-z][._a-z0-9]*` (any case), a
//! `$` not followed by a name left as it is, and a name that no option answers to
//! refused. A name without a group is looked for in the group of the value being read,
//! then in `[DEFAULT]`. Referenced values are substituted in turn.
//!
//! Errors give the reference's position, never its name: a `$` in a password (`pa$word`)
//! reads as a reference, and its "name" is the rest of the password.

/// A `$` reference that cannot be resolved, and where it starts in the value (a byte
/// offset into the value's text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubstitutionError {
    pub offset: usize,
    pub message: String,
}

/// Resolves the names a value refers to: `(group, option)` to that option's raw text
/// and the group it is read in, or `None` if no option answers to it.
pub trait Options {
    fn raw(&self, group: &str, option: &str) -> Option<&str>;
}

/// How deep references may nest before the chain is taken for a loop (oslo.config
/// would recurse until Python gives up).
const MAX_DEPTH: usize = 32;

/// `value`, read in `group`, with every reference replaced.
pub fn substitute(
    value: &str,
    group: &str,
    options: &impl Options,
) -> Result<String, SubstitutionError> {
    substitute_at(value, group, options, 0)
}

fn substitute_at(
    value: &str,
    group: &str,
    options: &impl Options,
    depth: usize,
) -> Result<String, SubstitutionError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find(['$', '\\']) {
        out.push_str(&rest[..at]);
        let offset = value.len() - rest.len() + at;
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("\\$") {
            // oslo.config reads `\$` as the escape `$$`.
            out.push('$');
            rest = after;
            continue;
        }
        if let Some(after) = tail.strip_prefix('\\') {
            out.push('\\');
            rest = after;
            continue;
        }
        let (consumed, name) = placeholder(&tail[1..]);
        match name {
            Placeholder::Escaped => out.push('$'),
            Placeholder::Invalid => out.push('$'),
            Placeholder::Named(name) => {
                let replaced = resolve(name, group, options, depth)
                    .map_err(|message| SubstitutionError { offset, message })?;
                out.push_str(&replaced);
            }
        }
        rest = &tail[1 + consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

enum Placeholder<'a> {
    /// `$$`
    Escaped,
    /// `$name` or `${name}`
    Named(&'a str),
    /// A `$` followed by nothing that names an option: kept as it is.
    Invalid,
}

/// Reads what follows a `$`; returns how many bytes it took.
fn placeholder(after: &str) -> (usize, Placeholder<'_>) {
    if after.starts_with('$') {
        return (1, Placeholder::Escaped);
    }
    if let Some(braced) = after.strip_prefix('{') {
        let length = identifier_length(braced);
        if length > 0 && braced[length..].starts_with('}') {
            return (length + 2, Placeholder::Named(&braced[..length]));
        }
        return (0, Placeholder::Invalid);
    }
    match identifier_length(after) {
        0 => (0, Placeholder::Invalid),
        length => (length, Placeholder::Named(&after[..length])),
    }
}

/// Length of the longest prefix matching `[_a-z][._a-z0-9]*`, any case.
fn identifier_length(text: &str) -> usize {
    let mut bytes = text.bytes();
    match bytes.next() {
        Some(b) if b == b'_' || b.is_ascii_alphabetic() => {}
        _ => return 0,
    }
    1 + bytes
        .take_while(|b| *b == b'_' || *b == b'.' || b.is_ascii_alphanumeric())
        .count()
}

/// The substituted value of the option `name` refers to, from a value read in `group`.
fn resolve(
    name: &str,
    group: &str,
    options: &impl Options,
    depth: usize,
) -> Result<String, String> {
    if depth == MAX_DEPTH {
        return Err(format!(
            "this $ reference: references nest more than {MAX_DEPTH} deep (a loop?)"
        ));
    }
    // `group.option` names its group; a plain name is looked for in the value's own
    // group, then in [DEFAULT], where oslo.config also tries a dotted name whole.
    let candidates = match name.split_once('.') {
        Some((in_group, option)) => [
            (normalize_group(in_group), option),
            ("DEFAULT".into(), name),
        ],
        None => [(group.to_string(), name), ("DEFAULT".into(), name)],
    };
    for (in_group, option) in &candidates {
        if let Some(raw) = options.raw(in_group, option) {
            return substitute_at(raw, in_group, options, depth + 1).map_err(|e| e.message);
        }
    }
    Err(
        "this $ reference names no option set in the cinder.conf files read \
         (oslo.config refuses an unknown option; in a password, write $$ for a literal $)"
            .to_string(),
    )
}

/// oslo.config keeps `DEFAULT` as written and lower-cases every other group name.
pub fn normalize_group(name: &str) -> String {
    if name == "DEFAULT" {
        name.to_string()
    } else {
        name.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<(&'static str, &'static str), &'static str>);

    impl Options for Map {
        fn raw(&self, group: &str, option: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|((g, o), _)| *g == group && *o == option)
                .map(|(_, v)| *v)
        }
    }

    fn options() -> Map {
        Map(HashMap::from([
            (("DEFAULT", "state_path"), "/var/lib/cinder"),
            (("DEFAULT", "db_user"), "cinder"),
            (("database", "db_user"), "cinder_db"),
            (("database", "password"), "s3$$cret"),
            (("DEFAULT", "nested"), "${database.password}@$db_user"),
            (("DEFAULT", "loop_a"), "$loop_b"),
            (("DEFAULT", "loop_b"), "$loop_a"),
            (("DEFAULT", "empty"), ""),
        ]))
    }

    fn sub(value: &str, group: &str) -> Result<String, SubstitutionError> {
        substitute(value, group, &options())
    }

    #[test]
    fn escapes_are_a_literal_dollar() {
        assert_eq!(sub("pa$$word", "database").unwrap(), "pa$word");
        assert_eq!(sub(r"pa\$word", "database").unwrap(), "pa$word");
        assert_eq!(sub(r"back\slash", "database").unwrap(), r"back\slash");
        // A `$` that names nothing stays as it is, as Template.safe_substitute leaves it.
        assert_eq!(
            sub("cost $5 or $ or ${1}", "DEFAULT").unwrap(),
            "cost $5 or $ or ${1}"
        );
        assert_eq!(sub("trailing $", "DEFAULT").unwrap(), "trailing $");
    }

    #[test]
    fn names_resolve_in_the_own_group_then_default() {
        assert_eq!(sub("$db_user", "database").unwrap(), "cinder_db");
        assert_eq!(sub("$db_user", "DEFAULT").unwrap(), "cinder");
        assert_eq!(sub("${DEFAULT.db_user}", "database").unwrap(), "cinder");
        assert_eq!(
            sub("sqlite:///$state_path/cinder.sqlite", "database").unwrap(),
            "sqlite:////var/lib/cinder/cinder.sqlite"
        );
        assert_eq!(sub("x${empty}y", "DEFAULT").unwrap(), "xy");
    }

    #[test]
    fn referenced_values_are_substituted_in_their_own_group() {
        // ${database.password} is read in [database]: its `$$` is one `$`; then
        // $db_user, read in [DEFAULT], is DEFAULT's.
        assert_eq!(sub("$nested", "database").unwrap(), "s3$cret@cinder");
    }

    #[test]
    fn unknown_names_and_loops_are_refused_where_they_start() {
        let err = sub("mysql://u:$pw@db/cinder", "database").unwrap_err();
        assert_eq!(err.offset, 10);
        assert!(err.message.contains("names no option"), "{}", err.message);
        // The name may be the rest of a password: it is not quoted.
        assert!(!err.message.contains("pw"), "{}", err.message);
        // The identifier takes dots: `$user.` is the name `user.`, not `user` and a dot.
        assert!(sub("$db_user.", "DEFAULT").is_err());
        let err = sub("ok ${loop_a}", "DEFAULT").unwrap_err();
        assert_eq!(err.offset, 3);
        assert!(err.message.contains("loop"), "{}", err.message);
    }
}
