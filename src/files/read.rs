//! Reading a file a user or a variable names (a profile, `.env`, a schema, a
//! CA bundle, AWS shared config, a token file, the previous metrics file):
//! one function, [`read_config_file`], that never blocks and never reads
//! without bound.
//!
//! The rules, for every kind:
//! - the file is opened `O_NONBLOCK`, so a FIFO at the path does not hang the
//!   open (a cron run that never ends);
//! - it must then be a regular file (`fstat` on the open descriptor, not a
//!   second look at the path): a FIFO, a device such as `/dev/zero`, a
//!   socket or a directory is refused with one line;
//! - at most the kind's cap ([`ConfigFile::cap`]) is read; a larger file is
//!   refused, before reading, from its size;
//! - a final symlink *is* followed: operators link profiles and CA bundles
//!   (`/etc/ssl/certs/…`) on purpose, and the target is held to the same
//!   rules. (Where we write, a link is never followed: see `files::write`.)

use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

use crate::error::Error;

/// What a configured file is for; each kind has its own size cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFile {
    /// A profile (`--config FILE`, `--profile NAME`): 1 MiB.
    Profile,
    /// `.env`, `--env-file`, `SQS_ARCHIVE_ENV_FILE`: 1 MiB.
    EnvFile,
    /// `schema_file`: 1 MiB.
    Schema,
    /// `AWS_CA_BUNDLE`: 4 MiB (a full system bundle is about 200 KiB).
    CaBundle,
    /// `AWS_CONFIG_FILE`, `~/.aws/config`: 1 MiB.
    AwsConfig,
    /// `AWS_SHARED_CREDENTIALS_FILE`, `~/.aws/credentials`: 1 MiB.
    AwsCredentials,
    /// Web-identity and container authorization token files: 64 KiB.
    Token,
    /// The previous `metrics_file`, read to carry its counters: 1 MiB.
    PreviousMetrics,
    /// The directory queue's `attributes.json`: 64 KiB.
    QueueAttributes,
}

impl ConfigFile {
    /// Every kind, in the README's order.
    pub const ALL: [ConfigFile; 9] = [
        ConfigFile::Profile,
        ConfigFile::EnvFile,
        ConfigFile::Schema,
        ConfigFile::CaBundle,
        ConfigFile::AwsConfig,
        ConfigFile::AwsCredentials,
        ConfigFile::Token,
        ConfigFile::PreviousMetrics,
        ConfigFile::QueueAttributes,
    ];

    /// The most bytes read from a file of this kind.
    pub const fn cap(self) -> u64 {
        match self {
            ConfigFile::CaBundle => 4 << 20,
            ConfigFile::Token | ConfigFile::QueueAttributes => 64 << 10,
            ConfigFile::Profile
            | ConfigFile::EnvFile
            | ConfigFile::Schema
            | ConfigFile::AwsConfig
            | ConfigFile::AwsCredentials
            | ConfigFile::PreviousMetrics => 1 << 20,
        }
    }

    /// The kind in a sentence: "cannot read {name}".
    pub const fn name(self) -> &'static str {
        match self {
            ConfigFile::Profile => "profile",
            ConfigFile::EnvFile => "env file",
            ConfigFile::Schema => "schema",
            ConfigFile::CaBundle => "CA bundle",
            ConfigFile::AwsConfig => "AWS config file",
            ConfigFile::AwsCredentials => "AWS credentials file",
            ConfigFile::Token => "token file",
            ConfigFile::PreviousMetrics => "previous metrics file",
            ConfigFile::QueueAttributes => "queue attributes",
        }
    }
}

/// Why a configuration file could not be read: a configuration problem
/// (exit 78), or a file named on purpose that is not there (66). The file is
/// named, its content never shown (a `.env` line may hold a secret).
#[derive(Debug)]
pub enum ReadProblem {
    NotFound(std::io::Error),
    IsDirectory,
    /// A FIFO, a device, a socket: what it is, as "a FIFO".
    NotRegular(&'static str),
    /// Larger than the kind's cap (in bytes).
    TooLarge(u64),
    NotUtf8,
    Other(std::io::Error),
}

impl ReadProblem {
    /// The error for `path` (`action` is e.g. `"read CA bundle"`): a
    /// configuration error (78), except a file named on purpose that does
    /// not exist (66, as the README says).
    pub fn into_error(self, action: &'static str, path: &Path) -> Error {
        let why = match self {
            ReadProblem::NotFound(e) => return Error::io(action, path, e),
            ReadProblem::IsDirectory => "it is a directory, not a file".to_string(),
            ReadProblem::NotRegular(what) => format!("it is {what}, not a regular file"),
            ReadProblem::TooLarge(cap) => format!("it is larger than {}", size(cap)),
            ReadProblem::NotUtf8 => "it is not UTF-8 text".to_string(),
            ReadProblem::Other(e) => e.to_string(),
        };
        Error::config(
            path.display().to_string(),
            format!("cannot {action}: {why}"),
        )
    }
}

impl std::fmt::Display for ReadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadProblem::NotFound(e) | ReadProblem::Other(e) => write!(f, "{e}"),
            ReadProblem::IsDirectory => f.write_str("it is a directory, not a file"),
            ReadProblem::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            ReadProblem::TooLarge(cap) => write!(f, "it is larger than {}", size(*cap)),
            ReadProblem::NotUtf8 => f.write_str("it is not UTF-8 text"),
        }
    }
}

