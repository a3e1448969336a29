//! Copying one opened source file while hashing it, such that the hash
//! always belongs to bytes that were really in the source at one moment.
//!
//! The source is read through its descriptor. Its identity and change
//! markers (device, inode, size, mtime and ctime with nanoseconds) are taken
//! before and after the copy; when they differ, or the bytes read do not
//! match the size, the copy is thrown away and done again, a bounded number
//! of times. A file whose ctime is within a clock tick of now is given a
//! moment first: a write in the same tick as the first `fstat` could leave
//! the markers unchanged on file systems with coarse timestamps.
//!
//! A writer through `mmap` changes neither mtime nor ctime when it writes to
//! a page already dirty, so the markers cannot see it. With
//! [`CopyOptions::rehash`] (on with `verify`), the source is read and hashed
//! a second time after the copy, through the same descriptor; a different
//! digest counts as a change. That costs a second read of the source, mostly
//! from the page cache.
//!
//! A sparse source (fewer blocks allocated than its size needs) is copied
//! extent by extent (`SEEK_DATA`/`SEEK_HOLE`): holes are hashed as the zeros
//! they read as but not written, so the copy is as sparse as the source and
//! the digest the same as a plain read's.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::FileExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Copies of a changing file before the request is put off (exit 75).
pub const COPY_ATTEMPTS: u32 = 3;
/// The read and write size.
const CHUNK: usize = 256 * 1024;
/// Files at least this large are hashed on a second thread.
const PIPELINE_MIN: u64 = 8 << 20;
/// A file changed this recently may still be changed within the same tick.
const FRESH: Duration = Duration::from_millis(50);
/// How long a fresh file is given before the copy starts, at most.
const SETTLE_ROUNDS: u32 = 20;

/// What can go wrong copying one file.
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
    /// The source changed during each of [`COPY_ATTEMPTS`] copies.
    StillChanging,
}

/// What makes a file this file, and what changes when it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Markers {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, u64),
    ctime: (i64, u64),
}

fn markers(file: &File) -> io::Result<Markers> {
    let stat = rustix::fs::fstat(file)?;
    Ok(Markers {
        dev: stat.st_dev,
        ino: stat.st_ino,
        size: stat.st_size as u64,
        mtime: (stat.st_mtime, stat.st_mtime_nsec as u64),
        ctime: (stat.st_ctime, stat.st_ctime_nsec as u64),
    })
}

/// How long until `ctime` is [`FRESH`] old; `None` when it already is.
fn freshness_left(ctime: (i64, u64), now: SystemTime) -> Option<Duration> {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = u64::try_from(ctime.0).ok()?;
    let changed = Duration::new(secs, ctime.1.min(999_999_999) as u32);
    (changed + FRESH)
        .checked_sub(now)
        .filter(|left| !left.is_zero())
        .map(|left| left.min(FRESH))
}

/// Markers of a file not changed within the last clock tick (or the last
/// ones seen, when it keeps changing: the before/after check still holds).
fn settled_markers(file: &File) -> io::Result<Markers> {
    let mut seen = markers(file)?;
    for _ in 0..SETTLE_ROUNDS {
        let Some(left) = freshness_left(seen.ctime, SystemTime::now()) else {
            break;
        };
        std::thread::sleep(left);
        seen = markers(file)?;
    }
    Ok(seen)
}

/// The size and SHA-256 of a stream of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentDigest {
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// Options of a copy; the slow one exists for tests that write to a source
/// while it is being copied.
#[derive(Clone, Copy, Debug, Default)]
pub struct CopyOptions {
    /// Sleep this long after each chunk (a test hook).
    #[cfg(any(test, feature = "test-hooks"))]
    pub pause_per_chunk: Option<Duration>,
    /// Read and hash the source again after copying it, to catch a writer
    /// the timestamps do not show (`mmap`).
    pub rehash: bool,
}

