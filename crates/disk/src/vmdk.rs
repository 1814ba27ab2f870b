//! VMDK, stream-optimized (the kind VMware and VirtualBox import, and LinuxKit's `vmdk`): a
//! sparse header whose grain directory offset says "at the end", the descriptor, every
//! non-zero 64 KiB grain compressed with zlib behind its grain marker, then the grain tables,
//! the grain directory, a footer (the header with the real directory offset) and the
//! end-of-stream marker. Written front to back; only the grain directory and tables (4 bytes per
//! grain) and four batches of grains (read, packed, queued, being written: 1 MiB per core each)
//! are kept in memory.

use crate::gpt::derived_u32;
use crate::num::usize_of;
use crate::sparse::{field32, read_cluster, SparseError};
use flate2::write::ZlibEncoder;
use flate2::Compression;
use std::io::{Read, Write};

const SECTOR: u64 = 512;
const GRAIN_SECTORS: u64 = 128;
const GRAIN: u64 = GRAIN_SECTORS * SECTOR;
const GT_ENTRIES: u64 = 512;
const GT_ENTRIES_U32: u32 = 512;
const GD_AT_END: u64 = u64::MAX;
const MARKER_GT: u32 = 1;
const MARKER_GD: u32 = 2;
const MARKER_FOOTER: u32 = 3;

fn header(capacity: u64, descriptor_sectors: u64, gd_offset: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..4].copy_from_slice(b"KDMV");
    h[4..8].copy_from_slice(&3u32.to_le_bytes());
    // Valid newline test, compressed grains, markers.
    h[8..12].copy_from_slice(&(1u32 | 1 << 16 | 1 << 17).to_le_bytes());
    h[12..20].copy_from_slice(&capacity.to_le_bytes());
    h[20..28].copy_from_slice(&GRAIN_SECTORS.to_le_bytes());
    h[28..36].copy_from_slice(&1u64.to_le_bytes()); // descriptor at sector 1
    h[36..44].copy_from_slice(&descriptor_sectors.to_le_bytes());
    h[44..48].copy_from_slice(&GT_ENTRIES_U32.to_le_bytes());
    h[56..64].copy_from_slice(&gd_offset.to_le_bytes());
    let overhead = (1 + descriptor_sectors).next_multiple_of(GRAIN_SECTORS);
    h[64..72].copy_from_slice(&overhead.to_le_bytes());
    h[73..77].copy_from_slice(b"\n \r\n");
    h[77..79].copy_from_slice(&1u16.to_le_bytes()); // deflate
    h
}

fn marker(value: u64, kind: u32) -> [u8; 512] {
    let mut m = [0u8; 512];
    m[..8].copy_from_slice(&value.to_le_bytes());
    m[12..16].copy_from_slice(&kind.to_le_bytes());
    m
}

fn descriptor(capacity: u64, file_name: &str, seed: &[u8]) -> Vec<u8> {
    let cylinders = (capacity / (255 * 63)).min(65_535);
    let text = format!(
        "# Disk DescriptorFile\nversion=1\nCID={:08x}\nparentCID=ffffffff\n\
         createType=\"streamOptimized\"\n\n# Extent description\n\
         RW {capacity} SPARSE \"{file_name}\"\n\n# The Disk Data Base\n#DDB\n\n\
         ddb.virtualHWVersion = \"6\"\nddb.geometry.cylinders = \"{cylinders}\"\n\
         ddb.geometry.heads = \"255\"\nddb.geometry.sectors = \"63\"\n\
         ddb.adapterType = \"lsilogic\"\n",
        derived_u32(seed, "vmdk-cid")
    );
    let mut bytes = text.into_bytes();
    bytes.resize(bytes.len().next_multiple_of(usize_of(SECTOR)), 0);
    bytes
}

/// Grains a thread takes at a time (1 MiB), and tests for compressibility as one: a run whose
/// samples (one per grain) promise deflate under 1 % is stored whole; in any other run each
/// grain is tested on its own (four samples) and stored or deflated.
const RUN: usize = 16;

/// The grains `grains` (LBA-ordered grain numbers) whose bytes lie one after the other in
/// `bytes`, each packed ([`pack`]).
fn pack_run(grains: &[u64], bytes: &[u8]) -> Vec<std::io::Result<Vec<u8>>> {
    let all_stored = grains.len() == RUN && baleen_formats::incompressible(bytes);
    let each = bytes.chunks(usize_of(GRAIN));
    let store = |data| all_stored || baleen_formats::incompressible(data);
    grains.iter().zip(each).map(|(g, data)| pack(*g, data, store(data))).collect()
}

