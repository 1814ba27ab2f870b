//! `baleen build` as a user runs it against a local image cache: `--arch` picks each image's
//! platform from its index and `--decompress-kernel` unpacks a gzip'd kernel; the tar on stdout
//! (`--o -`) is
//! the same stream as `--o FILE` and nothing else reaches stdout; `--input-tar` refuses, as
//! LinuxKit does, to rebuild into the file it reads and to be combined with `--pull`, leaving
//! the previous tar as it was, and otherwise rebuilds into another file what a full build writes.

use baleen_testkit::image::{index_of, ImageBuilder};
use baleen_testkit::layers::{dir, file, file_mode, gzip};
use std::path::Path;
use std::process::{Command, Output};

const YAML: &str = r#"
init:
  - baleen/cli-init:1
services:
  - name: svc
    image: baleen/cli-svc:1
files:
  - path: etc/linuxkit-config
    metadata: yaml
"#;

fn store(at: &Path) {
    ImageBuilder::new()
        .layer(&[file_mode("init", b"#!/bin/init\n", 0o755), dir("etc")])
        .build()
        .write_layout(at, "docker.io/baleen/cli-init:1");
    ImageBuilder::new()
        .layer(&[file_mode("bin/svc", b"svc", 0o755)])
        .config(serde_json::json!({"Cmd": ["/bin/svc"]}))
        .build()
        .write_layout(at, "docker.io/baleen/cli-svc:1");
}

fn baleen(store: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen"))
        .current_dir(dir)
        .arg("build")
        .arg("--cache")
        .arg(store)
        .args(args)
        .env_remove("BALEEN_CACHE")
        .env("BALEEN_LOG", "info")
        .output()
        .unwrap()
}

/// The paths of a tar's entries, in stream order.
fn entry_names(tar: &[u8]) -> Vec<String> {
    tar::Archive::new(tar)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn tar_on_stdout_is_the_file_stream_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    store(&cache);
    std::fs::write(tmp.path().join("sys.yml"), YAML).unwrap();

    let to_file = baleen(&cache, tmp.path(), &["--o", "sys.tar", "sys.yml"]);
    ok(&to_file);
    // Logs to a pipe are plain text: no colour codes in a CI log (they were, always).
    let log = String::from_utf8_lossy(&to_file.stderr);
    assert!(log.contains("writing") && !log.contains('\x1b'), "{log:?}");
    let file = std::fs::read(tmp.path().join("sys.tar")).unwrap();
    assert!(file.len() > 1024 && file.len() % 512 == 0, "a tar: {} bytes", file.len());

    let to_stdout = baleen(&cache, tmp.path(), &["-o", "-", "sys.yml"]);
    ok(&to_stdout);
    assert!(to_stdout.stdout == file, "stdout differs from --o FILE (logs on stdout?)");
    let entries = entry_names(&to_stdout.stdout);
    assert!(entries.iter().any(|p| p == "containers/services/svc/lower/bin/svc"), "{entries:?}");

    let docker = baleen(&cache, tmp.path(), &["-f", "docker", "--o", "-", "sys.yml"]);
    ok(&docker);
    let names = entry_names(&docker.stdout);
    assert_eq!(
        names[names.len() - 2..],
        ["Dockerfile", "sbom.spdx.json"],
        "-f docker: the Dockerfile, then the SBOM, close the stream (LinuxKit's order)"
    );
}