/// Copies `source` into `target` (truncated first on each attempt) and
/// returns the digest of what was copied, which is the whole content of the
/// source at one moment. `target` may be `None` to hash only.
pub fn copy_consistent(
    source: &File,
    mut target: Option<&mut File>,
    options: CopyOptions,
) -> Result<ContentDigest, CopyError> {
    for attempt in 1..=COPY_ATTEMPTS {
        let before = settled_markers(source).map_err(CopyError::Read)?;
        if attempt > 1
            && let Some(target) = target.as_deref_mut()
        {
            target.set_len(0).map_err(CopyError::Write)?;
            target.rewind().map_err(CopyError::Write)?;
        }
        let digest = copy_at(source, before.size, target.as_deref_mut(), options)?;
        let after = markers(source).map_err(CopyError::Read)?;
        if before != after || digest.size != before.size {
            log::info!(
                "source changed while being copied (attempt {attempt} of {COPY_ATTEMPTS}): {before:?} then {after:?}, {} bytes read",
                digest.size
            );
            continue;
        }
        if !options.rehash || target.is_none() {
            return Ok(digest);
        }
        let again = copy_at(source, before.size, None, options)?;
        if again == digest && markers(source).map_err(CopyError::Read)? == before {
            return Ok(digest);
        }
        log::info!(
            "source changed while being copied (attempt {attempt} of {COPY_ATTEMPTS}): read again it has sha256 {} ({} bytes), copied {} ({} bytes)",
            again.sha256,
            again.size,
            digest.sha256,
            digest.size
        );
    }
    Err(CopyError::StillChanging)
}

/// Where the data of a sparse source is: `SEEK_DATA`/`SEEK_HOLE` asked as
/// the copy goes.
struct Extents {
    /// The source's size when the copy started; past it, plain reads.
    size: u64,
    /// The current or next data extent, `start..end`.
    data: Option<(u64, u64)>,
}

impl Extents {
    /// `Some` when `source` has fewer blocks than its size needs and the
    /// file system answers `SEEK_DATA`.
    fn of_sparse(source: &File, size: u64) -> Option<Extents> {
        let stat = rustix::fs::fstat(source).ok()?;
        let allocated = (stat.st_blocks as u64).saturating_mul(512);
        (allocated < size).then_some(Extents { size, data: None })
    }

    /// How many of the next `want` bytes at `offset` are a hole (read as
    /// zeros, not written); 0 when `offset` is in data. `None` when the file
    /// system cannot tell: read it all.
    fn hole_at(&mut self, source: &File, offset: u64, want: u64) -> Option<u64> {
        use rustix::fs::{SeekFrom, seek};
        if offset >= self.size {
            return Some(0);
        }
        if self.data.is_none_or(|(_, end)| offset >= end) {
            self.data = match seek(source, SeekFrom::Data(offset)) {
                Ok(start) => {
                    let end = seek(source, SeekFrom::Hole(start)).ok()?;
                    Some((start, end.max(start)))
                }
                // No data after `offset`: a hole to the end.
                Err(rustix::io::Errno::NXIO) => Some((self.size, u64::MAX)),
                Err(_) => return None,
            };
        }
        let (start, _) = self.data?;
        Some(
            start
                .saturating_sub(offset)
                .min(self.size - offset)
                .min(want),
        )
    }
}

