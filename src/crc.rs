//! CRC-32 (zlib's) and CRC-32C (Castagnoli's), with the combination of two CRCs into the CRC of
//! their concatenation, as S3's full-object checksums need (pure).
//!
//! Slicing-by-8 with tables built at first use: the 16 KiB of tables live in zeroed memory, not
//! in the `.wasm` (stored tables are random-looking bytes that do not compress). Measured by
//! `scripts/bench-hashing.sh`, still an order of magnitude above upload speeds.

use std::sync::OnceLock;

/// One CRC-32 variant: its reflected polynomial and the tables built from it.
pub struct Crc32Kind {
    polynomial: u32,
    tables: OnceLock<[[u32; 256]; 8]>,
}

/// CRC-32 (ISO-HDLC, zlib's, S3's `CRC32`).
pub static CRC32: Crc32Kind = Crc32Kind::new(0xEDB8_8320);
/// CRC-32C (Castagnoli, S3's `CRC32C`).
pub static CRC32C: Crc32Kind = Crc32Kind::new(0x82F6_3B78);

impl Crc32Kind {
    const fn new(polynomial: u32) -> Self {
        Crc32Kind { polynomial, tables: OnceLock::new() }
    }

    fn tables(&self) -> &[[u32; 256]; 8] {
        self.tables.get_or_init(|| {
            let mut tables = [[0u32; 256]; 8];
            for (n, entry) in tables[0].iter_mut().enumerate() {
                let mut crc = n as u32;
                for _ in 0..8 {
                    crc = if crc & 1 == 1 { (crc >> 1) ^ self.polynomial } else { crc >> 1 };
                }
                *entry = crc;
            }
            // Table k: the CRC of a byte followed by k zero bytes.
            for k in 1..8 {
                let (done, rest) = tables.split_at_mut(k);
                for (n, entry) in rest[0].iter_mut().enumerate() {
                    let previous = done[k - 1][n];
                    *entry = (previous >> 8) ^ done[0][(previous & 0xFF) as usize];
                }
            }
            tables
        })
    }

    /// The CRC of the bytes hashed so far (`crc`, 0 for none) followed by `bytes`.
    pub fn update(&self, crc: u32, bytes: &[u8]) -> u32 {
        let t = self.tables();
        let mut crc = !crc;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let low = crc ^ u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let high = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            crc = t[7][(low & 0xFF) as usize]
                ^ t[6][(low >> 8 & 0xFF) as usize]
                ^ t[5][(low >> 16 & 0xFF) as usize]
                ^ t[4][(low >> 24) as usize]
                ^ t[3][(high & 0xFF) as usize]
                ^ t[2][(high >> 8 & 0xFF) as usize]
                ^ t[1][(high >> 16 & 0xFF) as usize]
                ^ t[0][(high >> 24) as usize];
        }
        for &byte in chunks.remainder() {
            crc = (crc >> 8) ^ t[0][((crc ^ u32::from(byte)) & 0xFF) as usize];
        }
        !crc
    }

    /// The CRC of A followed by B, from `first` (A's CRC), `second` (B's) and B's length: zlib's
    /// `crc32_combine`, appending `len` zero bytes to A by squaring the one-zero-bit operator.
    pub fn combine(&self, first: u32, second: u32, len: u64) -> u32 {
        if len == 0 {
            return first;
        }
        // The operator for one zero bit, then for two, four...: row i is the image of bit i.
        let mut odd = [0u32; 32];
        odd[0] = self.polynomial;
        let mut row = 1;
        for entry in odd.iter_mut().skip(1) {
            *entry = row;
            row <<= 1;
        }
        let mut even = square(&odd); // two zero bits
        odd = square(&even); // four
        let (mut crc, mut len) = (first, len);
        // Each round applies the operator for 8, 16, 32... zero bits where `len` has a one.
        loop {
            even = square(&odd);
            if len & 1 == 1 {
                crc = times(&even, crc);
            }
            len >>= 1;
            if len == 0 {
                break;
            }
            odd = square(&even);
            if len & 1 == 1 {
                crc = times(&odd, crc);
            }
            len >>= 1;
            if len == 0 {
                break;
            }
        }
        crc ^ second
    }
}

/// The matrix (over GF(2), one `u32` per column) times the vector.
fn times(matrix: &[u32; 32], mut vector: u32) -> u32 {
    let mut sum = 0;
    for column in matrix {
        if vector & 1 == 1 {
            sum ^= column;
        }
        vector >>= 1;
        if vector == 0 {
            break;
        }
    }
    sum
}

fn square(matrix: &[u32; 32]) -> [u32; 32] {
    let mut out = [0u32; 32];
    for (i, column) in matrix.iter().enumerate() {
        out[i] = times(matrix, *column);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_check_values() {
        // The CRC catalogue's check value: the CRC of "123456789".
        assert_eq!(CRC32.update(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(CRC32C.update(0, b"123456789"), 0xE306_9283);
        assert_eq!(CRC32C.update(0, &[0u8; 32]), 0x8A91_36AA, "RFC 3720's 32 zero bytes");
        assert_eq!(CRC32C.update(0, &[0xFFu8; 32]), 0x62A8_AB43, "RFC 3720's 32 0xFF bytes");
    }

    #[test]
    fn hashing_in_pieces_and_combining_equal_hashing_whole() {
        let bytes: Vec<u8> = (0..10_007u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for kind in [&CRC32, &CRC32C] {
            let whole = kind.update(0, &bytes);
            for split in [0, 1, 7, 8, 9, 4096, 10_006, 10_007] {
                let (a, b) = bytes.split_at(split);
                assert_eq!(kind.update(kind.update(0, a), b), whole, "appended at {split}");
                let combined = kind.combine(kind.update(0, a), kind.update(0, b), b.len() as u64);
                assert_eq!(combined, whole, "combined at {split}");
            }
        }
    }
}