#[test]
fn input_tar_refuses_its_own_output_and_pull_then_matches_a_full_build() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    store(&cache);
    std::fs::write(tmp.path().join("sys.yml"), YAML).unwrap();
    ok(&baleen(&cache, tmp.path(), &["--o", "sys.tar", "sys.yml"]));
    let before = std::fs::read(tmp.path().join("sys.tar")).unwrap();
    let changed = YAML.replace("name: svc\n", "name: svc\n    env: [CHANGED=1]\n");
    std::fs::write(tmp.path().join("sys.yml"), changed).unwrap();

    for (args, says) in [
        (&["--o", "sys.tar", "--input-tar", "sys.tar"][..], "is also an output of this build"),
        (
            &["--o", "new.tar", "--input-tar", "sys.tar", "--pull"][..],
            "cannot be combined with --pull",
        ),
    ] {
        let out = baleen(&cache, tmp.path(), &[args, &["sys.yml"]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(
            std::fs::read(tmp.path().join("sys.tar")).unwrap() == before,
            "{args:?}: input changed"
        );
        assert!(!tmp.path().join("new.tar").exists(), "{args:?}: wrote an output");
    }

    ok(&baleen(&cache, tmp.path(), &["--o", "full.tar", "sys.yml"]));
    let out = baleen(&cache, tmp.path(), &["--o", "new.tar", "--input-tar", "sys.tar", "sys.yml"]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("copied init[0] from the input tar"), "{stderr}");
    let (full, rebuilt) = (
        std::fs::read(tmp.path().join("full.tar")).unwrap(),
        std::fs::read(tmp.path().join("new.tar")).unwrap(),
    );
    assert!(full == rebuilt, "the --input-tar rebuild differs from a full build");
}

#[test]
fn arch_picks_the_platform_and_decompress_kernel_unpacks_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let kernel = |arch: &str| {
        let bytes = format!("{arch} kernel bytes ").repeat(64);
        ImageBuilder::new()
            .platform("linux", arch, None)
            .layer(&[file("kernel", &gzip(bytes.as_bytes()))])
            .build()
    };
    index_of(&[kernel("amd64"), kernel("arm64")])
        .write_layout(&cache, "docker.io/baleen/cli-kernel:1");
    let init = |arch: &str| {
        ImageBuilder::new()
            .platform("linux", arch, None)
            .layer(&[file_mode("init", format!("{arch} init").as_bytes(), 0o755)])
            .build()
    };
    index_of(&[init("amd64"), init("arm64")]).write_layout(&cache, "docker.io/baleen/cli-init:1");
    let yaml = "kernel:\n  image: baleen/cli-kernel:1\n  cmdline: console=ttyAMA0\n  tar: none\ninit:\n  - baleen/cli-init:1\n";
    std::fs::write(tmp.path().join("arm.yml"), yaml).unwrap();

    let read = |name: &str| std::fs::read(tmp.path().join(name)).unwrap();
    ok(&baleen(&cache, tmp.path(), &["--arch", "arm64", "arm.yml"]));
    assert!(
        read("arm-kernel") == gzip("arm64 kernel bytes ".repeat(64).as_bytes()),
        "arm64's kernel, as stored"
    );
    ok(&baleen(
        &cache,
        tmp.path(),
        &["--arch", "arm64", "--decompress-kernel", "--name", "d", "arm.yml"],
    ));
    assert_eq!(read("d-kernel"), "arm64 kernel bytes ".repeat(64).into_bytes(), "gunzipped");
    let tar = |name: &str| {
        let mut out = Vec::new();
        for e in tar::Archive::new(&read(name)[..]).entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_string_lossy() == "init" {
                std::io::Read::read_to_end(&mut e, &mut out).unwrap();
            }
        }
        out
    };
    ok(&baleen(&cache, tmp.path(), &["--arch", "arm64", "--o", "arm.tar", "arm.yml"]));
    assert_eq!(tar("arm.tar"), b"arm64 init", "the arm64 init image");
    ok(&baleen(&cache, tmp.path(), &["--arch", "amd64", "--o", "amd.tar", "arm.yml"]));
    assert_eq!(tar("amd.tar"), b"amd64 init", "the amd64 one for --arch amd64");
}

