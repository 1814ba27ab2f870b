//! The device cgroup on cgroup v2: `linux.resources.devices` (LinuxKit writes one allow rule per
//! `devices:` entry, §2.4) compiled to an eBPF `BPF_PROG_TYPE_CGROUP_DEVICE` program and
//! attached to the container's cgroup, as runc does — cgroup v2 has no `devices.allow` file.
//!
//! Semantics are runc's: access is denied by default; the bundle's rules follow in order, a
//! later rule overriding an earlier one (the program tests them last to first and the first
//! match decides); a rule matching every device (`type: a`, no major/minor, `rwm`) resets the
//! list and sets the default; runc's built-in allows (mknod of any node, null, zero, full,
//! random, urandom, tty, ptmx, pts, tun) come last, so a bundle cannot take them away.
//!
//! Key items: [`Rule`], [`rules`] (the effective list), [`program`] (eBPF [`Insn`]s), [`compile`],
//! and on Linux [`attach`] (`bpf(BPF_PROG_LOAD)` + `BPF_PROG_ATTACH` on the cgroup's fd).
//!
//! A bundle without any device rule gets the same program with no rules of its own
//! ([`default_program`]): runc's built-ins and nothing else, so a device node shipped in an
//! image (`c 1:11`, `b 8:0`) cannot be opened by a container that was not granted it.
//! `baleen.devices=rules` on the kernel command line restores the old leniency (no program
//! for a bundle without rules). Non-goals: cgroup v1 `devices.allow`, runc's emulator for v1
//! partial-wildcard quirks.

use serde::Deserialize;

/// A `linux.resources.devices` entry as config.json carries it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct DeviceRule {
    pub allow: bool,
    /// `a` (any; the default), `c` or `b`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Some of `r`, `w`, `m`.
    pub access: Option<String>,
}

/// Errors compiling device rules or installing the program.
#[derive(Debug, thiserror::Error)]
pub enum DevcgError {
    #[error("linux.resources.devices[{index}]: unknown device type {kind:?} (want a, b or c)")]
    Type { index: usize, kind: String },
    #[error("linux.resources.devices[{index}]: access {access:?} must be some of r, w, m")]
    Access { index: usize, access: String },
    #[error("linux.resources.devices[{index}]: device number {value} out of range")]
    Number { index: usize, value: i64 },
    #[error("loading the device cgroup program for {cgroup}{log}")]
    Load { cgroup: String, source: std::io::Error, log: String },
    #[error("attaching the device cgroup program to {cgroup}")]
    Attach { cgroup: String, source: std::io::Error },
}

/// `BPF_DEVCG_DEV_*`: the device type in the low 16 bits of `access_type`.
pub const DEV_BLOCK: u8 = 1;
pub const DEV_CHAR: u8 = 2;
/// `BPF_DEVCG_ACC_*`: the access in the high 16 bits.
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One checked rule. `None` fields match anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub dev_type: Option<u8>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Rule {
    const fn allow(dev_type: u8, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
        Rule { allow: true, dev_type: Some(dev_type), major, minor, access }
    }

    /// Matches every device and every access: it decides alone, whatever came before.
    fn is_total(&self) -> bool {
        self.dev_type.is_none()
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_ALL
    }
}

/// runc's `AllowedDevices`, appended after the bundle's rules.
pub const RUNC_DEFAULTS: [Rule; 11] = [
    Rule::allow(DEV_CHAR, None, None, ACC_MKNOD),
    Rule::allow(DEV_BLOCK, None, None, ACC_MKNOD),
    Rule::allow(DEV_CHAR, Some(1), Some(3), ACC_ALL), // null
    Rule::allow(DEV_CHAR, Some(1), Some(8), ACC_ALL), // random
    Rule::allow(DEV_CHAR, Some(1), Some(7), ACC_ALL), // full
    Rule::allow(DEV_CHAR, Some(5), Some(0), ACC_ALL), // tty
    Rule::allow(DEV_CHAR, Some(1), Some(5), ACC_ALL), // zero
    Rule::allow(DEV_CHAR, Some(1), Some(9), ACC_ALL), // urandom
    Rule::allow(DEV_CHAR, Some(136), None, ACC_ALL),  // pts/*
    Rule::allow(DEV_CHAR, Some(5), Some(2), ACC_ALL), // ptmx
    Rule::allow(DEV_CHAR, Some(10), Some(200), ACC_ALL), // net/tun
];