/// Reads `source` from offset 0 (whatever its file position), hashing and
/// writing each chunk at its offset; holes of a sparse source are hashed as
/// zeros and skipped in `target`, whose length is set at the end.
fn copy_at(
    source: &File,
    size_hint: u64,
    mut target: Option<&mut File>,
    #[cfg_attr(not(any(test, feature = "test-hooks")), expect(unused_variables))]
    options: CopyOptions,
) -> Result<ContentDigest, CopyError> {
    let mut offset = 0u64;
    let mut extents = Extents::of_sparse(source, size_hint);
    let digest = digest_chunks(size_hint, |whole: &mut [u8]| {
        let mut buffer = whole;
        if let Some(map) = extents.as_mut() {
            match map.hole_at(source, offset, buffer.len() as u64) {
                Some(0) => {
                    // In data: read up to its end, so the hole after it
                    // stays one.
                    if let Some((_, end)) = map.data
                        && offset < map.size
                    {
                        let room = usize::try_from(end - offset).unwrap_or(usize::MAX);
                        let len = buffer.len().min(room.max(1));
                        buffer = &mut buffer[..len];
                    }
                }
                Some(hole) => {
                    let hole = hole as usize;
                    buffer[..hole].fill(0);
                    offset += hole as u64;
                    return Ok(hole);
                }
                None => extents = None,
            }
        }
        let count = loop {
            match source.read_at(&mut *buffer, offset) {
                Ok(count) => break count,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(e)),
            }
        };
        if let Some(target) = target.as_deref_mut() {
            target
                .write_all_at(&buffer[..count], offset)
                .map_err(CopyError::Write)?;
        }
        offset += count as u64;
        #[cfg(any(test, feature = "test-hooks"))]
        if count > 0
            && let Some(pause) = options.pause_per_chunk
        {
            std::thread::sleep(pause);
        }
        Ok(count)
    })?;
    if let Some(target) = target {
        // A hole at the end was not written.
        target.set_len(digest.size).map_err(CopyError::Write)?;
    }
    Ok(digest)
}

/// The digest of the chunks `fill` puts in a buffer (returning their
/// length, 0 at the end). Files of [`PIPELINE_MIN`] bytes or more are hashed
/// on a second thread while the next chunk is read (and written), so a large
/// file costs about the slower of its I/O and its hashing, not their sum.
fn digest_chunks<E: Send>(
    size_hint: u64,
    mut fill: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> Result<ContentDigest, E> {
    if size_hint >= PIPELINE_MIN {
        let mut fill = Some(&mut fill);
        match digest_chunks_pipelined(&mut fill) {
            Ok(result) => return result,
            // No thread to be had: hash inline, from the start.
            Err(e) => log::debug!("hashing inline: cannot start a thread: {e}"),
        }
    }
    let mut buffer = vec![0u8; buffer_len(size_hint)];
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let count = fill(&mut buffer)?;
        if count == 0 {
            break;
        }
        hasher.update(&buffer[..count]);
        size += count as u64;
    }
    Ok(ContentDigest {
        size,
        sha256: crate::digest::hex(&hasher.finalize()),
    })
}

/// [`digest_chunks`] with the hashing on a scoped thread; `Err` only when
/// that thread cannot be started (before `fill` was called).
fn digest_chunks_pipelined<E: Send, F: FnMut(&mut [u8]) -> Result<usize, E>>(
    fill: &mut Option<&mut F>,
) -> io::Result<Result<ContentDigest, E>> {
    use std::sync::mpsc;
    const BUFFERS: usize = 4;
    let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(BUFFERS);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..BUFFERS {
        empty_tx
            .send(vec![0u8; CHUNK])
            .expect("the receiver is alive");
    }
    std::thread::scope(|scope| {
        let hasher = std::thread::Builder::new().spawn_scoped(scope, move || {
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            for (buffer, count) in full_rx {
                hasher.update(&buffer[..count]);
                size += count as u64;
                // The reader may have stopped on an error: nobody to return it to.
                let _ = empty_tx.send(buffer);
            }
            ContentDigest {
                size,
                sha256: crate::digest::hex(&hasher.finalize()),
            }
        })?;
        let fill = fill.take().expect("called once");
        let read = (|| {
            // The hasher holds the other end until `full_tx` is dropped.
            while let Ok(mut buffer) = empty_rx.recv() {
                let count = fill(&mut buffer)?;
                if count == 0 {
                    break;
                }
                if full_tx.send((buffer, count)).is_err() {
                    break;
                }
            }
            Ok(())
        })();
        drop(full_tx);
        let digest = hasher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok(read.map(|()| digest))
    })
}
/// A buffer no larger than needed for a file of `size` bytes (one byte more,
/// to see the end in the same read), and at most [`CHUNK`].
fn buffer_len(size: u64) -> usize {
    usize::try_from(size.saturating_add(1)).map_or(CHUNK, |len| len.clamp(4096, CHUNK))
}

