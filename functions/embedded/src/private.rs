//! Files and folders only the server's own user may read: the outbox holds live invite links,
//! the data folder sealed credentials and token hashes. Folders are 0700, files 0600 (on Unix;
//! elsewhere the platform's defaults).

use std::io::Write;
use std::path::Path;

/// Creates `dir` and its missing parents, and makes `dir` itself 0700 (an existing folder is
/// tightened too: an older version made it 0755).
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `bytes` to a new or truncated file created 0600.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn folders_are_0700_and_files_0600() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/outbox");
        create_dir(&dir).unwrap();
        let file = dir.join("x.eml");
        write_file(&file, b"hi").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"hi");
    }
}