/// An image label granted its container host root (all capabilities, a bind of `/`) without a
/// word: the build now lists it, attributes it to the label, and `--privileges=deny-label`
/// refuses it unless the YAML grants the same.
#[test]
fn label_privileges_are_listed_and_deny_label_refuses_them() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    store(&cache);
    let label = r#"{"capabilities": ["all"], "binds": ["/:/hostroot"]}"#;
    ImageBuilder::new()
        .layer(&[file_mode("bin/evil", b"evil", 0o755)])
        .config(serde_json::json!({"Labels": {"org.mobyproject.config": label}}))
        .build()
        .write_layout(&cache, "docker.io/baleen/cli-evil:1");
    let yaml = YAML.replace(
        "    image: baleen/cli-svc:1\n",
        "    image: baleen/cli-svc:1\n  - name: evil\n    image: baleen/cli-evil:1\n    pid: host\n",
    );
    std::fs::write(tmp.path().join("sys.yml"), &yaml).unwrap();
    let stderr = |out: &Output| String::from_utf8_lossy(&out.stderr).into_owned();

    let allowed = baleen(&cache, tmp.path(), &["--o", "a.tar", "sys.yml"]);
    ok(&allowed);
    let table = "containers with host-level privileges:
  CONTAINER      SOURCE GRANTS
  services/evil  yaml   host pid namespace
                 label  all capabilities, bind / at /hostroot
";
    assert!(stderr(&allowed).contains(table), "{}", stderr(&allowed));
    assert_eq!(stderr(&allowed).matches("host-level privileges").count(), 1, "once per build");
    assert!(!stderr(&allowed).contains("services/svc"), "svc has no such grant");
    let quiet = baleen(&cache, tmp.path(), &["-q", "--o", "q.tar", "sys.yml"]);
    ok(&quiet);
    assert!(!stderr(&quiet).contains("host-level"), "-q: {}", stderr(&quiet));

    let denied =
        baleen(&cache, tmp.path(), &["--o", "d.tar", "--privileges=deny-label", "sys.yml"]);
    assert_eq!(denied.status.code(), Some(1), "{}", stderr(&denied));
    assert!(
        stderr(&denied).contains(
            "services[1] \"evil\": image baleen/cli-evil:1: its org.mobyproject.config label \
             grants all capabilities, bind / at /hostroot, refused by --privileges=deny-label"
        ),
        "{}",
        stderr(&denied)
    );
    assert!(!tmp.path().join("d.tar").exists(), "no output when refused");

    // The YAML asking for the same grants accepts them.
    let explicit = yaml.replace(
        "    pid: host\n",
        "    pid: host\n    capabilities: [all]\n    binds: [\"/:/hostroot\"]\n",
    );
    std::fs::write(tmp.path().join("sys.yml"), explicit).unwrap();
    let out = baleen(&cache, tmp.path(), &["--o", "e.tar", "--privileges=deny-label", "sys.yml"]);
    ok(&out);
    assert!(
        stderr(&out).contains(
            "  services/evil  yaml   all capabilities, bind / at /hostroot, host pid namespace\n"
        ),
        "{}",
        stderr(&out)
    );
    assert!(tmp.path().join("e.tar").exists());

    // --dry-run reads no image: it lists what the YAML grants.
    let dry = baleen(&cache, tmp.path(), &["--dry-run", "sys.yml"]);
    ok(&dry);
    assert!(stderr(&dry).contains("  services/evil  yaml   all capabilities"), "{}", stderr(&dry));
}

