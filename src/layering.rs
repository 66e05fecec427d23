//! Holds the imports to the layout `lib.rs` documents: each module uses only the
//! modules listed before it, so the data flows one way and no two modules depend on
//! each other. Unit tests at the foot of a file may reach further.

use std::path::Path;

/// The steps in `lib.rs`'s order, read from its table.
fn steps() -> Vec<String> {
    include_str!("lib.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("//! | "))
        .filter_map(|row| row.split(" | ").nth(1))
        .map(|cell| {
            cell.trim_matches(|c| c == '`' || c == '[' || c == ']')
                .to_string()
        })
        .filter(|name| name != "module" && !name.starts_with('-'))
        .collect()
}

/// The source files of a module: `src/NAME.rs` and every file under `src/NAME/`.
fn files(module: &str) -> Vec<std::path::PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let single = src.join(format!("{module}.rs"));
    let mut found: Vec<_> = Some(single).filter(|f| f.exists()).into_iter().collect();
    let mut dirs: Vec<_> = Some(src.join(module))
        .filter(|d| d.is_dir())
        .into_iter()
        .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("module folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found
}

/// The crate modules a file names as `crate::NAME`.
fn uses(text: &str, modules: &[String]) -> Vec<String> {
    modules
        .iter()
        .filter(|m| {
            text.contains(&format!("crate::{m}::"))
                || text.contains(&format!("crate::{m};"))
                || text.contains(&format!("crate::{m}}}"))
                || text.contains(&format!("crate::{{{m},"))
                || text.contains(&format!(" {m}}}")) && text.contains("use crate::{")
        })
        .cloned()
        .collect()
}

#[test]
fn modules_import_only_the_steps_before_them() {
    let steps = steps();
    assert!(steps.len() >= 12, "{steps:?}");
    for (index, module) in steps.iter().enumerate() {
        let later = &steps[index + 1..];
        let files = files(module);
        assert!(!files.is_empty(), "no source for module {module}");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source");
            // A module's own tests may check it against a later one.
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            let wrong = uses(code, later);
            assert!(
                wrong.is_empty(),
                "{} ({module}) imports {wrong:?}, which lib.rs lists after it",
                file.display()
            );
        }
    }
}