/// A cap for a person: "1 MiB", "64 KiB", else bytes.
pub fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// What a file that is not a regular file is, for an error line; `None` for
/// a regular file.
pub fn not_regular(file_type: std::fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        None
    } else if file_type.is_dir() {
        Some("a directory")
    } else if file_type.is_symlink() {
        Some("a symbolic link")
    } else if file_type.is_fifo() {
        Some("a FIFO")
    } else if file_type.is_char_device() {
        Some("a character device")
    } else if file_type.is_block_device() {
        Some("a block device")
    } else if file_type.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

fn refuse_unless_regular(file_type: std::fs::FileType) -> Result<(), ReadProblem> {
    match not_regular(file_type) {
        None => Ok(()),
        Some("a directory") => Err(ReadProblem::IsDirectory),
        Some(what) => Err(ReadProblem::NotRegular(what)),
    }
}

/// Reads a configuration file of `kind` as text, by the rules above.
pub fn read_config_file(path: &Path, kind: ConfigFile) -> Result<String, ReadProblem> {
    let bytes = read_capped(path, kind.cap())?;
    String::from_utf8(bytes).map_err(|_| ReadProblem::NotUtf8)
}

/// The bytes of the regular file at `path`, by the same rules, refused
/// above `cap` bytes: for files that are not text or whose cap is a
/// setting (the directory queue's message files, under `max_message_size`).
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ReadProblem> {
    let classify = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => ReadProblem::NotFound(e),
        std::io::ErrorKind::IsADirectory => ReadProblem::IsDirectory,
        // A Unix socket at the path cannot be opened at all.
        _ if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
            ReadProblem::NotRegular("a socket or a device without a driver")
        }
        _ => ReadProblem::Other(e),
    };
    // A look first, so a device is refused without being opened (opening
    // some has effects: a tape rewinds, a watchdog arms); the `fstat` below
    // is what counts, should the path change in between.
    if let Ok(meta) = std::fs::metadata(path) {
        refuse_unless_regular(meta.file_type())?;
    }
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(classify)?;
    let meta = file.metadata().map_err(classify)?;
    refuse_unless_regular(meta.file_type())?;
    if meta.len() > cap {
        return Err(ReadProblem::TooLarge(cap));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte past the cap tells a file that grew since fstat.
    (&file)
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(classify)?;
    if bytes.len() as u64 > cap {
        return Err(ReadProblem::TooLarge(cap));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sqs-archive-read-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn caps_are_the_documented_ones() {
        let caps: Vec<_> = ConfigFile::ALL
            .iter()
            .map(|k| (k.name(), size(k.cap())))
            .collect();
        assert_eq!(caps[0], ("profile", "1 MiB".to_string()));
        assert_eq!(caps[3], ("CA bundle", "4 MiB".to_string()));
        assert_eq!(caps[6], ("token file", "64 KiB".to_string()));
        assert_eq!(caps[8], ("queue attributes", "64 KiB".to_string()));
        assert_eq!(size(1000), "1000 bytes");
    }

    #[test]
    fn a_fifo_a_directory_and_a_huge_sparse_file_are_refused_at_once() {
        let dir = scratch("odd");
        let fifo = dir.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let huge = dir.join("huge");
        File::create(&huge).unwrap().set_len(3 << 30).unwrap();
        let started = Instant::now();
        assert!(matches!(
            read_config_file(&fifo, ConfigFile::Profile),
            Err(ReadProblem::NotRegular("a FIFO"))
        ));
        assert!(matches!(
            read_config_file(&dir, ConfigFile::EnvFile),
            Err(ReadProblem::IsDirectory)
        ));
        let e = read_config_file(&huge, ConfigFile::CaBundle).unwrap_err();
        assert!(matches!(e, ReadProblem::TooLarge(c) if c == 4 << 20));
        let e = e.into_error("read CA bundle", &huge);
        assert_eq!(e.exit(), crate::exit::Exit::Config);
        assert!(e.to_string().contains("larger than 4 MiB"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_to_a_regular_file_is_read_and_the_cap_is_exact() {
        let dir = scratch("link");
        let target = dir.join("target");
        std::fs::write(&target, vec![b'a'; 64 << 10]).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(
            read_config_file(&link, ConfigFile::Token).unwrap().len(),
            64 << 10
        );
        std::fs::write(&target, vec![b'a'; (64 << 10) + 1]).unwrap();
        assert!(matches!(
            read_config_file(&link, ConfigFile::Token),
            Err(ReadProblem::TooLarge(_))
        ));
        let missing = read_config_file(&dir.join("none"), ConfigFile::Schema).unwrap_err();
        assert!(matches!(missing, ReadProblem::NotFound(_)));
        assert_eq!(
            missing.into_error("read schema", &dir).exit(),
            crate::exit::Exit::NoInput
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