/// Issue 21: `--max-size` bounds the tree; the error names the image and layer and says how to
/// lift the limit, which `--max-size none` does.
#[test]
fn max_size_refuses_a_larger_tree_and_none_lifts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    store(&cache);
    ImageBuilder::new()
        .layer(&[file("big", &baleen_testkit::noise(3 << 20, 1))])
        .build()
        .write_layout(&cache, "docker.io/baleen/cli-big:1");
    std::fs::write(tmp.path().join("big.yml"), YAML.replace("cli-svc", "cli-big")).unwrap();
    let out = baleen(&cache, tmp.path(), &["big.yml", "-f", "tar", "--max-size", "2M"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in ["docker.io/baleen/cli-big:1", "layer sha256:", "svc/lower/big\"", "limit of 2 MiB"]
    {
        assert!(err.contains(want), "{want:?} missing from: {err}");
    }
    assert!(err.contains("--max-size none"), "{err}");
    assert!(!tmp.path().join("big.tar").exists());
    ok(&baleen(&cache, tmp.path(), &["big.yml", "-f", "tar", "--max-size", "none"]));
    assert!(tmp.path().join("big.tar").exists());
}

/// The `.partial` files in `dir`.
fn partials(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect()
}

/// Issue 21: an interrupted build left `.NAME.XXXX.partial` files in the output directory
/// forever. The build is held still by a `files` source that is a FIFO nobody writes (opening
/// it blocks once the tar output was started), then sent SIGTERM: it dies of the signal and its
/// partial output goes with it.
#[test]
fn a_build_stopped_by_sigterm_leaves_no_partial_output() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    store(&cache);
    let fifo = tmp.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let yaml = format!("{YAML}  - path: etc/held\n    source: {}\n", fifo.display());
    std::fs::write(tmp.path().join("held.yml"), yaml).unwrap();
    let out = tmp.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_baleen"))
        .current_dir(tmp.path())
        .args(["build", "--cache"])
        .arg(&cache)
        .args(["held.yml", "-f", "tar", "--dir"])
        .arg(&out)
        .env_remove("BALEEN_CACHE")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !out.exists() || partials(&out).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the build never started its output");
        assert!(child.try_wait().unwrap().is_none(), "the build ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.signal(), Some(15), "dies of SIGTERM: {output:?}");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("removed 1 partial output"), "{err}");
    assert_eq!(partials(&out), Vec::<String>::new());
}

/// What a build killed with SIGKILL leaves (a partial whose lock is free) is removed by the next
/// build into the directory; a live build's partial (its lock held, here by this test) is not.
#[test]
fn the_next_build_removes_a_dead_builds_partial_but_not_a_live_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    store(&cache);
    std::fs::write(tmp.path().join("sys.yml"), YAML).unwrap();
    let dead = tmp.path().join(".sys.tar.dead01.partial");
    std::fs::write(&dead, vec![0u8; 1 << 20]).unwrap();
    let live = tmp.path().join(".other.tar.live01.partial");
    let held = std::fs::File::create(&live).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    ok(&baleen(&cache, tmp.path(), &["sys.yml", "-f", "tar"]));
    assert!(tmp.path().join("sys.tar").exists());
    assert_eq!(partials(tmp.path()), [".other.tar.live01.partial"]);
    drop(held);
}

/// `build --o /dev/null` as root renamed a regular file over the system's /dev/null (and wrote
/// the whole output into devtmpfs first). An output that is a device or a FIFO is written in
/// place: `--o` to /dev/null, and a `--dir` output whose name is a FIFO another process reads.
#[test]
fn outputs_that_are_devices_or_fifos_are_written_in_place() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    store(&cache);
    std::fs::write(tmp.path().join("sys.yml"), YAML).unwrap();
    // A null device of the test's own (`c 1:3`), so that a regression cannot replace the
    // machine's /dev/null; making one needs root, as the bug did.
    let null = tmp.path().join("null");
    let dev = rustix::fs::makedev(1, 3);
    let mode = rustix::fs::Mode::from_raw_mode(0o666);
    match rustix::fs::mknodat(
        rustix::fs::CWD,
        &null,
        rustix::fs::FileType::CharacterDevice,
        mode,
        dev,
    ) {
        Ok(()) => {
            ok(&baleen(&cache, tmp.path(), &["--o", "null", "sys.yml"]));
            assert!(std::fs::metadata(&null).unwrap().file_type().is_char_device());
            let stray = std::fs::read_dir(tmp.path())
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".null."));
            assert!(!stray, "a temporary file was left beside the device");
        }
        Err(e) => eprintln!("skipping the device part (mknod: {e}); the FIFO part runs"),
    }

    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let fifo = out.join("sys.tar");
    let reader = baleen_testkit::fifo_reader(&fifo);
    ok(&baleen(&cache, tmp.path(), &["-f", "tar", "--dir", "out", "sys.yml"]));
    let streamed = reader.join().unwrap();
    assert!(entry_names(&streamed).iter().any(|p| p == "containers/services/svc/lower/bin/svc"));
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["sys.tar"], "nothing else in the output directory");
}