/// The size and SHA-256 of everything `reader` yields.
pub fn sha256_digest(reader: impl Read) -> io::Result<ContentDigest> {
    sha256_digest_sized(reader, CHUNK as u64)
}

/// [`sha256_digest`] of a stream about `size_hint` bytes long.
pub fn sha256_digest_sized(mut reader: impl Read, size_hint: u64) -> io::Result<ContentDigest> {
    digest_chunks(size_hint, |buffer| {
        loop {
            match reader.read(buffer) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    })
}

pub fn digest_of_bytes(bytes: &[u8]) -> ContentDigest {
    ContentDigest {
        size: bytes.len() as u64,
        sha256: crate::digest::sha256_hex(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_means_changed_within_a_tick() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let ms = Duration::from_millis;
        assert_eq!(freshness_left((1_000, 0), now), Some(ms(50)));
        assert_eq!(freshness_left((999, 990_000_000), now), Some(ms(40)));
        assert_eq!(freshness_left((999, 900_000_000), now), None);
        assert_eq!(freshness_left((999, 950_000_000), now), None);
        assert_eq!(freshness_left((2_000, 0), now), Some(ms(50)));
        assert_eq!(freshness_left((-5, 0), now), None);
    }

    #[test]
    fn a_file_that_keeps_changing_is_given_up() {
        let path = std::env::temp_dir().join(format!("sqs-archive-copy-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 4 * CHUNK]).unwrap();
        let source = File::open(&path).unwrap();
        let writer = File::options().write(true).open(&path).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let result = std::thread::scope(|s| {
            s.spawn(|| {
                let mut n = 0u8;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n = n.wrapping_add(1);
                    writer.write_all_at(&[n; 4096], 0).unwrap();
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            let options = CopyOptions {
                pause_per_chunk: Some(Duration::from_millis(20)),
                rehash: false,
            };
            let result = copy_consistent(&source, None, options);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            result
        });
        std::fs::remove_file(&path).unwrap();
        assert!(
            matches!(result, Err(CopyError::StillChanging)),
            "{result:?}"
        );
    }

    #[test]
    fn large_files_hash_the_same_on_a_second_thread() {
        let contents: Vec<u8> = (0..PIPELINE_MIN as u32 * 2 + 12_345)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let expected = digest_of_bytes(&contents);
        assert_eq!(
            sha256_digest_sized(&contents[..], contents.len() as u64).unwrap(),
            expected
        );
        let path = std::env::temp_dir().join(format!("sqs-archive-copy2-{}", std::process::id()));
        std::fs::write(&path, &contents).unwrap();
        let source = File::open(&path).unwrap();
        let copy_path = path.with_extension("copy");
        let mut copy = File::create(&copy_path).unwrap();
        let digest = copy_consistent(&source, Some(&mut copy), CopyOptions::default()).unwrap();
        let copied = std::fs::read(&copy_path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(&copy_path).unwrap();
        assert_eq!(digest, expected);
        assert!(copied == contents);
    }

    #[test]
    fn an_unchanged_file_is_copied_once() {
        let path = std::env::temp_dir().join(format!("sqs-archive-copy1-{}", std::process::id()));
        std::fs::write(&path, b"hello\n").unwrap();
        let source = File::open(&path).unwrap();
        let digest = copy_consistent(&source, None, CopyOptions::default()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(digest, digest_of_bytes(b"hello\n"));
    }
}
