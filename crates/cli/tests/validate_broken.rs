//! Table of broken configs: each one must make `baleen validate` exit 1 and name the exact
//! file:line:column, the key path and the problem on stderr.

use std::path::PathBuf;
use std::process::Command;

/// (case name, YAML, "line:col", key path, fragment of the message or help)
const CASES: &[(&str, &str, &str, &str, &str)] = &[
    ("top_unknown_key", "kernel:\n  image: linuxkit/kernel:6.12\nservies:\n  - name: a\n", "3:1", "servies", "did you mean `services`?"),
    ("top_not_a_mapping", "- a\n- b\n", "1:1", "", "expected an object, found an array"),
    ("kernel_unknown_key", "kernel:\n  imag: linuxkit/kernel:6.12\n", "2:3", "kernel.imag", "did you mean `image`?"),
    ("kernel_cmdline_list", "kernel:\n  cmdline: [a, b]\n", "2:12", "kernel.cmdline", "expected a string, found an array"),
    ("kernel_bad_ref", "kernel:\n  image: LinuxKit/Kernel:6.12\n", "2:10", "kernel.image", "must be lowercase"),
    ("init_not_list", "init: linuxkit/init:v1\n", "1:7", "init", "expected an array, found a string"),
    ("init_item_int", "init:\n  - 42\n", "2:5", "init[0]", "expected a string, found an integer"),
    ("init_bad_tag", "init:\n  - \"linuxkit/init:\"\n", "2:5", "init[0]", "not a valid tag"),
    ("onboot_missing_name", "onboot:\n  - image: alpine:3.20\n", "2:5", "onboot[0]", "missing required key `name`"),
    ("onboot_missing_image", "onboot:\n  - name: x\n", "2:5", "onboot[0]", "missing required key `image`"),
    ("image_unknown_key", "services:\n  - name: a\n    image: alpine\n    capabilites: [CAP_CHOWN]\n", "4:5", "services[0].capabilites", "did you mean `capabilities`?"),
    ("name_whitespace", "services:\n  - name: my svc\n    image: alpine\n", "2:11", "services[0].name", "contains whitespace"),
    ("service_named_as_onboot_dir", "onboot:\n  - name: x\n    image: alpine\nservices:\n  - name: 000-x\n    image: alpine\n", "5:11", "services[0].name", "is the directory name of onboot container 0"),
    ("image_name_int", "services:\n  - name: 7\n    image: alpine\n", "2:11", "services[0].name", "expected a string, found an integer"),
    ("duplicate_services", "services:\n  - name: a\n    image: alpine\n  - name: a\n    image: busybox\n", "4:11", "services[1].name", "duplicate service name `a`"),
    ("image_uppercase_ref", "onboot:\n  - name: a\n    image: Alpine:3.20\n", "3:12", "onboot[0].image", "must be lowercase"),
    ("image_short_digest", "onboot:\n  - name: a\n    image: alpine@sha256:abcd\n", "3:12", "onboot[0].image", "not a valid digest"),
    ("capabilities_not_list", "services:\n  - name: a\n    image: alpine\n    capabilities: CAP_CHOWN\n", "4:19", "services[0].capabilities", "expected an array"),
    ("capability_unknown", "services:\n  - name: a\n    image: alpine\n    capabilities:\n      - CAP_CHOWN\n      - CAP_NET_ADMINN\n", "6:9", "services[0].capabilities[1]", "did you mean `CAP_NET_ADMIN`?"),
    ("capability_lowercase", "services:\n  - name: a\n    image: alpine\n    capabilities: [net_admin]\n", "4:20", "services[0].capabilities[0]", "did you mean `CAP_NET_ADMIN`?"),
    ("capability_all_not_alone", "services:\n  - name: a\n    image: alpine\n    capabilities: [all, CAP_CHOWN]\n", "4:20", "services[0].capabilities[0]", "only special as the single entry"),
    ("ambient_unknown", "onboot:\n  - name: a\n    image: alpine\n    ambient: [CAP_BOGUS]\n", "4:15", "onboot[0].ambient[0]", "unknown capability `CAP_BOGUS`"),
    ("capabilities_add_unknown", "onboot:\n  - name: a\n    image: alpine\n    capabilities.add: [CAP_SYS_ADMIM]\n", "4:24", "onboot[0].capabilities.add[0]", "did you mean `CAP_SYS_ADMIN`?"),
    ("bind_one_part", "onboot:\n  - name: a\n    image: alpine\n    binds: [/etc]\n", "4:13", "onboot[0].binds[0]", "must be `source:destination[:options]`"),
    ("binds_add_four_parts", "onboot:\n  - name: a\n    image: alpine\n    binds.add:\n      - /a:/b:ro:x\n", "5:9", "onboot[0].binds.add[0]", "must be `source:destination[:options]`"),
    ("tmpfs_two_colons", "onboot:\n  - name: a\n    image: alpine\n    tmpfs: [\"/t:size=1m:x\"]\n", "4:13", "onboot[0].tmpfs[0]", "must be `destination[:options]`"),
    ("rlimit_unknown_name", "onboot:\n  - name: a\n    image: alpine\n    rlimits: [\"files,1,2\"]\n", "4:15", "onboot[0].rlimits[0]", "unknown rlimit `files`"),
    ("rlimit_two_parts", "onboot:\n  - name: a\n    image: alpine\n    rlimits: [\"nofile,1\"]\n", "4:15", "onboot[0].rlimits[0]", "3 comma-separated parts"),
    ("rlimit_not_number", "onboot:\n  - name: a\n    image: alpine\n    rlimits: [\"nofile,lots,2\"]\n", "4:15", "onboot[0].rlimits[0]", "not a number or `unlimited`"),
    ("mount_unknown_key", "onboot:\n  - name: a\n    image: alpine\n    mounts:\n      - type: bind\n        dest: /x\n", "6:9", "onboot[0].mounts[0].dest", "did you mean `destination`?"),
    ("mount_missing_type", "onboot:\n  - name: a\n    image: alpine\n    mounts:\n      - source: /x\n        destination: /y\n", "5:9", "onboot[0].mounts[0]", "missing type"),
    ("mount_options_string", "onboot:\n  - name: a\n    image: alpine\n    mounts:\n      - type: tmpfs\n        destination: /y\n        options: rw\n", "7:18", "onboot[0].mounts[0].options", "expected an array, found a string"),
    ("device_mode_unquoted", "services:\n  - name: a\n    image: alpine\n    devices:\n      - path: /dev/null\n        type: c\n        major: 1\n        minor: 3\n        mode: 0666\n", "9:15", "services[0].devices[0].mode", "quote it to make it a string: \"0666\""),
    ("device_major_string", "services:\n  - name: a\n    image: alpine\n    devices:\n      - path: /dev/null\n        major: \"1\"\n        mode: \"0666\"\n", "6:16", "services[0].devices[0].major", "expected an integer, found a string"),
    ("device_unknown_key", "services:\n  - name: a\n    image: alpine\n    devices:\n      - path: all\n        typ: b\n", "6:9", "services[0].devices[0].typ", "did you mean `type`?"),
    ("resources_unknown_key", "services:\n  - name: a\n    image: alpine\n    resources:\n      memroy: {limit: 1}\n", "5:7", "services[0].resources.memroy", "did you mean `memory`?"),
    ("resources_memory_limit_string", "services:\n  - name: a\n    image: alpine\n    resources:\n      memory:\n        limit: 64M\n", "6:16", "services[0].resources.memory.limit", "expected an integer, found a string"),
    ("resources_cpu_unknown", "services:\n  - name: a\n    image: alpine\n    resources:\n      cpu:\n        share: 512\n", "6:9", "services[0].resources.cpu.share", "did you mean `shares`?"),
    ("resources_blockio_device_unknown", "services:\n  - name: a\n    image: alpine\n    resources:\n      blockio:\n        weightDevice:\n          - {major: 8, minor: 0, wieght: 10}\n", "7:34", "services[0].resources.blockio.weightDevice[0].wieght", "did you mean `weight`?"),
    ("runtime_unknown_key", "onboot:\n  - name: a\n    image: alpine\n    runtime:\n      mkdirs: [/x]\n", "5:7", "onboot[0].runtime.mkdirs", "did you mean `mkdir`?"),
    ("runtime_interface_unknown", "onboot:\n  - name: a\n    image: alpine\n    runtime:\n      interfaces:\n        - name: wg0\n          createinroot: true\n", "7:11", "onboot[0].runtime.interfaces[0].createinroot", "did you mean `createInRoot`?"),
    ("runtime_bindns_unknown", "onboot:\n  - name: a\n    image: alpine\n    runtime:\n      bindNS:\n        network: /run/netns/a\n", "6:9", "onboot[0].runtime.bindNS.network", "did you mean `net`?"),
    ("runtime_mount_unknown", "onboot:\n  - name: a\n    image: alpine\n    runtime:\n      mounts:\n        - {type: tmpfs, destinaton: /x}\n", "6:25", "onboot[0].runtime.mounts[0].destinaton", "did you mean `destination`?"),
    ("readonly_yes", "services:\n  - name: a\n    image: alpine\n    readonly: yes\n", "4:15", "services[0].readonly", "write `true` or `false`"),
    ("oom_quoted", "services:\n  - name: a\n    image: alpine\n    oomScoreAdj: \"5\"\n", "4:18", "services[0].oomScoreAdj", "expected an integer, found a string"),
    ("sysctl_int_value", "services:\n  - name: a\n    image: alpine\n    sysctl:\n      net.ipv4.ip_forward: 1\n", "5:28", "services[0].sysctl.net.ipv4.ip_forward", "expected a string, found an integer"),
    ("uid_unknown_name", "onboot:\n  - name: a\n    image: alpine\n    uid: nobody\n", "4:10", "onboot[0].uid", "cannot find id for `nobody`"),
    ("uid_float", "onboot:\n  - name: a\n    image: alpine\n    uid: 1.5\n", "4:10", "onboot[0].uid", "expected a string or integer, found a number"),
    ("uidmapping_unknown", "onboot:\n  - name: a\n    image: alpine\n    uidMappings:\n      - {hostId: 1, containerID: 0, size: 1}\n", "5:10", "onboot[0].uidMappings[0].hostId", "did you mean `hostID`?"),
    ("annotations_list_value", "onboot:\n  - name: a\n    image: alpine\n    annotations:\n      a: [b]\n", "5:10", "onboot[0].annotations.a", "expected a string, found an array"),
    ("env_null", "onboot:\n  - name: a\n    image: alpine\n    env:\n", "4:8", "onboot[0].env", "found a null"),
    ("file_mode_unquoted", "files:\n  - path: etc/x\n    contents: hi\n    mode: 0644\n", "4:11", "files[0].mode", "quote it to make it a string: \"0644\""),
    ("file_mode_not_octal", "files:\n  - path: etc/x\n    contents: hi\n    mode: \"0999\"\n", "4:11", "files[0].mode", "not an octal permission"),
    ("file_contents_and_source", "files:\n  - path: etc/x\n    contents: hi\n    source: /etc/hosts\n", "4:13", "files[0].source", "both `contents` and `source`"),
    ("file_source_and_metadata", "files:\n  - path: etc/x\n    source: /etc/hosts\n    metadata: yaml\n", "4:15", "files[0].metadata", "both `source` and `metadata`"),
    ("file_metadata_toml", "files:\n  - path: etc/x\n    metadata: toml\n", "3:15", "files[0].metadata", "unsupported metadata type `toml`"),
    ("file_no_content", "files:\n  - path: etc/x\n    mode: \"0644\"\n", "2:5", "files[0]", "contents of file `etc/x` not specified"),
    ("file_directory_with_contents", "files:\n  - path: etc/x\n    directory: true\n    contents: hi\n", "4:15", "files[0].contents", "a directory cannot have `contents`"),
    ("file_unknown_key", "files:\n  - path: etc/x\n    content: hi\n", "3:5", "files[0].content", "did you mean `contents`?"),
    ("file_missing_path", "files:\n  - contents: hi\n", "2:5", "files[0]", "needs a `path`"),
    ("file_gid_unknown_name", "files:\n  - path: etc/x\n    contents: hi\n    gid: sshd\n", "4:10", "files[0].gid", "cannot find id for `sshd`"),
    ("volume_bad_name", "volumes:\n  - name: My_Vol\n", "2:11", "volumes[0].name", "invalid volume name `My_Vol`"),
    ("volume_duplicate", "volumes:\n  - name: v\n  - name: v\n", "3:11", "volumes[1].name", "duplicate volume name `v`"),
    ("volume_bad_format", "volumes:\n  - name: v\n    image: alpine\n    format: squashfs\n", "4:13", "volumes[0].format", "unknown volume format `squashfs`"),
    ("volume_unknown_key", "volumes:\n  - name: v\n    readOnly: true\n", "3:5", "volumes[0].readOnly", "did you mean `readonly`?"),
    ("bind_unknown_volume", "onboot:\n  - name: a\n    image: alpine\n    binds: [\"volb:/data\"]\nvolumes:\n  - name: vola\n", "4:13", "onboot[0].binds[0]", "unknown volume `volb`"),
    ("bind_readonly_volume_rw", "onboot:\n  - name: a\n    image: alpine\n    binds: [\"vola:/data\"]\nvolumes:\n  - name: vola\n    readonly: true\n", "4:13", "onboot[0].binds[0]", "is read-only"),
    ("mount_readonly_volume_rw", "onboot:\n  - name: a\n    image: alpine\n    mounts:\n      - type: bind\n        source: vola\n        destination: /d\n        options: [rw, ro]\nvolumes:\n  - name: vola\n    readonly: true\n", "6:17", "onboot[0].mounts[0].source", "is read-only"),
    ("duplicate_key", "kernel:\n  image: linuxkit/kernel:1\n  image: linuxkit/kernel:2\n", "3:3", "kernel.image", "duplicate key `image` (first at line 2)"),
    ("trust_unknown_key", "trust:\n  orgs: [linuxkit]\n", "2:3", "trust.orgs", "did you mean `org`?"),
    ("misindented_image_key", "services:\n  - name: a\n    image: alpine\ncapabilities: [CAP_CHOWN]\n", "4:1", "capabilities", "belongs in an onboot/onshutdown/services entry: check its indentation"),
    ("misindented_file_key", "files:\n  - path: etc/x\n  contents: hi\n", "3:3", "", "did not find expected '-' indicator"),
    ("file_key_in_image", "onboot:\n  - name: a\n    image: alpine\n    contents: hi\n", "4:5", "onboot[0].contents", "belongs in a `files` entry"),
    ("file_path_dotdot", "files:\n  - path: ../../../../tmp/x\n    contents: hi\n", "2:11", "files[0].path", "has a `..` component"),
    ("file_path_absolute_dotdot", "files:\n  - path: /etc/../../../x2\n    contents: hi\n", "2:11", "files[0].path", "has a `..` component"),
    ("service_name_dotdot_path", "services:\n  - name: ../../../etc\n    image: alpine\n", "2:11", "services[0].name", "container name contains `/`"),
    ("onboot_name_slash", "onboot:\n  - name: a/b\n    image: alpine\n", "2:11", "onboot[0].name", "container name contains `/`"),
    ("onshutdown_name_empty", "onshutdown:\n  - name: \"\"\n    image: alpine\n", "2:11", "onshutdown[0].name", "container name is empty"),
    ("service_name_dotdot", "services:\n  - name: \"..\"\n    image: alpine\n", "2:11", "services[0].name", "container name is `.` or `..`"),
    ("syntax_error", "services:\n  - name: a\n    image: [alpine\n", "4:1", "", "YAML syntax error"),
    ("tab_indent", "kernel:\n\timage: x\n", "2:2", "", "YAML syntax error"),
];

