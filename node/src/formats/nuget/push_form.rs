//! The body of a NuGet push: a `multipart/form-data` form whose one part is the `.nupkg`. Read as
//! a stream with a parser of its own because `nuget.exe` 2.x (mono) closes the form with
//! `\n--<boundary>--` where RFC 7578 has `\r\n--<boundary>--`, which strict parsers refuse as
//! incomplete; both endings are taken here, and anything else after the part is refused.

use axum::body::Body;
use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};

/// The most the part's headers may take.
const HEADER_LIMIT: usize = 64 * 1024;

/// Why a form could not be read.
fn malformed(why: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the multipart form is malformed: {why}"),
    )
}

/// The bytes of the first part of the form `body` (with `boundary`), streamed as they arrive.
pub fn first_part(
    body: Body,
    boundary: &str,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let delimiter = format!("--{boundary}").into_bytes();
    let state = SinglePart {
        inner: body.into_data_stream().boxed(),
        next_part: memchr::memmem::Finder::new(&[b"\n", delimiter.as_slice()].concat())
            .into_owned(),
        delimiter,
        buffer: BytesMut::new(),
        in_body: false,
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        let piece = state.next_piece().await?;
        Some((piece, state))
    })
}

struct SinglePart {
    inner: futures::stream::BoxStream<'static, Result<Bytes, axum::Error>>,
    /// `--<boundary>`.
    delimiter: Vec<u8>,
    /// Finds `\n--<boundary>`: the end of the part, or the start of another.
    next_part: memchr::memmem::Finder<'static>,
    buffer: BytesMut,
    in_body: bool,
    done: bool,
}

impl SinglePart {
    /// The next bytes of the part; `None` once it has all been given.
    async fn next_piece(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        // What may turn out to be the closing delimiter stays in the buffer until the end.
        let keep = self.delimiter.len() + 8;
        loop {
            if self.done {
                return None;
            }
            match self.inner.next().await {
                Some(Ok(data)) => {
                    self.buffer.extend_from_slice(&data);
                    if !self.in_body {
                        match self.skip_part_headers() {
                            Ok(true) => {}
                            Ok(false) => continue,
                            Err(error) => return Some(self.fail(error)),
                        }
                    }
                    if self.buffer.len() > keep {
                        let ready = self.buffer.len() - keep;
                        // A delimiter starting in what is ready (and so wholly in the buffer) is
                        // not the closing one: the kept tail holds that.
                        if self
                            .next_part
                            .find(&self.buffer)
                            .is_some_and(|at| at < ready)
                        {
                            return Some(self.fail(malformed("it has more than one part")));
                        }
                        return Some(Ok(self.buffer.split_to(ready).freeze()));
                    }
                }
                Some(Err(error)) => return Some(self.fail(std::io::Error::other(error))),
                None => {
                    self.done = true;
                    return Some(self.finish());
                }
            }
        }
    }

    fn fail(&mut self, error: std::io::Error) -> Result<Bytes, std::io::Error> {
        self.done = true;
        Err(error)
    }

    /// Drops the opening delimiter and the part's headers once they are all in; `false` while
    /// they are not.
    fn skip_part_headers(&mut self) -> Result<bool, std::io::Error> {
        let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buffer.len() > HEADER_LIMIT {
                return Err(malformed("the part's headers never end"));
            }
            return Ok(false);
        };
        if !self.buffer.starts_with(&self.delimiter) {
            return Err(malformed("it does not start with its boundary"));
        }
        self.buffer.advance(end + 4);
        self.in_body = true;
        Ok(true)
    }

    /// The last bytes of the part: what precedes the closing `\r\n--<boundary>--` (or
    /// `\n--<boundary>--`).
    fn finish(&mut self) -> Result<Bytes, std::io::Error> {
        if !self.in_body {
            return Err(malformed("it ends before its part does"));
        }
        let mut closing = self.delimiter.clone();
        closing.extend_from_slice(b"--");
        let mut tail: &[u8] = &self.buffer;
        for ending in [&b"\r\n"[..], b"\n"] {
            if let Some(rest) = tail.strip_suffix(ending) {
                tail = rest;
                break;
            }
        }
        let before = tail
            .strip_suffix(closing.as_slice())
            .ok_or_else(|| malformed("it was cut short"))?;
        let content = before
            .strip_suffix(b"\r\n")
            .or_else(|| before.strip_suffix(b"\n"))
            .ok_or_else(|| malformed("its closing boundary is not on a line of its own"))?;
        if self.next_part.find(content).is_some() {
            return Err(malformed("it has more than one part"));
        }
        let length = content.len();
        Ok(self.buffer.split_to(length).freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(chunks: Vec<&'static [u8]>) -> Result<Vec<u8>, std::io::Error> {
        let body = Body::from_stream(futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))),
        ));
        let mut out = Vec::new();
        let mut stream = std::pin::pin!(first_part(body, "XyZ"));
        while let Some(piece) = stream.next().await {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn both_closings_are_taken_and_broken_forms_refused() {
        let head: &'static [u8] =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"package\"\r\n\r\n";
        for closing in [&b"\r\n--XyZ--\r\n"[..], b"\n--XyZ--", b"\r\n--XyZ--"] {
            let got = read(vec![head, b"PK\x03\x04 bytes", b" and more", closing])
                .await
                .unwrap();
            assert_eq!(got, b"PK\x03\x04 bytes and more");
        }
        // Split anywhere, the bytes come out the same.
        let got = read(vec![
            b"--XyZ\r\nA: b\r",
            b"\n\r\nab",
            b"c\r\n--X",
            b"yZ--\r\n",
        ])
        .await
        .unwrap();
        assert_eq!(got, b"abc");
        assert!(read(vec![head, b"cut short"]).await.is_err());
        assert!(read(vec![b"--Other\r\n\r\nabc\r\n--XyZ--"]).await.is_err());
        assert!(
            read(vec![head, b"a\r\n--XyZ\r\n\r\nb\r\n--XyZ--"])
                .await
                .is_err()
        );
    }
}