fn check(index: usize, r: &DeviceRule) -> Result<Rule, DevcgError> {
    let dev_type = match r.kind.as_deref().unwrap_or("a") {
        "a" | "" => None,
        "c" => Some(DEV_CHAR),
        "b" => Some(DEV_BLOCK),
        other => return Err(DevcgError::Type { index, kind: other.into() }),
    };
    let access_text = r.access.as_deref().unwrap_or("");
    let mut access = 0;
    for c in access_text.chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err(DevcgError::Access { index, access: access_text.into() }),
        };
    }
    if access == 0 {
        // runc refuses an empty access too ("cannot be empty").
        return Err(DevcgError::Access { index, access: access_text.into() });
    }
    // Negative numbers are the OCI wildcard; the program compares against a sign-extended
    // 32-bit immediate, so numbers past i32::MAX could never match and are refused.
    let num = |v: Option<i64>| match v {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) if n <= i64::from(i32::MAX) => Ok(Some(n as u32)),
        Some(n) => Err(DevcgError::Number { index, value: n }),
    };
    Ok(Rule { allow: r.allow, dev_type, major: num(r.major)?, minor: num(r.minor)?, access })
}

/// The effective rule list for a bundle's rules: `(default allow, rules in order, later ones
/// winning)`; with no rules, default deny and runc's built-ins.
pub fn rules(spec: &[DeviceRule]) -> Result<(bool, Vec<Rule>), DevcgError> {
    let mut default_allow = false;
    let mut out = Vec::new();
    for (i, r) in spec.iter().enumerate() {
        let rule = check(i, r)?;
        if rule.is_total() {
            default_allow = rule.allow;
            out.clear();
        } else {
            out.push(rule);
        }
    }
    out.extend(RUNC_DEFAULTS);
    Ok((default_allow, out))
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    /// The kernel's 8-byte layout (little-endian: registers share one byte, dst low).
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.dst & 0xf) | (self.src << 4);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

// Opcodes: class | operation | source.
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, dst, src, off, imm }
}