/// `BALEEN_SIGN_KEY`/`BALEEN_SIGN_CERT` name the files as the flags do: one without the other,
/// or a build with no UKI to sign, is a usage error (exit 2); a key that is not the
/// certificate's fails (exit 1) naming both files, before anything is written.
#[test]
fn signing_flags_come_from_the_environment_and_are_checked_before_the_build() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    store(&store_dir);
    std::fs::write(tmp.path().join("s.yml"), YAML).unwrap();
    let Some((key, cert)) = baleen_testkit::signing::key_pair(
        tmp.path(),
        "a",
        baleen_testkit::signing::KeyKind::EcP256,
    ) else {
        return;
    };
    let (other_key, _) = baleen_testkit::signing::key_pair(
        tmp.path(),
        "b",
        baleen_testkit::signing::KeyKind::EcP256,
    )
    .unwrap();
    let run = |args: &[&str], env: &[(&str, &Path)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baleen"));
        cmd.current_dir(tmp.path()).arg("build").arg("--cache").arg(&store_dir).args(args);
        cmd.env_remove("BALEEN_SIGN_KEY").env_remove("BALEEN_SIGN_CERT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["-f", "uki", "s.yml"], &[("BALEEN_SIGN_KEY", &key)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--sign-key needs --sign-cert"), "{err}");

    let both = [("BALEEN_SIGN_KEY", key.as_path()), ("BALEEN_SIGN_CERT", cert.as_path())];
    let (code, err) = run(&["-f", "kernel+initrd", "s.yml"], &both);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("none of the formats kernel+initrd carries one"), "{err}");
    assert!(err.contains("raw-efi") && err.contains("uki"), "{err}");

    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut args = vec!["-f", "uki", "--dir", out.to_str().unwrap()];
    args.extend(["--sign-key", other_key.to_str().unwrap(), "--sign-cert", cert.to_str().unwrap()]);
    args.push("s.yml");
    let (code, err) = run(&args, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(other_key.to_str().unwrap()) && err.contains("not a pair"), "{err}");
    eprintln!("{err}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "nothing is written");
}

