//! Versioned encodings of everything persist writes: shard state and batches.
//!
//! Every encoding starts with a format version byte, followed by bincode 1.3 (fixed-width
//! integers, little endian) of the value; batches are lz4-compressed after the version
//! byte. Decoding never panics and never allocates more than the input can justify:
//! unknown versions, truncated or corrupt bytes and rows that do not decode are all a
//! [`CodecError`].

use bincode::Options;
use repr::Row;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::state::ShardState;
use crate::Update;

/// The format of [`ShardState`] in consensus.
pub const STATE_FORMAT: u8 = 1;
/// The format of batch blobs.
pub const BATCH_FORMAT: u8 = 1;

/// lz4 expands at most about 255x; a larger claimed size is corruption.
const MAX_LZ4_RATIO: usize = 256;

/// Persisted bytes that do not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {what}: {detail}")]
pub struct CodecError {
    pub what: &'static str,
    pub detail: String,
}

fn error(what: &'static str, detail: impl Into<String>) -> CodecError {
    CodecError {
        what,
        detail: detail.into(),
    }
}

fn options() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding()
}

/// `version` followed by the bincode of `value`; `what` names the value in errors.
///
/// Fails only for values bincode cannot express (such as `#[serde(flatten)]`).
pub fn encode_versioned<T: Serialize>(
    what: &'static str,
    version: u8,
    value: &T,
) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![version];
    options()
        .serialize_into(&mut out, value)
        .map_err(|e| error(what, e.to_string()))?;
    Ok(out)
}

/// The inverse of [`encode_versioned`]; `what` names the value in errors.
pub fn decode_versioned<T: DeserializeOwned>(
    what: &'static str,
    version: u8,
    bytes: &[u8],
) -> Result<T, CodecError> {
    let payload = check_version(what, version, bytes)?;
    options()
        .with_limit(payload.len() as u64)
        .deserialize(payload)
        .map_err(|e| error(what, e.to_string()))
}

fn check_version<'a>(
    what: &'static str,
    version: u8,
    bytes: &'a [u8],
) -> Result<&'a [u8], CodecError> {
    match bytes.split_first() {
        None => Err(error(what, "empty input")),
        Some((&v, payload)) if v == version => Ok(payload),
        Some((v, _)) => Err(error(what, format!("unknown format version {v}"))),
    }
}

pub fn encode_state(state: &ShardState) -> Vec<u8> {
    encode_versioned("shard state", STATE_FORMAT, state)
        .expect("shard state is plain data bincode can encode")
}

/// Decodes a shard state and checks its invariants.
pub fn decode_state(bytes: &[u8]) -> Result<ShardState, CodecError> {
    let state: ShardState = decode_versioned("shard state", STATE_FORMAT, bytes)?;
    state.validate().map_err(|e| error("shard state", e))?;
    Ok(state)
}

/// Encodes updates as a batch blob.
pub fn encode_batch(updates: &[Update]) -> Vec<u8> {
    let plain = options()
        .serialize(updates)
        .expect("bincode serializes plain data");
    let mut out = vec![BATCH_FORMAT];
    out.extend_from_slice(&lz4_flex::compress_prepend_size(&plain));
    out
}

/// Decodes a batch blob, checking that every row decodes.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Update>, CodecError> {
    const WHAT: &str = "batch";
    let compressed = check_version(WHAT, BATCH_FORMAT, bytes)?;
    let size = compressed
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| error(WHAT, "truncated size"))?;
    if size > compressed.len().saturating_mul(MAX_LZ4_RATIO) {
        return Err(error(WHAT, format!("implausible uncompressed size {size}")));
    }
    let plain =
        lz4_flex::decompress_size_prepended(compressed).map_err(|e| error(WHAT, e.to_string()))?;
    let updates: Vec<Update> = options()
        .with_limit(plain.len() as u64)
        .deserialize(&plain)
        .map_err(|e| error(WHAT, e.to_string()))?;
    // Row's serde takes bytes on trust; a row that does not decode would panic later.
    updates
        .into_iter()
        .map(
            |(row, time, diff)| match Row::from_bytes(row.data().to_vec()) {
                Some(row) => Ok((row, time, diff)),
                None => Err(error(WHAT, "a row does not decode")),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use repr::Datum;

    use super::*;
    use crate::state::HollowBatch;
    use crate::{ReaderId, ShardId};

    fn updates() -> Vec<Update> {
        vec![
            (
                Row::pack_slice(&[Datum::Int64(1), Datum::String("a")]),
                3,
                1,
            ),
            (
                Row::pack_slice(&[Datum::Null, Datum::String(&"x".repeat(400))]),
                4,
                -2,
            ),
            (Row::pack_slice(&[]), 9, 7),
        ]
    }

    #[test]
    fn batches_round_trip() {
        let bytes = encode_batch(&updates());
        assert_eq!(bytes[0], BATCH_FORMAT);
        assert_eq!(decode_batch(&bytes).unwrap(), updates());
        assert_eq!(decode_batch(&encode_batch(&[])).unwrap(), vec![]);
    }

    #[test]
    fn state_round_trips() {
        let mut state = ShardState::new(ShardId::new());
        state.upper = 10;
        state.batches.push(HollowBatch {
            lower: 0,
            upper: 10,
            key: "k".into(),
            len: 3,
        });
        let reader = state.register_reader("r", 0, 42);
        assert_eq!(reader, ReaderId(0));
        let bytes = encode_state(&state);
        assert_eq!(bytes[0], STATE_FORMAT);
        assert_eq!(decode_state(&bytes).unwrap(), state);
    }

    #[test]
    fn rejects_unknown_versions_and_garbage() {
        let mut bytes = encode_batch(&updates());
        bytes[0] = 9;
        let e = decode_batch(&bytes).unwrap_err();
        assert_eq!(e.detail, "unknown format version 9");
        assert_eq!(decode_batch(&[]).unwrap_err().detail, "empty input");

        let state = encode_state(&ShardState::new(ShardId::new()));
        assert!(decode_state(&state[..state.len() - 1]).is_err());
        let mut longer = state.clone();
        longer.push(0);
        assert!(
            decode_state(&longer).is_err(),
            "trailing bytes are rejected"
        );

        // A huge claimed size, flipped bytes, and random bytes: errors, no panic, no OOM.
        assert!(decode_batch(&[BATCH_FORMAT, 0xff, 0xff, 0xff, 0xff, 1, 2]).is_err());
        let good = encode_batch(&updates());
        for i in 1..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x5a;
            let _ = decode_batch(&bad);
        }
        let mut x: u32 = 12345;
        for len in 0..200 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = decode_batch(&[&[BATCH_FORMAT][..], &junk].concat());
            let _ = decode_state(&[&[STATE_FORMAT][..], &junk].concat());
        }
    }

    #[test]
    fn rejects_rows_that_do_not_decode() {
        // A row whose bytes hold an unknown datum tag, smuggled past Row's serde.
        let plain = options()
            .serialize(&vec![(vec![200u8], 1u64, 1i64)])
            .unwrap();
        let mut bytes = vec![BATCH_FORMAT];
        bytes.extend_from_slice(&lz4_flex::compress_prepend_size(&plain));
        // Row's deserializer checks the bytes, so the batch fails to decode.
        let error = decode_batch(&bytes).unwrap_err();
        assert_eq!(error.what, "batch");
        assert!(error.detail.contains("row"), "{}", error.detail);
    }
}
