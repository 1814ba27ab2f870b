// Writes go-archive-tar.tar: the headers LinuxKit's Go code writes (archive/tar, FormatPAX with
// LINUXKIT.* records), one entry per case in INDEX. Regenerate with ./regen.sh.
package main

import (
	"archive/tar"
	"os"
	"strings"
	"time"
)

func main() {
	f, err := os.Create("go-archive-tar.tar")
	if err != nil {
		panic(err)
	}
	tw := tar.NewWriter(f)
	epoch := time.Unix(1492533000, 0)
	rec := func(src, loc string) map[string]string {
		return map[string]string{"LINUXKIT.source": src, "LINUXKIT.location": loc}
	}
	add := func(h *tar.Header, data string) {
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if _, err := tw.Write([]byte(data)); err != nil {
			panic(err)
		}
	}
	long := "containers/onboot/000-dhcpcd/lower/usr/share/" + strings.Repeat("d", 70) + "/a-file-with-a-long-name.conf"
	add(&tar.Header{Name: "dev", Mode: 0755, ModTime: epoch, Typeflag: tar.TypeDir, Format: tar.FormatPAX, PAXRecords: rec("docker.io/linuxkit/init:1", "init[0]")}, "")
	xr := rec("docker.io/linuxkit/init:1", "init[0]")
	xr["SCHILY.xattr.security.capability"] = "cap"
	add(&tar.Header{Name: "bin/busybox", Mode: 04755, Uid: 0, Gid: 0, Uname: "root", Gname: "root", ModTime: time.Unix(1600000000, 123456789), Typeflag: tar.TypeReg, Format: tar.FormatPAX, PAXRecords: xr}, "hello")
	add(&tar.Header{Name: long, Mode: 0644, ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX, PAXRecords: rec("docker.io/linuxkit/dhcpcd:1", "onboot[0]")}, "long")
	add(&tar.Header{Name: "etc/link", Linkname: "/" + strings.Repeat("t", 120), Mode: 0777, ModTime: epoch, Typeflag: tar.TypeSymlink, Format: tar.FormatPAX, PAXRecords: rec("linuxkit.files", "files[0]")}, "")
	add(&tar.Header{Name: "containers/services/x/lower/bin/sh", Linkname: "containers/services/x/lower/bin/busybox", Mode: 0755, ModTime: epoch, Typeflag: tar.TypeLink, Format: tar.FormatPAX, PAXRecords: rec("x", "services[0]")}, "")
	add(&tar.Header{Name: "dev/null", Mode: 0666, Devmajor: 1, Devminor: 3, ModTime: epoch, Typeflag: tar.TypeChar, Format: tar.FormatPAX, PAXRecords: rec("x", "init[0]")}, "")
	add(&tar.Header{Name: "var/big-uid", Mode: 0600, Uid: 3000000, Gid: 100, ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX, PAXRecords: rec("linuxkit.files", "files[1]")}, "u")
	add(&tar.Header{Name: "etc/café", Mode: 0644, ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX, PAXRecords: rec("linuxkit.files", "files[2]")}, "c")
	add(&tar.Header{Name: "Dockerfile", Mode: 0644, ModTime: epoch, Format: tar.FormatPAX}, "\nFROM scratch\n")
	add(&tar.Header{Name: strings.Repeat("p", 60) + "/" + strings.Repeat("n", 60), Mode: 0644, ModTime: epoch, Format: tar.FormatPAX}, "split")
	if err := tw.Close(); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}
}