/// One grain behind its marker (grain LBA, compressed length), padded to a sector; `store`
/// stores its bytes rather than deflate them.
fn pack(g: u64, data: &[u8], store: bool) -> std::io::Result<Vec<u8>> {
    let mut packed = Vec::with_capacity(usize_of(GRAIN) + 1024);
    packed.extend_from_slice(&(g * GRAIN_SECTORS).to_le_bytes());
    packed.extend_from_slice(&[0; 4]);
    let mut packed = if store {
        // Already-compressed grains (the kernel, the gzip'd initrd) are stored: deflate would
        // spend its full time on them for nothing. A zlib stream: header (deflate, 32 KiB
        // window, no dictionary, FCHECK making it a multiple of 31), stored blocks, Adler-32.
        packed.extend_from_slice(&[0x78, 0x01]);
        baleen_formats::stored_deflate_into(data, true, &mut packed);
        packed.extend_from_slice(&adler2::adler32_slice(data).to_be_bytes());
        packed
    } else {
        let mut z = ZlibEncoder::new(packed, Compression::default());
        z.write_all(data)?;
        z.finish()?
    };
    // A grain is 64 KiB, and zlib's worst case for it a few bytes more: far under 4 GiB.
    #[allow(clippy::cast_possible_truncation)]
    let clen = (packed.len() - 12) as u32;
    packed[8..12].copy_from_slice(&clen.to_le_bytes());
    packed.resize(packed.len().next_multiple_of(usize_of(SECTOR)), 0);
    Ok(packed)
}

