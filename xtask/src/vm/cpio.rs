//! A writer for the kernel's initramfs format: a "newc" cpio archive.
//!
//! Each entry is a 110-byte ASCII header (magic `070701`, then 13 eight-digit hex
//! fields), the NUL-terminated name padded to 4 bytes, then the data padded to 4 bytes;
//! `TRAILER!!!` ends the archive. The kernel does not create parent directories, so the
//! writer emits each missing parent before an entry.

use std::collections::BTreeSet;
use std::io::{self, Write};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Writes a newc archive to `W`.
pub struct CpioWriter<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
    dirs: BTreeSet<String>,
}

impl<W: Write> CpioWriter<W> {
    /// Start an archive.
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            written: 0,
            next_ino: 1,
            dirs: BTreeSet::new(),
        }
    }

    /// A directory (and its parents). `path` is relative to the root, e.g. `usr/lib`.
    pub fn dir(&mut self, path: &str) -> io::Result<()> {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return Ok(());
        }
        self.parents(path)?;
        self.dirs.insert(path.to_string());
        self.entry(path, S_IFDIR | 0o755, 0, &[])
    }

    /// A regular file with permission bits `perm` (e.g. `0o755`).
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        let path = path.trim_start_matches('/');
        self.parents(path)?;
        self.entry(path, S_IFREG | perm, 0, data)
    }

    /// A symbolic link at `path` pointing to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let path = path.trim_start_matches('/');
        self.parents(path)?;
        self.entry(path, S_IFLNK | 0o777, 0, target.as_bytes())
    }

    /// A character device node.
    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        let path = path.trim_start_matches('/');
        self.parents(path)?;
        self.entry(path, S_IFCHR | perm, (major << 8) | minor, &[])
    }

    /// Write the trailer and return the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 0, &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn parents(&mut self, path: &str) -> io::Result<()> {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        Ok(())
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: u32, data: &[u8]) -> io::Result<()> {
        let ino = self.next_ino;
        self.next_ino += 1;
        let (rdev_major, rdev_minor) = (rdev >> 8, rdev & 0xff);
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            if mode & S_IFDIR == S_IFDIR { 2 } else { 1 },
            0, // mtime: reproducible images
            u32::try_from(data.len()).map_err(|_| io::Error::other("file over 4 GiB"))?,
            0, // dev major
            0, // dev minor
            rdev_major,
            rdev_minor,
            u32::try_from(name.len() + 1).expect("short name"),
            0, // check
        ];
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.write(header.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        self.write(data)?;
        self.pad()
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let pad = (4 - (self.written % 4) as usize) % 4;
        self.write(&[0; 3][..pad])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_and_padding() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("a/b", 0o644, b"xyz").unwrap();
        let out = w.finish().unwrap();
        // Entry 1: the implicit directory "a".
        assert!(out.starts_with(b"070701"));
        assert_eq!(&out[110..112], b"a\0");
        let mode = u32::from_str_radix(std::str::from_utf8(&out[14..22]).unwrap(), 16).unwrap();
        assert_eq!(mode, S_IFDIR | 0o755);
        // Every entry starts 4-aligned; the file's data follows its padded name.
        let second = 112; // 110 + "a\0", already aligned
        assert_eq!(&out[second..second + 6], b"070701");
        let data = (second + 110 + 4 + 3) & !3; // "a/b\0", padded to 4
        assert_eq!(&out[data..data + 3], b"xyz");
        assert_eq!(out.len() % 4, 0);
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn parents_are_emitted_once() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("x/y/1", 0o644, b"").unwrap();
        w.file("x/y/2", 0o644, b"").unwrap();
        let out = w.finish().unwrap();
        let count = |needle: &[u8]| out.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!(count(b"x/y\0"), 1);
        assert_eq!(count(b"x\0"), 1);
    }
}
