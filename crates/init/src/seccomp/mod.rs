//! OCI `linux.seccomp` → a classic BPF program for `seccomp(2)`, without libseccomp.
//!
//! The program checks the architecture ([`Arch`]: the one init was built for, x86_64 or aarch64;
//! any other ABI, x86_64's x32 and aarch64's 32-bit compat included, kills the process — a
//! filter that cannot name a foreign ABI's syscalls must not let them through),
//! then tests each (rule, syscall name) in order and returns the first matching rule's action,
//! else the default action. Argument conditions of one rule are ANDed; rules are ORed, as in
//! libseccomp. 64-bit arguments are compared as two 32-bit halves.
//!
//! Non-goals: filters for several architectures at once (a profile listing `SCMP_ARCH_X86`
//! next to `SCMP_ARCH_X86_64` gets only the native one), `SCMP_ACT_NOTIFY`, filter flags, the
//! `listenerPath`. Syscall names the native table does not know are skipped, as runc does.

mod table;
mod table_aarch64;

use serde::Deserialize;

/// Errors compiling a profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("reading linux.seccomp")]
    Parse(#[from] serde_json::Error),
    #[error("seccomp action {0:?} is not supported")]
    Action(String),
    #[error("seccomp operator {0:?} is not supported")]
    Op(String),
    #[error("seccomp argument index {0} is out of range (0..6)")]
    Index(u32),
    #[error("seccomp profile does not allow {0} (architectures: {1:?})")]
    Arch(&'static str, Vec<String>),
    #[error("seccomp program for syscall {0} is too long for a BPF jump")]
    TooLong(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Vec<String>,
    action: String,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<Arg>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// One BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const LD_ABS_W: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const X32_BIT: u32 = 0x4000_0000;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// The architectures a filter can be compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture init runs on (x86_64 on anything but aarch64).
    pub const NATIVE: Arch =
        if cfg!(target_arch = "aarch64") { Arch::Aarch64 } else { Arch::X86_64 };

    /// The `AUDIT_ARCH_*` value `seccomp_data.arch` holds for this ABI.
    pub fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    fn scmp(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The number of a syscall on this architecture.
    pub fn number(self, name: &str) -> Option<u32> {
        let t = match self {
            Arch::X86_64 => table::SYSCALLS,
            Arch::Aarch64 => table_aarch64::SYSCALLS,
        };
        t.binary_search_by(|(n, _)| n.cmp(&name)).ok().map(|i| t[i].1)
    }
}

fn action(name: &str, errno: Option<u32>) -> Result<u32, SeccompError> {
    let data = errno.unwrap_or(1) & 0xffff; // runc's default errno is EPERM
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => 0,
        "SCMP_ACT_KILL_PROCESS" => RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => 0x0003_0000,
        "SCMP_ACT_ERRNO" => 0x0005_0000 | data,
        "SCMP_ACT_TRACE" => 0x7ff0_0000 | data,
        "SCMP_ACT_LOG" => 0x7ffc_0000,
        "SCMP_ACT_ALLOW" => RET_ALLOW,
        other => return Err(SeccompError::Action(other.into())),
    })
}

/// A jump target inside one block, resolved when the block is complete.
#[derive(Debug, Clone, Copy)]
enum To {
    Next,
    /// The rule does not match: the first instruction after the block.
    Fail,
    /// The current argument condition holds: the first instruction after its code.
    ArgEnd,
}

fn ld(off: u32) -> (u16, To, To, u32) {
    (LD_ABS_W, To::Next, To::Next, off)
}

/// Code for one argument condition; falls through when it holds, jumps to Fail when not.
fn arg_code(a: &Arg) -> Result<Vec<(u16, To, To, u32)>, SeccompError> {
    if a.index > 5 {
        return Err(SeccompError::Index(a.index));
    }
    let lo = 16 + 8 * a.index;
    let hi = lo + 4;
    let (vhi, vlo) = ((a.value >> 32) as u32, a.value as u32);
    use To::*;
    Ok(match a.op.as_str() {
        "SCMP_CMP_EQ" => vec![ld(hi), (JEQ_K, Next, Fail, vhi), ld(lo), (JEQ_K, Next, Fail, vlo)],
        "SCMP_CMP_NE" => {
            vec![ld(hi), (JEQ_K, Next, ArgEnd, vhi), ld(lo), (JEQ_K, Fail, ArgEnd, vlo)]
        }
        "SCMP_CMP_GT" | "SCMP_CMP_GE" => {
            let last = if a.op == "SCMP_CMP_GT" { JGT_K } else { JGE_K };
            vec![
                ld(hi),
                (JGT_K, ArgEnd, Next, vhi),
                (JEQ_K, Next, Fail, vhi),
                ld(lo),
                (last, ArgEnd, Fail, vlo),
            ]
        }
        // a < v is !(a >= v); a <= v is !(a > v).
        "SCMP_CMP_LT" | "SCMP_CMP_LE" => {
            let last = if a.op == "SCMP_CMP_LT" { JGE_K } else { JGT_K };
            vec![
                ld(hi),
                (JGT_K, Fail, Next, vhi),
                (JEQ_K, Next, ArgEnd, vhi),
                ld(lo),
                (last, Fail, ArgEnd, vlo),
            ]
        }
        "SCMP_CMP_MASKED_EQ" => {
            let (mhi, mlo) = (vhi, vlo);
            let (whi, wlo) = ((a.value_two >> 32) as u32, a.value_two as u32);
            vec![
                ld(hi),
                (AND_K, Next, Next, mhi),
                (JEQ_K, Next, Fail, whi),
                ld(lo),
                (AND_K, Next, Next, mlo),
                (JEQ_K, Next, Fail, wlo),
            ]
        }
        other => return Err(SeccompError::Op(other.into())),
    })
}

/// Compiles the OCI `linux.seccomp` object for the architecture init runs on.
pub fn compile(profile: &serde_json::Value) -> Result<Vec<Insn>, SeccompError> {
    compile_for(profile, Arch::NATIVE)
}

/// Compiles the OCI `linux.seccomp` object for `arch`.
pub fn compile_for(profile: &serde_json::Value, arch: Arch) -> Result<Vec<Insn>, SeccompError> {
    let p: Profile = serde_json::from_value(profile.clone())?;
    if !p.architectures.is_empty() && !p.architectures.iter().any(|a| a == arch.scmp()) {
        return Err(SeccompError::Arch(arch.name(), p.architectures));
    }
    let default = action(&p.default_action, p.default_errno_ret)?;
    let mut prog = vec![
        Insn { code: LD_ABS_W, jt: 0, jf: 0, k: 4 },
        Insn { code: JEQ_K, jt: 1, jf: 0, k: arch.audit() },
        Insn { code: RET_K, jt: 0, jf: 0, k: RET_KILL_PROCESS },
    ];
    if arch == Arch::X86_64 {
        // x32 shares x86_64's AUDIT_ARCH and marks its numbers with a high bit instead.
        prog.extend([
            Insn { code: LD_ABS_W, jt: 0, jf: 0, k: 0 },
            Insn { code: JGE_K, jt: 0, jf: 1, k: X32_BIT },
            Insn { code: RET_K, jt: 0, jf: 0, k: RET_KILL_PROCESS },
        ]);
    }
    for rule in &p.syscalls {
        let act = action(&rule.action, rule.errno_ret)?;
        for name in &rule.names {
            let Some(nr) = arch.number(name) else { continue };
            // Every block reloads the syscall number: argument checks overwrite A.
            let mut block = vec![ld(0), (JEQ_K, To::Next, To::Fail, nr)];
            let mut arg_ends = Vec::new();
            for a in &rule.args {
                block.extend(arg_code(a)?);
                arg_ends.push(block.len());
            }
            block.push((RET_K, To::Next, To::Next, act));
            let end = block.len();
            let mut arg = 0;
            for (i, (code, jt, jf, k)) in block.iter().enumerate() {
                while arg < arg_ends.len() && i >= arg_ends[arg] {
                    arg += 1;
                }
                let resolve = |t: To| -> Result<u8, SeccompError> {
                    let target = match t {
                        To::Next => i + 1,
                        To::Fail => end,
                        To::ArgEnd => arg_ends.get(arg).copied().unwrap_or(end - 1),
                    };
                    u8::try_from(target - (i + 1)).map_err(|_| SeccompError::TooLong(name.clone()))
                };
                prog.push(Insn { code: *code, jt: resolve(*jt)?, jf: resolve(*jf)?, k: *k });
            }
        }
    }
    prog.push(Insn { code: RET_K, jt: 0, jf: 0, k: default });
    Ok(prog)
}

/// Runs a program on one syscall, as the kernel would (the instructions [`compile`] emits).
pub fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            0 => nr,
            4 => arch,
            o if (16..64).contains(&o) => {
                let a = args[((o - 16) / 8) as usize];
                if o % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => 0,
        }
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
        match i.code {
            LD_ABS_W => acc = word(i.k),
            AND_K => acc &= i.k,
            JEQ_K => pc += jump(acc == i.k),
            JGT_K => pc += jump(acc > i.k),
            JGE_K => pc += jump(acc >= i.k),
            RET_K => return i.k,
            _ => return RET_KILL_PROCESS,
        }
    }
    RET_KILL_PROCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARCH: u32 = AUDIT_ARCH_X86_64;
    const EPERM: u32 = 0x0005_0001;

    fn nr(n: &str) -> u32 {
        Arch::X86_64.number(n).unwrap()
    }

    fn compile(v: &serde_json::Value) -> Result<Vec<Insn>, SeccompError> {
        compile_for(v, Arch::X86_64)
    }

    #[test]
    fn table_is_sorted_and_known() {
        assert!(table::SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0));
        let x = Arch::X86_64;
        assert_eq!(x.number("read"), Some(0));
        assert_eq!(x.number("mkdir"), Some(83));
        assert_eq!(x.number("mkdirat"), Some(258));
        assert_eq!(x.number("no_such_call"), None);
        assert!(table_aarch64::SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0));
        let a = Arch::Aarch64;
        // Spot checks against arm64's generic table: no mkdir/open, only the *at forms.
        assert_eq!(a.number("read"), Some(63));
        assert_eq!(a.number("mkdirat"), Some(34));
        assert_eq!(a.number("openat"), Some(56));
        assert_eq!(a.number("clone3"), Some(435));
        assert_eq!(a.number("fcntl"), Some(25));
        assert_eq!(a.number("mkdir"), None);
        assert_eq!(a.number("open"), None);
    }

    #[test]
    fn aarch64_checks_its_own_arch_and_numbers() {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 18}]
        });
        let p = compile_for(&profile, Arch::Aarch64).unwrap();
        // arch check (3), one block for mkdirat (mkdir is unknown there: skipped), default.
        assert_eq!(p.len(), 3 + 3 + 1, "{p:?}");
        assert_eq!(p[1].k, 0xc000_00b7);
        let arch = AUDIT_ARCH_AARCH64;
        assert_eq!(run(&p, arch, 34, [0; 6]), 0x0005_0012);
        // read (63) is not in the profile: the default.
        assert_eq!(run(&p, arch, 63, [0; 6]), RET_ALLOW);
        // No x32-style bit on arm64: high numbers are just numbers; other ABIs die.
        assert_eq!(run(&p, arch, X32_BIT | 63, [0; 6]), RET_ALLOW);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 34, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(run(&p, 0x4000_0028 /* AUDIT_ARCH_ARM */, 34, [0; 6]), RET_KILL_PROCESS);
        // An x86_64-only profile is refused on aarch64, naming the architecture.
        let e = compile_for(
            &json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"]}),
            Arch::Aarch64,
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not allow aarch64"), "{e}");
    }

    #[test]
    fn names_and_default() {
        let p = compile(&json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat", "not_a_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
                {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"}
            ]
        }))
        .unwrap();
        assert_eq!(run(&p, ARCH, nr("mkdir"), [0; 6]), 0x0005_0012);
        assert_eq!(run(&p, ARCH, nr("mkdirat"), [0; 6]), 0x0005_0012);
        assert_eq!(run(&p, ARCH, nr("reboot"), [0; 6]), RET_KILL_PROCESS);
        assert_eq!(run(&p, ARCH, nr("read"), [0; 6]), RET_ALLOW);
        // Foreign ABIs never reach the rules.
        assert_eq!(run(&p, 0x4000_0003, nr("read"), [0; 6]), RET_KILL_PROCESS);
        assert_eq!(run(&p, ARCH, X32_BIT | nr("read"), [0; 6]), RET_KILL_PROCESS);
    }

    fn with_arg(op: &str, value: u64, two: u64) -> Vec<Insn> {
        compile(&json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 1, "value": value, "valueTwo": two, "op": op}]}]
        }))
        .unwrap()
    }

    fn allows(p: &[Insn], arg1: u64) -> bool {
        run(p, ARCH, nr("personality"), [0, arg1, 0, 0, 0, 0]) == RET_ALLOW
    }

    #[test]
    fn argument_comparisons_use_all_64_bits() {
        const BIG: u64 = 0x1_0000_0005;
        // (operator, value, [(argument, allowed?)])
        type Case = (&'static str, u64, &'static [(u64, bool)]);
        let cases: &[Case] = &[
            ("SCMP_CMP_EQ", BIG, &[(BIG, true), (5, false), (BIG + 1, false)]),
            ("SCMP_CMP_NE", BIG, &[(BIG, false), (5, true), (BIG + (1 << 32), true)]),
            (
                "SCMP_CMP_GT",
                BIG,
                &[(BIG, false), (BIG + 1, true), (0x2_0000_0000, true), (6, false)],
            ),
            ("SCMP_CMP_GE", BIG, &[(BIG, true), (BIG - 1, false), (0x2_0000_0000, true)]),
            (
                "SCMP_CMP_LT",
                BIG,
                &[(BIG, false), (BIG - 1, true), (0x2_0000_0000, false), (9, true)],
            ),
            ("SCMP_CMP_LE", BIG, &[(BIG, true), (BIG + 1, false), (9, true)]),
        ];
        for (op, v, probes) in cases {
            let p = with_arg(op, *v, 0);
            for (arg, want) in *probes {
                assert_eq!(allows(&p, *arg), *want, "{op} {v:#x} on {arg:#x}");
            }
        }
        let p = with_arg("SCMP_CMP_MASKED_EQ", 0xff_0000_00ff, 0x12_0000_0034);
        assert!(allows(&p, 0x12_ffff_ff34));
        assert!(!allows(&p, 0x13_0000_0034));
        // A different syscall is not affected by the rule and gets the default.
        assert_eq!(run(&p, ARCH, nr("read"), [0; 6]), EPERM);
    }

    #[test]
    fn conditions_of_one_rule_are_anded_rules_ored() {
        let p = compile(&json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                          {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]}
            ]
        }))
        .unwrap();
        let s = |a0, a1| run(&p, ARCH, nr("socket"), [a0, a1, 0, 0, 0, 0]);
        assert_eq!(s(1, 2), RET_ALLOW);
        assert_eq!(s(1, 3), EPERM);
        assert_eq!(s(10, 99), RET_ALLOW);
        assert_eq!(s(2, 2), EPERM);
    }

    #[test]
    fn bad_profiles_are_refused_with_reasons() {
        let e = |v| compile(&v).unwrap_err().to_string();
        assert_eq!(
            e(json!({"defaultAction": "SCMP_ACT_NOTIFY"})),
            "seccomp action \"SCMP_ACT_NOTIFY\" is not supported"
        );
        assert!(e(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64"]})
        )
        .contains("does not allow x86_64"));
        assert!(e(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
            "action": "SCMP_ACT_ALLOW", "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}]}))
        .contains("index 7"));
    }
}