/// The program for `(default_allow, rules)`: load the context (`struct bpf_cgroup_dev_ctx`:
/// access_type, major, minor) into r2 (type), r3 (access), r4 (major), r5 (minor); then one
/// block per rule, last rule first, each jumping to the next block on a mismatch and returning
/// its verdict on a match; then the default verdict. The layout is runc's `devicefilter`.
pub fn program(default_allow: bool, rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // Each entry: (instruction, jumps to the next block on mismatch).
        let mut block: Vec<(Insn, bool)> = Vec::new();
        if let Some(t) = r.dev_type {
            block.push((insn(JNE_K, 2, 0, 0, i32::from(t)), true));
        }
        if r.access != ACC_ALL {
            // The requested access must be a subset of the rule's: (r3 & access) == r3.
            block.push((insn(MOV32_X, 1, 3, 0, 0), false));
            block.push((insn(AND32_K, 1, 0, 0, i32::from(r.access)), false));
            block.push((insn(JNE_X, 1, 3, 0, 0), true));
        }
        if let Some(m) = r.major {
            block.push((insn(JNE_K, 4, 0, 0, m as i32), true));
        }
        if let Some(m) = r.minor {
            block.push((insn(JNE_K, 5, 0, 0, m as i32), true));
        }
        block.push((insn(MOV32_K, 0, 0, 0, i32::from(r.allow)), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let n = block.len();
        for (i, (mut ins, jumps)) in block.into_iter().enumerate() {
            if jumps {
                // Offsets count from the instruction after the jump.
                ins.off = (n - i - 1) as i16;
            }
            p.push(ins);
        }
    }
    p.push(insn(MOV32_K, 0, 0, 0, i32::from(default_allow)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// runc's program for a container without rules: default deny and the built-in allows.
pub fn default_program() -> Vec<Insn> {
    program(false, &RUNC_DEFAULTS)
}

/// The program for a bundle's `linux.resources.devices` ([`default_program`] without rules).
pub fn compile(spec: &[DeviceRule]) -> Result<Vec<Insn>, DevcgError> {
    let (default_allow, r) = rules(spec)?;
    Ok(program(default_allow, &r))
}

/// Loads `prog` and attaches it to the cgroup directory `cgroup`, with `BPF_F_ALLOW_MULTI` as
/// runc does, so a runtime inside the container (containerd + runc) can still attach programs
/// to the cgroups below — every program on the path must then allow an access. The cgroup
/// keeps the program alive.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn attach(cgroup: &std::path::Path, prog: &[Insn]) -> Result<(), DevcgError> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_ATTACH: libc::c_long = 8;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 2;

    /// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to `expected_attach_type`.
    #[repr(C)]
    #[derive(Default)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }
    /// The `BPF_PROG_ATTACH` part.
    #[repr(C)]
    #[derive(Default)]
    struct ProgAttach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
    }

    let name = cgroup.display().to_string();
    let bytes: Vec<u8> = prog.iter().flat_map(|i| i.to_bytes()).collect();
    let license = b"Apache\0";
    let mut log = vec![0u8; 16 * 1024];
    let mut prog_name = [0u8; 16];
    prog_name[..6].copy_from_slice(b"devcg\0");
    let attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: bytes.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..ProgLoad::default()
    };
    // SAFETY: attr points at a live, fully initialised struct of the size passed; the
    // instruction, license and log buffers it names outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoad,
            std::mem::size_of::<ProgLoad>(),
        )
    };
    if fd < 0 {
        let source = std::io::Error::last_os_error();
        let end = log.iter().position(|b| *b == 0).unwrap_or(0);
        let text = String::from_utf8_lossy(&log[..end]).trim().replace('\n', " | ");
        let log = if text.is_empty() { String::new() } else { format!(" (verifier: {text})") };
        return Err(DevcgError::Load { cgroup: name, source, log });
    }
    // SAFETY: bpf returned a new descriptor that nothing else owns.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let dir = std::fs::File::open(cgroup)
        .map_err(|source| DevcgError::Attach { cgroup: name.clone(), source })?;
    let attr = ProgAttach {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: attr is a live, initialised struct of the size passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const ProgAttach,
            std::mem::size_of::<ProgAttach>(),
        )
    };
    if rc < 0 {
        return Err(DevcgError::Attach { cgroup: name, source: std::io::Error::last_os_error() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(p: &[Insn]) -> Vec<String> {
        p.iter()
            .map(|i| i.to_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>())
            .collect()
    }

    #[test]
    fn one_rule_program_bytes_match_the_hand_encoding() {
        let r = [Rule {
            allow: true,
            dev_type: Some(DEV_CHAR),
            major: Some(1),
            minor: Some(3),
            access: ACC_READ | ACC_WRITE,
        }];
        // Derived by hand from linux/bpf.h: code, dst|src<<4, off (le16), imm (le32).
        let want = [
            "6112000000000000", // r2 = *(u32 *)(r1 + 0)
            "54020000ffff0000", // w2 &= 0xffff
            "6113000000000000", // r3 = *(u32 *)(r1 + 0)
            "7403000010000000", // w3 >>= 16
            "6114040000000000", // r4 = *(u32 *)(r1 + 4)
            "6115080000000000", // r5 = *(u32 *)(r1 + 8)
            "5502070002000000", // if r2 != 2 (char) goto +7 (default)
            "bc31000000000000", // w1 = w3
            "5401000006000000", // w1 &= r|w
            "5d31040000000000", // if r1 != r3 goto +4
            "5504030001000000", // if r4 != 1 goto +3
            "5505020003000000", // if r5 != 3 goto +2
            "b400000001000000", // w0 = 1
            "9500000000000000", // exit
            "b400000000000000", // w0 = 0 (default deny)
            "9500000000000000", // exit
        ];
        assert_eq!(hex(&program(false, &r)), want);
    }

    /// The verdicts (`w0 = …` before each exit), in the order the program tests them.
    fn verdicts(p: &[Insn]) -> Vec<i32> {
        p.iter().filter(|i| i.code == MOV32_K && i.dst == 0).map(|i| i.imm).collect()
    }

    #[test]
    fn later_rules_are_tested_first_and_runc_defaults_come_before_all() {
        let spec = [
            DeviceRule {
                allow: true,
                kind: Some("c".into()),
                major: Some(4),
                minor: Some(64),
                access: Some("rwm".into()),
            },
            DeviceRule {
                allow: false,
                kind: Some("c".into()),
                major: Some(4),
                minor: Some(64),
                access: Some("w".into()),
            },
        ];
        let (default_allow, r) = rules(&spec).unwrap();
        assert!(!default_allow);
        assert_eq!(r.len(), 2 + RUNC_DEFAULTS.len());
        assert_eq!(&r[2..], &RUNC_DEFAULTS);
        let p = program(default_allow, &r);
        // Blocks run last rule first: the runc defaults (allow), then the deny, then the
        // allow, then the default deny.
        let mut want = vec![1; RUNC_DEFAULTS.len()];
        want.extend([0, 1, 0]);
        assert_eq!(verdicts(&p), want);
        // The deny block's major test comes before the allow block's.
        let majors: Vec<i32> =
            p.iter().filter(|i| i.code == JNE_K && i.dst == 4).map(|i| i.imm).collect();
        assert_eq!(majors[majors.len() - 2..], [4, 4]);
        // Every jump lands inside the program.
        for (at, i) in p.iter().enumerate() {
            if i.code == JNE_K || i.code == JNE_X {
                assert!(at + 1 + (i.off as usize) < p.len(), "jump at {at} leaves the program");
            }
        }
    }

    #[test]
    fn a_total_rule_resets_the_list_and_sets_the_default() {
        let spec = [
            DeviceRule {
                allow: true,
                kind: Some("b".into()),
                access: Some("rw".into()),
                ..Default::default()
            },
            DeviceRule {
                allow: true,
                kind: Some("a".into()),
                access: Some("rwm".into()),
                ..Default::default()
            },
        ];
        let (default_allow, r) = rules(&spec).unwrap();
        assert!(default_allow);
        assert_eq!(r, RUNC_DEFAULTS);
        // LinuxKit's `devices: [{path: all, type: b}]` is an ordinary rule without numbers.
        let all_b = [DeviceRule {
            allow: true,
            kind: Some("b".into()),
            major: Some(-1),
            access: Some("rwm".into()),
            ..Default::default()
        }];
        let (default_allow, r) = rules(&all_b).unwrap();
        assert!(!default_allow);
        assert_eq!(
            r[0],
            Rule {
                allow: true,
                dev_type: Some(DEV_BLOCK),
                major: None,
                minor: None,
                access: ACC_ALL
            }
        );
    }

    /// Runs a device program (the handful of opcodes [`program`] emits) on one access, as
    /// the kernel would: the verdict, 1 allow or 0 deny.
    fn run(p: &[Insn], dev_type: u8, major: u32, minor: u32, access: u8) -> i32 {
        let ctx = [u32::from(dev_type) | (u32::from(access) << 16), major, minor];
        let mut r = [0u32; 11];
        let mut pc = 0;
        loop {
            let i = p[pc];
            let (d, s) = (usize::from(i.dst), usize::from(i.src));
            pc += 1;
            match i.code {
                LDX_W => r[d] = ctx[usize::try_from(i.off).unwrap() / 4],
                AND32_K => r[d] &= i.imm as u32,
                RSH32_K => r[d] >>= i.imm,
                MOV32_K => r[d] = i.imm as u32,
                MOV32_X => r[d] = r[s],
                JNE_K if r[d] != i.imm as u32 => pc += usize::try_from(i.off).unwrap(),
                JNE_X if r[d] != r[s] => pc += usize::try_from(i.off).unwrap(),
                JNE_K | JNE_X => {}
                EXIT => return r[0] as i32,
                other => panic!("opcode {other:#x} not emitted by program()"),
            }
        }
    }

    /// A container granted no device gets runc's policy: the image's own `c 1:11` (kmsg) or
    /// `b 8:0` (a disk) cannot be opened, the harmless nodes and mknod of anything can.
    #[test]
    fn no_rules_is_default_deny_with_runc_builtins() {
        let p = compile(&[]).unwrap();
        assert_eq!(p, default_program());
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&p, DEV_CHAR, 1, 11, ACC_WRITE), 0, "kmsg");
        assert_eq!(run(&p, DEV_BLOCK, 8, 0, ACC_READ), 0, "sda");
        assert_eq!(run(&p, DEV_CHAR, 4, 64, rw), 0, "ttyS0");
        for (major, minor) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2), (136, 7)] {
            assert_eq!(run(&p, DEV_CHAR, major, minor, rw), 1, "c {major}:{minor}");
        }
        assert_eq!(run(&p, DEV_CHAR, 1, 11, ACC_MKNOD), 1, "mknod is runc's built-in");
        assert_eq!(run(&p, DEV_BLOCK, 8, 0, ACC_MKNOD), 1);
        // `devices: [{path: all, type: a}]` (LinuxKit's rule without numbers) allows them all.
        let all = [DeviceRule { allow: true, access: Some("rwm".into()), ..Default::default() }];
        let p = compile(&all).unwrap();
        assert_eq!(run(&p, DEV_CHAR, 1, 11, ACC_WRITE), 1);
        assert_eq!(run(&p, DEV_BLOCK, 8, 0, ACC_READ), 1);
        // A rule for kmsg only: kmsg yes, the disk still no.
        let kmsg = [DeviceRule {
            allow: true,
            kind: Some("c".into()),
            major: Some(1),
            minor: Some(11),
            access: Some("rw".into()),
        }];
        let p = compile(&kmsg).unwrap();
        assert_eq!(run(&p, DEV_CHAR, 1, 11, ACC_WRITE), 1);
        assert_eq!(run(&p, DEV_CHAR, 1, 11, ACC_MKNOD), 1, "built-in mknod");
        assert_eq!(run(&p, DEV_BLOCK, 8, 0, ACC_READ), 0);
    }

    #[test]
    fn bad_rules_are_refused() {
        let bad = |r: DeviceRule| compile(&[r]).unwrap_err().to_string();
        let e = bad(DeviceRule {
            kind: Some("x".into()),
            access: Some("r".into()),
            ..Default::default()
        });
        assert!(e.contains("devices[0]") && e.contains("\"x\""), "{e}");
        let e = bad(DeviceRule { access: Some("rq".into()), ..Default::default() });
        assert!(e.contains("\"rq\""), "{e}");
        let e = bad(DeviceRule { access: None, ..Default::default() });
        assert!(e.contains("access"), "{e}");
        let e = bad(DeviceRule {
            major: Some(1 << 40),
            access: Some("r".into()),
            ..Default::default()
        });
        assert!(e.contains("out of range"), "{e}");
    }
}
