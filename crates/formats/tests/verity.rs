//! The dm-verity hash tree against cryptsetup's `veritysetup`: `verify` accepts ours (separate
//! and appended to the data), `format` with the same salt and UUID writes the same bytes and
//! root hash, and one changed data byte makes `verify` fail.

use baleen_formats::{content_salt, write_verity_tree, VerityTree, VERITY_BLOCK};
use baleen_testkit::require_tool;
use std::fs::{self, File};
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Output};

/// Data that differs in every block, so a misplaced digest shows.
fn data(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for (i, b) in v.iter_mut().enumerate() {
        *b = ((i / 4096) as u8).wrapping_mul(31) ^ (i as u8);
    }
    v
}

fn tree_of(d: &[u8]) -> (VerityTree, Vec<u8>) {
    let salt = content_salt(d).unwrap();
    let mut out = Cursor::new(Vec::new());
    let t = write_verity_tree(d, d.len() as u64, salt, &mut out).unwrap();
    (t, out.into_inner())
}

fn veritysetup(args: &[&str], files: &[&Path]) -> Output {
    Command::new("veritysetup").args(args).args(files).output().unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what}: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

#[test]
fn veritysetup_format_writes_the_same_tree_and_verify_accepts_ours() {
    let Some(_) = require_tool("veritysetup") else { return };
    let dir = tempfile::tempdir().unwrap();
    // One block (no levels), one level, two levels with a partial block, three levels.
    for blocks in [1usize, 128, 130, 16_385] {
        let d = data(blocks * 4096);
        let (t, ours) = tree_of(&d);
        let (dp, hp, theirs) =
            (dir.path().join("data"), dir.path().join("ours"), dir.path().join("theirs"));
        fs::write(&dp, &d).unwrap();
        fs::write(&hp, &ours).unwrap();
        let _ = fs::remove_file(&theirs);
        let (salt, uuid) = (t.salt_hex(), t.uuid_string());
        let root = t.root_hex();
        let args = ["format", "--salt", &salt, "--uuid", &uuid];
        let printed = ok(&veritysetup(&args, &[&dp, &theirs]), "veritysetup format");
        assert!(printed.contains(&format!("Root hash:      \t{root}")), "{blocks}: {printed}");
        assert!(fs::read(&theirs).unwrap() == ours, "{blocks} blocks: hash area differs");
        ok(&veritysetup(&["verify", "--debug"], &[&dp, &hp, Path::new(&root)]), "verify");
    }
}

#[test]
fn appended_tree_verifies_at_the_rounded_offset_and_a_flipped_byte_fails() {
    let Some(_) = require_tool("veritysetup") else { return };
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("root.img");
    // Not a whole number of blocks: the last one is hashed zero-padded, and the gap up to the
    // hash offset is zeros in the file.
    let d = data(300 * 4096 - 1000);
    let salt = content_salt(&d[..]).unwrap();
    let mut f = File::create(&img).unwrap();
    f.write_all(&d).unwrap();
    let offset = (d.len() as u64).next_multiple_of(VERITY_BLOCK);
    let mut area = Cursor::new(Vec::new());
    let t = write_verity_tree(&d[..], d.len() as u64, salt, &mut area).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(area.get_ref()).unwrap();
    drop(f);
    let root = t.root_hex();
    let off = format!("--hash-offset={offset}");
    let verify = |root: &str| veritysetup(&["verify", &off], &[&img, &img, Path::new(root)]);
    ok(&verify(&root), "verify of the appended tree");

    let mut bytes = fs::read(&img).unwrap();
    bytes[123_457] ^= 1;
    fs::write(&img, &bytes).unwrap();
    let out = verify(&root);
    assert!(!out.status.success(), "verify accepted a changed data byte");
    // Same check the other way round: restore the byte, change the root hash.
    bytes[123_457] ^= 1;
    fs::write(&img, &bytes).unwrap();
    let mut wrong = root.into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    assert!(!verify(std::str::from_utf8(&wrong).unwrap()).status.success());
}
