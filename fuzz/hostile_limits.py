#!/usr/bin/env python3
"""Issue 21's "Done when": `validate` and `build` stay under 1 GiB of RSS and 10 s on each hostile
YAML and layer case. Writes each case (YAML files, and images with hostile layers or labels in
an OCI-layout cache), runs baleen on it as a child, and prints a Markdown table of wall time,
the child's own peak RSS (GNU time), its exit code and the end of its first error line. A
measurement, not a test: nothing here fails on a figure. Run from the workspace root:

    nice -n 19 cargo build -p baleen [--release]
    python3 fuzz/hostile_limits.py [path/to/baleen]   # default target/release, else debug

Needs Python 3 and GNU time (`/usr/bin/time`). Takes about a minute (most of it gzipping the 2 GiB bombs)."""
import gzip, hashlib, io, json, os, subprocess, sys, tarfile, tempfile, time, zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT_S = 120  # a case still running then is killed and reported as such
BOMB = 2 << 30  # bytes of zeros in each bomb: twice the 1 GiB floor of --max-expansion


def tar_bytes(entries):
    """entries: (name, kind, payload); kind: f (file), d (dir)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, payload in entries:
            i = tarfile.TarInfo(name)
            i.mtime = 0
            if kind == "d":
                i.type, i.mode = tarfile.DIRTYPE, 0o755
                t.addfile(i)
            else:
                i.size, i.mode = len(payload), 0o755
                t.addfile(i, io.BytesIO(payload))
    return buf.getvalue()


def gzip_bytes(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


def zeros_tar_gz(name, size):
    """A gzip'd tar of one file of `size` zeros, streamed: (layer bytes, diff_id)."""
    head = tarfile.TarInfo(name)
    head.size, head.mode, head.mtime = size, 0o644, 0
    header = head.tobuf(format=tarfile.PAX_FORMAT)
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    h = hashlib.sha256()
    out = [z.compress(header)]
    h.update(header)
    chunk = bytes(1 << 20)
    for _ in range(size >> 20):
        out.append(z.compress(chunk))
        h.update(chunk)
    tail = bytes((-size) % 512 + 1024)
    out.append(z.compress(tail))
    h.update(tail)
    out.append(z.flush())
    return b"".join(out), "sha256:" + h.hexdigest()


def gzip_zeros(size):
    """`size` zeros as one gzip stream (a kernel that --decompress-kernel gunzips)."""
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return b"".join([z.compress(chunk) for _ in range(size >> 20)] + [z.flush()])


class Cache:
    """An OCI layout baleen reads as its store (`--cache`)."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs/sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        self.index = []

    def blob(self, data):
        hexd = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.path, "blobs/sha256", hexd), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + hexd, "size": len(data)}

    def image(self, name, layers, labels=None):
        """layers: (gzip'd bytes, diff_id) each."""
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": labels or {}},
            "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
        }
        cfg = dict(self.blob(json.dumps(config).encode()),
                   mediaType="application/vnd.oci.image.config.v1+json")
        descs = [dict(self.blob(b), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
                 for b, _ in layers]
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cfg, "layers": descs}
        root = dict(self.blob(json.dumps(manifest).encode()),
                    mediaType="application/vnd.oci.image.manifest.v1+json")
        root["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.index.append(root)
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": self.index}, f)


def plain_layer(entries):
    t = tar_bytes(entries)
    return gzip_bytes(t), "sha256:" + hashlib.sha256(t).hexdigest()


def run(baleen, cwd, args):
    """(seconds, peak RSS MiB, exit code, first error line) of one child. GNU time launches it:
    a child spawned by this process would start with this process's RSS (the bombs are held
    here) as its peak; one forked by `time` starts from `time`'s."""
    rss_file = os.path.join(cwd, "rss")
    start = time.monotonic()
    try:
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file, baleen] + args,
                           cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=dict(os.environ, BALEEN_CACHE="/nonexistent"), timeout=LIMIT_S)
        code, text = p.returncode, p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        code, text = "killed", "still running after %d s" % LIMIT_S
    secs = time.monotonic() - start
    with open(rss_file) as f:
        rss = int(f.read().split()[-1]) / 1024
    first = next((l for l in text.splitlines() if l.startswith("error")), text[:100])
    return secs, rss, code, first