/// Converts the `size`-byte raw image, read from `raw` once front to back (from where it
/// stands: it can be a pipe), into a stream-optimized VMDK on `out`; `file_name` is the extent
/// name in the descriptor, `seed` fixes the content id.
pub fn write_vmdk<R: Read, W: Write + Send>(
    raw: &mut R,
    size: u64,
    file_name: &str,
    seed: &[u8],
    mut out: W,
) -> Result<(), SparseError> {
    let w = |source| SparseError::Write { source };
    let capacity = size.div_ceil(SECTOR);
    let grains = size.div_ceil(GRAIN);
    let desc = descriptor(capacity, file_name, seed);
    let desc_sectors = desc.len() as u64 / SECTOR;
    out.write_all(&header(capacity, desc_sectors, GD_AT_END)).map_err(w)?;
    out.write_all(&desc).map_err(w)?;
    let mut at = 1 + desc_sectors; // in sectors
    let overhead = (1 + desc_sectors).next_multiple_of(GRAIN_SECTORS);
    crate::uki::write_zeros(&mut out, (overhead - at) * SECTOR).map_err(w)?;
    at = overhead;

    let mut gt = vec![0u32; usize_of(grains).next_multiple_of(usize_of(GT_ENTRIES))];
    // Grains are compressed on every core, a run of them per thread, and written in grain
    // order, so the bytes do not depend on the thread count; a batch bounds the memory held.
    // A thread of its own writes each batch while the next is read and packed.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let batch = threads * RUN;
    std::thread::scope(|s| -> Result<(), SparseError> {
        let (batches, received) = std::sync::mpsc::sync_channel::<Vec<Vec<u8>>>(1);
        let sink = &mut out;
        let writer = s.spawn(move || -> std::io::Result<()> {
            for batch in received {
                batch.iter().try_for_each(|p| sink.write_all(p))?;
            }
            Ok(())
        });
        let mut bytes = vec![0u8; batch * usize_of(GRAIN)];
        let (mut group, mut next) = (Vec::with_capacity(batch), 0u64);
        loop {
            // The next `batch` grains that hold a non-zero byte (all-zero ones are left out:
            // readers take a grain with no table entry as zeros), read in order.
            group.clear();
            while group.len() < batch && next < grains {
                let slot = &mut bytes[group.len() * usize_of(GRAIN)..][..usize_of(GRAIN)];
                read_cluster(raw, size, next, slot)?;
                if !baleen_formats::is_zero(slot) {
                    group.push(next);
                }
                next += 1;
            }
            if group.is_empty() {
                break;
            }
            let bytes = &bytes[..group.len() * usize_of(GRAIN)];
            let packed: Vec<std::io::Result<Vec<u8>>> = std::thread::scope(|s| {
                let runs = group.chunks(RUN).zip(bytes.chunks(RUN * usize_of(GRAIN)));
                let handles: Vec<_> =
                    runs.map(|(gs, b)| s.spawn(move || pack_run(gs, b))).collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().expect("a grain compressor panicked"))
                    .collect()
            });
            let packed = packed.into_iter().collect::<std::io::Result<Vec<_>>>().map_err(w)?;
            for (g, p) in group.iter().zip(&packed) {
                gt[usize_of(*g)] = field32("VMDK", "grain sector", at)?;
                at += p.len() as u64 / SECTOR;
            }
            if batches.send(packed).is_err() {
                break; // the writer stopped on an error, which join returns
            }
        }
        drop(batches);
        writer.join().expect("the grain writer panicked").map_err(w)
    })?;

    // Grain tables (only those with a grain), then the directory pointing at them.
    let gt_sectors = GT_ENTRIES * 4 / SECTOR;
    let mut gd = vec![0u32; gt.len() / usize_of(GT_ENTRIES)];
    for (t, table) in gt.chunks(usize_of(GT_ENTRIES)).enumerate() {
        if table.iter().all(|e| *e == 0) {
            continue;
        }
        out.write_all(&marker(gt_sectors, MARKER_GT)).map_err(w)?;
        at += 1;
        gd[t] = field32("VMDK", "grain table sector", at)?;
        let bytes: Vec<u8> = table.iter().flat_map(|e| e.to_le_bytes()).collect();
        out.write_all(&bytes).map_err(w)?;
        at += gt_sectors;
    }
    let mut gd_bytes: Vec<u8> = gd.iter().flat_map(|e| e.to_le_bytes()).collect();
    gd_bytes.resize(gd_bytes.len().next_multiple_of(usize_of(SECTOR)), 0);
    let gd_sectors = gd_bytes.len() as u64 / SECTOR;
    out.write_all(&marker(gd_sectors, MARKER_GD)).map_err(w)?;
    at += 1;
    let gd_at = at;
    out.write_all(&gd_bytes).map_err(w)?;
    out.write_all(&marker(1, MARKER_FOOTER)).map_err(w)?;
    out.write_all(&header(capacity, desc_sectors, gd_at)).map_err(w)?;
    out.write_all(&[0u8; 512]).map_err(w) // end of stream
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn unpack(packed: &[u8]) -> Vec<u8> {
        let clen = u32::from_le_bytes(packed[8..12].try_into().unwrap()) as usize;
        let mut back = Vec::new();
        flate2::read::ZlibDecoder::new(&packed[12..12 + clen]).read_to_end(&mut back).unwrap();
        back
    }

    #[test]
    fn an_incompressible_grain_is_stored_and_a_compressible_one_deflated() {
        let noise = baleen_testkit::noise(usize_of(GRAIN), 0x9e37_79b9_7f4a_7c15);
        let stored = pack_run(&[3], &noise).pop().unwrap().unwrap();
        assert_eq!(&stored[..8], &(3 * GRAIN_SECTORS).to_le_bytes(), "grain LBA");
        assert_eq!(&stored[12..14], &[0x78, 0x01], "our zlib header: stored, not zlib's");
        assert_eq!(stored.len() % usize_of(SECTOR), 0);
        assert!(unpack(&stored) == noise);

        let text: Vec<u8> = (0..usize_of(GRAIN)).map(|i| b"grain "[i % 6]).collect();
        let deflated = pack_run(&[4], &text).pop().unwrap().unwrap();
        assert!(deflated.len() < 4096, "{} bytes", deflated.len());
        assert!(unpack(&deflated) == text);
    }

    /// Fails the one write that reaches byte `fail_at`, takes every other.
    struct FailsOnce {
        at: usize,
        fail_at: Option<usize>,
    }

    impl Write for FailsOnce {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.at + buf.len() > f) {
                self.fail_at = None;
                return Err(std::io::Error::other("disk full"));
            }
            self.at += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A write that fails, in the header, amid the grains (in the writer thread) or in the
    /// tables after them, comes back as the error: not lost, no hang, no panic.
    #[test]
    fn a_failing_write_is_an_error_wherever_it_fails() {
        let raw = baleen_testkit::noise(8 << 20, 3);
        let write = |fail_at| {
            let mut cur = std::io::Cursor::new(&raw);
            let out = FailsOnce { at: 0, fail_at };
            write_vmdk(&mut cur, raw.len() as u64, "d.vmdk", b"s", out)
        };
        let mut whole = FailsOnce { at: 0, fail_at: None };
        let mut cur = std::io::Cursor::new(&raw);
        write_vmdk(&mut cur, raw.len() as u64, "d.vmdk", b"s", &mut whole).unwrap();
        // After the grains come over 4 KiB of tables, directory, footer and markers.
        for fail_at in [0, 100, 64 << 10, 3 << 20, (8 << 20) + 100_000, whole.at - 1000] {
            let e = write(Some(fail_at)).expect_err("a write failed");
            let e = baleen_testkit::boot::chain(&e);
            assert!(e.contains("disk full"), "{fail_at}: {e}");
        }
        write(None).unwrap();
    }

    #[test]
    fn a_run_of_noise_is_stored_whole_and_a_mixed_run_grain_by_grain() {
        let grain = usize_of(GRAIN);
        let noise = baleen_testkit::noise(RUN * grain, 7);
        let grains: Vec<u64> = (10..10 + RUN as u64).collect();
        let packed = pack_run(&grains, &noise);
        for (i, p) in packed.iter().enumerate() {
            let p = p.as_ref().unwrap();
            assert_eq!(&p[12..14], &[0x78, 0x01], "grain {i} stored");
            assert!(unpack(p) == noise[i * grain..(i + 1) * grain]);
        }
        // Text in grain 5, where one of the run's samples falls: the run as a whole looks
        // compressible, so each grain is tested alone and only grain 5 is deflated.
        let mut mixed = noise.clone();
        let text: Vec<u8> = (0..grain).map(|i| b"grain "[i % 6]).collect();
        mixed[5 * grain..6 * grain].copy_from_slice(&text);
        let packed = pack_run(&grains, &mixed);
        for (i, p) in packed.iter().enumerate() {
            let p = p.as_ref().unwrap();
            assert_eq!(p[12..14] == [0x78, 0x01], i != 5, "grain {i}");
            assert!(unpack(p) == mixed[i * grain..(i + 1) * grain]);
        }
    }
}
