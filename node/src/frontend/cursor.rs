//! Reading a stored blob as a file: [`BlobCursor`] is `Read + Seek`, fetching one verified chunk at
//! a time, so an archive's index or one member can be read without the rest of it.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use arca_protocol::BlobRef;
use bytes::Bytes;

use crate::blob::ChunkStore;

/// `Read + Seek` over a blob, one verified chunk at a time (blocking: use from a blocking task).
pub struct BlobCursor {
    store: Arc<ChunkStore>,
    blob: BlobRef,
    position: u64,
    /// The chunk last read: its offset in the blob and its bytes.
    current: Option<(u64, Bytes)>,
}

impl BlobCursor {
    /// A cursor at the start of `blob`.
    pub fn new(store: Arc<ChunkStore>, blob: BlobRef) -> Self {
        BlobCursor {
            store,
            blob,
            position: 0,
            current: None,
        }
    }

    /// The chunk holding byte `position` and that chunk's offset.
    fn chunk_at(&mut self, position: u64) -> io::Result<(u64, Bytes)> {
        if let Some((start, bytes)) = &self.current
            && (*start..*start + bytes.len() as u64).contains(&position)
        {
            return Ok((*start, bytes.clone()));
        }
        if let Some(inline) = &self.blob.inline {
            let bytes = Bytes::copy_from_slice(inline);
            self.current = Some((0, bytes.clone()));
            return Ok((0, bytes));
        }
        let mut start = 0u64;
        for chunk in &self.blob.chunks {
            let end = start + u64::from(chunk.size);
            if position < end {
                let bytes = self.store.get(chunk).map_err(io::Error::other)?;
                self.current = Some((start, bytes.clone()));
                return Ok((start, bytes));
            }
            start = end;
        }
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "position past the end of the blob",
        ))
    }
}

impl Read for BlobCursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.position >= self.blob.size {
            return Ok(0);
        }
        let (start, bytes) = self.chunk_at(self.position)?;
        let from = (self.position - start) as usize;
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for BlobCursor {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.blob.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}
