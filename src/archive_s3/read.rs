//! Reading a small source file whole, as it was at one moment: its size,
//! mtime and ctime are taken before and after, and a read during which
//! they changed is done again, a bounded number of times (as
//! [`crate::archive::copy`] does for the disk destination).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::archive::copy::COPY_ATTEMPTS;
use crate::error::Error;

/// Size, mtime and ctime (with nanoseconds).
fn markers(file: &File) -> io::Result<(u64, i64, u64, i64, u64)> {
    let s = rustix::fs::fstat(file)?;
    Ok((
        s.st_size as u64,
        s.st_mtime,
        s.st_mtime_nsec as u64,
        s.st_ctime,
        s.st_ctime_nsec as u64,
    ))
}

/// The whole file, at most `limit` bytes (a larger file is an error: it
/// grew since it was sized).
pub fn whole(file: &File, limit: u64) -> io::Result<Vec<u8>> {
    for _ in 0..COPY_ATTEMPTS {
        let before = markers(file)?;
        if before.0 > limit {
            break;
        }
        let mut bytes = vec![0; before.0 as usize];
        let mut at = 0;
        while at < bytes.len() {
            match file.read_at(&mut bytes[at..], at as u64) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut probe = [0u8; 1];
        let longer = file.read_at(&mut probe, at as u64)? > 0;
        if at == bytes.len() && !longer && markers(file)? == before {
            return Ok(bytes);
        }
        log::info!("source changed while being read; reading it again");
    }
    Err(still_changing())
}

pub fn still_changing() -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        format!(
            "source still changing: it changed during each of {COPY_ATTEMPTS} reads; try again later"
        ),
    )
}

/// A read error on a source file (a changing file is worth a retry: 75).
pub fn error(e: io::Error, shown: &Path) -> Error {
    Error::io("read source file", shown, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_whole_and_refuses_one_over_the_limit() {
        let path = std::env::temp_dir().join(format!("s3read-{}", std::process::id()));
        std::fs::write(&path, b"hello").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(whole(&file, 10).unwrap(), b"hello");
        let e = whole(&file, 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ResourceBusy);
        std::fs::remove_file(&path).unwrap();
    }
}
