#!/usr/bin/env python3
"""Writes small valid inputs into fuzz/corpus/<target>/ so that short runs start past the
first header checks (the corpus directory is not committed). Run from anywhere:
    python3 fuzz/seeds.py
Needs gcc (for a kernel-module-shaped ELF), xz and zstd on PATH, and for the readers of
`baleen verify`: cargo (the images baleen's own writers make come from
`crates/disk/examples/fuzz_seeds.rs`), mkfs.vfat, mtools and sfdisk (FAT12 volumes and
GPT/MBR disks smaller than baleen's FAT writer makes), and gpg (a clear-signed InRelease; left
out without it)."""
import gzip, hashlib, io, json, os, shutil, subprocess, tarfile, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEP = b"\n--LAYER--\n"


def tar(entries, fmt=tarfile.PAX_FORMAT):
    """entries: (name, kind, payload); kind: f (file), d (dir), l (symlink), h (hard link)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, kind, payload in entries:
            i = tarfile.TarInfo(name)
            i.mtime = 0
            if kind == "d":
                i.type, i.mode = tarfile.DIRTYPE, 0o755
                t.addfile(i)
            elif kind in "lh":
                i.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
                i.linkname = payload
                t.addfile(i)
            else:
                i.size, i.mode = len(payload), 0o644
                t.addfile(i, io.BytesIO(payload))
    return buf.getvalue()


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def pipe(cmd, data):
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout


lower = tar([("etc", "d", None), ("etc/os-release", "f", b"ID=fuzz\n"), ("bin", "d", None),
             ("bin/sh", "f", b"\x7fELF"), ("bin/ash", "h", "bin/sh"), ("lib", "d", None),
             ("lib/x", "f", b"x"), ("var/run", "l", "../run"), ("dev/console", "f", b"")])
upper = tar([("etc/.wh.os-release", "f", b""), ("lib/.wh..wh..opq", "f", b""),
             ("lib/y", "f", b"y"), ("etc/hosts", "f", b"h"), ("lib/apk/db/installed", "f", b"P:x\n")])
kernel = tar([("kernel", "f", gzip.compress(b"\x00" * 64)), ("kernel.tar", "f", lower),
              ("ucode.cpio", "f", b"070701")])
write("layer_flatten", "plain", lower)
write("layer_flatten", "two", lower + SEP + upper)
write("layer_flatten", "gzip_zstd", gzip.compress(lower, mtime=0) + SEP + pipe(["zstd", "-q", "-c"], upper))
write("layer_flatten", "kernel", kernel)
write("layer_flatten", "gnu", tar([("a" * 120 + "/b", "f", b"long"), ("l", "l", "t" * 150)], tarfile.GNU_FORMAT))

# OCI image layout and docker save of a one-layer image.
layer = gzip.compress(lower, mtime=0)
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["A=b"]},
                     "rootfs": {"type": "layers", "diff_ids": [sha(lower)]}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(layer), "size": len(layer)}]}).encode()
index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest),
                                   "platform": {"architecture": "amd64", "os": "linux"},
                                   "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/x:1"}}]}).encode()
blob = lambda b: ("blobs/sha256/" + sha(b)[7:], "f", b)
write("oci_archive", "oci_layout", tar([("oci-layout", "f", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", "f", index),
                                         blob(layer), blob(config), blob(manifest)]))
save = json.dumps([{"Config": "cfg.json", "RepoTags": ["x:1"], "Layers": ["l1/layer.tar", "l2/layer.tar"]}]).encode()
write("oci_archive", "docker_save", tar([("manifest.json", "f", save), ("cfg.json", "f", config),
                                          ("l1/layer.tar", "f", lower), ("l2/layer.tar", "l", "../l1/layer.tar")]))
for n, b in [("index", index), ("manifest", manifest), ("config", config)]:
    write("oci_json", n, b)
write("oci_json", "docker_list", json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                                            "manifests": [{"digest": sha(b""), "size": 0, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}}]}).encode())

write("www_authenticate", "bearer", b'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"')
write("www_authenticate", "basic", b'Basic realm="Registry \\"Realm\\""')

# .deb: ar with debian-binary, control.tar.gz and data.tar.{xz,zst,gz,}.
def ar(members):
    out = b"!<arch>\n"
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode() + data
        if len(data) % 2:
            out += b"\n"
    return out
ctl = b"Package: fuzz\nVersion: 1:2.3-4~b1\nDepends: libc6 (>= 2.36), a | b\n"
data = tar([("./", "d", None), ("./usr/share/doc/x", "f", b"doc"), ("./usr/bin/x", "f", b"x"), ("./usr/lib/y", "l", "x")])
for suffix, body in [("xz", pipe(["xz", "-c"], data)), ("zst", pipe(["zstd", "-q", "-c"], data)),
                     ("gz", gzip.compress(data, mtime=0)), ("", data)]:
    member = "data.tar" + ("." + suffix if suffix else "")
    write("deb", member, ar([("debian-binary", b"2.0\n"), ("control.tar.gz", gzip.compress(tar([("control", "f", ctl)]), mtime=0)), (member, body)]))

write("deb_control", "packages", b"Package: a\nVersion: 1.0-1\nDepends: b (>= 2), c | d\nPre-Depends: e\nProvides: v (= 1)\n\n"
      b"Package: b\nVersion: 2:1.0~rc1+dfsg-3\nDescription: x\n multi\n .\n line\n\nPackage: e\nVersion: 1\nArchitecture: all\n")
write("deb_control", "sources", b"deb [arch=amd64 signed-by=/k.gpg] http://deb.debian.org/debian bookworm main\n"
      b"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n")
write("deb_control", "release", b"SHA256:\n 0123abcd 1234 main/binary-amd64/Packages.xz\n")

with tempfile.TemporaryDirectory() as d:
    src = os.path.join(d, "m.c")
    with open(src, "w") as f:
        f.write('__attribute__((section(".modinfo"))) const char m[] = '
                '"alias=pci:v1234*\\0depends=a-b,c\\0softdep=pre: x post: y\\0license=GPL";\n')
    obj = os.path.join(d, "m.ko")
    subprocess.run(["gcc", "-c", "-o", obj, src], check=True)
    ko = open(obj, "rb").read()
write("kmod_modinfo", "ko", ko)
write("kmod_modinfo", "ko_xz", pipe(["xz", "-c", "--check=crc32"], ko))
write("kmod_modinfo", "ko_zst", pipe(["zstd", "-q", "-c"], ko))
write("kmod_modinfo", "ko_gz", gzip.compress(ko, mtime=0))

seccomp = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
           "syscalls": [{"names": ["read", "write", "openat"], "action": "SCMP_ACT_ALLOW"},
                        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                        {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                        {"names": ["kill"], "action": "SCMP_ACT_KILL", "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_GT"}, {"index": 0, "value": 1, "op": "SCMP_CMP_NE"}]}]}
config = {"process": {"args": ["/bin/sh"], "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0},
                      "capabilities": {"bounding": ["CAP_NET_ADMIN"]}, "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]},
          "root": {"path": "rootfs", "readonly": True},
          "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
                     {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["rbind", "rshared", "mode=1777", "size=10%", "ro", "remount"]}],
          "linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                                              {"allow": True, "type": "b", "major": 8, "access": "r"}]},
                    "seccomp": seccomp, "namespaces": [{"type": "pid"}, {"type": "network", "path": "/run/netns/x"}]}}
write("init_config", "config", json.dumps(config).encode())
write("init_config", "seccomp", json.dumps(seccomp).encode())
write("init_config", "runtime", json.dumps({"cgroups": ["x"], "mounts": [{"destination": "/a", "options": ["bind"]}], "mkdir": ["/b"],
                                            "interfaces": [{"name": "eth0", "add": "veth", "peer": "p", "createInRoot": False}],
                                            "bindNs": {"net": "/run/netns/x"}, "namespace": "x"}).encode())

# The readers of `baleen verify`: images written by baleen's own writers (squashfs, erofs,
# cpio, tar, ISO, a UKI, qcow2/VHD/VMDK/gcp), then what they cannot make small.
root = os.path.dirname(HERE)
subprocess.run(["nice", "-n", "19", "cargo", "run", "-q", "-p", "baleen-disk", "--example", "fuzz_seeds",
                "--", os.path.join(HERE, "corpus")], cwd=root, check=True)
cpio = open(os.path.join(HERE, "corpus", "verify_archives", "cpio"), "rb").read()
write("verify_archives", "cpio_zstd", pipe(["zstd", "-q", "-c"], cpio))
with tempfile.TemporaryDirectory() as d:
    fat = os.path.join(d, "fat.img")
    subprocess.run(["mkfs.vfat", "-C", "-n", "EFI", "-i", "12345678", fat, "160"], check=True, stdout=subprocess.DEVNULL)
    for sub in ["::/EFI", "::/EFI/BOOT", "::/loader"]:
        subprocess.run(["mmd", "-i", fat, sub], check=True)
    for name, data in [("::/EFI/BOOT/BOOTX64.EFI", b"MZ" + bytes(3000)), ("::/loader/A long file name.conf", b"timeout 3\n"),
                       ("::/SHORT.TXT", b"x" * 5000)]:
        src = os.path.join(d, "f")
        open(src, "wb").write(data)
        subprocess.run(["mcopy", "-i", fat, src, name], check=True)
    fat_bytes = open(fat, "rb").read()
    write("disk_volumes", "fat12", bytes(4) + fat_bytes)
    for label in ["gpt", "dos"]:
        disk = os.path.join(d, label + ".img")
        with open(disk, "wb") as f:
            f.truncate(64 * 512 + len(fat_bytes) + 64 * 512)
        kind = "U" if label == "gpt" else "ef"
        subprocess.run(["sfdisk", "-q", disk], input=f"label: {label}\nstart=64, size={len(fat_bytes) // 512}, type={kind}\n".encode(),
                       check=True)
        with open(disk, "r+b") as f:
            f.seek(64 * 512)
            f.write(fat_bytes)
        # The byte to flip: in the FAT's root directory area, so the compare looks inside.
        flip = 64 * 512 + 4096
        write("disk_volumes", label, flip.to_bytes(4, "little") + open(disk, "rb").read())

write("netboot_requests", "get", b"GET /boot/kernel?x=1 HTTP/1.1\r\nHost: a\r\nRange: bytes=0-99\r\n\r\n")
write("netboot_requests", "head", b"HEAD /ipxe HTTP/1.0\r\nrange: bytes=-5\r\n\r\n")
write("netboot_requests", "rrq", b"\x00\x01kernel\x00octet\x00blksize\x001468\x00tsize\x000\x00")
write("netboot_requests", "wrq", b"\x00\x02x\x00netascii\x00")

spdx = {"spdxVersion": "SPDX-2.3", "packages": [
    {"SPDXID": "SPDXRef-image", "name": "docker.io/x/y", "versionInfo": "1", "primaryPackagePurpose": "CONTAINER"},
    {"SPDXID": "SPDXRef-deb-a", "name": "openssl", "versionInfo": "3.0.15-1~deb12u1",
     "downloadLocation": "http://deb.debian.org/debian/pool/main/o/openssl/openssl_3.0.15-1~deb12u1_amd64.deb",
     "externalRefs": [{"referenceType": "purl", "referenceLocator": "pkg:deb/debian/openssl@3.0.15-1~deb12u1?arch=amd64&distro=bookworm-security"}]},
    {"SPDXID": "SPDXRef-cargo", "name": "serde", "versionInfo": "1.0.0"}],
    "relationships": [{"spdxElementId": "SPDXRef-image", "relationshipType": "CONTAINS", "relatedSpdxElement": "SPDXRef-deb-a"},
                      {"spdxElementId": "SPDXRef-deb-a", "relationshipType": "DEPENDS_ON", "relatedSpdxElement": "SPDXRef-cargo"}]}
spdx = json.dumps(spdx).encode()
log = (b"openssl (3.0.16-1~deb12u1) bookworm-security; urgency=medium\n\n  * Fix CVE-2024-12345 and CVE-2024-9.\n"
       b"  * DSA-5678-1, DLA-3456-1\n\n -- Someone <a@b>  Sat, 30 Nov 2024 08:15:01 +0000\n\n"
       b"openssl (3.0.15-1~deb12u1) bookworm-security; urgency=medium\n\n  * CVE-2023-1-2\n")
write("pkg_audit", "spdx", b"\x00" + spdx)
write("pkg_audit", "output_json", b"\x01" + spdx)
write("pkg_audit", "output_tar_gz", b"\x01" + gzip.compress(tar([("sbom.spdx.json", "f", spdx)]), mtime=0))
write("pkg_audit", "changelog", b"\x02" + log)
deb_data = tar([("./usr/share/doc/p/changelog.Debian.gz", "f", gzip.compress(log, mtime=0)),
                ("./usr/share/doc/p/changelog.gz", "f", gzip.compress(b"p (1) x; u\n  * DSA-1\n", mtime=0))])
write("pkg_audit", "deb", b"\x03" + ar([("debian-binary", b"2.0\n"), ("data.tar.gz", gzip.compress(deb_data, mtime=0))]))
release = (b"Origin: Debian\nSuite: stable\nCodename: bookworm\nDate: Sat, 30 Nov 2024 08:15:01 UTC\n"
           b"Valid-Until: Sat, 07 Dec 2024 08:15:01 UTC\nSHA256:\n abcd 42 main/binary-amd64/Packages.xz\n")
write("pkg_audit", "release", b"\x04" + release)
if shutil.which("gpg"):
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, GNUPGHOME=home)
        subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "fuzz <f@z>", "ed25519", "sign", "never"],
                       env=env, check=True, stderr=subprocess.DEVNULL)
        signed = subprocess.run(["gpg", "--batch", "--clearsign"], input=release, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, check=True).stdout
        write("pkg_audit", "inrelease", b"\x04" + signed)
write("pkg_audit", "dep5", b"\x05Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
      b"Files: *\nCopyright: x\nLicense: GPL-2+\n\nFiles: a/*\nLicense: MIT or Apache-2.0\n\nLicense: GPL-2+\n text\n")

print("seeds written under", os.path.join(HERE, "corpus"))
