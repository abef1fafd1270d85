//! [`HarborCodec`]: harbor frames as a tokio-util [`Decoder`] and
//! [`Encoder`].
//!
//! Frames may arrive split anywhere or several per read; the decoder waits
//! for a whole frame, reserving room for it once its length is known. A length
//! field no frame may have is an error, after which the stream cannot be
//! resynchronised and should be dropped.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::error::HarborCodecError;
use super::frame::HarborFrame;

/// Framing of [`HarborFrame`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct HarborCodec;

impl HarborCodec {
    /// A codec.
    pub fn new() -> Self {
        HarborCodec
    }
}

impl Decoder for HarborCodec {
    type Item = HarborFrame;
    type Error = HarborCodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<HarborFrame>, HarborCodecError> {
        let frame = HarborFrame::decode_from(src)?;
        if frame.is_none() {
            if let Some(total) = HarborFrame::measure(src)? {
                src.reserve(total.saturating_sub(src.len()));
            }
        }
        Ok(frame)
    }
}

impl Encoder<HarborFrame> for HarborCodec {
    type Error = HarborCodecError;

    fn encode(&mut self, frame: HarborFrame, dst: &mut BytesMut) -> Result<(), HarborCodecError> {
        self.encode(&frame, dst)
    }
}

impl Encoder<&HarborFrame> for HarborCodec {
    type Error = HarborCodecError;

    fn encode(&mut self, frame: &HarborFrame, dst: &mut BytesMut) -> Result<(), HarborCodecError> {
        dst.reserve(frame.encoded_len());
        frame.encode_into(dst)
    }
}
