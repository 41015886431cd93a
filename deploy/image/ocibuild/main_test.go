package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLayout builds an image from stand-in files and checks its layout and
// config; it runs everywhere. TestBuiltImage checks the real image CI built.
func TestLayout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "keysync")
	ca := filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(bin, []byte("\x7fELF stand-in"), 0o755))
	must(t, os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644))
	out := filepath.Join(dir, "oci")
	tarball := filepath.Join(dir, "image.tar")
	args := []string{"-binary", bin, "-ca", ca, "-out", out, "-tar", tarball, "-epoch", "1700000000", "-tag", "keysync:test"}
	var stderr bytes.Buffer
	if err := run(args, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	img := checkLayout(t, os.DirFS(out))
	if string(img.files[BinaryPath]) != "\x7fELF stand-in" {
		t.Error("the binary in the layer is not the one given")
	}
	if img.config.Created != "2023-11-14T22:13:20Z" {
		t.Errorf("created = %s, want -epoch", img.config.Created)
	}
	if img.index.Manifests[0].Annotations["io.containerd.image.name"] != "docker.io/library/keysync:test" {
		t.Errorf("index annotations = %v", img.index.Manifests[0].Annotations)
	}

	// The tarball holds the same files, and a second build is byte-identical.
	fromTar := untar(t, readFile(t, tarball))
	for _, p := range (&Layout{files: fromTar}).paths() {
		if b, err := os.ReadFile(filepath.Join(out, p)); err != nil || !bytes.Equal(b, fromTar[p]) {
			t.Errorf("%s: the tarball and the directory differ", p)
		}
	}
	again := filepath.Join(dir, "again.tar")
	args[7] = again
	must(t, run(args, io.Discard))
	if !bytes.Equal(readFile(t, tarball), readFile(t, again)) {
		t.Error("two builds of the same inputs differ: the image is not reproducible")
	}

	if err := run([]string{"-out", out}, io.Discard); err == nil {
		t.Error("no error without -binary")
	}
}