/// `build --help` documents `--root` (its values, the formats, the DPS types) and the usage
/// error for `--verity` on an EFI disk without `--root` names the flag that gives it one.
#[test]
fn root_partition_flag_is_documented_and_verity_without_it_says_so() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_baleen")).args(["build", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    for want in [
        "--root <FS>",
        "[possible values: squashfs, erofs]",
        "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
        "2c7357ed-ebd2-46d9-aec3-23d7f4a0e1e5",
        "root=PARTUUID=UUID",
    ] {
        assert!(help.contains(want), "{want} in build --help:\n{help}");
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.yml"), "kernel:\n  image: k\n").unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_baleen"))
            .current_dir(tmp.path())
            .arg("build")
            .args(args)
            .arg("s.yml")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["-f", "raw-efi", "--verity"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("given --root squashfs|erofs; not raw-efi"), "{err}");
    let (code, err) = run(&["-f", "raw-efi,iso-efi", "--root", "erofs"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not iso-efi"), "{err}");
}

/// `--budget`: a build within its budgets writes its outputs; one over them fails with a table
/// naming what exceeded what, and leaves the previous outputs as they were. A key the format
/// does not produce fails rather than checking nothing.
#[test]
fn budget_fails_the_build_with_a_table_and_keeps_the_old_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    store(&cache);
    ImageBuilder::new()
        .layer(&[file("kernel", &vec![7u8; 300 << 10])])
        .build()
        .write_layout(&cache, "docker.io/baleen/cli-kernel:budget");
    let yaml = format!("kernel:\n  image: baleen/cli-kernel:budget\n  tar: none\n{YAML}");
    std::fs::write(tmp.path().join("b.yml"), yaml).unwrap();
    let read = |name: &str| std::fs::read(tmp.path().join(name)).unwrap();

    let within = baleen(
        &cache,
        tmp.path(),
        &["--budget", "kernel=300K,initrd=1M", "--budget", "image=1M,output=1M", "b.yml"],
    );
    ok(&within);
    let (kernel, initrd) = (read("b-kernel"), read("b-initrd.img"));
    assert_eq!(kernel.len(), 300 << 10);

    // Another kernel, one byte over its budget: nothing of this build may replace the old one.
    ImageBuilder::new()
        .layer(&[file("kernel", &vec![8u8; (300 << 10) + 1])])
        .build()
        .write_layout(&cache, "docker.io/baleen/cli-kernel:budget");
    let over =
        baleen(&cache, tmp.path(), &["--budget", "kernel=300K,initrd=1M,output=300K", "b.yml"]);
    assert_eq!(over.status.code(), Some(1), "{}", String::from_utf8_lossy(&over.stderr));
    let err = String::from_utf8_lossy(&over.stderr);
    assert!(err.contains("over budget (nothing was written)"), "{err}");
    let rows: Vec<&str> =
        err.lines().filter(|l| l.contains(" KiB") && !l.contains("WHAT")).collect();
    assert_eq!(rows.len(), 2, "kernel and output b-kernel only: {err}");
    assert!(rows[0].trim_start().starts_with("kernel ") && rows[0].contains("300.1 KiB"), "{err}");
    assert!(rows[1].contains("output b-kernel"), "{err}");
    assert_eq!(read("b-kernel"), kernel, "the old kernel was replaced");
    assert_eq!(read("b-initrd.img"), initrd);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // -f tar has no initrd to measure.
    let none = baleen(&cache, tmp.path(), &["-f", "tar", "--budget", "initrd=1G", "b.yml"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("not built"));
    // A key that is not one is a usage error (exit 2) before anything is read.
    let bad = baleen(&cache, tmp.path(), &["--budget", "ram=1G", "b.yml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown key \"ram\""));
}

/// The BIOS formats do not exist for arm64: `--arch arm64 -f raw-bios` (or iso-bios, or
/// qcow2-bios among others) is a usage error naming the format and the way out, before the YAML
/// is read or anything is written; raw-efi for arm64 is not refused by that check.
#[test]
fn bios_formats_for_arm64_are_a_usage_error_before_anything_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    for formats in ["raw-bios", "raw-efi,iso-bios", "qcow2-bios"] {
        let out = baleen(&cache, tmp.path(), &["--arch", "arm64", "-f", formats, "none.yml"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{formats}: {err}");
        assert!(err.contains("boots through a PC BIOS") && err.contains("arm64"), "{err}");
        assert!(err.contains("raw-efi"), "names an EFI format instead: {err}");
    }
    let out = baleen(&cache, tmp.path(), &["--arch", "arm64", "-f", "raw-efi", "none.yml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("PC BIOS") && err.contains("none.yml"), "the YAML is read: {err}");
}

/// `--list-formats` (what `cargo xtask bench` reads) prints crates/build's `Format::ALL`, one a
/// line, in `--help`'s order, and each name is one `-f` takes; it stands alone.
#[test]
fn list_formats_prints_every_format_the_flag_takes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_baleen")).arg("build").args(args).output().unwrap()
    };
    let out = run(&["--list-formats"]);
    ok(&out);
    let listed: Vec<String> =
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    let all: Vec<&str> = baleen_build::Format::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(listed, all);
    let help = String::from_utf8(run(&["--help"]).stdout).unwrap();
    let mut at = help.find("Possible values:").expect("--format's values in --help");
    for name in &listed {
        let item = format!("- {name}:");
        let found = help[at..].find(&item).unwrap_or_else(|| panic!("--help lacks {item}"));
        at += found;
        let yaml = tmp.path().join("x.yml");
        std::fs::write(&yaml, "init: []\n").unwrap();
        // Each format for a machine it exists on (the BIOS ones are x86 only, rpi4 arm64 only).
        let format = baleen_build::Format::parse(name).unwrap();
        let arch = if format.arches().allows("amd64") { "amd64" } else { "arm64" };
        let dry = run(&["-f", name, "--dry-run", "--arch", arch, yaml.to_str().unwrap()]);
        ok(&dry);
    }
    let err = run(&["--list-formats", "x.yml"]);
    assert_eq!(err.status.code(), Some(2), "--list-formats takes no other argument");
}
