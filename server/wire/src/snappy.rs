//! Snappy block format (not the framed stream format), as remote write and Loki's push use it.
//!
//! A snappy block starts with its decompressed length as a varint, so decompression checks
//! that length against the caller's cap before it allocates anything: an 8-byte body can
//! declare gigabytes.

/// Why a body could not be decompressed. The messages are what a sender is answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnappyError {
    /// The length header is missing or malformed.
    #[error("the body is not snappy-compressed (block format): {0}")]
    NotSnappy(snap::Error),
    /// The declared decompressed length is over the cap.
    #[error("the body declares {declared} bytes once decompressed, more than the {max} allowed")]
    TooLarge { declared: usize, max: usize },
    /// The compressed data is corrupt.
    #[error("the body is not valid snappy (block format): {0}")]
    Corrupt(snap::Error),
}

/// Decompresses a snappy block of at most `decoded_bytes_max` bytes once decompressed.
pub fn decompress(body: &[u8], decoded_bytes_max: usize) -> Result<Vec<u8>, SnappyError> {
    let declared = snap::raw::decompress_len(body).map_err(SnappyError::NotSnappy)?;
    if declared > decoded_bytes_max {
        return Err(SnappyError::TooLarge {
            declared,
            max: decoded_bytes_max,
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(SnappyError::Corrupt)
}

/// Compresses `raw` as one snappy block.
///
/// # Panics
///
/// If `raw` is 4 GiB or more (a block's length header is 32 bits).
pub fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .expect("snappy compresses any input below 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_within_the_cap_and_refuses_beyond_it() {
        let raw = b"remote write remote write remote write".repeat(10);
        let body = compress(&raw);
        assert_eq!(decompress(&body, raw.len()).unwrap(), raw);
        assert_eq!(
            decompress(&body, raw.len() - 1),
            Err(SnappyError::TooLarge {
                declared: raw.len(),
                max: raw.len() - 1
            })
        );
        // 4 GiB - 1 declared by five bytes of header.
        let e = decompress(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00], 1 << 20).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the body declares 4294967295 bytes once decompressed, more than the 1048576 allowed"
        );
        assert!(matches!(decompress(&[], 10), Err(SnappyError::Corrupt(_))));
        assert!(matches!(
            decompress(&[0xff, 0xff, 0xff, 0xff, 0x1f], 10),
            Err(SnappyError::NotSnappy(_))
        ));
    }
}