// TestBuiltImage checks the image .ci/run builds from the real binary
// (KEYSYNC_IMAGE names its layout directory): a static binary, CA roots
// that parse, and, as root, keysync's demo run inside the image's file
// system alone, as the image's user.
func TestBuiltImage(t *testing.T) {
	layout := os.Getenv("KEYSYNC_IMAGE")
	if layout == "" {
		t.Skip("KEYSYNC_IMAGE not set: .ci/run builds the image and sets it")
	}
	img := checkLayout(t, os.DirFS(layout))

	f, err := elf.NewFile(bytes.NewReader(img.files[BinaryPath]))
	if err != nil {
		t.Fatalf("%s is not an ELF binary: %v", BinaryPath, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked: build it with CGO_ENABLED=0", BinaryPath)
		}
	}
	if !x509.NewCertPool().AppendCertsFromPEM(img.files[CAPath]) {
		t.Errorf("%s holds no certificate", CAPath)
	}

	if os.Geteuid() != 0 {
		t.Skip("not root: cannot run the image's binary chrooted into its layer")
	}
	root := t.TempDir()
	extract(t, img.layer, root)
	uid, _ := strconv.Atoi(strings.Split(img.config.Config.User, ":")[0])
	cmd := exec.Command(img.config.Config.Entrypoint[0], img.config.Config.Cmd...)
	cmd.Env = img.config.Config.Env // nothing of this machine's environment
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	must(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("keysync %s in the image as uid %d: %v\n%s", strings.Join(img.config.Config.Cmd, " "), uid, err, out.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("keysync demo in the image did not finish in 2 minutes:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "Run straight after: 0 action(s)") {
		t.Errorf("the demo in the image did not converge:\n%s", out.String())
	}
}

// image is a layout read back: its index, config, layer and the layer's
// regular files.
type image struct {
	index  ociIndex
	config imageConfig
	layer  []byte
	files  map[string][]byte
}

// checkLayout follows index -> manifest -> config and layer, checking every
// digest and size, and checks what the image promises: keysync as the
// entrypoint, a numeric non-root user that /etc/passwd names, CA roots, a
// writable /tmp and /data, and no shell.
func checkLayout(t *testing.T, fsys fs.FS) image {
	t.Helper()
	read := func(name string) []byte {
		t.Helper()
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	blob := func(d descriptor) []byte {
		t.Helper()
		b := read(blobPath(d.Digest))
		if digest(b) != d.Digest || int64(len(b)) != d.Size {
			t.Fatalf("blob %s: digest or size does not match its descriptor", d.Digest)
		}
		return b
	}
	var img image
	if string(read("oci-layout")) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Error("oci-layout")
	}
	strict(t, read("index.json"), &img.index)
	if len(img.index.Manifests) != 1 {
		t.Fatalf("index lists %d manifests, want 1", len(img.index.Manifests))
	}
	var m ociManifest
	strict(t, blob(img.index.Manifests[0]), &m)
	if m.Config.MediaType != "application/vnd.oci.image.config.v1+json" || len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar" {
		t.Fatalf("manifest = %+v", m)
	}
	strict(t, blob(m.Config), &img.config)
	img.layer = blob(m.Layers[0])
	if !slices.Equal(img.config.RootFS.DiffIDs, []string{digest(img.layer)}) {
		t.Error("config's diff_ids do not name the layer")
	}
	var dm []dockerManifest
	strict(t, read("manifest.json"), &dm)
	if len(dm) != 1 || dm[0].Config != blobPath(m.Config.Digest) || !slices.Equal(dm[0].Layers, []string{blobPath(m.Layers[0].Digest)}) || len(dm[0].RepoTags) != 1 {
		t.Errorf("manifest.json (docker load) = %+v, does not match the OCI manifest", dm)
	}

	c := img.config
	if c.OS != "linux" || c.Architecture == "" {
		t.Errorf("platform = %s/%s", c.OS, c.Architecture)
	}
	if !slices.Equal(c.Config.Entrypoint, []string{BinaryPath}) {
		t.Errorf("entrypoint = %q, want [%s]", c.Config.Entrypoint, BinaryPath)
	}
	uid, gid, ok := strings.Cut(c.Config.User, ":")
	if n, err := strconv.Atoi(uid); !ok || err != nil || n == 0 {
		t.Errorf("user = %q, want numeric non-root uid:gid (runAsNonRoot needs a number)", c.Config.User)
	} else if _, err := strconv.Atoi(gid); err != nil {
		t.Errorf("user = %q: gid not numeric", c.Config.User)
	}

	headers := map[string]*tar.Header{}
	img.files = map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(img.layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.TrimSuffix(h.Name, "/")
		headers[name] = h
		if h.Typeflag == tar.TypeReg {
			img.files[name], _ = io.ReadAll(tr)
		}
	}
	if h := headers[BinaryPath]; h == nil || h.Mode&0o111 == 0 {
		t.Errorf("%s missing or not executable", BinaryPath)
	}
	if len(img.files[CAPath]) == 0 {
		t.Errorf("%s missing or empty", CAPath)
	}
	if !slices.Contains(strings.Split(string(img.files["/etc/passwd"]), "\n"), "keysync:x:"+uid+":"+gid+":keysync:/data:/sbin/nologin") {
		t.Errorf("/etc/passwd names no user %s:\n%s", c.Config.User, img.files["/etc/passwd"])
	}
	if h := headers["/tmp"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o1777 {
		t.Error("/tmp missing or not mode 1777")
	}
	if h := headers["/data"]; h == nil || strconv.Itoa(h.Uid) != uid || h.Mode&0o700 != 0o700 {
		t.Errorf("/data missing or not writable by %s", uid)
	}
	for _, sh := range []string{"/bin/sh", "/bin/bash", "/bin/busybox", "/usr/bin/sh"} {
		if headers[sh] != nil {
			t.Errorf("%s in the image: it needs no shell", sh)
		}
	}
	return img
}

// strict decodes JSON with unknown fields rejected.
func strict(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%T: %v", v, err)
	}
}

// untar returns a tarball's regular files by name.
func untar(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		must(t, err)
		if h.Typeflag == tar.TypeReg {
			files[h.Name], _ = io.ReadAll(tr)
		}
	}
}

// extract unpacks the layer into root with its modes and owners.
func extract(t *testing.T, layer []byte, root string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		must(t, err)
		p := filepath.Join(root, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			must(t, os.MkdirAll(p, 0o755))
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			must(t, os.WriteFile(p, b, 0o644))
		default:
			t.Fatalf("%s: unexpected tar type %c", h.Name, h.Typeflag)
		}
		must(t, os.Chown(p, h.Uid, h.Gid))
		must(t, os.Chmod(p, fs.FileMode(h.Mode&0o777)|modeBits(h.Mode)))
	}
}

func modeBits(m int64) fs.FileMode {
	var f fs.FileMode
	if m&0o1000 != 0 {
		f |= fs.ModeSticky
	}
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	must(t, err)
	return b
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestDockerfileMatches holds the Dockerfile (which CI cannot build: it
// has no container engine or registry) to the image ocibuild makes: the
// same static build, binary path, user, entrypoint and default command.
func TestDockerfileMatches(t *testing.T) {
	t.Parallel()
	df := string(readFile(t, "../Dockerfile"))
	stages := strings.Split(df, "\nFROM ")
	final := stages[len(stages)-1]
	for _, want := range []string{
		"CGO_ENABLED=0 go build",
		"-o /out/keysync ./cmd/keysync",
		"COPY --from=build /out/keysync " + BinaryPath + "\n",
		"COPY --from=build --chown=" + User + " /out/data /data\n",
		"USER " + User + "\n",
		"WORKDIR /data\n",
		"EXPOSE 8080\n",
		`ENTRYPOINT ["` + BinaryPath + `"]` + "\n",
		`CMD ["demo"]` + "\n",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && !strings.HasPrefix(final, "scratch") {
		t.Errorf("final stage FROM %s, want a static base with no shell", strings.SplitN(final, "\n", 2)[0])
	}
	if strings.Contains(final, "RUN ") {
		t.Error("the final stage RUNs a command: the image has no shell")
	}
}