fn tmp_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("validate_broken");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_broken_config_is_rejected_with_location_and_path() {
    assert!(CASES.len() >= 40, "the issue asks for at least 40 cases");
    let dir = tmp_dir();
    let mut failures = Vec::new();
    for (name, yaml, linecol, path, fragment) in CASES {
        let file = dir.join(format!("{name}.yml"));
        std::fs::write(&file, yaml).unwrap();
        let out =
            Command::new(env!("CARGO_BIN_EXE_baleen")).arg("validate").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut problems = Vec::new();
        if out.status.code() != Some(1) {
            problems.push(format!("exit code {:?}, want 1", out.status.code()));
        }
        let loc = format!("--> {}:{linecol}", file.display());
        if !stderr.contains(&loc) {
            problems.push(format!("no `{loc}`"));
        }
        let head = if path.is_empty() { "error: ".to_string() } else { format!("error: {path}: ") };
        if !stderr.lines().any(|l| l.starts_with(&head)) {
            problems.push(format!("no line starting `{head}`"));
        }
        if !stderr.contains(fragment) {
            problems.push(format!("no `{fragment}`"));
        }
        if !out.stdout.is_empty() {
            problems.push("wrote to stdout".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}\n{stderr}", problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn one_run_reports_every_problem() {
    let file = tmp_dir().join("many.yml");
    std::fs::write(&file, "kernal: {}\nservices:\n  - name: a\n    image: alpine\n    capabilities: [CAP_X]\nfiles:\n  - path: x\n    mode: 0644\n    contents: y\n").unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_baleen")).arg("validate").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    for want in [":1:1", ":5:20", ":8:11", "(3 problems)"] {
        assert!(stderr.contains(want), "missing {want}:\n{stderr}");
    }
}

#[test]
fn the_caret_sits_under_the_offending_token() {
    let file = tmp_dir().join("caret.yml");
    std::fs::write(
        &file,
        "services:\n  - name: a\n    image: alpine\n    capabilities: [CAP_NOPE]\n",
    )
    .unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_baleen")).arg("validate").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("4 |     capabilities: [CAP_NOPE]\n  |                    ^^^^^^^^\n"),
        "{stderr}"
    );
}
