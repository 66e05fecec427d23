//! Reading the operator's files (the configuration, cinder.conf, `url_file`, the web
//! configuration, certificates and keys) so that a wrong path cannot hang or exhaust
//! the exporter: only regular files are read, and at most [`MAX_FILE_BYTES`] of them.
//!
//! A FIFO would block the read until something writes to it (a reload, and with it
//! the process, stuck); a device such as `/dev/zero` or an endless file would be read
//! until memory runs out. Neither is ever a configuration file, so both are refused
//! with an error naming what the path is.

use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// The largest file read: 1 MiB, far above any configuration, certificate chain or
/// URL, far below what would matter to the exporter's memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The bytes of the regular file at `path`; the error says why not, without the path
/// (callers name the file and what it was for).
pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    // stat first: it never blocks, whereas opening a FIFO waits for a writer.
    check_regular(&std::fs::metadata(path).map_err(|e| e.to_string())?)?;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    // Again on what was opened, in case the path was replaced in between.
    check_regular(&file.metadata().map_err(|e| e.to_string())?)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_file`] for a text file, which must be UTF-8.
pub fn read_text_file(path: &Path) -> Result<String, String> {
    String::from_utf8(read_file(path)?).map_err(|_| "not UTF-8 text".to_string())
}

/// Refuses what is not a regular file, or is larger than [`MAX_FILE_BYTES`].
fn check_regular(metadata: &std::fs::Metadata) -> Result<(), String> {
    let kind = metadata.file_type();
    let other = if kind.is_file() {
        return match metadata.len() > MAX_FILE_BYTES {
            true => Err(too_large()),
            false => Ok(()),
        };
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(format!(
        "not a regular file ({other}); only regular files are read"
    ))
}

fn too_large() -> String {
    format!("larger than {MAX_FILE_BYTES} bytes (1 MiB), the most read of any file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_at_most_one_mebibyte_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, "text\n").unwrap();
        assert_eq!(read_text_file(&small).unwrap(), "text\n");

        let large = dir.path().join("large");
        let file = std::fs::File::create(&large).unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert!(read_file(&large)
            .unwrap_err()
            .starts_with("larger than 1048576"));

        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        for (path, kind) in [
            (fifo.as_path(), "(a FIFO)"),
            (Path::new("/dev/zero"), "(a character device)"),
            (dir.path(), "(a directory)"),
        ] {
            let error = read_file(path).unwrap_err();
            assert!(error.contains(kind), "{}: {error}", path.display());
        }
        let error = read_text_file(&dir.path().join("absent")).unwrap_err();
        assert!(error.contains("No such file"), "{error}");
    }
}