def main():
    baleen = sys.argv[1] if len(sys.argv) > 1 else next(
        p for p in (os.path.join(ROOT, "target", d, "baleen") for d in ("release", "debug"))
        if os.path.exists(p))
    work = tempfile.mkdtemp(prefix="baleen-hostile-")
    cache = Cache(os.path.join(work, "cache"))
    w = lambda name, text: open(os.path.join(work, name), "w").write(text)

    # YAML: 30,000-deep block sequences (60 KB); one 1 MiB scalar aliased 99,000 times (1.3 MB).
    w("deep.yml", "services:\n  " + "- " * 30000 + "x\n")
    big = "x" * (1 << 20)
    w("alias.yml", "files:\n  - path: a\n    contents: &big " + big +
      "\n  - path: b\n    contents: [" + ",".join(["*big"] * 99000) + "]\n")

    # Images. A service's userland, a kernel, and the hostile ones.
    svc = plain_layer([("bin", "d", b""), ("bin/svc", "f", b"#!/bin/sh\n")])
    cache.image("docker.io/hostile/kernel:1", [plain_layer([("kernel", "f", b"bzImage")])])
    cache.image("docker.io/hostile/init:1", [svc])
    deep_label = "- " * 30000 + "x\n"
    alias_label = ('{"env": [&big "' + "x" * (64 << 10) + '"], "sysctl": {"x": [' +
                   ",".join(["*big"] * 1000) + "]}}")
    cache.image("docker.io/hostile/label-deep:1", [svc], {"org.mobyproject.config": deep_label})
    cache.image("docker.io/hostile/label-alias:1", [svc], {"org.mobyproject.config": alias_label})
    nested = [("/".join(["a"] * (i + 1)), "d", b"") for i in range(10000)]
    cache.image("docker.io/hostile/nested:1", [plain_layer(nested)])
    zeros = zeros_tar_gz("zeros", BOMB)
    cache.image("docker.io/hostile/zeros:1", [zeros])
    kbomb = gzip_zeros(BOMB)
    cache.image("docker.io/hostile/kernel-bomb:1", [plain_layer([("kernel", "f", kbomb)])])
    nested_kb = len(plain_layer(nested)[0]) // 1000

    def system(init, kernel="docker.io/hostile/kernel:1"):
        return ("kernel:\n  image: %s\n  cmdline: console=ttyS0\n  tar: none\n"
                "init:\n  - docker.io/hostile/init:1\n%s" % (kernel, init))

    w("label-deep.yml", system("services:\n  - name: s\n    image: docker.io/hostile/label-deep:1\n"))
    w("label-alias.yml", system("services:\n  - name: s\n    image: docker.io/hostile/label-alias:1\n"))
    w("nested.yml", system("  - docker.io/hostile/nested:1\n"))
    w("zeros.yml", system("  - docker.io/hostile/zeros:1\n"))
    w("kernel-bomb.yml", system("", "docker.io/hostile/kernel-bomb:1"))

    c = ["--cache", cache.path]
    tar = ["-f", "tar", "--o", "out.tar"]
    initrd = ["-f", "kernel+initrd", "--name", "out"]
    cases = [
        ("YAML nested 30,000 deep (60 KB)", ["validate", "deep.yml"]),
        ("", ["build"] + c + ["--dry-run", "deep.yml"]),
        ("", ["build"] + c + tar + ["deep.yml"]),
        ("YAML 1 MiB scalar aliased 99,000× (1.3 MB)", ["validate", "alias.yml"]),
        ("", ["build"] + c + tar + ["alias.yml"]),
        ("label nested 30,000 deep", ["build"] + c + tar + ["label-deep.yml"]),
        ("label 64 KiB scalar aliased 1,000×", ["build"] + c + tar + ["label-alias.yml"]),
        ("layer of 10,000 nested dirs (%d KB)" % nested_kb,
         ["build"] + c + tar + ["nested.yml"]),
        ("", ["build"] + c + initrd + ["nested.yml"]),
        ("layer of 2 GiB of zeros (%.1f MB gzip)" % (len(zeros[0]) / 1e6),
         ["build"] + c + tar + ["zeros.yml"]),
        ("", ["build"] + c + initrd + ["zeros.yml"]),
        ("kernel: 2 GiB of zeros gzip'd (%.1f MB), --decompress-kernel" % (len(kbomb) / 1e6),
         ["build"] + c + initrd + ["--decompress-kernel", "kernel-bomb.yml"]),
    ]
    print("| case | command | time | peak RSS | exit | error |")
    print("|---|---|---|---|---|---|")
    for what, args in cases:
        secs, rss, code, first = run(baleen, work, args)
        shown = " ".join(a if a != cache.path else "CACHE" for a in args)
        first = first.replace("|", "\\|").replace(work, "…")
        first = first if len(first) <= 110 else "…" + first[-110:]
        print("| %s | `baleen %s` | %.2f s | %.0f MiB | %s | %s |" % (what, shown, secs, rss, code, first))
        sys.stdout.flush()
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
