//! The store-and-forward buffer: line protocol in numbered segment files in one directory.
//! Every line is on disk before it is sent, so a crash or a `kill -9` loses nothing that was
//! buffered (the page cache survives the process); segments are sent oldest first and deleted
//! only once InfluxDB has answered. When the directory exceeds its quota the oldest segments
//! are dropped, counted and logged.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A sealed segment waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: u64,
    pub path: PathBuf,
    pub bytes: u64,
    pub lines: u64,
}

/// The buffer directory.
pub struct DiskBuffer {
    dir: PathBuf,
    quota: u64,
    segment_bytes: u64,
    sealed: VecDeque<Segment>,
    current: Option<(Segment, File)>,
    next_id: u64,
}

fn lines_in(path: &Path) -> std::io::Result<u64> {
    let data = std::fs::read(path)?;
    Ok(data.iter().filter(|b| **b == b'\n').count() as u64)
}

impl DiskBuffer {
    /// Open `dir`, taking every segment a previous run left (all sealed, replayed in order).
    pub fn open(dir: &Path, quota: u64, segment_bytes: u64) -> std::io::Result<DiskBuffer> {
        std::fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let id = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".lp"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(id) = id {
                let bytes = std::fs::metadata(&path)?.len();
                if bytes == 0 {
                    std::fs::remove_file(&path)?;
                    continue;
                }
                // A line cut by a crash in the middle of a write ends without a newline: the
                // sender drops that fragment (InfluxDB would reject it).
                let lines = lines_in(&path)?;
                found.push(Segment { id, path, bytes, lines });
            }
        }
        found.sort_by_key(|s| s.id);
        let next_id = found.last().map_or(1, |s| s.id + 1);
        Ok(DiskBuffer {
            dir: dir.to_path_buf(),
            quota,
            segment_bytes: segment_bytes.max(1),
            sealed: found.into(),
            current: None,
            next_id,
        })
    }

    /// Bytes on disk (sealed and current).
    pub fn bytes(&self) -> u64 {
        self.sealed.iter().map(|s| s.bytes).sum::<u64>() + self.current.as_ref().map_or(0, |c| c.0.bytes)
    }

    /// Lines waiting (sealed and current).
    pub fn lines(&self) -> u64 {
        self.sealed.iter().map(|s| s.lines).sum::<u64>() + self.current.as_ref().map_or(0, |c| c.0.lines)
    }

    /// Append complete lines (each ending with `\n`). Returns the lines dropped to stay within
    /// the quota (oldest first).
    pub fn append(&mut self, data: &[u8], lines: u64) -> std::io::Result<u64> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.current.is_none() {
            let id = self.next_id;
            self.next_id += 1;
            let path = self.dir.join(format!("{id:016}.lp"));
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            self.current = Some((
                Segment {
                    id,
                    path,
                    bytes: 0,
                    lines: 0,
                },
                file,
            ));
        }
        if let Some((seg, file)) = &mut self.current {
            file.write_all(data)?;
            seg.bytes += data.len() as u64;
            seg.lines += lines;
            if seg.bytes >= self.segment_bytes {
                self.seal();
            }
        }
        Ok(self.enforce_quota())
    }

    /// Close the current segment so the sender may take it.
    pub fn seal(&mut self) {
        if let Some((seg, _file)) = self.current.take() {
            self.sealed.push_back(seg);
        }
    }

    fn enforce_quota(&mut self) -> u64 {
        let mut dropped = 0;
        while self.bytes() > self.quota {
            let Some(old) = self.sealed.pop_front() else { break };
            let _ = std::fs::remove_file(&old.path);
            dropped += old.lines;
        }
        dropped
    }

    /// The size the buffer is kept within.
    pub fn quota(&self) -> u64 {
        self.quota
    }

    /// The oldest sealed segment.
    pub fn oldest(&self) -> Option<&Segment> {
        self.sealed.front()
    }

    /// The oldest sealed segment newer than segment `id` (the oldest of all when `None`).
    pub fn next_after(&self, id: Option<u64>) -> Option<&Segment> {
        match id {
            None => self.sealed.front(),
            Some(id) => self.sealed.iter().find(|s| s.id > id),
        }
    }

    /// Forget a segment InfluxDB has answered for.
    pub fn remove(&mut self, id: u64) -> std::io::Result<()> {
        if let Some(pos) = self.sealed.iter().position(|s| s.id == id) {
            if let Some(s) = self.sealed.remove(pos) {
                std::fs::remove_file(&s.path)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("busbar-buffer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn segments_survive_a_reopen_in_order() {
        let d = dir("reopen");
        let mut b = DiskBuffer::open(&d, 1 << 20, 20).unwrap_or_else(|e| panic!("{e}"));
        b.append(b"m f=1 1\nm f=2 2\nm f=3 3\n", 3)
            .unwrap_or_else(|e| panic!("{e}"));
        b.append(b"m f=4 4\n", 1).unwrap_or_else(|e| panic!("{e}"));
        // Not sealed and the process dies: reopening takes everything.
        drop(b);
        let mut b = DiskBuffer::open(&d, 1 << 20, 20).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.lines(), 4);
        let first = b.oldest().cloned().unwrap_or_else(|| panic!("a segment"));
        assert_eq!(
            std::fs::read(&first.path).ok(),
            Some(b"m f=1 1\nm f=2 2\nm f=3 3\n".to_vec())
        );
        b.remove(first.id).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.lines(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_quota_drops_the_oldest_and_counts_them() {
        let d = dir("quota");
        let mut b = DiskBuffer::open(&d, 40, 16).unwrap_or_else(|e| panic!("{e}"));
        let mut dropped = 0;
        for i in 0..10 {
            dropped += b
                .append(format!("m f={i} {i}\n").as_bytes(), 1)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(b.bytes() <= 40, "{}", b.bytes());
        assert_eq!(
            dropped + b.lines(),
            10,
            "every line is either kept or counted as dropped"
        );
        assert!(dropped > 0);
        let _ = std::fs::remove_dir_all(&d);
    }
}
