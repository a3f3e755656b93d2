//! Compression of delivered objects: Firehose's `CompressionFormat` (UNCOMPRESSED, GZIP, ZIP,
//! Snappy, HADOOP_SNAPPY) and the channels' `CompressionType` (NONE, GZIP, ZSTD).
//!
//! - GZIP: one gzip member (`flate2`), readable by `gzip -d`.
//! - ZIP: a zip archive with one deflated entry named after the object (`zip`), for `unzip`.
//! - Snappy: the Snappy *framing format* (google/snappy `framing_format.txt`: stream identifier,
//!   chunks with masked CRC-32C; `snap::write::FrameEncoder`), as read by `python -m snappy -d`
//!   or snappy-java's framed streams.
//! - HADOOP_SNAPPY: Hadoop's `BlockCompressorStream` framing around raw Snappy blocks, as read by
//!   Hadoop's `SnappyCodec` (`hadoop fs -text`, Spark, Hive): for every block of at most
//!   [`HADOOP_SNAPPY_BLOCK_BYTES`] of input, a 4-byte big-endian uncompressed length, then one
//!   chunk: a 4-byte big-endian compressed length and the raw Snappy bytes (`snap::raw`).
//! - ZSTD: one Zstandard frame (`zstd`), readable by `zstd -d`.

use std::io::{self, Write};

/// Input bytes per Hadoop Snappy block. Hadoop's codec reads with a 256 KiB buffer
/// (`io.compression.codec.snappy.buffersize`) and accepts at most
/// `256 KiB - (256 KiB / 6 + 32)` of input per block; 64 KiB stays well inside that, so the
/// compressed chunk (at most 32 + n + n/6 bytes) always fits the reader's buffer.
pub const HADOOP_SNAPPY_BLOCK_BYTES: usize = 64 << 10;
const _: () = assert!(HADOOP_SNAPPY_BLOCK_BYTES <= (256 << 10) - ((256 << 10) / 6 + 32));

/// Zstandard level: the library's default, a good speed/ratio point for logs.
pub const ZSTD_LEVEL: i32 = 3;

/// A compression of delivered objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zip,
    Snappy,
    HadoopSnappy,
    Zstd,
}

impl Compression {
    /// Firehose's `CompressionFormat` values.
    pub fn from_firehose(name: &str) -> Option<Self> {
        Some(match name {
            "UNCOMPRESSED" => Compression::None,
            "GZIP" => Compression::Gzip,
            "ZIP" => Compression::Zip,
            "Snappy" => Compression::Snappy,
            "HADOOP_SNAPPY" => Compression::HadoopSnappy,
            _ => return None,
        })
    }

    /// The channels' `S3CompressionType` values.
    pub fn from_channel(name: &str) -> Option<Self> {
        Some(match name {
            "NONE" => Compression::None,
            "GZIP" => Compression::Gzip,
            "ZSTD" => Compression::Zstd,
            _ => return None,
        })
    }

    /// The extension AWS gives delivered objects in this compression.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zip => ".zip",
            Compression::Snappy => ".snappy",
            Compression::HadoopSnappy => ".hsnappy",
            Compression::Zstd => ".zst",
        }
    }

    /// Compresses `data`; `entry_name` names the one entry of a ZIP archive.
    pub fn compress(self, data: &[u8], entry_name: &str) -> io::Result<Vec<u8>> {
        match self {
            Compression::None => Ok(data.to_vec()),
            Compression::Gzip => gzip(data),
            Compression::Zip => {
                let mut writer = zip::ZipWriter::new(io::Cursor::new(Vec::with_capacity(data.len() / 4)));
                let options = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .large_file(data.len() as u64 >= u32::MAX as u64);
                writer.start_file(entry_name, options).map_err(io::Error::other)?;
                writer.write_all(data)?;
                Ok(writer.finish().map_err(io::Error::other)?.into_inner())
            }
            Compression::Snappy => {
                let mut encoder = snap::write::FrameEncoder::new(Vec::with_capacity(data.len() / 2));
                encoder.write_all(data)?;
                encoder.into_inner().map_err(|e| io::Error::other(e.to_string()))
            }
            Compression::HadoopSnappy => hadoop_snappy(data),
            Compression::Zstd => zstd::bulk::compress(data, ZSTD_LEVEL),
        }
    }
}

/// One gzip member of `data`.
pub fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4), flate2::Compression::default());
    encoder.write_all(data)?;
    encoder.finish()
}

/// Hadoop `BlockCompressorStream` framing of raw Snappy blocks (see the module docs).
pub fn hadoop_snappy(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 2 + 16);
    let mut encoder = snap::raw::Encoder::new();
    for block in data.chunks(HADOOP_SNAPPY_BLOCK_BYTES) {
        let compressed = encoder.compress_vec(block).map_err(io::Error::other)?;
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<u8> {
        (0..200_000u32).flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes()).collect()
    }

    #[test]
    fn gzip_round_trip() {
        let data = sample();
        let z = Compression::Gzip.compress(&data, "x").unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn snappy_framed_round_trip() {
        let data = sample();
        let z = Compression::Snappy.compress(&data, "x").unwrap();
        assert_eq!(&z[..10], b"\xff\x06\x00\x00sNaPpY", "stream identifier chunk");
        let mut back = Vec::new();
        snap::read::FrameDecoder::new(&z[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn hadoop_snappy_blocks() {
        let data = sample();
        let z = hadoop_snappy(&data).unwrap();
        let mut back = Vec::new();
        let mut rest = &z[..];
        let mut blocks = 0;
        while !rest.is_empty() {
            let raw = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let len = u32::from_be_bytes(rest[4..8].try_into().unwrap()) as usize;
            assert!(raw <= HADOOP_SNAPPY_BLOCK_BYTES);
            back.extend(snap::raw::Decoder::new().decompress_vec(&rest[8..8 + len]).unwrap());
            rest = &rest[8 + len..];
            blocks += 1;
        }
        assert_eq!(back, data);
        assert_eq!(blocks, data.len().div_ceil(HADOOP_SNAPPY_BLOCK_BYTES));
    }

    #[test]
    fn zstd_and_zip_round_trip() {
        let data = sample();
        let z = Compression::Zstd.compress(&data, "x").unwrap();
        assert_eq!(zstd::bulk::decompress(&z, data.len()).unwrap(), data);
        let z = Compression::Zip.compress(&data, "entry").unwrap();
        let mut archive = zip::ZipArchive::new(io::Cursor::new(z)).unwrap();
        let mut back = Vec::new();
        archive.by_name("entry").unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn empty_input() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Zip,
            Compression::Snappy,
            Compression::HadoopSnappy,
            Compression::Zstd,
        ] {
            c.compress(&[], "e").unwrap();
        }
    }
}
